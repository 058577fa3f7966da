/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which frames `trace` prints: filters by message type, originating function and peer,
 * checked on each frame after judgement (`--user` is the session's: it compares identity
 * hashes).  Pure: the session asks, this module answers.
 */
#ifndef WSAUDIT_FILTER_H
#define WSAUDIT_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct frame_filter {
	const char *msg_type; /* --type: a message type, or its t# display; NULL: any */
	const char *function; /* --function: a glob on the originating function; NULL: any */
	const char *peer; /* --peer: IP, IP:PORT, [IPv6]:PORT or :PORT; NULL: any */
	uint64_t max_frames; /* -n: frames printed before the trace ends; 0: no limit */
};

/* A --peer value: 0, or -EINVAL when it is none of the forms above. */
int filter_parse_peer(const char *arg);
/* Whether a connection's peer ("IP:PORT", "[IPv6]:PORT" or "unknown") is the one wanted. */
bool filter_peer_matches(const char *want, const char *peer);
/* Whether the originating function (NULL: unattributed) matches the glob. */
bool filter_function_matches(const char *glob, const char *function);

#endif /* WSAUDIT_FILTER_H */

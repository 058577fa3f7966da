/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Writes handed to a transport that sends them later (uvloop), followed per transport until
 * they reach its socket, so that those still queued when the connection ends are reported
 * (docs/delivery.md, "Writes still queued at close").
 *
 * The hand-over probe (bpf/pystack.bpf.c) records each write with the transport it was
 * handed to and the object's length; the transport names no connection.  It is linked to
 * one when a frame that starts at one of its objects leaves on a connection: that object
 * started at the frame's stream position, and since a transport sends its writes in the
 * order it was given them, each later one starts where the one before ended.  When the
 * connection ends, the writes that start at or past the end of what its socket was given
 * never reached it.
 */
#ifndef WSAUDIT_HANDED_H
#define WSAUDIT_HANDED_H

#include <stdbool.h>
#include <stdint.h>

#include "attrib.h"

/* The length of an object that is not a bytes object: not known. */
#define HANDED_LEN_UNKNOWN UINT64_MAX

/* Writes kept per transport, and in all; past them the oldest go (counted evicted). */
#define HANDED_PER_TRANSPORT 1024
#define HANDED_MAX 65536

/* A write handed to a transport, as reported when it was still queued at the close. */
struct handed_write {
	uint64_t ts_ns; /* when it was handed over */
	uint64_t len; /* bytes */
	struct attrib_stack *stack; /* at the hand-over */
	uint32_t tid;
};

struct handed_stats {
	uint64_t writes; /* hand-overs recorded */
	uint64_t linked; /* transports linked to their connection */
	uint64_t queued_writes; /* writes still queued when their connection ended */
	uint64_t queued_bytes;
	/*
	 * Connections ended whose transport held writes that could not be placed in the
	 * stream (one was not a bytes object, or none was ever seen leaving): not judged.
	 */
	uint64_t unplaced_writes;
	uint64_t evicted; /* writes forgotten past the bounds */
	uint64_t unseen_conns; /* handed_count_unseen */
	uint64_t held; /* writes held now */
};

struct handed;

struct handed *handed_new(void);
void handed_free(struct handed *h);

/* A write handed to `transport` of tgid: object `token`, len bytes (or HANDED_LEN_UNKNOWN). */
void handed_put(struct handed *h, uint32_t tgid, uint32_t tid, uint64_t transport, uint64_t token,
		uint64_t len, uint64_t ts_ns, struct attrib_stack *stack);
/*
 * A frame starting at the object `token` handed to `transport` left on connection conn at
 * stream position pos: links the transport to it, and places its later writes.
 */
void handed_sent(struct handed *h, uint32_t tgid, uint64_t transport, uint64_t token,
		 const struct conn_id *conn, uint64_t pos);
/*
 * Connection conn of tgid ended, its socket given bytes up to stream position end: each
 * write of the transports linked to it that starts at or past end is passed to fn, and the
 * transports are forgotten.  Returns the writes passed; *linked: whether a transport was.
 */
uint64_t handed_close(struct handed *h, uint32_t tgid, const struct conn_id *conn, uint64_t end,
		      void (*fn)(void *ctx, const struct handed_write *w), void *ctx, bool *linked);
/*
 * A connection ended with bytes its writes did not send and no transport linked to it: what
 * was written after them reached no syscall if a transport buffered it (asyncio's selector
 * transport), and whether any was dropped is not seen.  Counted (unseen_conns).
 */
void handed_count_unseen(struct handed *h);
/*
 * Forgets the transports never linked to a connection whose last write is max_age_ns old:
 * not a WebSocket connection's (an HTTP response's), or one whose frames no write matched.
 */
void handed_expire(struct handed *h, uint64_t now_ns, uint64_t max_age_ns);
void handed_forget_process(struct handed *h, uint32_t tgid);
const struct handed_stats *handed_stats(const struct handed *h);

#endif /* WSAUDIT_HANDED_H */

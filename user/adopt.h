/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Compression history of adopted connections (open before the trace, handshake not seen):
 * the history source of their streams (ws_stream_set_history()).
 *
 * Each compressed message of an adopted connection comes with the compressor that ended it
 * and that compressor's output count at its end (the probes on zlib's deflate, seen right
 * before the message's write on the same thread).  The compressor's history is read between
 * messages (user/zhist.c); a history read when the output count was exactly that of a
 * message's end is the history of the message after it, which is then inflated with it,
 * once its own output count confirms it is that compressor's very next message.
 */
#ifndef WSAUDIT_ADOPT_H
#define WSAUDIT_ADOPT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wsaudit/events.h"

struct adopt_stats {
	uint64_t attempts; /* messages offered */
	uint64_t untagged; /* offered without their compressor (no probe record before the write) */
	uint64_t conflicts; /* tagged with a compressor already another connection's */
	uint64_t snapshots; /* histories read between messages */
	uint64_t snapshots_busy; /* compressors caught mid-message or changing, every try */
	uint64_t snapshots_failed; /* not a compressor there (freed or bad record) */
	uint64_t snapshots_over_limit; /* not kept: the memory bound */
	uint64_t rejected; /* the right position, but it did not inflate cleanly */
	uint64_t recovered; /* connections whose history was found */
};

struct adopt;

struct adopt *adopt_new(void);
void adopt_free(struct adopt *a);

/*
 * The history that a compressed message (opcode, its compressed bytes) of connection conn of
 * process pid was compressed after.  strm and total_out: the compressor that ended it and its
 * output count then (0: unknown).  0 with *dict (valid until the next call), or -ENOENT (not
 * found yet: it may be for a later message), -ENOMEM.
 */
int adopt_history(struct adopt *a, pid_t pid, const struct conn_id *conn, uint64_t strm,
		  uint64_t total_out, uint8_t opcode, const uint8_t *wire, size_t len,
		  const uint8_t **dict, size_t *dict_len);
/* The connection ended: its compressor goes. */
void adopt_conn_closed(struct adopt *a, pid_t pid, const struct conn_id *conn);
/* The process is gone. */
void adopt_forget_pid(struct adopt *a, pid_t pid);
const struct adopt_stats *adopt_stats(const struct adopt *a);

#endif /* WSAUDIT_ADOPT_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Compression history of adopted connections (open before the trace, handshake not seen):
 * the history source of their streams (ws_stream_set_history()).
 *
 * Each compressed message of an adopted connection comes with the compressor that ended it
 * and that compressor's output count at its end (the probes on zlib's deflate, seen right
 * before the message's write on the same thread).  The compressor's history is read between
 * messages (user/zhist.c), when the process is followed and at each message until one fits:
 * a history read when the output count was T is that of the message that ends at exactly
 * T + its compressed length + 4, which is then inflated with it.
 */
#ifndef WSAUDIT_ADOPT_H
#define WSAUDIT_ADOPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wsaudit/events.h"

struct adopt_stats {
	uint64_t scans; /* memory scans for compressors, when a process is followed */
	uint64_t scan_bytes;
	uint64_t scans_limited; /* stopped by the byte bound */
	uint64_t scan_errors; /* the process could not be read */
	uint64_t compressors_found;
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
/*
 * Reads the histories of the compressors in pid's memory now (a bounded scan, user/zhist.c):
 * the message each one compresses next then decodes from its first tagged sight.  Returns
 * how many were found, or -errno; *whole says whether the scan read all it looks at (not
 * cut by its bounds).
 */
int adopt_scan_process(struct adopt *a, pid_t pid, bool *whole);
/* The connection ended: its compressor goes. */
void adopt_conn_closed(struct adopt *a, pid_t pid, const struct conn_id *conn);
/* The process is gone. */
void adopt_forget_pid(struct adopt *a, pid_t pid);
const struct adopt_stats *adopt_stats(const struct adopt *a);

#endif /* WSAUDIT_ADOPT_H */

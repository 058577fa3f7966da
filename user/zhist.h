/* SPDX-License-Identifier: GPL-2.0 */
/*
 * zlib compressors in a traced process, read from outside: where they are (a bounded scan of
 * its memory) and each one's history at a message boundary (the bytes
 * deflateGetDictionary() would return) with the stream's counters.  Everything read is
 * the traced process's memory: untrusted, bounded, and checked before use (the z_stream and
 * its deflate_state must point at each other).
 *
 * The deflate_state layout is zlib's (deflate.h, unchanged from 1.2.x to 1.3.x); it is
 * private to zlib, so every field used is cross-checked (w_size == 1 << w_bits, masks,
 * window_size == 2 * w_size, hash sizes) and a stream that does not fit is skipped.
 */
#ifndef WSAUDIT_ZHIST_H
#define WSAUDIT_ZHIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ZHIST_WINDOW_MAX 32768u
/* Bytes of a deflate_state read: up to and including lookahead. */
#define ZHIST_STATE_PREFIX 184u
/* Bytes of a z_stream (LP64). */
#define ZHIST_STREAM_SIZE 112u

/* What a z_stream + deflate_state pair says, once checked. */
struct zhist_state {
	uint64_t strm; /* address of the z_stream */
	uint64_t state; /* address of its deflate_state */
	uint64_t total_in, total_out;
	uint64_t window; /* address of the window */
	uint32_t w_size;
	uint32_t strstart, lookahead;
	uint64_t pending;
	uint32_t avail_in;
	int status;
};

/* The history of one compressor at a message boundary. */
struct zhist_snap {
	uint64_t strm;
	uint64_t total_in; /* uncompressed bytes it was given; dict ends there */
	uint64_t total_out;
	uint32_t len;
	uint8_t dict[ZHIST_WINDOW_MAX];
};

/*
 * Checks a deflate_state prefix (ZHIST_STATE_PREFIX bytes read at state_addr) for a raw
 * deflate stream (wrap 0, method 8, window bits 8..15) and fills out; 0 or -EINVAL.
 */
int zhist_parse_state(const void *buf, size_t len, uint64_t state_addr, struct zhist_state *out);
/*
 * Checks the z_stream (ZHIST_STREAM_SIZE bytes read at out->strm) points back at
 * out->state and takes its counters; 0 or -EINVAL.
 */
int zhist_parse_stream(const void *buf, size_t len, struct zhist_state *out);
/*
 * Whether the stream is between messages: all input taken, nothing pending, no lookahead
 * (after a Z_SYNC_FLUSH / Z_FULL_FLUSH), so the window ends at total_in.
 */
bool zhist_at_boundary(const struct zhist_state *st);
/* Where the history is: [window + *off, + *len); false when the fields disagree. */
bool zhist_dict_range(const struct zhist_state *st, uint64_t *off, uint32_t *len);

/* Limits of one scan. */
#define ZHIST_SCAN_BYTES_MAX (1ull << 30)
#define ZHIST_SCAN_FOUND_MAX 4096

struct zhist_scan_result {
	size_t found;
	uint64_t bytes_read;
	bool limited; /* the byte bound stopped it */
};

/*
 * Finds raw-deflate z_streams in pid's writable private memory (the heap and anonymous
 * mappings, where zlib's state is malloc'ed): a deflate_state whose strm points at a z_stream
 * whose state points back.  Their addresses go to strms (at most max).  0 or -errno.
 */
int zhist_scan(pid_t pid, uint64_t *strms, size_t max, struct zhist_scan_result *res);

/*
 * The walk zhist_scan makes, for other readers of the same memory (user/pyscope.c): pid's
 * heap and anonymous writable mappings read in chunks of at most 1 MiB, in order, at most
 * bytes_max bytes in all (res->limited then).  Consecutive chunks of a mapping overlap by
 * overlap bytes (a multiple of 8), so a record shorter than that is never cut.  fn returns
 * false to stop.  0 or -errno.
 */
int zhist_walk(pid_t pid, size_t overlap, uint64_t bytes_max,
	       bool (*fn)(void *ctx, const uint8_t *b, size_t n, uint64_t addr), void *ctx,
	       struct zhist_scan_result *res);

/*
 * Reads the history of the compressor at strm when it is between messages.  The counters
 * are read before and after the window and must agree, else it is read again (a few
 * times).  0, -EAGAIN (busy or mid-message), -EINVAL (not a raw deflate stream any more),
 * or -errno.
 */
int zhist_snapshot(pid_t pid, uint64_t strm, struct zhist_snap *out);

/*
 * Whether decoded, inflated with old's history, is what the compressor was given right after
 * old: now (a later snapshot of it) still holds those bytes at that offset of its input.
 */
bool zhist_verify(const struct zhist_snap *old, const struct zhist_snap *now, const void *decoded,
		  size_t len);

#endif /* WSAUDIT_ZHIST_H */

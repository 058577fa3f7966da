// SPDX-License-Identifier: GPL-2.0
/*
 * zlib compressor histories read from a traced process.  See zhist.h.
 *
 * By hand because no library reads another process's zlib state: zlib's own
 * deflateGetDictionary() needs the state in our address space.  Fields are taken by offset
 * from little-endian LP64 bytes (the only ABI the BPF side supports), never by casting the
 * traced process's bytes to a struct.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "procmaps.h"
#include "pyproc.h"
#include "zhist.h"

/* deflate_state (zlib deflate.h), LP64 offsets. */
#define ST_STRM 0
#define ST_STATUS 8
#define ST_PENDING 40
#define ST_WRAP 48
#define ST_METHOD 72
#define ST_W_SIZE 80
#define ST_W_BITS 84
#define ST_W_MASK 88
#define ST_WINDOW 96
#define ST_WINDOW_SIZE 104
#define ST_HASH_SIZE 132
#define ST_HASH_BITS 136
#define ST_HASH_MASK 140
#define ST_STRSTART 172
#define ST_LOOKAHEAD 180

/* z_stream (zlib.h), LP64 offsets. */
#define ZS_AVAIL_IN 8
#define ZS_TOTAL_IN 16
#define ZS_TOTAL_OUT 40
#define ZS_STATE 56

#define INIT_STATE 42
#define BUSY_STATE 113
#define Z_DEFLATED 8

#define SNAP_TRIES 4
/* Scan chunk; consecutive chunks overlap by a state prefix so none is cut. */
#define SCAN_CHUNK (1u << 20)

static uint32_t u32_at(const uint8_t *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

static uint64_t u64_at(const uint8_t *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

int zhist_parse_state(const void *buf, size_t len, uint64_t state_addr, struct zhist_state *out)
{
	const uint8_t *b = buf;
	uint32_t w_bits, w_size, hash_bits;
	int status;

	if (len < ZHIST_STATE_PREFIX)
		return -EINVAL;
	status = (int)u32_at(b, ST_STATUS);
	if (status != INIT_STATE && status != BUSY_STATE)
		return -EINVAL;
	/* raw deflate: no zlib or gzip wrapper (permessage-deflate, RFC 7692 7.2.1) */
	if (u32_at(b, ST_WRAP) != 0 || b[ST_METHOD] != Z_DEFLATED)
		return -EINVAL;
	w_bits = u32_at(b, ST_W_BITS);
	if (w_bits < 8 || w_bits > 15)
		return -EINVAL;
	w_size = u32_at(b, ST_W_SIZE);
	if (w_size != 1u << w_bits || u32_at(b, ST_W_MASK) != w_size - 1 ||
	    u64_at(b, ST_WINDOW_SIZE) != 2ull * w_size)
		return -EINVAL;
	hash_bits = u32_at(b, ST_HASH_BITS);
	if (hash_bits < 7 || hash_bits > 24 || u32_at(b, ST_HASH_SIZE) != 1u << hash_bits ||
	    u32_at(b, ST_HASH_MASK) != (1u << hash_bits) - 1)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->strm = u64_at(b, ST_STRM);
	out->state = state_addr;
	out->status = status;
	out->pending = u64_at(b, ST_PENDING);
	out->w_size = w_size;
	out->window = u64_at(b, ST_WINDOW);
	out->strstart = u32_at(b, ST_STRSTART);
	out->lookahead = u32_at(b, ST_LOOKAHEAD);
	if (!out->strm || !out->window || out->strm & 7 ||
	    out->window + 2ull * w_size < out->window)
		return -EINVAL;
	return 0;
}

int zhist_parse_stream(const void *buf, size_t len, struct zhist_state *out)
{
	const uint8_t *b = buf;

	if (len < ZHIST_STREAM_SIZE || u64_at(b, ZS_STATE) != out->state)
		return -EINVAL;
	out->avail_in = u32_at(b, ZS_AVAIL_IN);
	out->total_in = u64_at(b, ZS_TOTAL_IN);
	out->total_out = u64_at(b, ZS_TOTAL_OUT);
	return 0;
}

bool zhist_at_boundary(const struct zhist_state *st)
{
	return !st->avail_in && !st->pending && !st->lookahead;
}

bool zhist_dict_range(const struct zhist_state *st, uint64_t *off, uint32_t *len)
{
	/* deflateGetDictionary(): the last min(strstart + lookahead, w_size) bytes. */
	uint64_t end = (uint64_t)st->strstart + st->lookahead;
	uint64_t n = end < st->w_size ? end : st->w_size;

	if (end > 2ull * st->w_size)
		return false;
	/* Counters wrap only past 2^64 bytes; a history longer than its input is a lie. */
	if (n > st->total_in)
		return false;
	*off = end - n;
	*len = (uint32_t)n;
	return true;
}

/* Reads and checks the pair whose z_stream is at strm. */
static int read_state(pid_t pid, uint64_t strm, struct zhist_state *st)
{
	uint8_t zs[ZHIST_STREAM_SIZE], ds[ZHIST_STATE_PREFIX];
	uint64_t state;
	int err;

	err = pyproc_read(pid, strm, zs, sizeof(zs));
	if (err)
		return err;
	state = u64_at(zs, ZS_STATE);
	if (!state || state & 7)
		return -EINVAL;
	err = pyproc_read(pid, state, ds, sizeof(ds));
	if (err)
		return err;
	if (zhist_parse_state(ds, sizeof(ds), state, st) || st->strm != strm)
		return -EINVAL;
	return zhist_parse_stream(zs, sizeof(zs), st);
}

static bool same_state(const struct zhist_state *a, const struct zhist_state *b)
{
	return a->total_in == b->total_in && a->total_out == b->total_out &&
	       a->strstart == b->strstart && a->lookahead == b->lookahead &&
	       a->window == b->window && a->pending == b->pending && a->avail_in == b->avail_in;
}

int zhist_snapshot(pid_t pid, uint64_t strm, struct zhist_snap *out)
{
	struct zhist_state a, b;
	uint64_t off;
	uint32_t len;
	int err = -EAGAIN;

	for (int i = 0; i < SNAP_TRIES; i++) {
		err = read_state(pid, strm, &a);
		if (err)
			return err;
		if (!zhist_at_boundary(&a)) {
			err = -EAGAIN;
			continue;
		}
		if (!zhist_dict_range(&a, &off, &len))
			return -EINVAL;
		err = pyproc_read(pid, a.window + off, out->dict, len);
		if (err)
			return err;
		/* The window moves only when input comes: unchanged counters, untorn window. */
		err = read_state(pid, strm, &b);
		if (err)
			return err;
		if (!same_state(&a, &b)) {
			err = -EAGAIN;
			continue;
		}
		out->strm = strm;
		out->total_in = a.total_in;
		out->total_out = a.total_out;
		out->len = len;
		return 0;
	}
	return err;
}

/* Reads what is there: a mapping can shrink while it is read. */
static ssize_t read_some(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

	return n < 0 ? -errno : n;
}

/* Looks for states in one chunk of memory read at addr. */
static void scan_chunk(pid_t pid, const uint8_t *b, size_t n, uint64_t addr, uint64_t *strms,
		       size_t max, struct zhist_scan_result *res)
{
	struct zhist_state st;

	for (size_t i = 0; i + ZHIST_STATE_PREFIX <= n && res->found < max; i += 8) {
		/* the cheap filter first: method and wrapper, then the whole check */
		if (b[i + ST_METHOD] != Z_DEFLATED || u32_at(b, i + ST_WRAP) != 0)
			continue;
		if (zhist_parse_state(b + i, n - i, addr + i, &st))
			continue;
		if (read_state(pid, st.strm, &st) || st.state != addr + i)
			continue;
		strms[res->found++] = st.strm;
	}
}

int zhist_walk(pid_t pid, size_t overlap, uint64_t bytes_max,
	       bool (*fn)(void *ctx, const uint8_t *b, size_t n, uint64_t addr), void *ctx,
	       struct zhist_scan_result *res)
{
	struct procmaps_entry e;
	struct procmaps m;
	bool more = true;
	uint8_t *buf;
	int err;

	memset(res, 0, sizeof(*res));
	if (overlap >= SCAN_CHUNK / 2 || overlap % 8)
		return -EINVAL;
	err = procmaps_open(&m, pid);
	if (err)
		return err;
	buf = malloc(SCAN_CHUNK);
	if (!buf) {
		procmaps_close(&m);
		return -ENOMEM;
	}
	while (more && !res->limited && procmaps_next(&m, &e)) {
		unsigned long long lo = e.start, hi = e.end;

		if (hi <= lo || strcmp(e.perms, "rw-p") || e.inode ||
		    (e.name[0] && strcmp(e.name, "[heap]")))
			continue;
		for (uint64_t a = lo; a < hi && more;) {
			size_t want = hi - a < SCAN_CHUNK ? hi - a : SCAN_CHUNK;
			ssize_t got;

			if (res->bytes_read + want > bytes_max) {
				res->limited = true;
				break;
			}
			got = read_some(pid, a, buf, want);
			if (got <= (ssize_t)overlap)
				break; /* unmapped meanwhile, or a guard page: the next mapping */
			res->bytes_read += got;
			more = fn(ctx, buf, got, a);
			if ((size_t)got < want || a + got >= hi)
				break;
			/* the next chunk starts at the first position this one could not check */
			a += got - overlap;
		}
	}
	free(buf);
	procmaps_close(&m);
	return 0;
}

struct scan_ctx {
	pid_t pid;
	uint64_t *strms;
	size_t max;
	struct zhist_scan_result *res;
};

static bool scan_fn(void *ctx, const uint8_t *b, size_t n, uint64_t addr)
{
	struct scan_ctx *x = ctx;

	scan_chunk(x->pid, b, n, addr, x->strms, x->max, x->res);
	return x->res->found < x->max;
}

int zhist_scan(pid_t pid, uint64_t *strms, size_t max, struct zhist_scan_result *res)
{
	struct zhist_scan_result walk;
	struct scan_ctx x = { .pid = pid, .strms = strms, .res = res };
	int err;

	memset(res, 0, sizeof(*res));
	x.max = max > ZHIST_SCAN_FOUND_MAX ? ZHIST_SCAN_FOUND_MAX : max;
	err = zhist_walk(pid, ZHIST_STATE_PREFIX - 8, ZHIST_SCAN_BYTES_MAX, scan_fn, &x, &walk);
	res->bytes_read = walk.bytes_read;
	res->limited = walk.limited;
	return err;
}

bool zhist_verify(const struct zhist_snap *old, const struct zhist_snap *now, const void *decoded,
		  size_t len)
{
	uint64_t start = old->total_in, end = old->total_in + len, first;

	if (old->strm != now->strm || !len || end < start || end > now->total_in ||
	    now->len > now->total_in)
		return false;
	first = now->total_in - now->len; /* input offset of now->dict[0] */
	return start >= first && !memcmp(now->dict + (start - first), decoded, len);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Frame parser under random split points and holes.  Input: an 8-byte plan (direction,
 * RSV1, keep limit, split/hole generator) and then the stream.  Checks the frame
 * invariants, and that without holes the frames do not depend on the split points as long
 * as sync was never lost.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_frame.h"

#define PLAN 8
#define MAX_FRAMES 4096

struct seen {
	size_t n;
	uint64_t off[MAX_FRAMES];
	uint64_t len[MAX_FRAMES];
	uint32_t sum[MAX_FRAMES];
	uint64_t last_end;
};

static void on_frame(void *ctx, const struct ws_frame *f)
{
	struct seen *s = ctx;
	uint32_t sum = 0;

	if (f->captured_len > f->payload_len || f->payload_kept > f->captured_len)
		abort();
	if (f->truncated != (f->captured_len < f->payload_len))
		abort();
	if (f->payload_kept && !f->payload)
		abort();
	if (f->header_len < 2 || f->header_len > 14)
		abort();
	if (!strcmp(ws_opcode_name(f->opcode), "reserved"))
		abort();
	if (f->stream_off < s->last_end)
		abort(); /* frames never overlap or go back */
	s->last_end = f->stream_off + f->header_len + f->payload_len;
	for (size_t i = 0; i < f->payload_kept; i++)
		sum = sum * 31 + f->payload[i];
	if (f->close_reason &&
	    (f->close_reason < (const char *)f->payload ||
	     f->close_reason + f->close_reason_len > (const char *)f->payload + f->payload_kept))
		abort();
	if (s->n < MAX_FRAMES) {
		s->off[s->n] = f->stream_off;
		s->len[s->n] = f->payload_len;
		s->sum[s->n] = sum;
	}
	s->n++;
}

static uint32_t next(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct seen whole, split;
	struct ws_parser_opts o = { 0 };
	struct ws_parser *p;
	uint32_t x;
	unsigned int gap_rate, max_piece;
	size_t off = 0;
	bool gaps = false, whole_desynced;

	if (size < PLAN)
		return 0;
	o.direction = data[0] & 1 ? WS_CLIENT_TO_SERVER : WS_SERVER_TO_CLIENT;
	o.allow_rsv1 = data[0] & 2;
	o.keep_payload = data[0] & 4 ? (size_t)data[1] * 16 : SIZE_MAX / 2;
	memcpy(&x, data + 2, 4);
	x |= 1;
	gap_rate = data[6];
	max_piece = 1 + data[7] * 4;
	data += PLAN;
	size -= PLAN;

	memset(&whole, 0, sizeof(whole));
	p = ws_parser_new(&o, on_frame, &whole);
	if (!p)
		return 0;
	ws_parser_feed(p, 0, data, size);
	ws_parser_finish(p);
	whole_desynced = ws_parser_stats(p)->desyncs;
	ws_parser_free(p);

	memset(&split, 0, sizeof(split));
	p = ws_parser_new(&o, on_frame, &split);
	if (!p)
		return 0;
	while (off < size) {
		size_t n = 1 + next(&x) % max_piece;

		if (n > size - off)
			n = size - off;
		if (gap_rate && next(&x) % 256 < gap_rate / 8) {
			ws_parser_gap(p, off, n);
			gaps = true;
		} else if (gap_rate && next(&x) % 256 < gap_rate / 8) {
			/* a position jump: the bytes before it are an implied hole */
			off += n;
			gaps = true;
			continue;
		} else {
			ws_parser_feed(p, off, data + off, n);
			/* resending what was seen is ignored */
			if (n > 1 && next(&x) % 8 == 0)
				ws_parser_feed(p, off, data + off, n / 2);
		}
		off += n;
	}
	ws_parser_finish(p);
	if (ws_parser_stats(p)->frames != split.n)
		abort();
	if (!gaps && !whole_desynced) {
		if (split.n != whole.n || ws_parser_stats(p)->desyncs)
			abort();
		for (size_t i = 0; i < whole.n && i < MAX_FRAMES; i++) {
			if (split.off[i] != whole.off[i] || split.len[i] != whole.len[i] ||
			    split.sum[i] != whole.sum[i])
				abort();
		}
	}
	ws_parser_free(p);
	ws_looks_like_frames(data, size, o.direction);
	/* The first record of a larger write: a prefix of it, the write's length beyond. */
	if (size && ws_write_looks_like_frames(data, size / 2 + 1, size + data[0], o.direction) &&
	    size / 2 + 1 == size && !data[0] && !ws_looks_like_frames(data, size, o.direction))
		abort();
	return 0;
}

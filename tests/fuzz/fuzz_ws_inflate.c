// SPDX-License-Identifier: GPL-2.0
/*
 * Frame parser + message assembly + permessage-deflate inflater.  Input: an 8-byte plan
 * (extensions, message bound, split/hole generator) and then a server-to-client stream.
 * The same bytes then go to the bare inflater as one message: whatever they are, it
 * decodes at most one byte past the bound (the work per input byte is bounded).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_message.h"

#define PLAN 8

static const char *const extensions[] = {
	NULL,
	"permessage-deflate",
	"permessage-deflate; server_no_context_takeover",
	"permessage-deflate; server_max_window_bits=10; client_max_window_bits=12",
	"permessage-deflate; bogus",
};

/* Reading every decoded byte lets ASan check the bounds. */
static volatile uint8_t sink;

struct bound {
	size_t max;
	uint64_t messages;
};

static void on_message(void *ctx, const struct ws_message *m)
{
	struct bound *b = ctx;

	if (m->len > b->max)
		abort();
	if (m->len && !m->data)
		abort();
	for (size_t i = 0; i < m->len; i++)
		sink ^= m->data[i];
	if (!strcmp(ws_msg_status_name(m->status), "unknown"))
		abort();
	/* known lengths are right; a compressed message cut at the bound has none */
	if (m->status == WS_MSG_OK && m->decoded_len != m->len)
		abort();
	if (m->status == WS_MSG_TOO_LARGE && m->compressed && m->decoded_len)
		abort();

	b->messages++;
}

static void on_frame(void *ctx, const struct ws_frame *f, const struct ws_frame_info *info)
{
	(void)ctx;
	if (info->message && ws_opcode_is_control(f->opcode))
		abort();
	if (info->message && !f->fin)
		abort();
}

static uint32_t next(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void raw_inflate(const uint8_t *data, size_t size, size_t max)
{
	struct ws_inflater *inf = ws_inflater_new();
	struct ws_buf out = { 0 };
	int err;

	if (!inf)
		return;
	ws_buf_reset(&out, max);
	ws_inflater_begin(inf, true);
	err = ws_inflater_feed(inf, data, size, true, &out);
	if (out.len > max || out.total > (uint64_t)max + 1)
		abort();
	if (err == -E2BIG && (out.len != max || out.total != (uint64_t)max + 1))
		abort();
	if (!err && out.total != out.len)
		abort();
	ws_buf_free(&out);
	ws_inflater_free(inf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ws_stream_opts o = { .direction = WS_SERVER_TO_CLIENT };
	struct bound b = { 0 };
	struct ws_stream *s;
	char err[128];
	uint32_t x;
	unsigned int gap_rate, max_piece;
	size_t off = 0;
	uint64_t total;

	if (size < PLAN)
		return 0;
	o.max_message = data[1] & 1 ? 64 + data[1] * 8 : 0;
	b.max = o.max_message ? o.max_message : WS_STREAM_DEFAULT_MAX_MESSAGE;
	s = ws_stream_new(&o, on_frame, on_message, &b);
	if (!s)
		return 0;
	ws_stream_set_extensions(s, extensions[data[0] % 5], err, sizeof(err));
	memcpy(&x, data + 2, 4);
	x |= 1;
	gap_rate = data[6];
	max_piece = 1 + data[7] * 4;
	data += PLAN;
	size -= PLAN;
	while (off < size) {
		size_t n = 1 + next(&x) % max_piece;

		if (n > size - off)
			n = size - off;
		if (gap_rate && next(&x) % 256 < gap_rate / 8)
			ws_stream_gap(s, off, n);
		else
			ws_stream_feed(s, off, data + off, n);
		off += n;
	}
	ws_stream_finish(s);
	total = 0;
	for (int i = 0; i < WS_MSG__COUNT; i++)
		total += ws_stream_stats(s)->messages[i];
	if (total != b.messages)
		abort();
	ws_stream_free(s);
	raw_inflate(data, size, b.max);
	return 0;
}

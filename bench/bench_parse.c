// SPDX-License-Identifier: GPL-2.0
/*
 * Parse throughput of the WebSocket engine on one core: 1 KiB and 16 KiB JSON text
 * messages, one frame per write (one feed per frame, as the capture delivers them).
 *   parser      ws_parser alone, no payload kept (frame boundaries, opcodes, lengths)
 *   stream      ws_stream: parser + message assembly, uncompressed (payload by pointer)
 *   chunked     ws_stream fed 64 KiB pieces cut anywhere (frames split across feeds: the
 *               split ones are copied), as a large write arrives in capture chunks
 *   inflate     ws_stream with permessage-deflate (context takeover, as websockets sends)
 * Prints min/median/max over repeated runs; MB is 10^6 bytes of wire (and, for inflate,
 * of decoded message).
 *
 *   bench_parse [RUNS] [MiB per run]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "ws_message.h"

struct wire {
	uint8_t *buf;
	size_t len;
	size_t *frame_off; /* frame i spans frame_off[i] .. frame_off[i + 1] */
	size_t frames;
	uint64_t decoded; /* message bytes the frames carry */
};

struct counter {
	uint64_t frames;
	uint64_t bytes;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* A JSON event of exactly size bytes, shaped like an agent service's updates. */
static void json_message(char *out, size_t size, unsigned int seq, uint32_t *x)
{
	static const char *const words[] = { "the",	"agent", "tool",  "result", "search",
					     "answer",	"user",	 "query", "token",  "stream",
					     "context", "model", "step",  "plan",   "done" };
	int n = snprintf(out, size,
			 "{\"type\":\"agent_update\",\"run_id\":\"run-%u\",\"user_id\":\"u-%u\","
			 "\"seq\":%u,\"data\":{\"text\":\"",
			 rnd(x) % 1000, rnd(x) % 100, seq);
	size_t at = n;

	while (at < size - 3) {
		const char *w = words[rnd(x) % 15];
		size_t wl = strlen(w);

		if (at + wl + 1 > size - 3)
			wl = size - 3 - at;
		memcpy(out + at, w, wl);
		at += wl;
		if (at < size - 3)
			out[at++] = ' ';
	}
	memcpy(out + at, "\"}}", 3);
}

static size_t put_header(uint8_t *b, bool rsv1, size_t len)
{
	b[0] = 0x81 | (rsv1 ? 0x40 : 0);
	if (len < 126) {
		b[1] = len;
		return 2;
	}
	if (len <= 0xffff) {
		b[1] = 126;
		b[2] = len >> 8;
		b[3] = len & 0xff;
		return 4;
	}
	b[1] = 127;
	for (int i = 0; i < 8; i++)
		b[2 + i] = (uint64_t)len >> (56 - 8 * i);
	return 10;
}

/* total bytes of messages of msg_size, compressed (takeover, window 2^12) or not */
static int build(struct wire *w, size_t msg_size, size_t total, bool compress)
{
	size_t n = total / msg_size, at = 0;
	char *msg = malloc(msg_size);
	uint8_t *tmp = malloc(msg_size + 1024);
	uint32_t x = 2463534242u;
	z_stream zs = { 0 };

	w->buf = malloc(n * (msg_size + 1024));
	w->frame_off = malloc((n + 1) * sizeof(size_t));
	if (!msg || !tmp || !w->buf || !w->frame_off)
		goto fail;
	/* websockets' defaults: server_max_window_bits=12, memLevel 5, zlib's level */
	if (compress && deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 5,
				     Z_DEFAULT_STRATEGY) != Z_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *payload = (const uint8_t *)msg;
		size_t plen = msg_size;

		json_message(msg, msg_size, i, &x);
		if (compress) {
			zs.next_in = (Bytef *)msg;
			zs.avail_in = msg_size;
			zs.next_out = tmp;
			zs.avail_out = msg_size + 1024;
			if (deflate(&zs, Z_SYNC_FLUSH) != Z_OK || zs.avail_in) {
				deflateEnd(&zs);
				goto fail;
			}
			/* RFC 7692 7.2.1: drop the 00 00 ff ff tail */
			plen = msg_size + 1024 - zs.avail_out - 4;
			payload = tmp;
		}
		w->frame_off[i] = at;
		at += put_header(w->buf + at, compress, plen);
		memcpy(w->buf + at, payload, plen);
		at += plen;
	}
	w->frame_off[n] = at;
	w->frames = n;
	w->len = at;
	w->decoded = (uint64_t)n * msg_size;
	if (compress)
		deflateEnd(&zs);
	free(msg);
	free(tmp);
	return 0;
fail:
	free(msg);
	free(tmp);
	return -1;
}

static void count_frame(void *ctx, const struct ws_frame *f)
{
	struct counter *c = ctx;

	c->frames++;
	c->bytes += f->payload_len;
}

static void count_message(void *ctx, const struct ws_message *m)
{
	struct counter *c = ctx;

	c->frames++;
	c->bytes += m->len;
}

enum mode {
	MODE_PARSER,
	MODE_STREAM,
	MODE_CHUNKED,
	MODE_INFLATE,
};

/* One pass over the wire; returns seconds, or -1 when the result is wrong. */
static double run_once(const struct wire *w, enum mode mode)
{
	struct counter c = { 0 };
	double t0, t1;

	if (mode == MODE_PARSER) {
		struct ws_parser_opts o = { .direction = WS_SERVER_TO_CLIENT };
		struct ws_parser *p = ws_parser_new(&o, count_frame, &c);

		t0 = now();
		for (size_t i = 0; i < w->frames; i++)
			ws_parser_feed(p, w->frame_off[i], w->buf + w->frame_off[i],
				       w->frame_off[i + 1] - w->frame_off[i]);
		t1 = now();
		ws_parser_free(p);
	} else {
		struct ws_stream_opts o = { .direction = WS_SERVER_TO_CLIENT };
		struct ws_stream *s = ws_stream_new(&o, NULL, count_message, &c);
		char err[128];

		if (mode == MODE_INFLATE &&
		    ws_stream_set_extensions(s, "permessage-deflate; server_max_window_bits=12",
					     err, sizeof(err)))
			return -1;
		t0 = now();
		if (mode == MODE_CHUNKED) {
			for (size_t at = 0; at < w->len; at += 65536)
				ws_stream_feed(s, at, w->buf + at,
					       w->len - at < 65536 ? w->len - at : 65536);
		} else {
			for (size_t i = 0; i < w->frames; i++)
				ws_stream_feed(s, w->frame_off[i], w->buf + w->frame_off[i],
					       w->frame_off[i + 1] - w->frame_off[i]);
		}
		t1 = now();
		if (ws_stream_stats(s)->messages[WS_MSG_OK] != w->frames)
			t1 = t0 - 1;
		ws_stream_free(s);
	}
	if (c.frames != w->frames)
		return -1;
	if (mode != MODE_PARSER && c.bytes != w->decoded)
		return -1;
	return t1 - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int bench(const char *name, size_t msg_size, size_t total, enum mode mode, int runs)
{
	struct wire w = { 0 };
	double *t = calloc(runs, sizeof(double));

	if (!t || build(&w, msg_size, total, mode == MODE_INFLATE)) {
		fprintf(stderr, "bench_parse: failed to build the input\n");
		return -1;
	}
	run_once(&w, mode); /* warm caches and allocations */
	for (int i = 0; i < runs; i++) {
		t[i] = run_once(&w, mode);
		if (t[i] < 0) {
			fprintf(stderr, "bench_parse: %s decoded wrongly\n", name);
			return -1;
		}
	}
	qsort(t, runs, sizeof(double), cmp_double);
	/* fastest run = highest throughput */
	printf("| %-8s | %5zu B | %8.0f %8.0f %8.0f | %6.2f %6.2f %6.2f |", name, msg_size,
	       w.len / t[runs - 1] / 1e6, w.len / t[runs / 2] / 1e6, w.len / t[0] / 1e6,
	       w.frames / t[runs - 1] / 1e6, w.frames / t[runs / 2] / 1e6, w.frames / t[0] / 1e6);
	if (mode == MODE_INFLATE)
		printf(" %6.0f %6.0f %6.0f | %.2f |\n", w.decoded / t[runs - 1] / 1e6,
		       w.decoded / t[runs / 2] / 1e6, w.decoded / t[0] / 1e6,
		       (double)w.len / w.decoded);
	else
		printf("      (= wire)       | 1.00 |\n");
	free(w.buf);
	free(w.frame_off);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 9;
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
	size_t total = mib << 20;
	int err = 0;

	if (runs < 1 || !mib) {
		fprintf(stderr, "usage: bench_parse [RUNS] [MiB per run]\n");
		return 2;
	}
	printf("%d runs of %zu MiB of messages each; one feed per frame; min median max\n\n", runs,
	       mib);
	printf("| mode     | message | wire MB/s min/med/max      | Mframes/s min/med/max |"
	       " decoded MB/s min/med/max | wire/decoded |\n");
	printf("|----------|---------|----------------------------|-----------------------|"
	       "--------------------------|--------------|\n");
	err |= bench("parser", 1024, total, MODE_PARSER, runs);
	err |= bench("parser", 16384, total, MODE_PARSER, runs);
	err |= bench("stream", 1024, total, MODE_STREAM, runs);
	err |= bench("stream", 16384, total, MODE_STREAM, runs);
	err |= bench("chunked", 1024, total, MODE_CHUNKED, runs);
	err |= bench("chunked", 16384, total, MODE_CHUNKED, runs);
	err |= bench("inflate", 1024, total, MODE_INFLATE, runs);
	err |= bench("inflate", 16384, total, MODE_INFLATE, runs);
	return err ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * RFC 6455 frame parser: the examples of section 5.7, every split point, holes, loss and
 * recovery of sync, and each malformed case by name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "utf8.h"
#include "ws_frame.h"

#define MAX_FRAMES 64

struct got_frame {
	struct ws_frame f;
	uint8_t payload[70000];
	const void *ptr;
};

struct got {
	size_t n;
	struct got_frame fr[MAX_FRAMES];
};

static void collect(void *ctx, const struct ws_frame *f)
{
	struct got *g = ctx;
	struct got_frame *d;

	assert_true(g->n < MAX_FRAMES);
	d = &g->fr[g->n++];
	d->f = *f;
	d->ptr = f->payload;
	if (f->payload_kept) {
		assert_non_null(f->payload);
		assert_true(f->payload_kept <= sizeof(d->payload));
		memcpy(d->payload, f->payload, f->payload_kept);
	}
	if (f->close_reason)
		d->f.close_reason = (const char *)d->payload + 2;
}

static struct got *got_new(void)
{
	return calloc(1, sizeof(struct got));
}

static struct ws_parser *parser(struct got *g, enum ws_direction dir, bool rsv1, size_t keep)
{
	struct ws_parser_opts o = { .direction = dir, .allow_rsv1 = rsv1, .keep_payload = keep };
	struct ws_parser *p = ws_parser_new(&o, collect, g);

	assert_non_null(p);
	return p;
}

static const uint8_t rfc_unmasked_hello[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
static const uint8_t rfc_masked_hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
					    0x7f, 0x9f, 0x4d, 0x51, 0x58 };
static const uint8_t rfc_fragmented[] = { 0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f };
static const uint8_t rfc_ping[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
static const uint8_t rfc_masked_pong[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
					   0x7f, 0x9f, 0x4d, 0x51, 0x58 };

static void assert_payload(const struct got_frame *d, const char *s)
{
	assert_int_equal(d->f.payload_kept, strlen(s));
	assert_memory_equal(d->payload, s, strlen(s));
}

static void feed_all(struct ws_parser *p, const uint8_t *b, size_t n)
{
	assert_int_equal(ws_parser_feed(p, 0, b, n), 0);
}

static void test_rfc_unmasked_text(void **state)
{
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_SERVER_TO_CLIENT, false, 1024);

	feed_all(p, rfc_unmasked_hello, sizeof(rfc_unmasked_hello));
	assert_int_equal(g->n, 1);
	assert_int_equal(g->fr[0].f.opcode, WS_OP_TEXT);
	assert_true(g->fr[0].f.fin);
	assert_false(g->fr[0].f.masked);
	assert_int_equal(g->fr[0].f.payload_len, 5);
	assert_int_equal(g->fr[0].f.header_len, 2);
	assert_int_equal(g->fr[0].f.error, WS_ERR_NONE);
	assert_payload(&g->fr[0], "Hello");
	/* contiguous in one feed and unmasked: the callback saw the fed bytes themselves */
	assert_ptr_equal(g->fr[0].ptr, rfc_unmasked_hello + 2);
	assert_int_equal(ws_parser_pos(p), sizeof(rfc_unmasked_hello));
	ws_parser_free(p);
	free(g);
}

static void test_rfc_masked_text(void **state)
{
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_CLIENT_TO_SERVER, false, 1024);

	feed_all(p, rfc_masked_hello, sizeof(rfc_masked_hello));
	assert_int_equal(g->n, 1);
	assert_true(g->fr[0].f.masked);
	assert_int_equal(g->fr[0].f.header_len, 6);
	assert_int_equal(g->fr[0].f.mask_key[0], 0x37);
	assert_int_equal(g->fr[0].f.mask_key[3], 0x3d);
	assert_int_equal(g->fr[0].f.error, WS_ERR_NONE);
	assert_payload(&g->fr[0], "Hello");
	ws_parser_free(p);
	free(g);
}

static void test_rfc_fragmented(void **state)
{
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_SERVER_TO_CLIENT, false, 1024);

	feed_all(p, rfc_fragmented, sizeof(rfc_fragmented));
	assert_int_equal(g->n, 2);
	assert_int_equal(g->fr[0].f.opcode, WS_OP_TEXT);
	assert_false(g->fr[0].f.fin);
	assert_payload(&g->fr[0], "Hel");
	assert_int_equal(g->fr[1].f.opcode, WS_OP_CONTINUATION);
	assert_true(g->fr[1].f.fin);
	assert_int_equal(g->fr[1].f.stream_off, 5);
	assert_int_equal(g->fr[1].f.error, WS_ERR_NONE);
	assert_payload(&g->fr[1], "lo");
	ws_parser_free(p);
	free(g);
}

static void test_rfc_ping_pong(void **state)
{
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_SERVER_TO_CLIENT, false, 0);

	feed_all(p, rfc_ping, sizeof(rfc_ping));
	assert_int_equal(g->n, 1);
	assert_int_equal(g->fr[0].f.opcode, WS_OP_PING);
	/* control payloads are kept even with keep_payload 0 */
	assert_payload(&g->fr[0], "Hello");
	ws_parser_free(p);

	p = parser(g, WS_CLIENT_TO_SERVER, false, 0);
	g->n = 0;
	feed_all(p, rfc_masked_pong, sizeof(rfc_masked_pong));
	assert_int_equal(g->n, 1);
	assert_int_equal(g->fr[0].f.opcode, WS_OP_PONG);
	assert_payload(&g->fr[0], "Hello");
	ws_parser_free(p);
	free(g);
}

static uint8_t *long_frame(size_t n, size_t *total)
{
	size_t h = n > 0xffff ? 10 : 4;
	uint8_t *b = malloc(h + n);

	b[0] = 0x82;
	if (h == 4) {
		b[1] = 0x7e;
		b[2] = n >> 8;
		b[3] = n & 0xff;
	} else {
		b[1] = 0x7f;
		for (int i = 0; i < 8; i++)
			b[2 + i] = (uint64_t)n >> (56 - 8 * i);
	}
	for (size_t i = 0; i < n; i++)
		b[h + i] = i * 7 + 3;
	*total = h + n;
	return b;
}

static void test_rfc_256_and_64k_binary(void **state)
{
	static const uint8_t hdr256[] = { 0x82, 0x7e, 0x01, 0x00 };
	static const uint8_t hdr64k[] = { 0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00 };
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_SERVER_TO_CLIENT, false, 1 << 20);
	size_t n1, n2;
	uint8_t *a = long_frame(256, &n1), *b = long_frame(65536, &n2);

	/* the exact header bytes RFC 6455 5.7 gives */
	assert_memory_equal(a, hdr256, sizeof(hdr256));
	assert_memory_equal(b, hdr64k, sizeof(hdr64k));
	assert_int_equal(ws_parser_feed(p, 0, a, n1), 0);
	assert_int_equal(ws_parser_feed(p, n1, b, n2), 0);
	assert_int_equal(g->n, 2);
	assert_int_equal(g->fr[0].f.payload_len, 256);
	assert_int_equal(g->fr[0].f.header_len, 4);
	assert_memory_equal(g->fr[0].payload, a + 4, 256);
	assert_int_equal(g->fr[1].f.payload_len, 65536);
	assert_int_equal(g->fr[1].f.header_len, 10);
	assert_int_equal(g->fr[1].f.stream_off, n1);
	assert_memory_equal(g->fr[1].payload, b + 10, 65536);
	ws_parser_free(p);
	free(a);
	free(b);
	free(g);
}

/* Feeds b in pieces cut at the given points and compares with one whole feed. */
static void check_splits(const uint8_t *b, size_t n, enum ws_direction dir)
{
	struct got *ref = got_new(), *g = got_new();
	struct ws_parser *p = parser(ref, dir, true, 1 << 20);

	feed_all(p, b, n);
	ws_parser_free(p);
	assert_true(ref->n > 0);
	for (size_t cut1 = 0; cut1 <= n; cut1++) {
		for (size_t cut2 = cut1; cut2 <= n; cut2 += (n > 64 ? 13 : 1)) {
			g->n = 0;
			p = parser(g, dir, true, 1 << 20);
			assert_int_equal(ws_parser_feed(p, 0, b, cut1), 0);
			assert_int_equal(ws_parser_feed(p, cut1, b + cut1, cut2 - cut1), 0);
			assert_int_equal(ws_parser_feed(p, cut2, b + cut2, n - cut2), 0);
			assert_int_equal(g->n, ref->n);
			for (size_t k = 0; k < g->n; k++) {
				assert_int_equal(g->fr[k].f.stream_off, ref->fr[k].f.stream_off);
				assert_int_equal(g->fr[k].f.payload_len, ref->fr[k].f.payload_len);
				assert_int_equal(g->fr[k].f.opcode, ref->fr[k].f.opcode);
				assert_int_equal(g->fr[k].f.fin, ref->fr[k].f.fin);
				assert_int_equal(g->fr[k].f.payload_kept,
						 ref->fr[k].f.payload_kept);
				assert_memory_equal(g->fr[k].payload, ref->fr[k].payload,
						    g->fr[k].f.payload_kept);
				assert_false(g->fr[k].f.truncated);
			}
			assert_int_equal(ws_parser_stats(p)->desyncs, 0);
			ws_parser_free(p);
		}
	}
	free(ref);
	free(g);
}

static void test_rfc_examples_every_split(void **state)
{
	uint8_t all[64];
	size_t n = 0, n1;
	uint8_t *big = long_frame(300, &n1);

	memcpy(all + n, rfc_fragmented, 5);
	n += 5;
	memcpy(all + n, rfc_ping, sizeof(rfc_ping));
	n += sizeof(rfc_ping);
	memcpy(all + n, rfc_fragmented + 5, 4);
	n += 4;
	memcpy(all + n, rfc_unmasked_hello, sizeof(rfc_unmasked_hello));
	n += sizeof(rfc_unmasked_hello);
	check_splits(all, n, WS_SERVER_TO_CLIENT);
	check_splits(rfc_masked_hello, sizeof(rfc_masked_hello), WS_CLIENT_TO_SERVER);
	check_splits(big, n1, WS_SERVER_TO_CLIENT);
	free(big);
}

static void test_one_byte_feeds(void **state)
{
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_CLIENT_TO_SERVER, false, 1024);
	uint8_t two[22];

	memcpy(two, rfc_masked_hello, 11);
	memcpy(two + 11, rfc_masked_pong, 11);
	for (size_t i = 0; i < sizeof(two); i++)
		assert_int_equal(ws_parser_feed(p, i, two + i, 1), 0);
	assert_int_equal(g->n, 2);
	assert_payload(&g->fr[0], "Hello");
	assert_payload(&g->fr[1], "Hello");
	assert_int_equal(g->fr[1].f.opcode, WS_OP_PONG);
	ws_parser_free(p);
	free(g);
}

static void test_keep_limit(void **state)
{
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_SERVER_TO_CLIENT, false, 3);

	/* split so that the copy path is taken */
	assert_int_equal(ws_parser_feed(p, 0, rfc_unmasked_hello, 4), 0);
	assert_int_equal(ws_parser_feed(p, 4, rfc_unmasked_hello + 4, 3), 0);
	assert_int_equal(g->n, 1);
	assert_payload(&g->fr[0], "Hel");
	assert_int_equal(g->fr[0].f.captured_len, 5);
	assert_false(g->fr[0].f.truncated);
	ws_parser_free(p);
	free(g);
}

static void test_close_frames(void **state)
{
	static const uint8_t normal[] = { 0x88, 0x06, 0x03, 0xe8, 'b', 'y', 'e', '!' };
	static const uint8_t empty[] = { 0x88, 0x00 };
	static const uint8_t one_byte[] = { 0x88, 0x01, 0x03 };
	static const uint8_t code_1005[] = { 0x88, 0x02, 0x03, 0xed };
	static const uint8_t code_1011[] = { 0x88, 0x02, 0x03, 0xf3 };
	static const uint8_t bad_utf8[] = { 0x88, 0x04, 0x0f, 0xa0, 0xc3, 0x28 };
	static const uint8_t code_2999[] = { 0x88, 0x02, 0x0b, 0xb7 };
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_SERVER_TO_CLIENT, false, 0);
	uint64_t pos = 0;

#define FEED(x)                                                            \
	do {                                                               \
		assert_int_equal(ws_parser_feed(p, pos, x, sizeof(x)), 0); \
		pos += sizeof(x);                                          \
	} while (0)
	FEED(normal);
	FEED(empty);
	FEED(one_byte);
	FEED(code_1005);
	FEED(code_1011);
	FEED(bad_utf8);
	FEED(code_2999);
#undef FEED
	assert_int_equal(g->n, 7);
	assert_int_equal(g->fr[0].f.close_code, 1000);
	assert_true(g->fr[0].f.close_valid);
	assert_int_equal(g->fr[0].f.close_reason_len, 4);
	assert_memory_equal(g->fr[0].f.close_reason, "bye!", 4);
	assert_int_equal(g->fr[1].f.close_code, -1);
	assert_true(g->fr[1].f.close_valid);
	assert_int_equal(g->fr[2].f.close_code, -1);
	assert_false(g->fr[2].f.close_valid);
	assert_int_equal(g->fr[3].f.close_code, 1005);
	assert_false(g->fr[3].f.close_valid);
	assert_int_equal(g->fr[4].f.close_code, 1011);
	assert_true(g->fr[4].f.close_valid);
	assert_int_equal(g->fr[5].f.close_code, 4000);
	assert_false(g->fr[5].f.close_valid);
	assert_int_equal(g->fr[6].f.close_code, 2999);
	assert_false(g->fr[6].f.close_valid);
	ws_parser_free(p);
	free(g);
}

/* Feeds one malformed stream followed by a valid frame; returns the parser for checks. */
static struct ws_parser *feed_bad(struct got *g, enum ws_direction dir, bool rsv1, const uint8_t *b,
				  size_t n)
{
	struct ws_parser *p = parser(g, dir, rsv1, 1024);

	g->n = 0;
	assert_int_equal(ws_parser_feed(p, 0, b, n), 0);
	return p;
}

/* A fatal header: no frame, a desync, the error counted. */
static void check_fatal(const uint8_t *b, size_t n, enum ws_parse_error err)
{
	struct got *g = got_new();
	struct ws_parser *p = feed_bad(g, WS_SERVER_TO_CLIENT, true, b, n);

	assert_int_equal(g->n, 0);
	assert_true(ws_parser_desynced(p));
	assert_int_equal(ws_parser_stats(p)->desyncs, 1);
	assert_int_equal(ws_parser_stats(p)->errors[err], 1);
	ws_parser_free(p);
	free(g);
}

/* A readable violation: the frame is reported with the error, sync is kept. */
static void check_soft(const uint8_t *b, size_t n, enum ws_direction dir, bool rsv1, size_t frame,
		       enum ws_parse_error err)
{
	struct got *g = got_new();
	struct ws_parser *p = feed_bad(g, dir, rsv1, b, n);

	assert_true(g->n > frame);
	assert_int_equal(g->fr[frame].f.error, err);
	assert_false(ws_parser_desynced(p));
	assert_int_equal(ws_parser_stats(p)->desyncs, 0);
	assert_int_equal(ws_parser_stats(p)->errors[err], 1);
	ws_parser_free(p);
	free(g);
}

static void test_malformed_reserved_opcode(void **state)
{
	static const uint8_t b[] = { 0x83, 0x00 };

	check_fatal(b, sizeof(b), WS_ERR_RESERVED_OPCODE);
	assert_string_equal(ws_opcode_name(3), "reserved");
	assert_string_equal(ws_parse_error_name(WS_ERR_RESERVED_OPCODE), "reserved_opcode");
}

static void test_malformed_rsv2(void **state)
{
	static const uint8_t b[] = { 0xa1, 0x00 };

	check_fatal(b, sizeof(b), WS_ERR_RSV_BITS);
}

static void test_malformed_rsv3(void **state)
{
	static const uint8_t b[] = { 0x91, 0x00 };

	check_fatal(b, sizeof(b), WS_ERR_RSV_BITS);
}

static void test_malformed_length_msb(void **state)
{
	static const uint8_t b[] = { 0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1 };

	check_fatal(b, sizeof(b), WS_ERR_BAD_LENGTH);
}

static void test_malformed_non_minimal_16(void **state)
{
	static const uint8_t b[] = { 0x81, 0x7e, 0x00, 0x02, 'h', 'i' };

	check_soft(b, sizeof(b), WS_SERVER_TO_CLIENT, false, 0, WS_ERR_BAD_LENGTH);
}

static void test_malformed_non_minimal_64(void **state)
{
	static const uint8_t b[] = { 0x81, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0x02, 'h', 'i' };

	check_soft(b, sizeof(b), WS_SERVER_TO_CLIENT, false, 0, WS_ERR_BAD_LENGTH);
}

static void test_malformed_control_too_long(void **state)
{
	uint8_t b[4 + 126] = { 0x89, 0x7e, 0x00, 126 };

	check_soft(b, sizeof(b), WS_SERVER_TO_CLIENT, false, 0, WS_ERR_CONTROL_TOO_LONG);
}

static void test_malformed_control_fragmented(void **state)
{
	static const uint8_t b[] = { 0x09, 0x00 };

	check_soft(b, sizeof(b), WS_SERVER_TO_CLIENT, false, 0, WS_ERR_CONTROL_FRAGMENTED);
}

static void test_malformed_masked_server_frame(void **state)
{
	check_soft(rfc_masked_hello, sizeof(rfc_masked_hello), WS_SERVER_TO_CLIENT, false, 0,
		   WS_ERR_MASK_MISMATCH);
}

static void test_malformed_unmasked_client_frame(void **state)
{
	check_soft(rfc_unmasked_hello, sizeof(rfc_unmasked_hello), WS_CLIENT_TO_SERVER, false, 0,
		   WS_ERR_MASK_MISMATCH);
}

static void test_malformed_unexpected_continuation(void **state)
{
	static const uint8_t b[] = { 0x80, 0x02, 'l', 'o' };

	check_soft(b, sizeof(b), WS_SERVER_TO_CLIENT, false, 0, WS_ERR_UNEXPECTED_CONTINUATION);
}

static void test_malformed_expected_continuation(void **state)
{
	static const uint8_t b[] = { 0x01, 0x01, 'a', 0x81, 0x01, 'b' };

	check_soft(b, sizeof(b), WS_SERVER_TO_CLIENT, false, 1, WS_ERR_EXPECTED_CONTINUATION);
}

static void test_malformed_rsv1_not_negotiated(void **state)
{
	static const uint8_t b[] = { 0xc1, 0x01, 'a' };

	check_soft(b, sizeof(b), WS_SERVER_TO_CLIENT, false, 0, WS_ERR_RSV_BITS);
}

static void test_malformed_rsv1_on_continuation(void **state)
{
	static const uint8_t b[] = { 0x41, 0x01, 'a', 0xc0, 0x01, 'b' };

	check_soft(b, sizeof(b), WS_SERVER_TO_CLIENT, true, 1, WS_ERR_RSV_BITS);
}

static void test_malformed_rsv1_on_control(void **state)
{
	static const uint8_t b[] = { 0xc9, 0x00 };

	check_soft(b, sizeof(b), WS_SERVER_TO_CLIENT, true, 0, WS_ERR_RSV_BITS);
}

static void test_hole_inside_payload_keeps_sync(void **state)
{
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_SERVER_TO_CLIENT, false, 1024);
	size_t n;
	uint8_t *big = long_frame(1000, &n);

	/* header + 100 payload bytes captured, 900 lost, then a frame */
	assert_int_equal(ws_parser_feed(p, 0, big, 104), 0);
	assert_int_equal(ws_parser_gap(p, 104, n - 104), 0);
	assert_int_equal(ws_parser_feed(p, n, rfc_unmasked_hello, sizeof(rfc_unmasked_hello)), 0);
	assert_int_equal(g->n, 2);
	assert_true(g->fr[0].f.truncated);
	assert_int_equal(g->fr[0].f.captured_len, 100);
	assert_int_equal(g->fr[0].f.payload_kept, 100);
	assert_false(g->fr[0].f.payload_gap);
	assert_memory_equal(g->fr[0].payload, big + 4, 100);
	assert_payload(&g->fr[1], "Hello");
	assert_false(g->fr[1].f.truncated);
	assert_false(g->fr[1].f.resynced);
	assert_int_equal(ws_parser_stats(p)->truncated_frames, 1);
	assert_int_equal(ws_parser_stats(p)->gap_bytes, n - 104);
	assert_int_equal(ws_parser_stats(p)->desyncs, 0);
	ws_parser_free(p);
	free(big);
	free(g);
}

static void test_pos_jump_is_a_hole(void **state)
{
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_SERVER_TO_CLIENT, false, 1024);
	size_t n;
	uint8_t *big = long_frame(1000, &n);

	assert_int_equal(ws_parser_feed(p, 0, big, 50), 0);
	/* the tail of the payload arrives after a jump, then the next frame */
	assert_int_equal(ws_parser_feed(p, n - 10, big + n - 10, 10), 0);
	assert_int_equal(ws_parser_feed(p, n, rfc_ping, sizeof(rfc_ping)), 0);
	assert_int_equal(g->n, 2);
	assert_true(g->fr[0].f.truncated);
	assert_int_equal(g->fr[0].f.captured_len, 56);
	assert_int_equal(g->fr[0].f.payload_kept, 46);
	assert_int_equal(g->fr[1].f.opcode, WS_OP_PING);
	/* bytes already seen are ignored */
	assert_int_equal(ws_parser_feed(p, 0, big, n), 0);
	assert_int_equal(g->n, 2);
	ws_parser_free(p);
	free(big);
	free(g);
}

static void test_hole_over_header_desync_and_resync(void **state)
{
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_SERVER_TO_CLIENT, false, 1024);
	uint8_t b[80];
	size_t n = 0;

	/* a hole swallows the first frame; the rest starts mid-payload */
	memcpy(b + n, "xyz{\"a\":1}", 10);
	n += 10;
	memcpy(b + n, rfc_unmasked_hello, sizeof(rfc_unmasked_hello));
	n += sizeof(rfc_unmasked_hello);
	memcpy(b + n, rfc_ping, sizeof(rfc_ping));
	n += sizeof(rfc_ping);
	memcpy(b + n, rfc_fragmented, sizeof(rfc_fragmented));
	n += sizeof(rfc_fragmented);
	assert_int_equal(ws_parser_gap(p, 0, 5), 0);
	assert_true(ws_parser_desynced(p));
	assert_int_equal(ws_parser_feed(p, 5, b, n), 0);
	assert_false(ws_parser_desynced(p));
	assert_int_equal(g->n, 4);
	assert_int_equal(g->fr[0].f.stream_off, 15);
	assert_true(g->fr[0].f.resynced);
	assert_payload(&g->fr[0], "Hello");
	assert_false(g->fr[1].f.resynced);
	assert_int_equal(ws_parser_stats(p)->desyncs, 1);
	assert_int_equal(ws_parser_stats(p)->resyncs, 1);
	assert_int_equal(ws_parser_stats(p)->skipped_bytes, 10);
	ws_parser_free(p);
	free(g);
}

static void test_resync_on_probation_across_feeds(void **state)
{
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_SERVER_TO_CLIENT, false, 1 << 20);
	size_t n;
	uint8_t *big = long_frame(3000, &n);
	uint64_t pos = 100;

	ws_parser_gap(p, 0, pos);
	/* the frame's header is found, but it runs past this feed: not reported yet */
	assert_int_equal(ws_parser_feed(p, pos, big, 1000), 0);
	assert_int_equal(g->n, 0);
	assert_int_equal(ws_parser_feed(p, pos + 1000, big + 1000, n - 1000 - 1), 0);
	assert_int_equal(g->n, 0);
	/* it ends exactly where a feed ends: confirmed */
	assert_int_equal(ws_parser_feed(p, pos + n - 1, big + n - 1, 1), 0);
	assert_int_equal(g->n, 1);
	assert_int_equal(g->fr[0].f.payload_len, 3000);
	assert_memory_equal(g->fr[0].payload, big + 4, 3000);
	assert_true(g->fr[0].f.resynced);
	ws_parser_free(p);
	free(big);
	free(g);
}

static void test_garbage_yields_no_frames(void **state)
{
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_SERVER_TO_CLIENT, true, 1024);
	uint8_t junk[4096];
	uint32_t x = 12345;
	uint64_t pos = 1;

	ws_parser_gap(p, 0, 1);
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(junk); i++) {
			x = x * 1103515245 + 12345;
			/* JSON-ish text: what sits in payloads after a hole */
			junk[i] = 0x20 + (x >> 16) % 0x5f;
		}
		assert_int_equal(ws_parser_feed(p, pos, junk, sizeof(junk)), 0);
		pos += sizeof(junk);
	}
	assert_int_equal(g->n, 0);
	assert_true(ws_parser_stats(p)->skipped_bytes > 0);
	ws_parser_free(p);
	free(g);
}

static void test_finish_reports_cut_frame(void **state)
{
	struct got *g = got_new();
	struct ws_parser *p = parser(g, WS_SERVER_TO_CLIENT, false, 1024);

	/* the stream ends inside the payload */
	assert_int_equal(ws_parser_feed(p, 0, rfc_unmasked_hello, 5), 0);
	assert_int_equal(g->n, 0);
	ws_parser_finish(p);
	assert_int_equal(g->n, 1);
	assert_true(g->fr[0].f.truncated);
	assert_int_equal(g->fr[0].f.captured_len, 3);
	assert_payload(&g->fr[0], "Hel");
	ws_parser_free(p);

	/* the stream ends inside a header */
	g->n = 0;
	p = parser(g, WS_SERVER_TO_CLIENT, false, 1024);
	assert_int_equal(ws_parser_feed(p, 0, "\x82\x7e\x01", 3), 0);
	ws_parser_finish(p);
	assert_int_equal(g->n, 0);
	assert_int_equal(ws_parser_stats(p)->skipped_bytes, 3);
	ws_parser_free(p);
	free(g);
}

static void test_binary_garbage_yields_no_frames(void **state)
{
	struct got *g = got_new();
	struct ws_parser *p;
	uint8_t junk[4096];
	uint32_t x = 987654321;
	uint64_t pos = 1;

	for (int dir = 0; dir < 2; dir++) {
		p = parser(g, dir ? WS_CLIENT_TO_SERVER : WS_SERVER_TO_CLIENT, true, 1024);
		ws_parser_gap(p, 0, 1);
		pos = 1;
		for (int round = 0; round < 256; round++) {
			for (size_t i = 0; i < sizeof(junk); i++) {
				x ^= x << 13;
				x ^= x >> 17;
				x ^= x << 5;
				junk[i] = x;
			}
			/* feeds start mid-payload: a hole precedes each */
			assert_int_equal(ws_parser_feed(p, pos + 7, junk, sizeof(junk)), 0);
			pos += 7 + sizeof(junk);
		}
		ws_parser_finish(p);
		/* 32 MiB per direction gave none either when the chain lengths were set */
		assert_int_equal(g->n, 0);
		assert_true(ws_parser_stats(p)->skipped_bytes > 1000000);
		ws_parser_free(p);
	}
	free(g);
}

static void test_looks_like_frames(void **state)
{
	uint8_t two[18];

	memcpy(two, rfc_unmasked_hello, 7);
	memcpy(two + 7, rfc_fragmented, 9);
	assert_true(ws_looks_like_frames(rfc_unmasked_hello, 7, WS_SERVER_TO_CLIENT));
	assert_true(ws_looks_like_frames(two, 16, WS_SERVER_TO_CLIENT));
	assert_false(ws_looks_like_frames(two, 15, WS_SERVER_TO_CLIENT));
	assert_false(ws_looks_like_frames(rfc_unmasked_hello, 7, WS_CLIENT_TO_SERVER));
	assert_true(ws_looks_like_frames(rfc_masked_hello, 11, WS_CLIENT_TO_SERVER));
	assert_false(ws_looks_like_frames("GET / HTTP/1.1\r\n", 16, WS_CLIENT_TO_SERVER));
	assert_false(ws_looks_like_frames("HTTP/1.1 101 Switching", 22, WS_SERVER_TO_CLIENT));
	assert_false(ws_looks_like_frames("", 0, WS_SERVER_TO_CLIENT));
	/* The first record of a larger write: two whole frames, the third may go on. */
	assert_true(ws_write_looks_like_frames(two, 16, 16, WS_SERVER_TO_CLIENT));
	assert_true(ws_write_looks_like_frames(two, 13, 16, WS_SERVER_TO_CLIENT));
	assert_true(ws_write_looks_like_frames(two, 12, 16, WS_SERVER_TO_CLIENT));
	/* One whole frame is no evidence; a frame may not end past the write. */
	assert_false(ws_write_looks_like_frames(two, 10, 16, WS_SERVER_TO_CLIENT));
	assert_false(ws_write_looks_like_frames(two, 7, 16, WS_SERVER_TO_CLIENT));
	assert_false(ws_write_looks_like_frames(two, 14, 15, WS_SERVER_TO_CLIENT));
	assert_false(ws_write_looks_like_frames(two, 16, 15, WS_SERVER_TO_CLIENT));
}

static void test_utf8(void **state)
{
	assert_true(utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
	assert_false(utf8_valid("\xc0\xaf", 2)); /* overlong */
	assert_false(utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
	assert_false(utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(utf8_valid("\xe2\x82", 2)); /* cut */
}

static void test_utf8_escape(void **state)
{
	char *e = utf8_escape("\xff\xfe-evil \xc3\xa9\xe2\x82");

	assert_non_null(e);
	assert_string_equal(e, "\\xff\\xfe-evil \xc3\xa9\\xe2\\x82");
	assert_true(utf8_valid(e, strlen(e)));
	free(e);
	e = utf8_escape("");
	assert_string_equal(e, "");
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_unmasked_text),
		cmocka_unit_test(test_utf8_escape),
		cmocka_unit_test(test_rfc_masked_text),
		cmocka_unit_test(test_rfc_fragmented),
		cmocka_unit_test(test_rfc_ping_pong),
		cmocka_unit_test(test_rfc_256_and_64k_binary),
		cmocka_unit_test(test_rfc_examples_every_split),
		cmocka_unit_test(test_one_byte_feeds),
		cmocka_unit_test(test_keep_limit),
		cmocka_unit_test(test_close_frames),
		cmocka_unit_test(test_malformed_reserved_opcode),
		cmocka_unit_test(test_malformed_rsv2),
		cmocka_unit_test(test_malformed_rsv3),
		cmocka_unit_test(test_malformed_length_msb),
		cmocka_unit_test(test_malformed_non_minimal_16),
		cmocka_unit_test(test_malformed_non_minimal_64),
		cmocka_unit_test(test_malformed_control_too_long),
		cmocka_unit_test(test_malformed_control_fragmented),
		cmocka_unit_test(test_malformed_masked_server_frame),
		cmocka_unit_test(test_malformed_unmasked_client_frame),
		cmocka_unit_test(test_malformed_unexpected_continuation),
		cmocka_unit_test(test_malformed_expected_continuation),
		cmocka_unit_test(test_malformed_rsv1_not_negotiated),
		cmocka_unit_test(test_malformed_rsv1_on_continuation),
		cmocka_unit_test(test_malformed_rsv1_on_control),
		cmocka_unit_test(test_hole_inside_payload_keeps_sync),
		cmocka_unit_test(test_pos_jump_is_a_hole),
		cmocka_unit_test(test_hole_over_header_desync_and_resync),
		cmocka_unit_test(test_resync_on_probation_across_feeds),
		cmocka_unit_test(test_garbage_yields_no_frames),
		cmocka_unit_test(test_finish_reports_cut_frame),
		cmocka_unit_test(test_binary_garbage_yields_no_frames),
		cmocka_unit_test(test_looks_like_frames),
		cmocka_unit_test(test_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

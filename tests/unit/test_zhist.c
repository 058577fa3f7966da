// SPDX-License-Identifier: GPL-2.0
/*
 * Compressor histories read from a process (user/zhist.c) and matched to an adopted
 * connection's messages (user/adopt.c), on real zlib streams of this process: the test reads
 * its own memory with process_vm_readv as wsaudit reads a traced server's.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>

#include "adopt.h"
#include "ws_deflate.h"
#include "ws_frame.h"
#include "ws_message.h"
#include "zhist.h"

/* A permessage-deflate sender: raw deflate, context takeover, the tail stripped. */
struct sender {
	z_stream zs;
	uint8_t wire[4096];
	size_t len;
};

static void sender_init(struct sender *s, int wbits)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(deflateInit2(&s->zs, 6, Z_DEFLATED, -wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
}

static void sender_send(struct sender *s, const char *msg)
{
	s->zs.next_in = (Bytef *)msg;
	s->zs.avail_in = strlen(msg);
	s->zs.next_out = s->wire;
	s->zs.avail_out = sizeof(s->wire);
	assert_int_equal(deflate(&s->zs, Z_SYNC_FLUSH), Z_OK);
	s->len = sizeof(s->wire) - s->zs.avail_out;
	assert_true(s->len >= 4 && !memcmp(s->wire + s->len - 4, "\0\0\xff\xff", 4));
	s->len -= 4; /* RFC 7692 7.2.1 */
}

static char *message(int user, int seq)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "{\"type\":\"tick\",\"user_id\":\"user-%d\",\"seq\":%d}", user,
		 seq);
	return buf;
}

static void test_snapshot_is_deflate_get_dictionary(void **state)
{
	struct zhist_snap *snap = malloc(sizeof(*snap));
	uint8_t want[32768];
	uInt want_len = 0;
	struct sender s;

	sender_init(&s, 15);
	for (int i = 0; i < 200; i++)
		sender_send(&s, message(1, i));
	assert_int_equal(zhist_snapshot(getpid(), (uint64_t)(uintptr_t)&s.zs, snap), 0);
	assert_int_equal(deflateGetDictionary(&s.zs, want, &want_len), Z_OK);
	assert_int_equal(snap->len, want_len);
	assert_memory_equal(snap->dict, want, want_len);
	assert_int_equal(snap->total_in, s.zs.total_in);
	assert_int_equal(snap->total_out, s.zs.total_out);
	/* Mid-message (input taken, not flushed): not a boundary. */
	s.zs.next_in = (Bytef *)"{\"type\":\"half";
	s.zs.avail_in = 14;
	s.zs.next_out = s.wire;
	s.zs.avail_out = sizeof(s.wire);
	assert_int_equal(deflate(&s.zs, Z_NO_FLUSH), Z_OK);
	assert_int_equal(zhist_snapshot(getpid(), (uint64_t)(uintptr_t)&s.zs, snap), -EAGAIN);
	deflateEnd(&s.zs);
	free(snap);
}

static void test_not_a_deflate_stream(void **state)
{
	uint8_t junk[512] = { 0 };
	struct zhist_snap *snap = malloc(sizeof(*snap));
	z_stream inf = { 0 };

	/* An inflater, zeros, a zlib-wrapped deflater: none is a raw deflate stream. */
	assert_int_equal(inflateInit2(&inf, -15), Z_OK);
	assert_int_equal(zhist_snapshot(getpid(), (uint64_t)(uintptr_t)&inf, snap), -EINVAL);
	inflateEnd(&inf);
	assert_int_equal(zhist_snapshot(getpid(), (uint64_t)(uintptr_t)junk, snap), -EINVAL);
	assert_int_equal(deflateInit2(&inf, 6, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	assert_int_equal(zhist_snapshot(getpid(), (uint64_t)(uintptr_t)&inf, snap), -EINVAL);
	deflateEnd(&inf);
	/* Unmapped */
	assert_int_not_equal(zhist_snapshot(getpid(), 8, snap), 0);
	free(snap);
}

static void test_parse_state_cross_checks(void **state)
{
	struct sender s;
	uint8_t st[ZHIST_STATE_PREFIX], bad[ZHIST_STATE_PREFIX];
	struct zhist_state out;
	uint64_t addr;

	sender_init(&s, 12);
	sender_send(&s, message(1, 1));
	memcpy(&addr, (uint8_t *)&s.zs + offsetof(z_stream, state), sizeof(addr));
	memcpy(st, (void *)(uintptr_t)addr, sizeof(st));
	assert_int_equal(zhist_parse_state(st, sizeof(st), addr, &out), 0);
	assert_int_equal(out.w_size, 4096);
	assert_int_equal(zhist_parse_state(st, sizeof(st) - 1, addr, &out), -EINVAL);
	/* Each field that is cross-checked, made inconsistent */
	static const size_t offs[] = { 8, 48, 72, 80, 84, 88, 104, 132, 136, 140 };
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		memcpy(bad, st, sizeof(st));
		bad[offs[i]] ^= 0x11;
		assert_int_equal(zhist_parse_state(bad, sizeof(bad), addr, &out), -EINVAL);
	}
	deflateEnd(&s.zs);
}

/* The connection's messages, tagged with their compressor's output count as the probes do. */
static void test_adopt_finds_the_history_at_the_exact_message_end(void **state)
{
	struct conn_id conn = { .ino = 7, .gen = 1 };
	struct adopt *a = adopt_new();
	struct ws_inflater *inf = ws_inflater_new();
	struct ws_buf out = { 0 };
	const uint8_t *dict;
	size_t dict_len;
	struct sender s;
	uint64_t strm = (uint64_t)(uintptr_t)&s.zs;

	sender_init(&s, 15);
	for (int i = 0; i < 50; i++)
		sender_send(&s, message(3, i)); /* before the trace */
	/* The first message seen: its history is unknown, one is read at its end. */
	sender_send(&s, message(3, 50));
	assert_int_equal(adopt_history(a, getpid(), &conn, strm, s.zs.total_out, WS_OP_TEXT, s.wire,
				       s.len, &dict, &dict_len),
			 -ENOENT);
	/* The next one ends exactly its length + 4 later: that history is its own. */
	sender_send(&s, message(3, 51));
	assert_int_equal(adopt_history(a, getpid(), &conn, strm, s.zs.total_out, WS_OP_TEXT, s.wire,
				       s.len, &dict, &dict_len),
			 0);
	assert_int_equal(adopt_stats(a)->recovered, 1);
	ws_buf_reset(&out, 1 << 20);
	assert_int_equal(ws_inflater_prime(inf, dict, dict_len), 0);
	assert_int_equal(ws_inflater_feed(inf, s.wire, s.len, true, &out), 0);
	assert_int_equal(out.len, strlen(message(3, 51)));
	assert_memory_equal(out.data, message(3, 51), out.len);
	/* Its compressor is this connection's now: another's claim is refused. */
	conn.ino = 8;
	sender_send(&s, message(3, 52));
	assert_int_equal(adopt_history(a, getpid(), &conn, strm, s.zs.total_out, WS_OP_TEXT, s.wire,
				       s.len, &dict, &dict_len),
			 -ENOENT);
	assert_int_equal(adopt_stats(a)->conflicts, 1);
	ws_buf_free(&out);
	ws_inflater_free(inf);
	adopt_free(a);
	deflateEnd(&s.zs);
}

/*
 * A message of another connection tagged with this compressor (a misattributed write): the
 * positions fit, the bytes inflate, but not to what the compressor was given.
 */
static void test_adopt_rejects_a_message_that_is_not_the_compressors(void **state)
{
	struct conn_id conn = { .ino = 9, .gen = 1 };
	struct adopt *a = adopt_new();
	const uint8_t *dict;
	size_t dict_len;
	struct sender x, y;
	uint64_t strm = (uint64_t)(uintptr_t)&x.zs;

	sender_init(&x, 15);
	sender_init(&y, 15);
	for (int i = 0; i < 40; i++) {
		sender_send(&x, message(1, i));
		sender_send(&y, message(2, 1000 + i * 7));
	}
	sender_send(&x, message(1, 40));
	assert_int_equal(adopt_history(a, getpid(), &conn, strm, x.zs.total_out, WS_OP_TEXT, x.wire,
				       x.len, &dict, &dict_len),
			 -ENOENT);
	/* y's next message, of x's length, written where x's next message ended */
	do {
		sender_send(&y, message(2, 5));
		sender_send(&x, message(1, 41));
	} while (x.len != y.len && x.zs.total_out < 1000000);
	assert_int_equal(x.len, y.len);
	assert_int_equal(adopt_history(a, getpid(), &conn, strm, x.zs.total_out, WS_OP_TEXT, y.wire,
				       y.len, &dict, &dict_len),
			 -ENOENT);
	assert_int_equal(adopt_stats(a)->recovered, 0);
	adopt_free(a);
	deflateEnd(&x.zs);
	deflateEnd(&y.zs);
}

/* No compressor named (no probe record before the write): said as untagged. */
static void test_adopt_untagged(void **state)
{
	struct conn_id conn = { .ino = 1, .gen = 1 };
	struct adopt *a = adopt_new();
	const uint8_t *dict;
	size_t dict_len;

	assert_int_equal(adopt_history(a, getpid(), &conn, 0, 0, WS_OP_TEXT, (const uint8_t *)"x",
				       1, &dict, &dict_len),
			 -ENOENT);
	assert_int_equal(adopt_stats(a)->untagged, 1);
	adopt_free(a);
}

struct hist_ctx {
	const uint8_t *dict;
	size_t dict_len;
	int ret;
	int calls;
	int ok;
};

static int history_cb(void *ctx, const struct ws_frame *last, uint8_t opcode, const uint8_t *wire,
		      size_t len, const uint8_t **dict, size_t *dict_len)
{
	struct hist_ctx *h = ctx;

	h->calls++;
	*dict = h->dict;
	*dict_len = h->dict_len;
	return h->ret;
}

static void on_message(void *ctx, const struct ws_message *m)
{
	struct hist_ctx *h = ctx;

	h->ok += m->status == WS_MSG_OK;
}

/* An adopted stream asks its history source; without one its messages are undecodable. */
static void test_stream_history_source(void **state)
{
	struct ws_stream_opts o = { .direction = WS_SERVER_TO_CLIENT };
	uint8_t dict[32768], frame[4200];
	uInt dict_len = 0;
	struct hist_ctx h = { 0 };
	struct ws_stream *st;
	struct sender s;
	uint64_t pos = 0;

	sender_init(&s, 15);
	for (int i = 0; i < 30; i++)
		sender_send(&s, message(4, i));
	assert_int_equal(deflateGetDictionary(&s.zs, dict, &dict_len), Z_OK);
	st = ws_stream_new(&o, NULL, on_message, &h);
	ws_stream_adopt(st, 0);
	assert_true(ws_stream_history_unknown(st));
	/* The source knows nothing: undecodable_gap, said. */
	h.ret = -ENOENT;
	ws_stream_set_history(st, history_cb, &h);
	for (int round = 0; round < 2; round++) {
		sender_send(&s, message(4, 30 + round));
		if (round == 1) {
			h.ret = 0;
			h.dict = dict;
			h.dict_len = dict_len;
		}
		frame[0] = 0xc1; /* fin, rsv1, text */
		frame[1] = (uint8_t)s.len;
		memcpy(frame + 2, s.wire, s.len);
		assert_true(s.len < 126);
		assert_int_equal(ws_stream_feed(st, pos, frame, s.len + 2), 0);
		pos += s.len + 2;
		if (round == 0) {
			/* the history the source will give: up to this message's end */
			assert_int_equal(deflateGetDictionary(&s.zs, dict, &dict_len), Z_OK);
		}
	}
	assert_int_equal(h.calls, 2);
	assert_int_equal(h.ok, 1);
	assert_false(ws_stream_history_unknown(st));
	assert_int_equal(ws_stream_stats(st)->history_recovered, 1);
	assert_int_equal(ws_stream_stats(st)->messages[WS_MSG_UNDECODABLE_GAP], 1);
	ws_stream_free(st);
	deflateEnd(&s.zs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_is_deflate_get_dictionary),
		cmocka_unit_test(test_not_a_deflate_stream),
		cmocka_unit_test(test_parse_state_cross_checks),
		cmocka_unit_test(test_adopt_finds_the_history_at_the_exact_message_end),
		cmocka_unit_test(test_adopt_rejects_a_message_that_is_not_the_compressors),
		cmocka_unit_test(test_adopt_untagged),
		cmocka_unit_test(test_stream_history_source),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
/* permessage-deflate: negotiated parameters and the inflater, with the RFC 7692 7 examples. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "ws_deflate.h"

static void test_params_default(void **state)
{
	struct ws_deflate_params p;
	char err[128];

	assert_int_equal(ws_deflate_parse("permessage-deflate", &p, err, sizeof(err)), 0);
	assert_true(p.enabled);
	assert_false(p.server_no_context_takeover);
	assert_false(p.client_no_context_takeover);
	assert_int_equal(p.server_max_window_bits, 15);
	assert_int_equal(p.client_max_window_bits, 15);
	assert_false(ws_deflate_no_takeover(&p, true));
}

static void test_params_all(void **state)
{
	struct ws_deflate_params p;
	char err[128];

	assert_int_equal(ws_deflate_parse("x-other; a=1, PerMessage-Deflate ;server_no_context_"
					  "takeover; client_no_context_takeover ; "
					  "server_max_window_bits=10;client_max_window_bits=\"9\"",
					  &p, err, sizeof(err)),
			 0);
	assert_true(p.enabled);
	assert_true(p.server_no_context_takeover);
	assert_true(p.client_no_context_takeover);
	assert_int_equal(p.server_max_window_bits, 10);
	assert_int_equal(p.client_max_window_bits, 9);
	assert_true(ws_deflate_no_takeover(&p, true));
	assert_true(ws_deflate_no_takeover(&p, false));
}

static void test_params_absent(void **state)
{
	struct ws_deflate_params p;
	char err[128];

	assert_int_equal(ws_deflate_parse(NULL, &p, err, sizeof(err)), 0);
	assert_false(p.enabled);
	assert_int_equal(ws_deflate_parse("", &p, err, sizeof(err)), 0);
	assert_false(p.enabled);
	assert_int_equal(ws_deflate_parse("x-webkit-deflate-frame", &p, err, sizeof(err)), 0);
	assert_false(p.enabled);
}

static void check_bad(const char *value, const char *want)
{
	struct ws_deflate_params p;
	char err[128];

	assert_int_equal(ws_deflate_parse(value, &p, err, sizeof(err)), -EINVAL);
	if (!strstr(err, want))
		fail_msg("'%s': error '%s' does not say '%s'", value, err, want);
}

static void test_params_malformed_unknown(void **state)
{
	check_bad("permessage-deflate; server_max_window=10", "unknown");
}

static void test_params_malformed_duplicate(void **state)
{
	check_bad("permessage-deflate; server_no_context_takeover; server_no_context_takeover",
		  "duplicate");
	check_bad("permessage-deflate; server_max_window_bits=10; server_max_window_bits=11",
		  "duplicate");
}

static void test_params_malformed_value_on_flag(void **state)
{
	check_bad("permessage-deflate; client_no_context_takeover=1", "takes no value");
}

static void test_params_malformed_window_bits(void **state)
{
	check_bad("permessage-deflate; server_max_window_bits=7", "8 to 15");
	check_bad("permessage-deflate; server_max_window_bits=16", "8 to 15");
	check_bad("permessage-deflate; server_max_window_bits=010", "8 to 15");
	check_bad("permessage-deflate; client_max_window_bits=x", "8 to 15");
	check_bad("permessage-deflate; server_max_window_bits", "needs a value");
}

static void test_params_malformed_twice(void **state)
{
	check_bad("permessage-deflate, permessage-deflate", "twice");
}

static void test_params_malformed_empty_param(void **state)
{
	check_bad("permessage-deflate;", "empty");
	check_bad("permessage-deflate; ; server_no_context_takeover", "empty");
}

/* Inflates a message given as frames (NULL-terminated list of byte arrays with lengths). */
static void inflate_msg(struct ws_inflater *inf, bool fresh, const uint8_t *const *parts,
			const size_t *lens, size_t n, const char *want)
{
	struct ws_buf out = { 0 };

	ws_buf_reset(&out, 1 << 20);
	assert_int_equal(ws_inflater_begin(inf, fresh), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ws_inflater_feed(inf, parts[i], lens[i], i + 1 == n, &out), 0);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.data, want, out.len);
	assert_int_equal(out.total, out.len);
	ws_buf_free(&out);
}

/* RFC 7692 7.2.3.1: "Hello" in one compressed frame and in two fragments. */
static const uint8_t hello1[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
/* RFC 7692 7.2.3.2: the second "Hello" with the window shared */
static const uint8_t hello2[] = { 0xf2, 0x00, 0x11, 0x00, 0x00 };

static void test_rfc7692_single_and_fragmented(void **state)
{
	static const uint8_t frag1[] = { 0xf2, 0x48, 0xcd };
	static const uint8_t frag2[] = { 0xc9, 0xc9, 0x07, 0x00 };
	const uint8_t *one[] = { hello1 }, *two[] = { frag1, frag2 };
	size_t l1[] = { sizeof(hello1) }, l2[] = { sizeof(frag1), sizeof(frag2) };
	struct ws_inflater *inf = ws_inflater_new();

	inflate_msg(inf, true, one, l1, 1, "Hello");
	inflate_msg(inf, true, two, l2, 2, "Hello");
	ws_inflater_free(inf);
}

static void test_rfc7692_context_takeover(void **state)
{
	const uint8_t *a[] = { hello1 }, *b[] = { hello2 };
	size_t la[] = { sizeof(hello1) }, lb[] = { sizeof(hello2) };
	struct ws_inflater *inf = ws_inflater_new();

	inflate_msg(inf, true, a, la, 1, "Hello");
	/* the back-reference to the first message needs its window */
	inflate_msg(inf, false, b, lb, 1, "Hello");
	ws_inflater_free(inf);
}

static void test_rfc7692_no_context_takeover(void **state)
{
	const uint8_t *a[] = { hello1 }, *b[] = { hello2 };
	size_t la[] = { sizeof(hello1) }, lb[] = { sizeof(hello2) };
	struct ws_inflater *inf = ws_inflater_new();
	struct ws_buf out = { 0 };

	/* without takeover every message is the same bytes */
	inflate_msg(inf, true, a, la, 1, "Hello");
	inflate_msg(inf, true, a, la, 1, "Hello");
	/* and the shared-window form cannot be decoded from a fresh context */
	ws_buf_reset(&out, 1024);
	assert_int_equal(ws_inflater_begin(inf, true), 0);
	assert_int_equal(ws_inflater_feed(inf, b[0], lb[0], true, &out), -EBADMSG);
	ws_buf_free(&out);
	(void)b;
	ws_inflater_free(inf);
}

static void test_rfc7692_stored_block(void **state)
{
	/* 7.2.3.3: a DEFLATE block with no compression */
	static const uint8_t m[] = { 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
				     0x65, 0x6c, 0x6c, 0x6f, 0x00 };
	const uint8_t *p[] = { m };
	size_t l[] = { sizeof(m) };
	struct ws_inflater *inf = ws_inflater_new();

	inflate_msg(inf, true, p, l, 1, "Hello");
	ws_inflater_free(inf);
}

static void test_rfc7692_bfinal(void **state)
{
	/* 7.2.3.4: a block with BFINAL set, then a message after it */
	static const uint8_t m[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00 };
	const uint8_t *p[] = { m }, *q[] = { hello1 };
	size_t l[] = { sizeof(m) }, lq[] = { sizeof(hello1) };
	struct ws_inflater *inf = ws_inflater_new();

	inflate_msg(inf, true, p, l, 1, "Hello");
	inflate_msg(inf, false, q, lq, 1, "Hello");
	ws_inflater_free(inf);
}

static void test_rfc7692_two_blocks(void **state)
{
	/* 7.2.3.5: two DEFLATE blocks in one message */
	static const uint8_t m[] = { 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
				     0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00 };
	const uint8_t *p[] = { m };
	size_t l[] = { sizeof(m) };
	struct ws_inflater *inf = ws_inflater_new();

	inflate_msg(inf, true, p, l, 1, "Hello");
	ws_inflater_free(inf);
}

static void test_inflate_garbage(void **state)
{
	static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x12, 0x34 };
	struct ws_inflater *inf = ws_inflater_new();
	struct ws_buf out = { 0 };

	ws_buf_reset(&out, 1024);
	ws_inflater_begin(inf, true);
	assert_int_equal(ws_inflater_feed(inf, junk, sizeof(junk), true, &out), -EBADMSG);
	ws_buf_free(&out);
	ws_inflater_free(inf);
}

static void test_buf_limit(void **state)
{
	struct ws_buf b = { 0 };

	ws_buf_reset(&b, 4);
	assert_int_equal(ws_buf_append(&b, "Hel", 3), 0);
	assert_int_equal(ws_buf_append(&b, "lo", 2), 0);
	assert_int_equal(b.len, 4);
	assert_int_equal(b.total, 5);
	assert_memory_equal(b.data, "Hell", 4);
	ws_buf_free(&b);
}

/* Raw deflate of n zero bytes, sync-flushed as a permessage-deflate sender does. */
static uint8_t *zeros_deflated(size_t n, size_t *outlen)
{
	z_stream zs = { 0 };
	uint8_t *in = calloc(1, n), *out = malloc(n / 100 + 1024);

	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = in;
	zs.avail_in = n;
	zs.next_out = out;
	zs.avail_out = n / 100 + 1024;
	assert_int_equal(deflate(&zs, Z_SYNC_FLUSH), Z_OK);
	assert_int_equal(zs.avail_in, 0);
	*outlen = zs.total_out - 4; /* RFC 7692 7.2.1: the 00 00 ff ff tail is not sent */
	deflateEnd(&zs);
	free(in);
	return out;
}

/* A bomb: 64 MiB of zeros in 64 KiB.  Inflation stops one byte past the limit. */
static void test_inflate_bomb_stops_at_limit(void **state)
{
	struct ws_inflater *inf = ws_inflater_new();
	struct ws_buf out = { 0 };
	size_t n;
	uint8_t *bomb = zeros_deflated(64u << 20, &n);

	assert_true(n < 128 * 1024);
	ws_buf_reset(&out, 1 << 20);
	ws_inflater_begin(inf, true);
	assert_int_equal(ws_inflater_feed(inf, bomb, n, true, &out), -E2BIG);
	assert_int_equal(out.len, 1 << 20);
	/* not the 64 MiB it decodes to: the rest was never inflated */
	assert_int_equal(out.total, (1 << 20) + 1);
	/* a later fresh message decodes again */
	ws_buf_reset(&out, 1 << 20);
	ws_inflater_begin(inf, true);
	assert_int_equal(ws_inflater_feed(inf, hello1, sizeof(hello1), true, &out), 0);
	assert_int_equal(out.len, 5);
	ws_buf_free(&out);
	ws_inflater_free(inf);
	free(bomb);
}

/* A message of exactly the limit is not too large; one byte more is. */
static void test_inflate_exact_limit(void **state)
{
	struct ws_inflater *inf = ws_inflater_new();
	struct ws_buf out = { 0 };
	size_t n;
	uint8_t *m = zeros_deflated(4096, &n), *m1;

	ws_buf_reset(&out, 4096);
	ws_inflater_begin(inf, true);
	assert_int_equal(ws_inflater_feed(inf, m, n, true, &out), 0);
	assert_int_equal(out.len, 4096);
	assert_int_equal(out.total, 4096);
	m1 = zeros_deflated(4097, &n);
	ws_buf_reset(&out, 4096);
	ws_inflater_begin(inf, true);
	assert_int_equal(ws_inflater_feed(inf, m1, n, true, &out), -E2BIG);
	assert_int_equal(out.len, 4096);
	ws_buf_free(&out);
	ws_inflater_free(inf);
	free(m);
	free(m1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params_default),
		cmocka_unit_test(test_params_all),
		cmocka_unit_test(test_params_absent),
		cmocka_unit_test(test_params_malformed_unknown),
		cmocka_unit_test(test_params_malformed_duplicate),
		cmocka_unit_test(test_params_malformed_value_on_flag),
		cmocka_unit_test(test_params_malformed_window_bits),
		cmocka_unit_test(test_params_malformed_twice),
		cmocka_unit_test(test_params_malformed_empty_param),
		cmocka_unit_test(test_rfc7692_single_and_fragmented),
		cmocka_unit_test(test_rfc7692_context_takeover),
		cmocka_unit_test(test_rfc7692_no_context_takeover),
		cmocka_unit_test(test_rfc7692_stored_block),
		cmocka_unit_test(test_rfc7692_bfinal),
		cmocka_unit_test(test_rfc7692_two_blocks),
		cmocka_unit_test(test_inflate_garbage),
		cmocka_unit_test(test_buf_limit),
		cmocka_unit_test(test_inflate_bomb_stops_at_limit),
		cmocka_unit_test(test_inflate_exact_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

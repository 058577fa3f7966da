// SPDX-License-Identifier: GPL-2.0
/*
 * An adopted connection's request read back from an ASGI scope (user/pyscope.c), over a
 * synthetic memory image: uvicorn's scope dict as CPython 3.11 lays it out, with the things a
 * real heap holds around it (other scopes next to it, freed ones, hostile bytes).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pyscope.h"
#include "pyscope_image.h"

static struct img *img;

static uint64_t alloc(size_t n)
{
	uint64_t at = IMG_BASE + img->top;

	img->top += (n + 15) & ~15ul;
	assert_true(img->top <= IMG_SIZE);
	return at;
}

static void put64(uint64_t addr, uint64_t v)
{
	memcpy(img->b + (addr - IMG_BASE), &v, 8);
}

static void header(uint64_t at, uint64_t type, uint64_t size)
{
	put64(at, 1);
	put64(at + 8, type);
	put64(at + 16, size);
}

static uint64_t mk_str(const char *s)
{
	size_t n = strlen(s);
	uint64_t at = alloc(40 + n + 1);

	header(at, img_layout.str_type, n);
	put64(at + 24, (uint64_t)-1);
	put64(at + 32, 0x20 | 0x40 | (1 << 2)); /* compact, ascii, kind 1 */
	memcpy(img->b + (at + 40 - IMG_BASE), s, n + 1);
	return at;
}

static uint64_t mk_int(uint32_t v)
{
	uint64_t at = alloc(32);

	header(at, img_layout.long_type, 1);
	memcpy(img->b + (at + 24 - IMG_BASE), &v, 4);
	return at;
}

static uint64_t mk_tuple(uint64_t a, uint64_t b)
{
	uint64_t at = alloc(40);

	header(at, img_layout.tuple_type, 2);
	put64(at + 24, a);
	put64(at + 32, b);
	return at;
}

static uint64_t mk_bytes(const char *s)
{
	size_t n = strlen(s);
	uint64_t at = alloc(32 + n + 1);

	header(at, img_layout.bytes_type, n);
	memcpy(img->b + (at + 32 - IMG_BASE), s, n + 1);
	return at;
}

static uint64_t mk_list(const uint64_t *items, size_t n)
{
	uint64_t at = alloc(40), arr = alloc(8 * (n ? n : 1));

	header(at, img_layout.list_type, n);
	put64(at + 24, arr);
	put64(at + 32, n);
	for (size_t i = 0; i < n; i++)
		put64(arr + 8 * i, items[i]);
	return at;
}

static uint64_t mk_headers(const char *const *kv, size_t n)
{
	uint64_t items[128];

	for (size_t i = 0; i < n; i++)
		items[i] = mk_tuple(mk_bytes(kv[2 * i]), mk_bytes(kv[2 * i + 1]));
	return mk_list(items, n);
}

/*
 * A scope's table as a 3.11 dict of str keys keeps it: an index array, then (key, value)
 * entries in insertion order, then unused (zeroed) entries.  Returns the tuple's address.
 */
static uint64_t mk_scope(const char *ip, uint32_t port, uint64_t headers, const char *query)
{
	const char *keys[] = { "type",	       "asgi",	    "scheme",	   "server",
			       "client",       "root_path", "path",	   "raw_path",
			       "query_string", "headers",   "subprotocols" };
	size_t n = sizeof(keys) / sizeof(keys[0]);
	uint64_t client = mk_tuple(mk_str(ip), mk_int(port)), vals[16], idx, entries;

	for (size_t i = 0; i < n; i++)
		vals[i] = mk_str("v");
	vals[4] = client;
	vals[6] = mk_str("/ws");
	vals[8] = mk_bytes(query);
	vals[9] = headers;
	idx = alloc(16);
	memset(img->b + (idx - IMG_BASE), 0xff, 16);
	entries = alloc(16 * (n + 4));
	for (size_t i = 0; i < n; i++) {
		put64(entries + 16 * i, mk_str(keys[i]));
		put64(entries + 16 * i + 8, vals[i]);
	}
	return client;
}

static struct pyscope_scan *scan(size_t chunk)
{
	struct pyscope_scan *s = pyscope_scan_new(&img_layout, img_read, img);

	assert_non_null(s);
	for (int pass = 0; pass < 2; pass++) {
		/* chunks overlap by 64 bytes, as the process walk's do */
		for (size_t off = 0; off < img->top; off += chunk - 64) {
			size_t n = img->top - off < chunk ? img->top - off : chunk;

			pyscope_scan_chunk(s, pass, img->b + off, n, IMG_BASE + off);
			if (off + n >= img->top)
				break;
		}
		if (!pass)
			pyscope_scan_pass_done(s);
	}
	return s;
}

static const char *const good[] = { "host", "127.0.0.1:8000", "sec-websocket-protocol",
				    "jwt.eyJhbGciOi, chat" };
static const char *const other[] = { "host", "127.0.0.1:8000", "sec-websocket-protocol",
				     "jwt.OTHER" };

static int setup(void **state)
{
	(void)state;
	img = calloc(1, sizeof(*img));
	return img ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(img);
	img = NULL;
	return 0;
}

static void test_request_read_back_from_scope(void **state)
{
	const struct http1_message *m;
	struct pyscope_scan *s;
	int err;

	(void)state;
	/* a scope of another peer right before: its headers must not be taken */
	mk_scope("127.0.0.1", 40000, mk_headers(other, 2), "");
	mk_scope("127.0.0.1", 40001, mk_headers(good, 2), "token=abc&x=1");
	mk_scope("::1", 40002, mk_headers(other, 2), "");
	for (size_t chunk = 256; chunk <= IMG_SIZE; chunk *= 8) {
		s = scan(chunk);
		m = pyscope_lookup(s, "127.0.0.1", 40001, &err);
		assert_int_equal(err, 0);
		assert_non_null(m);
		assert_int_equal(m->nheaders, 2);
		assert_string_equal(http1_header(m, "Sec-WebSocket-Protocol"),
				    "jwt.eyJhbGciOi, chat");
		assert_string_equal(m->query, "token=abc&x=1");
		assert_string_equal(m->target, "/ws?token=abc&x=1");
		assert_string_equal(m->path, "/ws");
		assert_string_equal(m->method, "GET");
		m = pyscope_lookup(s, "::1", 40002, &err);
		assert_non_null(m);
		assert_string_equal(http1_header(m, "sec-websocket-protocol"), "jwt.OTHER");
		assert_string_equal(m->target, "/ws");
		assert_null(pyscope_lookup(s, "127.0.0.1", 40003, &err));
		assert_int_equal(err, -ENOENT);
		assert_int_equal(pyscope_scan_stats(s)->scopes, 3);
		pyscope_scan_free(s);
	}
}

static void test_freed_scope_is_not_taken(void **state)
{
	struct pyscope_scan *s;
	uint64_t tuple;
	int err;

	(void)state;
	tuple = mk_scope("10.0.0.1", 5555, mk_headers(good, 2), "");
	/* pymalloc keeps its free list in the first word of a freed block */
	put64(tuple, IMG_BASE + 0x1230);
	s = scan(IMG_SIZE);
	assert_null(pyscope_lookup(s, "10.0.0.1", 5555, &err));
	assert_int_equal(err, -ENOENT);
	pyscope_scan_free(s);
}

static void test_two_requests_for_one_peer_are_neither(void **state)
{
	struct pyscope_scan *s;
	int err;

	(void)state;
	mk_scope("10.0.0.2", 6000, mk_headers(good, 2), "");
	mk_scope("10.0.0.2", 6000, mk_headers(other, 2), "");
	s = scan(IMG_SIZE);
	assert_null(pyscope_lookup(s, "10.0.0.2", 6000, &err));
	assert_int_equal(err, -EEXIST);
	pyscope_scan_free(s);
}

static void test_hostile_headers_are_refused(void **state)
{
	static const char *const crlf[] = { "x-a", "1\r\nsec-websocket-protocol: jwt.FORGED" };
	uint64_t many[HTTP1_MAX_HEADERS + 1], big;
	struct pyscope_scan *s;
	char *huge;
	int err;

	(void)state;
	mk_scope("10.0.0.3", 7000, mk_headers(crlf, 1), "");
	for (size_t i = 0; i < HTTP1_MAX_HEADERS + 1; i++)
		many[i] = mk_tuple(mk_bytes("a"), mk_bytes("b"));
	mk_scope("10.0.0.3", 7001, mk_list(many, HTTP1_MAX_HEADERS + 1), "");
	huge = malloc(PYSCOPE_REQ_MAX + 1);
	assert_non_null(huge);
	memset(huge, 'a', PYSCOPE_REQ_MAX);
	huge[PYSCOPE_REQ_MAX] = 0;
	big = mk_bytes(huge);
	free(huge);
	mk_scope("10.0.0.3", 7002, mk_list((uint64_t[]){ mk_tuple(mk_bytes("x"), big) }, 1), "");
	/* a header list whose item pointer leads out of the process */
	mk_scope("10.0.0.3", 7003, mk_list((uint64_t[]){ 0xdead0000ull }, 1), "");
	s = scan(IMG_SIZE);
	for (uint16_t port = 7000; port <= 7003; port++) {
		assert_null(pyscope_lookup(s, "10.0.0.3", port, &err));
		assert_int_equal(err, -ENOENT);
	}
	assert_int_equal(pyscope_scan_stats(s)->bad_scopes, 4);
	assert_int_equal(pyscope_scan_stats(s)->scopes, 0);
	pyscope_scan_free(s);
}

static void test_peer_text(void **state)
{
	char ip[PYSCOPE_IP_MAX + 1];
	uint16_t port;

	(void)state;
	assert_int_equal(pyscope_parse_peer("1.2.3.4:5", ip, &port), 0);
	assert_string_equal(ip, "1.2.3.4");
	assert_int_equal(port, 5);
	assert_int_equal(pyscope_parse_peer("[::1]:65535", ip, &port), 0);
	assert_string_equal(ip, "::1");
	assert_int_equal(port, 65535);
	assert_int_equal(pyscope_parse_peer("1.2.3.4:0", ip, &port), -EINVAL);
	assert_int_equal(pyscope_parse_peer("1.2.3.4:65536", ip, &port), -EINVAL);
	assert_int_equal(pyscope_parse_peer("unknown", ip, &port), -EINVAL);
	assert_int_equal(pyscope_parse_peer(":80", ip, &port), -EINVAL);
	assert_int_equal(pyscope_parse_peer("[::1:80", ip, &port), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_request_read_back_from_scope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_freed_scope_is_not_taken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_requests_for_one_peer_are_neither, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile_headers_are_refused, setup, teardown),
		cmocka_unit_test(test_peer_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

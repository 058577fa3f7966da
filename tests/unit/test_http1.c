// SPDX-License-Identifier: GPL-2.0
/* HTTP/1.1 upgrade heads: request and status lines, headers, lists, splits and limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http1.h"

static const char upgrade_req[] =
	"GET /ws/chat?token=abc%2Edef&room=a+b&empty=&flag HTTP/1.1\r\n"
	"Host: example.com:8000\r\n"
	"Upgrade: websocket\r\n"
	"connection: Upgrade\r\n"
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	"Sec-WebSocket-Protocol: chat, jwt.eyJhbGciOi\r\n"
	"sec-websocket-protocol:   v2.chat  \r\n"
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo; a=\"1,2\"\r\n"
	"Sec-WebSocket-Version:\t13\t\r\n"
	"Authorization: Bearer abc.def.ghi\r\n"
	"\r\n";

static const char upgrade_resp[] =
	"HTTP/1.1 101 Switching Protocols\r\n"
	"Upgrade: websocket\r\n"
	"Connection: Upgrade\r\n"
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
	"\r\n";

static const struct http1_message *parse_all(struct http1_parser *p, const char *s, size_t n)
{
	const struct http1_message *m = NULL;
	size_t used;

	assert_int_equal(http1_parser_feed(p, s, n, &m, &used), HTTP1_DONE);
	assert_int_equal(used, n);
	return m;
}

struct elems {
	char v[8][64];
	size_t n;
};

static bool add_elem(void *ctx, const char *e, size_t len)
{
	struct elems *el = ctx;

	assert_true(el->n < 8 && len < 64);
	memcpy(el->v[el->n], e, len);
	el->v[el->n][len] = '\0';
	el->n++;
	return false;
}

static void check_request(const struct http1_message *m)
{
	struct elems el = { 0 };
	char buf[64];

	assert_int_equal(m->kind, HTTP1_REQUEST);
	assert_string_equal(m->method, "GET");
	assert_string_equal(m->target, "/ws/chat?token=abc%2Edef&room=a+b&empty=&flag");
	assert_string_equal(m->path, "/ws/chat");
	assert_string_equal(m->query, "token=abc%2Edef&room=a+b&empty=&flag");
	assert_int_equal(m->version_minor, 1);
	assert_int_equal(m->nheaders, 9);
	assert_int_equal(m->head_len, sizeof(upgrade_req) - 1);
	assert_string_equal(http1_header(m, "UPGRADE"), "websocket");
	assert_string_equal(http1_header(m, "Connection"), "Upgrade");
	assert_string_equal(http1_header(m, "sec-websocket-version"), "13");
	assert_null(http1_header(m, "Cookie"));
	http1_header_each(m, "Sec-WebSocket-Protocol", add_elem, &el);
	assert_int_equal(el.n, 3);
	assert_string_equal(el.v[0], "chat");
	assert_string_equal(el.v[1], "jwt.eyJhbGciOi");
	assert_string_equal(el.v[2], "v2.chat");
	memset(&el, 0, sizeof(el));
	http1_header_each(m, "sec-websocket-extensions", add_elem, &el);
	assert_int_equal(el.n, 2);
	assert_string_equal(el.v[0], "permessage-deflate; client_max_window_bits");
	assert_string_equal(el.v[1], "x-foo; a=\"1,2\"");
	assert_true(http1_query_param(m, "token", buf, sizeof(buf)));
	assert_string_equal(buf, "abc.def");
	assert_true(http1_query_param(m, "room", buf, sizeof(buf)));
	assert_string_equal(buf, "a b");
	assert_true(http1_query_param(m, "empty", buf, sizeof(buf)));
	assert_string_equal(buf, "");
	assert_true(http1_query_param(m, "flag", buf, sizeof(buf)));
	assert_false(http1_query_param(m, "nope", buf, sizeof(buf)));
	assert_false(http1_query_param(m, "token", buf, 4));
	assert_false(http1_query_param_at(m, "token", 1, buf, sizeof(buf)));
}

static void test_request_line_lookalike(void **state)
{
	assert_true(http1_looks_like_request_line("GET /ws HTTP/1.1\r\n", 18));
	assert_true(http1_looks_like_request_line("POST * HTTP/1.0", 15));
	assert_false(http1_looks_like_request_line("GET /ws HTTP/1.", 15));
	assert_false(http1_looks_like_request_line("Host: x\r\n", 9));
	assert_false(http1_looks_like_request_line("GET  HTTP/1.1", 13));
	assert_false(http1_looks_like_request_line("", 0));
}

static void test_request(void **state)
{
	struct http1_parser *p = http1_parser_new(HTTP1_REQUEST);

	check_request(parse_all(p, upgrade_req, sizeof(upgrade_req) - 1));
	http1_parser_free(p);
}

static void test_request_every_split(void **state)
{
	struct http1_parser *p = http1_parser_new(HTTP1_REQUEST);
	size_t n = sizeof(upgrade_req) - 1;

	for (size_t cut = 0; cut <= n; cut++) {
		const struct http1_message *m = NULL;
		size_t used;

		http1_parser_reset(p);
		assert_int_equal(http1_parser_feed(p, upgrade_req, cut, &m, &used),
				 cut == n ? HTTP1_DONE : HTTP1_NEED_MORE);
		if (cut < n)
			assert_int_equal(http1_parser_feed(p, upgrade_req + cut, n - cut, &m,
							   &used),
					 HTTP1_DONE);
		check_request(m);
	}
	http1_parser_free(p);
}

static void test_response_with_frames_after(void **state)
{
	struct http1_parser *p = http1_parser_new(HTTP1_RESPONSE);
	const struct http1_message *m = NULL;
	char buf[512];
	size_t n = sizeof(upgrade_resp) - 1, used;

	memcpy(buf, upgrade_resp, n);
	memcpy(buf + n, "\x81\x05Hello", 7);
	/* split inside the final CRLF CRLF */
	assert_int_equal(http1_parser_feed(p, buf, n - 1, &m, &used), HTTP1_NEED_MORE);
	assert_int_equal(used, n - 1);
	assert_int_equal(http1_parser_feed(p, buf + n - 1, 8, &m, &used), HTTP1_DONE);
	assert_int_equal(used, 1);
	assert_int_equal(m->status, 101);
	assert_string_equal(m->reason, "Switching Protocols");
	assert_int_equal(m->head_len, n);
	assert_string_equal(http1_header(m, "sec-websocket-extensions"),
			    "permessage-deflate; server_no_context_takeover");
	http1_parser_free(p);
}

static void test_bare_lf_and_leading_empty_line(void **state)
{
	static const char s[] = "\r\nHTTP/1.0 403\nX-A: 1\n\n";
	struct http1_parser *p = http1_parser_new(HTTP1_RESPONSE);
	const struct http1_message *m = parse_all(p, s, sizeof(s) - 1);

	assert_int_equal(m->status, 403);
	assert_string_equal(m->reason, "");
	assert_int_equal(m->version_minor, 0);
	assert_string_equal(http1_header(m, "x-a"), "1");
	http1_parser_free(p);
}

static void check_error(enum http1_kind kind, const char *s, const char *want)
{
	struct http1_parser *p = http1_parser_new(kind);
	const struct http1_message *m = NULL;
	size_t used;

	assert_int_equal(http1_parser_feed(p, s, strlen(s), &m, &used), HTTP1_ERROR);
	assert_non_null(http1_parser_error(p));
	if (!strstr(http1_parser_error(p), want))
		fail_msg("error '%s' does not say '%s'", http1_parser_error(p), want);
	/* an error is final */
	assert_int_equal(http1_parser_feed(p, "\r\n\r\n", 4, &m, &used), HTTP1_ERROR);
	http1_parser_free(p);
}

static void test_malformed_obs_fold(void **state)
{
	check_error(HTTP1_REQUEST, "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", "folding");
}

static void test_malformed_space_before_colon(void **state)
{
	check_error(HTTP1_REQUEST, "GET / HTTP/1.1\r\nHost : x\r\n\r\n", "before colon");
}

static void test_malformed_no_colon(void **state)
{
	check_error(HTTP1_REQUEST, "GET / HTTP/1.1\r\nHost\r\n\r\n", "without colon");
}

static void test_malformed_request_line(void **state)
{
	check_error(HTTP1_REQUEST, "GET /\r\n\r\n", "request line");
	check_error(HTTP1_REQUEST, "GET / HTTP/2.0\r\n\r\n", "version");
	check_error(HTTP1_REQUEST, "G(T / HTTP/1.1\r\n\r\n", "method");
}

static void test_malformed_status_line(void **state)
{
	check_error(HTTP1_RESPONSE, "HTTP/1.1 1x1 Switching\r\n\r\n", "status code");
	check_error(HTTP1_RESPONSE, "HTTP/1.1 099 Low\r\n\r\n", "out of range");
	check_error(HTTP1_RESPONSE, "HTTP/1.1\r\n\r\n", "status line");
}

static void test_malformed_bare_cr(void **state)
{
	check_error(HTTP1_REQUEST, "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", "bare CR");
}

static void test_malformed_control_char_in_value(void **state)
{
	check_error(HTTP1_REQUEST, "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", "invalid character");
}

static void test_limit_head_size(void **state)
{
	struct http1_parser *p = http1_parser_new(HTTP1_REQUEST);
	const struct http1_message *m = NULL;
	char line[1000];
	enum http1_result r = HTTP1_NEED_MORE;
	size_t used;

	assert_int_equal(http1_parser_feed(p, "GET / HTTP/1.1\r\n", 16, &m, &used),
			 HTTP1_NEED_MORE);
	for (int i = 0; i < 100 && r == HTTP1_NEED_MORE; i++) {
		snprintf(line, sizeof(line), "X-%d: %0900d\r\n", i, 0);
		r = http1_parser_feed(p, line, strlen(line), &m, &used);
	}
	assert_int_equal(r, HTTP1_ERROR);
	assert_non_null(strstr(http1_parser_error(p), "larger than 16384"));
	http1_parser_free(p);
}

static void test_limit_header_count(void **state)
{
	struct http1_parser *p = http1_parser_new(HTTP1_REQUEST);
	const struct http1_message *m = NULL;
	char line[64];
	size_t used;

	assert_int_equal(http1_parser_feed(p, "GET / HTTP/1.1\r\n", 16, &m, &used),
			 HTTP1_NEED_MORE);
	for (int i = 0; i < HTTP1_MAX_HEADERS + 1; i++) {
		snprintf(line, sizeof(line), "X-%d: v\r\n", i);
		assert_int_equal(http1_parser_feed(p, line, strlen(line), &m, &used),
				 HTTP1_NEED_MORE);
	}
	assert_int_equal(http1_parser_feed(p, "\r\n", 2, &m, &used), HTTP1_ERROR);
	assert_non_null(strstr(http1_parser_error(p), "more than 100 header fields"));
	http1_parser_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_request_line_lookalike),
		cmocka_unit_test(test_request_every_split),
		cmocka_unit_test(test_response_with_frames_after),
		cmocka_unit_test(test_bare_lf_and_leading_empty_line),
		cmocka_unit_test(test_malformed_obs_fold),
		cmocka_unit_test(test_malformed_space_before_colon),
		cmocka_unit_test(test_malformed_no_colon),
		cmocka_unit_test(test_malformed_request_line),
		cmocka_unit_test(test_malformed_status_line),
		cmocka_unit_test(test_malformed_bare_cr),
		cmocka_unit_test(test_malformed_control_char_in_value),
		cmocka_unit_test(test_limit_head_size),
		cmocka_unit_test(test_limit_header_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

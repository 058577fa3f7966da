// SPDX-License-Identifier: GPL-2.0
/*
 * Connection identity from real upgrade requests (every source, precedence, hostile
 * values) and message identity from JSON text (nested paths, arrays, non-strings, skips).
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

#include "http1.h"
#include "identity.h"
#include "idjson.h"
#include "jwt_tokens.h"

struct req {
	struct http1_parser *parser;
	const struct http1_message *m;
};

static void parse(struct req *r, const char *fmt, ...)
{
	static char head[HTTP1_MAX_HEAD + 1];
	size_t used;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(head));
	r->parser = http1_parser_new(HTTP1_REQUEST);
	assert_non_null(r->parser);
	assert_int_equal(http1_parser_feed(r->parser, head, (size_t)n, &r->m, &used), HTTP1_DONE);
}

static struct policy *load(const char *yaml)
{
	char err[POLICY_ERR_LEN];
	struct policy *p = policy_load_mem("t.yaml", yaml, strlen(yaml), err, sizeof(err));

	if (!p)
		fail_msg("%s", err);
	return p;
}

/* Runs the rules on a request and returns the outcome; the parser is freed. */
static struct identity_conn conn_of(const struct policy *p, const char *fmt, const char *arg)
{
	struct identity_conn c;
	struct req r;

	parse(&r, fmt, arg);
	assert_int_equal(identity_from_request(p, r.m, &c), 0);
	http1_parser_free(r.parser);
	return c;
}

#define REQ(line, hdrs) "GET " line " HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n" hdrs "\r\n"

static char jwt_alice[1024], wrapped_alice[2048], jwt_bob[1024];

static int setup(void **state)
{
	static const char a[] = "{\"sub\":\"auth_user_1726000000000_7_0badf00d\",\"iss\":\"x\"}";
	static const char b[] = "{\"sub\":\"bob\"}";
	char tmp[1024];

	make_jwt(a, strlen(a), jwt_alice);
	make_wrapped(a, strlen(a), wrapped_alice, tmp);
	make_jwt(b, strlen(b), jwt_bob);
	return 0;
}

static void test_default_sources(void **state)
{
	struct policy *p = policy_default();
	struct identity_conn c;

	assert_non_null(p);
	/* The browser form: a bare protocol name, then jwt.<base64url(JWT)>. */
	c = conn_of(p, REQ("/ws", "Sec-WebSocket-Protocol: jwt-auth, jwt.%s\r\n"), wrapped_alice);
	assert_int_equal(c.reason, IDENTITY_OK);
	assert_int_equal(c.rule, 0);
	assert_string_equal(c.user, "auth_user_1726000000000_7_0badf00d");
	c = conn_of(p, REQ("/ws", "Authorization: Bearer %s\r\n"), jwt_bob);
	assert_int_equal(c.rule, 1);
	assert_string_equal(c.user, "bob");
	assert_int_equal(c.rules[0], IDENTITY_ABSENT);
	/* Auth schemes are case-insensitive; extra spaces after the scheme are tolerated. */
	c = conn_of(p, REQ("/ws", "authorization: bearer   %s\r\n"), jwt_bob);
	assert_string_equal(c.user, "bob");
	c = conn_of(p, REQ("/ws?room=1&token=%s", ""), jwt_alice);
	assert_int_equal(c.rule, 2);
	assert_string_equal(c.user, "auth_user_1726000000000_7_0badf00d");
	/* Nothing: absent, every rule said so. */
	c = conn_of(p, REQ("/ws%s", ""), "");
	assert_int_equal(c.reason, IDENTITY_ABSENT);
	assert_int_equal(c.rule, -1);
	assert_string_equal(c.user, "");
	for (int i = 0; i < 3; i++)
		assert_int_equal(c.rules[i], IDENTITY_ABSENT);
	/* Another scheme. */
	c = conn_of(p, REQ("/ws", "Authorization: Basic %s\r\n"), "YWxpY2U6cHc=");
	assert_int_equal(c.reason, IDENTITY_PREFIX_MISMATCH);
	policy_free(p);
}

static void test_precedence(void **state)
{
	struct policy *p = policy_default();
	struct identity_conn c;
	struct req r;

	/* A broken subprotocol token does not hide a good Authorization header... */
	parse(&r, REQ("/ws", "Sec-WebSocket-Protocol: jwt.!!!\r\nAuthorization: Bearer %s\r\n"),
	      jwt_bob);
	assert_int_equal(identity_from_request(p, r.m, &c), 0);
	http1_parser_free(r.parser);
	assert_int_equal(c.reason, IDENTITY_OK);
	assert_int_equal(c.rule, 1);
	assert_string_equal(c.user, "bob");
	assert_int_equal(c.rules[0], IDENTITY_BAD_BASE64);
	/* ...and when nothing works, the first failure is the reason. */
	c = conn_of(p, REQ("/ws?token=x.y", "Sec-WebSocket-Protocol: jwt.%s\r\n"), jwt_alice);
	assert_int_equal(c.reason, IDENTITY_BAD_BASE64); /* a raw JWT where base64url is expected */
	assert_int_equal(c.rules[1], IDENTITY_ABSENT);
	assert_int_equal(c.rules[2], IDENTITY_NOT_JWT);
	/* Entries are compared exactly: "JWT.x" does not have the prefix. */
	c = conn_of(p, REQ("/ws", "Sec-WebSocket-Protocol: JWT.x, jwt.%s\r\n"), wrapped_alice);
	assert_int_equal(c.rule, 0);
	assert_string_equal(c.user, "auth_user_1726000000000_7_0badf00d");
	/* Two different entries with the prefix: the service picks one, wsaudit cannot know. */
	c = conn_of(p, REQ("/ws", "Sec-WebSocket-Protocol: jwt.%s, jwt.zzz\r\n"), wrapped_alice);
	assert_int_equal(c.reason, IDENTITY_AMBIGUOUS);
	assert_string_equal(c.ambiguous, "duplicate_subprotocol");
	assert_int_equal(c.rule, -1);
	assert_string_equal(c.user, "");
	/* Not a request. */
	r.parser = http1_parser_new(HTTP1_RESPONSE);
	{
		static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
		size_t used;

		assert_int_equal(http1_parser_feed(r.parser, resp, sizeof(resp) - 1, &r.m, &used),
				 HTTP1_DONE);
	}
	assert_int_equal(identity_from_request(p, r.m, &c), -EINVAL);
	http1_parser_free(r.parser);
	policy_free(p);
}

static void test_ambiguous(void **state)
{
	struct policy *p = policy_default();
	struct identity_conn c;
	struct req r;

	/* The same credential twice is one user. */
	parse(&r, REQ("/ws", "Authorization: Bearer %s\r\nAuthorization: Bearer %s\r\n"), jwt_bob,
	      jwt_bob);
	assert_int_equal(identity_from_request(p, r.m, &c), 0);
	http1_parser_free(r.parser);
	assert_int_equal(c.reason, IDENTITY_OK);
	assert_string_equal(c.user, "bob");
	/* Two Authorization headers: Starlette and aiohttp read the first, websockets refuses. */
	parse(&r, REQ("/ws", "Authorization: Bearer %s\r\nAuthorization: Bearer %s\r\n"), jwt_bob,
	      jwt_alice);
	assert_int_equal(identity_from_request(p, r.m, &c), 0);
	http1_parser_free(r.parser);
	assert_int_equal(c.reason, IDENTITY_AMBIGUOUS);
	assert_string_equal(c.ambiguous, "duplicate_header");
	assert_string_equal(c.user, "");
	/* ?token= twice: Starlette reads the last, aiohttp the first. */
	parse(&r, REQ("/ws?token=%s&token=%s", ""), jwt_alice, jwt_bob);
	assert_int_equal(identity_from_request(p, r.m, &c), 0);
	http1_parser_free(r.parser);
	assert_string_equal(c.ambiguous, "duplicate_query");
	parse(&r, REQ("/ws?token=%s&x=1&token=%s", ""), jwt_bob, jwt_bob);
	assert_int_equal(identity_from_request(p, r.m, &c), 0);
	http1_parser_free(r.parser);
	assert_int_equal(c.reason, IDENTITY_OK);
	/* A forged subprotocol entry against the Authorization the service reads. */
	parse(&r, REQ("/ws", "Sec-WebSocket-Protocol: jwt.%s\r\nAuthorization: Bearer %s\r\n"),
	      wrapped_alice, jwt_bob);
	assert_int_equal(identity_from_request(p, r.m, &c), 0);
	http1_parser_free(r.parser);
	assert_int_equal(c.reason, IDENTITY_AMBIGUOUS);
	assert_string_equal(c.ambiguous, "sources_disagree");
	/* Two sources naming the same user agree. */
	parse(&r, REQ("/ws?token=%s", "Authorization: Bearer %s\r\n"), jwt_bob, jwt_bob);
	assert_int_equal(identity_from_request(p, r.m, &c), 0);
	http1_parser_free(r.parser);
	assert_int_equal(c.reason, IDENTITY_OK);
	assert_int_equal(c.rule, 1);
	assert_string_equal(c.user, "bob");
	/* Bounded work on a parameter repeated many times: ambiguous in itself. */
	{
		static char many[HTTP1_MAX_HEAD / 2];
		size_t o = 0;

		for (int i = 0; i < 100; i++)
			o += (size_t)snprintf(many + o, sizeof(many) - o, "%stoken=a",
					      i ? "&" : "");
		c = conn_of(p, REQ("/ws?%s", ""), many);
		assert_string_equal(c.ambiguous, "duplicate_query");
	}
	policy_free(p);
}

/* The service of the reference: base64url first, raw JWT second, several prefixes. */
static void test_netra_quirks(void **state)
{
	const char *tail = strstr(__FILE__, "tests/unit/test_identity.c");
	char err[POLICY_ERR_LEN], path[4096];
	struct identity_conn c;
	struct policy *p;

	/* From the source path as the Makefile passes it: relative to the repository root. */
	snprintf(path, sizeof(path), "%.*spolicies/netra.yaml", (int)(tail - __FILE__), __FILE__);
	p = policy_load(path, err, sizeof(err));
	if (!p)
		fail_msg("%s", err);
	c = conn_of(p, REQ("/ws", "Sec-WebSocket-Protocol: jwt.%s\r\n"), jwt_alice);
	assert_int_equal(c.reason, IDENTITY_OK);
	assert_int_equal(c.rule, 2);
	assert_int_equal(c.rules[1], IDENTITY_BAD_BASE64);
	assert_string_equal(c.user, "auth_user_1726000000000_7_0badf00d");
	c = conn_of(p, REQ("/ws", "Sec-WebSocket-Protocol: jwt-auth, bearer.%s\r\n"),
		    wrapped_alice);
	assert_int_equal(c.rule, 5);
	c = conn_of(p, REQ("/ws?access_token=%s", ""), jwt_bob);
	assert_int_equal(c.rule, 10);
	assert_string_equal(c.user, "bob");
	c = conn_of(p, REQ("/ws", "X-E2E-User-Id: %s\r\n"), "e2e-user-1");
	assert_int_equal(c.rule, 11);
	assert_string_equal(c.user, "e2e-user-1");
	/* Tickets are opaque: not an identity. */
	c = conn_of(p, REQ("/ws?ticket=%s", ""), "abc");
	assert_int_equal(c.reason, IDENTITY_ABSENT);
	/* The run key: top level in the bridge's frames, under payload in the legacy senders. */
	{
		static const char bridge[] = "{\"type\":\"agent_started\",\"run_id\":\"r1\"}";
		static const char legacy[] =
			"{\"type\":\"agent_completed\",\"payload\":{\"run_id\":\"r2\"}}";
		struct identity_message m;

		assert_int_equal(identity_from_message(p, 1, bridge, strlen(bridge), &m), 0);
		assert_int_equal(m.run.reason, IDENTITY_OK);
		assert_string_equal(m.run.value, "r1");
		assert_string_equal(m.run.path, "run_id");
		assert_int_equal(identity_from_message(p, 1, legacy, strlen(legacy), &m), 0);
		assert_string_equal(m.run.value, "r2");
		assert_string_equal(m.run.path, "payload.run_id");
		assert_int_equal(identity_from_message(p, 1, "{}", 2, &m), 0);
		assert_int_equal(m.run.reason, IDENTITY_ABSENT);
	}
	policy_free(p);
}

static void test_query_plain(void **state)
{
	struct policy *p =
		load("bridge: {functions: [B.*]}\n"
		     "identity:\n  connection:\n"
		     "    - {from: query, name: ticket}\n"
		     "    - {from: query, name: user_id, prefix: \"u:\", decode: none}\n");
	struct identity_conn c;

	c = conn_of(p, REQ("/ws?ticket=%s", ""), "t-123");
	assert_int_equal(c.rule, 0);
	assert_string_equal(c.user, "t-123");
	c = conn_of(p, REQ("/ws?user_id=u%%3A%s", ""), "al+ice");
	assert_int_equal(c.rule, 1);
	assert_string_equal(c.user, "al ice");
	c = conn_of(p, REQ("/ws?user_id=%s", ""), "alice");
	assert_int_equal(c.reason, IDENTITY_PREFIX_MISMATCH);
	/* A percent-encoded NUL must not cut "alice%00bob" down to alice. */
	c = conn_of(p, REQ("/ws?ticket=%s", ""), "alice%00bob");
	assert_int_equal(c.rules[0], IDENTITY_HAS_NUL);
	assert_string_equal(c.user, "");
	c = conn_of(p, REQ("/ws?ticket=%s", ""), "%ff%00");
	assert_int_equal(c.rules[0], IDENTITY_HAS_NUL);
	c = conn_of(p, REQ("/ws?ticket=%s", ""), "%ff");
	assert_int_equal(c.reason, IDENTITY_OK);
	assert_string_equal(c.user, "\xff");
	c = conn_of(p, REQ("/ws?ticket=%s", ""), "");
	assert_int_equal(c.rules[0], IDENTITY_EMPTY);
	c = conn_of(p, REQ("/ws?ticket%s", ""), "");
	assert_int_equal(c.rules[0], IDENTITY_EMPTY);
	policy_free(p);
}

static void test_hostile_tokens(void **state)
{
	struct policy *p = policy_default();
	static char big[IDENTITY_MAX_TOKEN + 2];
	char tok[4096], tmp[4096];
	struct identity_conn c;

	memset(big, 'A', sizeof(big) - 1);
	c = conn_of(p, REQ("/ws", "Sec-WebSocket-Protocol: jwt.%s\r\n"), big);
	assert_int_equal(c.reason, IDENTITY_TOO_LONG);
	c = conn_of(p, REQ("/ws", "Authorization: Bearer %s\r\n"), big);
	assert_int_equal(c.reason, IDENTITY_TOO_LONG);
	/* The parser trims the header value: "Bearer" alone lacks the prefix's space. */
	c = conn_of(p, REQ("/ws", "Authorization: Bearer %s\r\n"), "");
	assert_int_equal(c.reason, IDENTITY_PREFIX_MISMATCH);
	c = conn_of(p, REQ("/ws", "Authorization: Bearer %s\r\n"), "x");
	assert_int_equal(c.reason, IDENTITY_NOT_JWT);
	make_wrapped("[1,2]", 5, tok, tmp);
	c = conn_of(p, REQ("/ws", "Sec-WebSocket-Protocol: jwt.%s\r\n"), tok);
	assert_int_equal(c.reason, IDENTITY_NOT_OBJECT);
	make_wrapped("{\"sub\":7}", 9, tok, tmp);
	c = conn_of(p, REQ("/ws", "Sec-WebSocket-Protocol: jwt.%s\r\n"), tok);
	assert_int_equal(c.reason, IDENTITY_OK);
	assert_string_equal(c.user, "7");
	make_wrapped("{\"sub\":false}", 13, tok, tmp);
	c = conn_of(p, REQ("/ws", "Sec-WebSocket-Protocol: jwt.%s\r\n"), tok);
	assert_int_equal(c.reason, IDENTITY_NOT_STRING);
	make_wrapped("{\"sub\":\"a\\u0000b\"}", 18, tok, tmp);
	c = conn_of(p, REQ("/ws", "Sec-WebSocket-Protocol: jwt.%s\r\n"), tok);
	assert_int_equal(c.reason, IDENTITY_HAS_NUL);
	/* deep and unterminated: refused before jansson sees it */
	memset(big, '[', IDENTITY_MAX_DEPTH + 1);
	make_wrapped(big, IDENTITY_MAX_DEPTH + 1, tok, tmp);
	c = conn_of(p, REQ("/ws", "Sec-WebSocket-Protocol: jwt.%s\r\n"), tok);
	assert_int_equal(c.reason, IDENTITY_TOO_DEEP);
	policy_free(p);
}

/* --- messages -------------------------------------------------------------------------------- */

static const char msg_policy[] = "bridge: {functions: [B.*]}\n"
				 "identity:\n"
				 "  message: [{json: user_id}, {json: data.user_id}, "
				 "{json: items.1.owner}]\n"
				 "  ownership: [run_id, thread_id, payload.thread_id]\n"
				 "messages:\n  type: [type, event]\n";

static struct identity_message msg_of(const struct policy *p, const char *text)
{
	struct identity_message m;

	assert_int_equal(identity_from_message(p, 1, text, strlen(text), &m), 0);
	return m;
}

static void test_message_fields(void **state)
{
	struct policy *p = load(msg_policy);
	struct identity_message m;

	m = msg_of(p, "{\"type\":\"agent_started\",\"run_id\":\"r1\",\"user_id\":\"u1\","
		      "\"thread_id\":\"t1\",\"data\":{\"user_id\":\"u2\"}}");
	assert_int_equal(m.reason, IDENTITY_OK);
	assert_int_equal(m.user.reason, IDENTITY_OK);
	assert_string_equal(m.user.value, "u1");
	assert_string_equal(m.user.path, "user_id");
	assert_string_equal(m.type.value, "agent_started");
	assert_int_equal(m.nowners, 3);
	assert_string_equal(m.owners[0].key, "run_id");
	assert_string_equal(m.owners[0].f.value, "r1");
	assert_string_equal(m.owners[1].f.value, "t1");
	assert_string_equal(m.owners[2].key, "thread_id");
	assert_string_equal(m.owners[2].f.path, "payload.thread_id");
	assert_int_equal(m.owners[2].f.reason, IDENTITY_ABSENT);
	/* Nested, when the top level has none; the type from the second field. */
	m = msg_of(p, "{\"event\":\"pong\",\"data\":{\"timestamp\":1,\"user_id\":\"u2\"}}");
	assert_string_equal(m.user.value, "u2");
	assert_string_equal(m.user.path, "data.user_id");
	assert_string_equal(m.type.value, "pong");
	/* Legacy bypass frames keep their ids under payload. */
	m = msg_of(p,
		   "{\"type\":\"agent_started\",\"payload\":{\"thread_id\":\"t9\",\"run_id\":1}}");
	assert_int_equal(m.user.reason, IDENTITY_ABSENT);
	assert_null(m.user.path);
	assert_int_equal(m.owners[1].f.reason, IDENTITY_ABSENT);
	assert_int_equal(m.owners[2].f.reason, IDENTITY_OK);
	assert_string_equal(m.owners[2].f.value, "t9");
	/* A non-string is a failure of that path; a later path still gives the user. */
	m = msg_of(p, "{\"user_id\":1.5,\"data\":{\"user_id\":\"u3\"}}");
	assert_int_equal(m.user.reason, IDENTITY_OK);
	assert_string_equal(m.user.value, "u3");
	m = msg_of(p, "{\"user_id\":{\"id\":1},\"data\":\"u\"}");
	assert_int_equal(m.user.reason, IDENTITY_NOT_STRING);
	assert_string_equal(m.user.path, "user_id");
	m = msg_of(p, "{\"user_id\":null,\"data\":[\"u\"]}");
	assert_int_equal(m.user.reason, IDENTITY_NOT_OBJECT);
	assert_string_equal(m.user.path, "data.user_id");
	m = msg_of(p, "{\"user_id\":42,\"type\":7}");
	assert_string_equal(m.user.value, "42");
	assert_string_equal(m.type.value, "7");
	m = msg_of(p, "{\"user_id\":\"\",\"type\":true}");
	assert_int_equal(m.user.reason, IDENTITY_EMPTY);
	assert_int_equal(m.type.reason, IDENTITY_NOT_STRING);
	m = msg_of(p, "{\"user_id\":\"a\\u0000b\"}");
	assert_int_equal(m.user.reason, IDENTITY_HAS_NUL);
	assert_string_equal(m.user.value, "");
	policy_free(p);
}

static void test_message_arrays(void **state)
{
	static const char doc[] = "{\"a\":[[\"x\",\"y\"]],\"b\":[1]}";
	struct policy *p = load(msg_policy);
	char out[IDENTITY_MAX_VALUE + 1];
	struct identity_message m;
	json_t *root;

	m = msg_of(p, "{\"items\":[{\"owner\":\"a\"},{\"owner\":\"b\"}]}");
	assert_string_equal(m.user.value, "b");
	assert_string_equal(m.user.path, "items.1.owner");
	m = msg_of(p, "{\"items\":[{\"owner\":\"a\"}]}");
	assert_int_equal(m.user.reason, IDENTITY_ABSENT);
	m = msg_of(p, "{\"items\":{\"1\":{\"owner\":\"c\"}}}"); /* digits name a key of an object */
	assert_string_equal(m.user.value, "c");
	assert_int_equal(identity_json_parse(doc, strlen(doc), &root), IDENTITY_OK);
	assert_int_equal(identity_json_get(root, "a.0.1", out, sizeof(out)), IDENTITY_OK);
	assert_string_equal(out, "y");
	assert_int_equal(identity_json_get(root, "a.00.1", out, sizeof(out)), IDENTITY_NOT_OBJECT);
	assert_int_equal(identity_json_get(root, "a.x", out, sizeof(out)), IDENTITY_NOT_OBJECT);
	assert_int_equal(identity_json_get(root, "a.-1", out, sizeof(out)), IDENTITY_NOT_OBJECT);
	assert_int_equal(identity_json_get(root, "a.9999999999", out, sizeof(out)),
			 IDENTITY_NOT_OBJECT);
	assert_int_equal(identity_json_get(root, "a.0", out, sizeof(out)), IDENTITY_NOT_STRING);
	assert_int_equal(identity_json_get(root, "b.0.c", out, sizeof(out)), IDENTITY_NOT_OBJECT);
	assert_int_equal(identity_json_get(root, "b.0", out, 2), IDENTITY_OK);
	assert_int_equal(identity_json_get(root, "a.0.1", out, 1 + 1), IDENTITY_OK);
	assert_int_equal(identity_json_get(root, "c", out, sizeof(out)), IDENTITY_ABSENT);
	json_decref(root);
	policy_free(p);
}

/*
 * The one-pass reader (idjson_open/idjson_get) gives what jansson's tree gives, value and
 * reason, for every path of every document: the ones it reads itself and the ones it hands
 * to jansson.  fast: the documents it must read without jansson (their cost is the point).
 */
static void test_message_one_pass(void **state)
{
	static const char *const paths[] = { "user_id", "thread_id", "type",	"data.user_id",
					     "a",	"a.b",	     "a.0",	"a.1.b",
					     "a.00",	"items.0",   "items.1", "n",
					     "0",	"s",	     "s.x",	"" };
	static const struct {
		bool fast;
		const char *doc;
	} docs[] = {
		{ true, "{\"user_id\":\"u1\",\"type\":\"t\",\"data\":{\"user_id\":\"u2\"}}" },
		{ true, " \t\r\n{ \"user_id\" : \"u1\" , \"n\" : -0 } \n" },
		{ true, "{\"a\":{\"b\":\"x\"},\"a\":{}}" },
		{ true, "{\"a\":{\"b\":\"x\"},\"a\":1}" },
		{ true, "{\"a\":\"x\",\"a\":\"y\",\"user_id\":null}" },
		{ true, "{\"a\":[\"x\",{\"b\":\"y\"}],\"items\":[1,2.5]}" },
		{ true, "{\"a\":{\"0\":\"k\",\"00\":\"z\",\"1\":{\"b\":\"w\"}}}" },
		{ true, "{\"user_id\":\"caf\\u00e9 \\ud83d\\ude00 \\n\\\"\\\\\\/\\b\\f\\r\\t\"}" },
		{ true, "{\"user_id\":\"a\\u0000b\",\"type\":\"\",\"n\":true,\"s\":\"\"}" },
		{ true, "{\"user_id\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"n\":false}" },
		{ true, "{\"n\":123456789012345678,\"user_id\":-12,\"thread_id\":1.5}" },
		{ true, "{\"other\":\"\\u0000\",\"s\":{\"x\":[[[{}]]]},\"\":\"e\"}" },
		{ true, "{\"user_id\":\"u\",\"thread_id\":\"u\",\"0\":[]}" },
		{ true, "{}" },
		{ true, "[1,2]" },
		{ true, "\"s\"" },
		{ true, "12" },
		{ true, "null" },
		{ false, "{\"n\":1234567890123456789}" },
		{ false, "{\"n\":12345678901234567890123}" },
		{ false, "{\"n\":1e5,\"user_id\":\"u\"}" },
		{ false, "{\"n\":1E400}" },
		{ false, "{\"n\":NaN,\"user_id\":\"u\"}" },
		{ false, "{\"n\":-Infinity,\"user_id\":\"u\"}" },
		{ false, "\xef\xbb\xbf{\"user_id\":\"u\"}" },
		{ false, "{\"user_id\":\"\\ud800\"}" },
		{ false, "{\"user_id\":\"\\udc00x\"}" },
		{ false, "{\"us\\u0065r_id\":\"escaped key\"}" },
		{ false, "{\"user_id\":\"u\",}" },
		{ false, "{\"user_id\":01}" },
		{ false, "{\"user_id\":\"a\tb\"}" },
		{ false, "{\"user_id\":\"\xc0\xaf\"}" },
		{ false, "{\"user_id\":\"\xed\xa0\x80\"}" },
		{ false, "{\"user_id\":\"u\"} x" },
		{ false, "{\"user_id\":\"u\"" },
		{ false, "{\"a\\u0000\":1}" },
		{ false, "{\"user_id\":tru}" },
		{ false, "{\"user_id\":1.}" },
		{ false, "{\"user_id\":\"\\x\"}" },
		{ false, "" },
	};
	char deep[4 * IDENTITY_MAX_DEPTH + 64], longv[2 * IDENTITY_MAX_VALUE + 64];
	const char *extra[] = { deep, longv };
	size_t n = 0;

	n += (size_t)snprintf(deep, sizeof(deep), "{\"user_id\":\"u\",\"a\":");
	for (int i = 0; i < IDENTITY_MAX_DEPTH; i++)
		deep[n++] = '[';
	for (int i = 0; i < IDENTITY_MAX_DEPTH; i++)
		deep[n++] = ']';
	memcpy(deep + n, "}", 2);
	snprintf(longv, sizeof(longv), "{\"user_id\":\"%0*d\",\"type\":\"%0*d\"}",
		 IDENTITY_MAX_VALUE, 0, IDENTITY_MAX_VALUE - 1, 0);
	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]) + 2; i++) {
		const char *doc = i < sizeof(docs) / sizeof(docs[0]) ?
					  docs[i].doc :
					  extra[i - sizeof(docs) / sizeof(docs[0])];
		enum identity_reason want, got;
		struct idjson_doc d;
		json_t *root = NULL;

		want = identity_json_parse(doc, strlen(doc), &root);
		if (want == IDENTITY_OK && !json_is_object(root))
			want = IDENTITY_NOT_OBJECT;
		got = idjson_open(&d, doc, strlen(doc), paths, sizeof(paths) / sizeof(paths[0]));
		if (got != want)
			fail_msg("document %zu: reason %s, jansson's %s", i,
				 identity_reason_name(got), identity_reason_name(want));
		if (i < sizeof(docs) / sizeof(docs[0]) && docs[i].fast == d.jansson)
			fail_msg("document %zu: read %s jansson", i,
				 d.jansson ? "with" : "without");
		for (size_t k = 0; want == IDENTITY_OK && k < sizeof(paths) / sizeof(paths[0]);
		     k++) {
			char a[IDENTITY_MAX_VALUE + 1], b[IDENTITY_MAX_VALUE + 1];

			for (size_t size = 2; size <= sizeof(a); size += sizeof(a) - 2) {
				memset(a, 'A', sizeof(a));
				memset(b, 'A', sizeof(b));
				want = identity_json_get(root, paths[k], a, size);
				got = idjson_get(&d, paths[k], b, size);
				if (got != want || memcmp(a, b, size))
					fail_msg(
						"document %zu path '%s' size %zu: %s '%s', jansson's "
						"%s '%s'",
						i, paths[k], size, identity_reason_name(got), b,
						identity_reason_name(want), a);
			}
			want = IDENTITY_OK;
		}
		idjson_close(&d);
		json_decref(root);
	}
}

/* What Python's json reads (and so what a service sends) is read too. */
static void test_message_lenient(void **state)
{
	static const char *const leaks[] = {
		"{\"user_id\": \"victim\", \"score\": NaN}",
		"{\"user_id\": \"victim\", \"score\": Infinity, \"low\": -Infinity}",
		"{\"user_id\": \"victim\", \"n\": 18446744073709551616}",
		"{\"user_id\": \"victim\", \"x\": 1e400, \"y\": -2.5e-400}",
		"{\"user_id\": \"victim\", \"note\": \"\\ud800 \\udc00 \\ud83d\\ude00\"}",
		"\xef\xbb\xbf{\"user_id\": \"victim\"}",
		"{\"note\": \"NaN \\\" Infinity 123456789012345678901\", \"user_id\": \"victim\"}",
	};
	struct policy *p = load(msg_policy);
	struct identity_message m;
	static char deep[2048];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(leaks) / sizeof(leaks[0]); i++) {
		m = msg_of(p, leaks[i]);
		assert_int_equal(m.reason, IDENTITY_OK);
		assert_int_equal(m.user.reason, IDENTITY_OK);
		assert_string_equal(m.user.value, "victim");
	}
	/* A big integer user is its decimal text, as every integer is. */
	m = msg_of(p, "{\"user_id\": 18446744073709551616}");
	assert_string_equal(m.user.value, "18446744073709551616");
	/* NaN is a real, never a user; strings keep their text. */
	assert_int_equal(msg_of(p, "{\"user_id\": NaN}").user.reason, IDENTITY_NOT_STRING);
	m = msg_of(p, "{\"user_id\": \"NaN\"}");
	assert_string_equal(m.user.value, "NaN");
	/* 65 levels, as Python's json reads them. */
	n += (size_t)snprintf(deep, sizeof(deep), "{\"user_id\": \"victim\", \"d\": ");
	for (int i = 0; i < 65; i++)
		deep[n++] = '[';
	for (int i = 0; i < 65; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n] = '\0';
	assert_string_equal(msg_of(p, deep).user.value, "victim");
	/* Still not JSON: refused, and the user field it names is seen. */
	assert_int_equal(msg_of(p, "{\"user_id\": \"victim\", \"x\": [1, 2").reason,
			 IDENTITY_BAD_JSON);
	assert_true(identity_message_names_user(p, "{\"user_id\": [1, 2", 16));
	assert_false(identity_message_names_user(p, "{\"other\": 1", 12));
	policy_free(p);
}

static void test_message_skips(void **state)
{
	struct policy *p = load(msg_policy);
	struct identity_message m;
	static char deep[IDENTITY_MAX_DEPTH + 2];

	assert_int_equal(identity_from_message(p, 2, "{\"user_id\":\"u\"}", 15, &m), 0);
	assert_int_equal(m.reason, IDENTITY_BINARY);
	assert_int_equal(m.user.reason, IDENTITY_ABSENT);
	for (unsigned int op = 0; op < 16; op++) {
		if (op == 1 || op == 2)
			continue;
		assert_int_equal(identity_from_message(p, op, "{}", 2, &m), 0);
		assert_int_equal(m.reason, IDENTITY_CONTROL);
	}
	assert_int_equal(msg_of(p, "hello").reason, IDENTITY_BAD_JSON);
	assert_int_equal(msg_of(p, "").reason, IDENTITY_BAD_JSON);
	assert_int_equal(msg_of(p, "{\"user_id\":\"u\"").reason, IDENTITY_BAD_JSON);
	assert_int_equal(msg_of(p, "{\"user_id\":\"\xc3\x28\"}").reason, IDENTITY_BAD_JSON);
	assert_int_equal(msg_of(p, "[{\"user_id\":\"u\"}]").reason, IDENTITY_NOT_OBJECT);
	assert_int_equal(msg_of(p, "\"u\"").reason, IDENTITY_NOT_OBJECT);
	assert_int_equal(identity_from_message(p, 1, "{\"a\":\"\0\"}", 8, &m), 0);
	assert_int_equal(m.reason, IDENTITY_BAD_JSON);
	memset(deep, '{', sizeof(deep) - 1);
	assert_int_equal(msg_of(p, deep).reason, IDENTITY_TOO_DEEP);
	memset(deep, '[', sizeof(deep) - 1);
	assert_int_equal(msg_of(p, deep).reason, IDENTITY_TOO_DEEP);
	assert_int_equal(identity_from_message(p, 1, deep, IDENTITY_MAX_MESSAGE + 1, &m), 0);
	assert_int_equal(m.reason, IDENTITY_TOO_LONG);
	policy_free(p);
}

static void test_reason_names(void **state)
{
	for (int i = 0; i < IDENTITY__COUNT; i++) {
		assert_non_null(identity_reason_name(i));
		for (int j = 0; j < i; j++)
			assert_string_not_equal(identity_reason_name(i), identity_reason_name(j));
	}
	assert_string_equal(identity_reason_name(IDENTITY_BAD_BASE64), "bad_base64");
	assert_string_equal(identity_reason_name(IDENTITY__COUNT), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_sources),	 cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_ambiguous),	 cmocka_unit_test(test_netra_quirks),
		cmocka_unit_test(test_query_plain),	 cmocka_unit_test(test_hostile_tokens),
		cmocka_unit_test(test_message_fields),	 cmocka_unit_test(test_message_arrays),
		cmocka_unit_test(test_message_skips),	 cmocka_unit_test(test_message_lenient),
		cmocka_unit_test(test_message_one_pass), cmocka_unit_test(test_reason_names),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}

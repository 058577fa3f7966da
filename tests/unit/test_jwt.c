// SPDX-License-Identifier: GPL-2.0
/* JWT payloads: base64url vectors, and every hostile token gets its named reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jwt.h"
#include "jwt_tokens.h"

static void expect_b64(const char *in, const char *out)
{
	unsigned char buf[64];
	ssize_t n = jwt_b64url_decode(in, strlen(in), buf, sizeof(buf));

	assert_int_equal(n, strlen(out));
	assert_memory_equal(buf, out, n);
}

static void expect_b64_bad(const char *in)
{
	unsigned char buf[64];

	assert_int_equal(jwt_b64url_decode(in, strlen(in), buf, sizeof(buf)), -1);
}

static void test_b64url(void **state)
{
	unsigned char buf[4];

	/* RFC 4648 section 10, with and without padding. */
	expect_b64("", "");
	expect_b64("Zg", "f");
	expect_b64("Zg==", "f");
	expect_b64("Zm8", "fo");
	expect_b64("Zm8=", "fo");
	expect_b64("Zm9v", "foo");
	expect_b64("Zm9vYg", "foob");
	expect_b64("Zm9vYmE", "fooba");
	expect_b64("Zm9vYmFy", "foobar");
	expect_b64("-_-_", "\xfb\xff\xbf");
	expect_b64_bad("Z"); /* a lone 6 bits is no byte */
	expect_b64_bad("Zg="); /* padding that does not complete a quantum */
	expect_b64_bad("Zg===");
	expect_b64_bad("Zm=v");
	expect_b64_bad("Zh"); /* non-zero unused bits: a second spelling of "f" */
	expect_b64_bad("Zm9v+A"); /* the standard alphabet is not base64url */
	expect_b64_bad("Zm9v/A");
	expect_b64_bad("Zm9 v");
	assert_int_equal(jwt_b64url_decode("Zm9vYmFy", 8, buf, sizeof(buf)), -1); /* out small */
	assert_int_equal(jwt_b64url_decode("Zm9v\0Zg", 7, buf, sizeof(buf)), -1);
}

static enum identity_reason payload_of(const char *token, bool wrapped, char *sub)
{
	enum identity_reason r;
	json_t *p;

	r = jwt_payload(token, strlen(token), wrapped, &p);
	if (r != IDENTITY_OK) {
		assert_null(p);
		return r;
	}
	assert_true(json_is_object(p));
	r = identity_json_get(p, "sub", sub, IDENTITY_MAX_VALUE + 1);
	json_decref(p);
	return r;
}

static enum identity_reason claim_n(const char *payload, size_t len, char *sub)
{
	char tok[4096], wrapped[8192], tmp[4096];
	enum identity_reason r;

	make_jwt(payload, len, tok);
	r = payload_of(tok, false, sub);
	/* The base64url-wrapped form must read the same. */
	make_wrapped(payload, len, wrapped, tmp);
	assert_int_equal(payload_of(wrapped, true, sub), r);
	return r;
}

static enum identity_reason claim(const char *payload, char *sub)
{
	return claim_n(payload, strlen(payload), sub);
}

static void test_claims(void **state)
{
	char sub[IDENTITY_MAX_VALUE + 1], big[400];

	assert_int_equal(claim("{\"sub\":\"auth_user_1726_1_deadbeef\",\"exp\":1}", sub),
			 IDENTITY_OK);
	assert_string_equal(sub, "auth_user_1726_1_deadbeef");
	assert_int_equal(claim("{\"sub\":42}", sub), IDENTITY_OK);
	assert_string_equal(sub, "42");
	assert_int_equal(claim("{\"sub\":-9223372036854775808}", sub), IDENTITY_OK);
	assert_string_equal(sub, "-9223372036854775808");
	assert_int_equal(claim("{\"sub\":\"a\",\"sub\":\"b\"}", sub), IDENTITY_OK);
	assert_string_equal(sub, "b"); /* last wins, like the service's json.loads */
	assert_int_equal(claim("{\"sub\":\"caf\\u00e9\"}", sub), IDENTITY_OK);
	assert_string_equal(sub, "caf\xc3\xa9");
	assert_int_equal(claim("{\"sub\":1.5}", sub), IDENTITY_NOT_STRING);
	assert_int_equal(claim("{\"sub\":1e3}", sub), IDENTITY_NOT_STRING);
	assert_int_equal(claim("{\"sub\":true}", sub), IDENTITY_NOT_STRING);
	assert_int_equal(claim("{\"sub\":{\"id\":\"u\"}}", sub), IDENTITY_NOT_STRING);
	assert_int_equal(claim("{\"sub\":[\"u\"]}", sub), IDENTITY_NOT_STRING);
	assert_int_equal(claim("{\"sub\":null}", sub), IDENTITY_ABSENT);
	assert_int_equal(claim("{\"iss\":\"x\"}", sub), IDENTITY_ABSENT);
	assert_int_equal(claim("{\"sub\":\"\"}", sub), IDENTITY_EMPTY);
	assert_int_equal(claim("{\"sub\":\"alice\\u0000bob\"}", sub), IDENTITY_HAS_NUL);
	/* Past 64 bits, as Python reads it: the decimal text. */
	assert_int_equal(claim("{\"sub\":99999999999999999999}", sub), IDENTITY_OK);
	assert_string_equal(sub, "99999999999999999999");
	memset(big, 'u', sizeof(big));
	memcpy(big, "{\"sub\":\"", 8);
	memcpy(big + 300, "\"}", 3);
	assert_int_equal(claim(big, sub), IDENTITY_VALUE_TOO_LONG);
	assert_string_equal(sub, "");
}

static void test_not_objects(void **state)
{
	char sub[IDENTITY_MAX_VALUE + 1];

	assert_int_equal(claim("[\"sub\"]", sub), IDENTITY_NOT_OBJECT);
	assert_int_equal(claim("\"sub\"", sub), IDENTITY_NOT_OBJECT);
	assert_int_equal(claim("42", sub), IDENTITY_NOT_OBJECT);
	assert_int_equal(claim("null", sub), IDENTITY_NOT_OBJECT);
	assert_int_equal(claim("{\"sub\":", sub), IDENTITY_BAD_JSON);
	assert_int_equal(claim("{\"sub\":\"a\"} x", sub), IDENTITY_BAD_JSON);
	assert_int_equal(claim("", sub), IDENTITY_NOT_JWT); /* empty payload segment */
	assert_int_equal(claim("{\"sub\":\"\xff\"}", sub), IDENTITY_BAD_JSON); /* not UTF-8 */
	assert_int_equal(claim_n("{\"sub\":\"a\0\"}", 11, sub), IDENTITY_BAD_JSON);
}

static void test_depth(void **state)
{
	char sub[IDENTITY_MAX_VALUE + 1], doc[2 * IDENTITY_MAX_DEPTH + 64];
	size_t o = 0;

	/* IDENTITY_MAX_DEPTH levels are fine, one more is refused before parsing. */
	o += (size_t)sprintf(doc, "{\"sub\":\"u\",\"x\":");
	for (int i = 1; i < IDENTITY_MAX_DEPTH; i++)
		doc[o++] = '[';
	for (int i = 1; i < IDENTITY_MAX_DEPTH; i++)
		doc[o++] = ']';
	doc[o++] = '}';
	doc[o] = '\0';
	assert_int_equal(claim(doc, sub), IDENTITY_OK);
	o = (size_t)sprintf(doc, "{\"sub\":\"u\",\"x\":");
	for (int i = 0; i < IDENTITY_MAX_DEPTH; i++)
		doc[o++] = '[';
	for (int i = 0; i < IDENTITY_MAX_DEPTH; i++)
		doc[o++] = ']';
	doc[o++] = '}';
	doc[o] = '\0';
	assert_int_equal(claim(doc, sub), IDENTITY_TOO_DEEP);
	/* Brackets inside strings are text, not nesting. */
	o = (size_t)sprintf(doc, "{\"sub\":\"u\",\"x\":\"");
	for (int i = 0; i < 200; i++)
		doc[o++] = '[';
	o += (size_t)sprintf(doc + o, "\\\"{\"}");
	assert_int_equal(claim(doc, sub), IDENTITY_OK);
	assert_string_equal(sub, "u");
}

static void test_shapes(void **state)
{
	char sub[IDENTITY_MAX_VALUE + 1], tok[IDENTITY_MAX_TOKEN + 64], tmp[IDENTITY_MAX_TOKEN];
	static const char pl[] = "eyJzdWIiOiJ1In0"; /* {"sub":"u"} */
	json_t *p;

	snprintf(tok, sizeof(tok), "eyJhbGciOiJub25lIn0.%s.", pl); /* alg none: no signature */
	assert_int_equal(payload_of(tok, false, sub), IDENTITY_OK);
	assert_string_equal(sub, "u");
	snprintf(tok, sizeof(tok), "eyJhbGciOiJub25lIn0.%s", pl);
	assert_int_equal(payload_of(tok, false, sub), IDENTITY_NOT_JWT);
	snprintf(tok, sizeof(tok), "a.%s.b.c.d", pl); /* JWE */
	assert_int_equal(payload_of(tok, false, sub), IDENTITY_NOT_JWT);
	snprintf(tok, sizeof(tok), ".%s.c", pl);
	assert_int_equal(payload_of(tok, false, sub), IDENTITY_NOT_JWT);
	assert_int_equal(payload_of("a..c", false, sub), IDENTITY_NOT_JWT);
	assert_int_equal(payload_of("", false, sub), IDENTITY_NOT_JWT);
	assert_int_equal(payload_of("...", false, sub), IDENTITY_NOT_JWT);
	snprintf(tok, sizeof(tok), "a b.%s.c", pl);
	assert_int_equal(payload_of(tok, false, sub), IDENTITY_NOT_JWT);
	snprintf(tok, sizeof(tok), "a.%s.c=", pl);
	assert_int_equal(payload_of(tok, false, sub), IDENTITY_NOT_JWT);
	assert_int_equal(payload_of("a.e+J.c", false, sub), IDENTITY_BAD_BASE64);
	assert_int_equal(payload_of("a.e.c", false, sub), IDENTITY_BAD_BASE64);
	/* Wrapped: the wrapper must be base64url, and what it holds must be a JWT. */
	assert_int_equal(payload_of("a.b.c", true, sub), IDENTITY_BAD_BASE64);
	assert_int_equal(payload_of("not base64!", true, sub), IDENTITY_BAD_BASE64);
	b64url("a\0.eyJ9.c", 9, tok);
	assert_int_equal(payload_of(tok, true, sub), IDENTITY_NOT_JWT);
	b64url("a.b\0.c", 6, tok);
	assert_int_equal(payload_of(tok, true, sub), IDENTITY_BAD_BASE64);
	b64url("hello", 5, tok);
	assert_int_equal(payload_of(tok, true, sub), IDENTITY_NOT_JWT);
	/* Embedded NUL in a raw token. */
	assert_int_equal(jwt_payload("a\0.eyJ9.c", 9, false, &p), IDENTITY_NOT_JWT);
	assert_null(p);
	/* Size bound, before anything is decoded. */
	memset(tmp, 'A', sizeof(tmp));
	tmp[0] = 'a';
	tmp[1] = '.';
	tmp[sizeof(tmp) - 2] = '.';
	tmp[sizeof(tmp) - 1] = 'c';
	assert_int_equal(jwt_payload(tmp, IDENTITY_MAX_TOKEN, false, &p), IDENTITY_BAD_JSON);
	memcpy(tok, tmp, sizeof(tmp));
	tok[IDENTITY_MAX_TOKEN] = 'c';
	assert_int_equal(jwt_payload(tok, IDENTITY_MAX_TOKEN + 1, false, &p), IDENTITY_TOO_LONG);
	assert_int_equal(jwt_payload(tok, IDENTITY_MAX_TOKEN + 1, true, &p), IDENTITY_TOO_LONG);
	assert_null(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url),	    cmocka_unit_test(test_claims),
		cmocka_unit_test(test_not_objects), cmocka_unit_test(test_depth),
		cmocka_unit_test(test_shapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * The bounded JSON reader of identity (user/identity.c) and the JWT codec (user/jwt.c), and
 * the reasons both give.  A module of its own so that neither needs the other's header.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idjson.h"

#define REASON_NAME(name, str) [IDENTITY_##name] = str,
static const char *const reason_names[IDENTITY__COUNT] = { IDENTITY_REASONS(REASON_NAME) };
#undef REASON_NAME

const char *identity_reason_name(enum identity_reason r)
{
	return (unsigned int)r < IDENTITY__COUNT ? reason_names[r] : "unknown";
}

/*
 * Nesting depth of JSON text, counted lexically (brackets outside strings), so a document
 * of a million '[' is refused in one pass without jansson building a million arrays.
 */
static bool depth_ok(const unsigned char *s, size_t len)
{
	unsigned int depth = 0;
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++depth > IDENTITY_MAX_DEPTH)
				return false;
		} else if ((c == ']' || c == '}') && depth) {
			depth--;
		}
	}
	return true;
}

static bool is_hex4(const unsigned char *s, size_t left)
{
	if (left < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')))
			return false;
	}
	return true;
}

static unsigned int hex4(const unsigned char *s)
{
	unsigned int v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 4 | (unsigned int)(s[i] <= '9' ? s[i] - '0' : (s[i] | 0x20) - 'a' + 10);
	return v;
}

/* A number token at s[0..n): integers past 18 digits quoted, reals that overflow made 0.0. */
static size_t relax_number(const unsigned char *s, size_t n, char *out)
{
	bool integer = !memchr(s, '.', n) && !memchr(s, 'e', n) && !memchr(s, 'E', n);
	size_t digits = n - (s[0] == '-');
	char tmp[64];
	double d;

	if (integer && digits > 18) {
		out[0] = '"';
		memcpy(out + 1, s, n);
		out[n + 1] = '"';
		return n + 2;
	}
	if (!integer && n < sizeof(tmp)) {
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		errno = 0;
		d = strtod(tmp, NULL);
		if (errno == ERANGE && isinf(d)) {
			memcpy(out, "0.0", 3);
			return 3;
		}
	}
	memcpy(out, s, n);
	return n;
}

/*
 * What Python's json module accepts and RFC 8259 (so jansson) does not, rewritten into what
 * jansson reads with the same meaning for identity: a leading BOM dropped; NaN, Infinity and
 * -Infinity outside strings as 0.0 (reals, which are never a user); integers past 18 digits
 * as strings of the same text (integers are read as their decimal text anyway); real
 * literals that overflow a double as 0.0; a \uD800-\uDFFF escape that is not half of a
 * pair as \uFFFD.  jansson has no lenient mode, and a library that reads Python's dialect
 * does not exist in Debian: this scanner only copies, one pass, output at most twice the
 * input.  Anything else it leaves for jansson to refuse.  NULL: no memory.
 */
static char *json_relax(const unsigned char *s, size_t len, size_t *outlen)
{
	char *out = malloc(2 * len + 16);
	size_t i = 0, o = 0, n;
	bool in_str = false;

	if (!out)
		return NULL;
	if (len >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf)
		i = 3;
	while (i < len) {
		unsigned char c = s[i];

		if (in_str) {
			if (c == '"') {
				in_str = false;
			} else if (c == '\\' && i + 1 < len && s[i + 1] == 'u' &&
				   is_hex4(s + i + 2, len - i - 2)) {
				unsigned int u = hex4(s + i + 2);
				bool paired = u >= 0xd800 && u <= 0xdbff && i + 11 < len &&
					      s[i + 6] == '\\' && s[i + 7] == 'u' &&
					      is_hex4(s + i + 8, len - i - 8) &&
					      hex4(s + i + 8) >= 0xdc00 &&
					      hex4(s + i + 8) <= 0xdfff;

				if (paired) {
					memcpy(out + o, s + i, 12);
					o += 12;
					i += 12;
				} else if (u >= 0xd800 && u <= 0xdfff) {
					memcpy(out + o, "\\ufffd", 6);
					o += 6;
					i += 6;
				} else {
					memcpy(out + o, s + i, 6);
					o += 6;
					i += 6;
				}
				continue;
			} else if (c == '\\' && i + 1 < len) {
				out[o++] = (char)c;
				c = s[++i];
			}
			out[o++] = (char)c;
			i++;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (len - i >= 3 && !memcmp(s + i, "NaN", 3)) {
			memcpy(out + o, "0.0", 3);
			o += 3;
			i += 3;
			continue;
		} else if (len - i >= 8 && !memcmp(s + i, "Infinity", 8)) {
			memcpy(out + o, "0.0", 3);
			o += 3;
			i += 8;
			continue;
		} else if (len - i >= 9 && !memcmp(s + i, "-Infinity", 9)) {
			memcpy(out + o, "0.0", 3);
			o += 3;
			i += 9;
			continue;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			for (n = 1; i + n < len && strchr("0123456789.eE+-", s[i + n]) && s[i + n];
			     n++)
				;
			o += relax_number(s + i, n, out + o);
			i += n;
			continue;
		}
		out[o++] = (char)c;
		i++;
	}
	*outlen = o;
	return out;
}

static enum identity_reason json_load(const void *buf, size_t len, json_t **out)
{
	json_error_t jerr;

	/*
	 * DECODE_ANY so that a bare string or number is told apart as NOT_OBJECT; ALLOW_NUL so
	 * that "\u0000" inside a value is reported as HAS_NUL on that value.  Duplicate keys
	 * are kept last-wins, as Python's json module does on the service side.
	 */
	*out = json_loadb(buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (*out)
		return IDENTITY_OK;
	switch (json_error_code(&jerr)) {
	case json_error_out_of_memory:
		return IDENTITY_NO_MEMORY;
	case json_error_stack_overflow:
		return IDENTITY_TOO_DEEP;
	default:
		return IDENTITY_BAD_JSON;
	}
}

enum identity_reason identity_json_parse(const void *buf, size_t len, json_t **out)
{
	enum identity_reason r;
	size_t rlen;
	char *relaxed;

	*out = NULL;
	if (len > IDENTITY_MAX_MESSAGE)
		return IDENTITY_TOO_LONG;
	if (!depth_ok(buf, len))
		return IDENTITY_TOO_DEEP;
	r = json_load(buf, len, out);
	if (r != IDENTITY_BAD_JSON)
		return r;
	/* Only what jansson refused pays for the second pass. */
	relaxed = json_relax(buf, len, &rlen);
	if (!relaxed)
		return IDENTITY_NO_MEMORY;
	r = json_load(relaxed, rlen, out);
	free(relaxed);
	return r;
}

/* Array index segment: digits only, no sign, no leading zero, small. */
static bool index_of(const char *seg, size_t len, size_t *idx)
{
	size_t v = 0;

	if (!len || len > 9 || (len > 1 && seg[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (seg[i] < '0' || seg[i] > '9')
			return false;
		v = v * 10 + (size_t)(seg[i] - '0');
	}
	*idx = v;
	return true;
}

enum identity_reason identity_json_get(const json_t *root, const char *path, char *out, size_t size)
{
	const json_t *v = root;
	const char *seg = path;
	size_t len;
	int n;

	out[0] = '\0';
	for (;;) {
		const char *dot = strchr(seg, '.');
		size_t slen = dot ? (size_t)(dot - seg) : strlen(seg);
		size_t idx;

		if (json_is_object(v))
			v = json_object_getn(v, seg, slen);
		else if (json_is_array(v) && index_of(seg, slen, &idx))
			v = json_array_get(v, idx);
		else
			return IDENTITY_NOT_OBJECT;
		if (!v)
			return IDENTITY_ABSENT;
		if (!dot)
			break;
		seg = dot + 1;
	}
	if (json_is_null(v))
		return IDENTITY_ABSENT;
	if (json_is_integer(v)) {
		n = snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		if (n < 0 || (size_t)n >= size) {
			out[0] = '\0';
			return IDENTITY_VALUE_TOO_LONG;
		}
		return IDENTITY_OK;
	}
	if (!json_is_string(v))
		return IDENTITY_NOT_STRING;
	len = json_string_length(v);
	if (strlen(json_string_value(v)) != len)
		return IDENTITY_HAS_NUL;
	if (!len)
		return IDENTITY_EMPTY;
	if (len >= size)
		return IDENTITY_VALUE_TOO_LONG;
	memcpy(out, json_string_value(v), len + 1);
	return IDENTITY_OK;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * The bounded JSON reader of identity (user/identity.c) and the JWT codec (user/jwt.c), and
 * the reasons both give.  A module of its own so that neither needs the other's header.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
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

/* --- the one-pass reader of a message's fields --------------------------------------------- */

/*
 * By hand, because jansson has no way to read a few values without building the whole tree
 * (an allocation per key and value, most of the collector's time per message), and no
 * Debian library reads JSON lazily with jansson's exact verdicts.  It accepts a strict
 * subset of what jansson accepts and reads it the same way; everything else goes to
 * jansson, so the verdicts and values stay jansson's.
 */

struct scan {
	const unsigned char *p, *end;
	struct idjson_doc *d;
	unsigned int depth;
};

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* One well-formed UTF-8 sequence at p (RFC 3629, as jansson's utf8_check_full): its length. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	uint32_t v;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10ffff ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	return n;
}

/*
 * The string whose opening quote is at s->p: *v, *vlen its text between the quotes, *esc
 * whether it has escapes, *nul whether one of them is \u0000.  false: jansson refuses it (a
 * control character, a bad escape, a lone surrogate, bad UTF-8, no closing quote).
 */
static bool scan_string(struct scan *s, const unsigned char **v, size_t *vlen, bool *esc, bool *nul)
{
	const unsigned char *p = s->p + 1, *end = s->end;

	*esc = *nul = false;
	*v = p;
	while (p < end) {
		unsigned char c = *p;
		size_t n;

		if (c == '"') {
			*vlen = (size_t)(p - *v);
			s->p = p + 1;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c >= 0x80) {
			n = utf8_seq(p, end);
			if (!n)
				return false;
			p += n;
			continue;
		}
		if (c != '\\') {
			p++;
			continue;
		}
		*esc = true;
		if (end - p < 2)
			return false;
		c = p[1];
		if (c == 'u') {
			unsigned int u;

			if (!is_hex4(p + 2, (size_t)(end - p) - 2))
				return false;
			u = hex4(p + 2);
			if (u >= 0xdc00 && u <= 0xdfff)
				return false;
			if (u >= 0xd800 && u <= 0xdbff) {
				if (end - p < 12 || p[6] != '\\' || p[7] != 'u' ||
				    !is_hex4(p + 8, (size_t)(end - p) - 8) ||
				    hex4(p + 8) < 0xdc00 || hex4(p + 8) > 0xdfff)
					return false;
				p += 12;
				continue;
			}
			*nul |= !u;
			p += 6;
			continue;
		}
		if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' &&
		    c != 'r' && c != 't')
			return false;
		p += 2;
	}
	return false;
}

/*
 * A number at s->p, as jansson's lexer reads it (RFC 8259 grammar).  Refused here, for
 * jansson to judge: an integer past 18 digits (it may overflow a json_int_t) and a real with
 * an exponent or past 300 integer digits (it may overflow a double).
 */
static bool scan_number(struct scan *s, json_type *type)
{
	const unsigned char *p = s->p, *end = s->end, *digits;

	if (*p == '-')
		p++;
	digits = p;
	if (p >= end || !is_digit(*p))
		return false;
	if (*p == '0') {
		if (++p < end && is_digit(*p))
			return false;
	} else {
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && *p == '.') {
		if ((size_t)(p - digits) > 300 || ++p >= end || !is_digit(*p))
			return false;
		while (p < end && is_digit(*p))
			p++;
		*type = JSON_REAL;
	} else {
		if ((size_t)(p - digits) > 18)
			return false;
		*type = JSON_INTEGER;
	}
	if (p < end && (*p == 'e' || *p == 'E'))
		return false;
	s->p = p;
	return true;
}

/* The child of node named key[klen] (an object's member), -1 if no path goes there. */
static int child_key(const struct idjson_doc *d, int node, const void *key, size_t klen)
{
	for (int c = d->nodes[node].child; c >= 0; c = d->nodes[c].next) {
		if (d->nodes[c].slen == klen && !memcmp(d->nodes[c].seg, key, klen))
			return c;
	}
	return -1;
}

/* The child of node that is element idx of an array, -1 if no path goes there. */
static int child_index(const struct idjson_doc *d, int node, size_t idx)
{
	for (int c = d->nodes[node].child; c >= 0; c = d->nodes[c].next) {
		if (d->nodes[c].index >= 0 && (size_t)d->nodes[c].index == idx)
			return c;
	}
	return -1;
}

/* Forgets what was met at node and below: a duplicate key starts its value afresh. */
static void unset(struct idjson_doc *d, int node)
{
	d->nodes[node].set = false;
	for (int c = d->nodes[node].child; c >= 0; c = d->nodes[c].next)
		unset(d, c);
}

static bool scan_value(struct scan *s, int node);

/* After a member or an element: true when another follows, *done when close ends it. */
static bool scan_next(struct scan *s, unsigned char close, bool *done)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == ',') {
		s->p++;
		return true;
	}
	if (s->p < s->end && *s->p == close) {
		s->p++;
		*done = true;
		return true;
	}
	return false;
}

static bool scan_object(struct scan *s, int node)
{
	bool done = false;

	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return true;
	}
	while (!done) {
		const unsigned char *key;
		size_t klen;
		bool esc, nul;
		int child = -1;

		skip_ws(s);
		if (s->p >= s->end || *s->p != '"' || !scan_string(s, &key, &klen, &esc, &nul) ||
		    nul)
			return false;
		if (node >= 0 && s->d->nodes[node].child >= 0) {
			/* jansson compares keys decoded: leave those to it. */
			if (esc)
				return false;
			child = child_key(s->d, node, key, klen);
		}
		skip_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return false;
		s->p++;
		if (child >= 0)
			unset(s->d, child);
		if (!scan_value(s, child) || !scan_next(s, '}', &done))
			return false;
	}
	return true;
}

static bool scan_array(struct scan *s, int node)
{
	bool done = false;

	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return true;
	}
	for (size_t i = 0; !done; i++) {
		int child = node >= 0 ? child_index(s->d, node, i) : -1;

		if (!scan_value(s, child) || !scan_next(s, ']', &done))
			return false;
	}
	return true;
}

/* The value at s->p, recorded in nodes[node] when a path leads there (node >= 0). */
static bool scan_value(struct scan *s, int node)
{
	const unsigned char *v;
	size_t vlen = 0;
	bool esc = false, nul, ok;
	json_type type;

	skip_ws(s);
	if (s->p >= s->end)
		return false;
	v = s->p;
	switch (*s->p) {
	case '{':
	case '[':
		/* In valid JSON the depth identity_json_parse counts is the nesting. */
		if (++s->depth > IDENTITY_MAX_DEPTH)
			return false;
		type = *s->p == '{' ? JSON_OBJECT : JSON_ARRAY;
		ok = type == JSON_OBJECT ? scan_object(s, node) : scan_array(s, node);
		s->depth--;
		break;
	case '"':
		type = JSON_STRING;
		ok = scan_string(s, &v, &vlen, &esc, &nul);
		break;
	case 't':
	case 'f':
	case 'n': {
		static const char *const lit[] = { "true", "false", "null" };
		int k = *s->p == 't' ? 0 : *s->p == 'f' ? 1 : 2;
		size_t n = strlen(lit[k]);

		type = k == 0 ? JSON_TRUE : k == 1 ? JSON_FALSE : JSON_NULL;
		ok = (size_t)(s->end - s->p) >= n && !memcmp(s->p, lit[k], n);
		if (ok)
			s->p += n;
		break;
	}
	default:
		ok = scan_number(s, &type);
		vlen = (size_t)(s->p - v);
		break;
	}
	if (!ok)
		return false;
	if (node >= 0) {
		struct idjson_node *n = &s->d->nodes[node];

		n->set = true;
		n->type = type;
		n->escaped = esc;
		n->v = v;
		n->vlen = vlen;
	}
	return true;
}

/* Adds path's segments under the document node; false when nodes[] is full. */
static bool add_path(struct idjson_doc *d, const char *path)
{
	const char *seg = path;
	int node = 0;

	for (;;) {
		const char *dot = strchr(seg, '.');
		size_t slen = dot ? (size_t)(dot - seg) : strlen(seg);
		int c = child_key(d, node, seg, slen);

		if (c < 0) {
			struct idjson_node *n;
			size_t idx;

			if (d->nnodes == IDJSON_MAX_NODES)
				return false;
			c = (int)d->nnodes++;
			n = &d->nodes[c];
			memset(n, 0, sizeof(*n));
			n->seg = seg;
			n->slen = slen;
			n->index = index_of(seg, slen, &idx) ? (long)idx : -1;
			n->child = -1;
			n->next = d->nodes[node].child;
			d->nodes[node].child = c;
		}
		node = c;
		if (!dot)
			return true;
		seg = dot + 1;
	}
}

enum identity_reason idjson_open(struct idjson_doc *d, const void *buf, size_t len,
				 const char *const *paths, size_t n)
{
	struct scan s = { .p = buf, .end = (const unsigned char *)buf + len, .d = d };
	enum identity_reason r;
	bool fits = true;

	d->jansson = false;
	d->root = NULL;
	d->nnodes = 1;
	memset(&d->nodes[0], 0, sizeof(d->nodes[0]));
	d->nodes[0].child = d->nodes[0].next = -1;
	d->nodes[0].index = -1;
	if (len > IDENTITY_MAX_MESSAGE)
		return IDENTITY_TOO_LONG;
	for (size_t i = 0; i < n && fits; i++)
		fits = add_path(d, paths[i]);
	if (fits && scan_value(&s, 0)) {
		skip_ws(&s);
		if (s.p == s.end)
			return d->nodes[0].type == JSON_OBJECT ? IDENTITY_OK : IDENTITY_NOT_OBJECT;
	}
	d->jansson = true;
	r = identity_json_parse(buf, len, &d->root);
	if (r == IDENTITY_OK && !json_is_object(d->root))
		r = IDENTITY_NOT_OBJECT;
	return r;
}

/* The string of n decoded into out[size] as jansson decodes it; *len its decoded length. */
static void decode_string(const struct idjson_node *n, char *out, size_t size, size_t *len,
			  bool *nul)
{
	const unsigned char *p = n->v, *end = n->v + n->vlen;
	size_t o = 0;

	*nul = false;
	while (p < end) {
		unsigned char b[4];
		size_t k = 1;

		if (*p != '\\') {
			b[0] = *p++;
		} else if (p[1] != 'u') {
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";

			b[0] = (unsigned char)to[strchr(from, p[1]) - from];
			p += 2;
		} else {
			uint32_t u = hex4(p + 2);

			p += 6;
			if (u >= 0xd800 && u <= 0xdbff) {
				u = ((u - 0xd800) << 10) + (hex4(p + 2) - 0xdc00) + 0x10000;
				p += 6;
			}
			if (u < 0x80) {
				b[0] = (unsigned char)u;
			} else if (u < 0x800) {
				b[0] = (unsigned char)(0xc0 | u >> 6);
				b[1] = (unsigned char)(0x80 | (u & 0x3f));
				k = 2;
			} else if (u < 0x10000) {
				b[0] = (unsigned char)(0xe0 | u >> 12);
				b[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3f));
				b[2] = (unsigned char)(0x80 | (u & 0x3f));
				k = 3;
			} else {
				b[0] = (unsigned char)(0xf0 | u >> 18);
				b[1] = (unsigned char)(0x80 | ((u >> 12) & 0x3f));
				b[2] = (unsigned char)(0x80 | ((u >> 6) & 0x3f));
				b[3] = (unsigned char)(0x80 | (u & 0x3f));
				k = 4;
			}
			*nul |= !u;
		}
		for (size_t i = 0; i < k; i++, o++) {
			if (o < size)
				out[o] = (char)b[i];
		}
	}
	*len = o;
}

enum identity_reason idjson_get(const struct idjson_doc *d, const char *path, char *out,
				size_t size)
{
	const struct idjson_node *n = &d->nodes[0];
	const char *seg = path;
	size_t len;
	bool nul;

	if (d->jansson)
		return identity_json_get(d->root, path, out, size);
	out[0] = '\0';
	for (;;) {
		const char *dot = strchr(seg, '.');
		size_t slen = dot ? (size_t)(dot - seg) : strlen(seg);
		int node = (int)(n - d->nodes), c;
		size_t idx;

		if (n->type == JSON_OBJECT)
			c = child_key(d, node, seg, slen);
		else if (n->type == JSON_ARRAY && index_of(seg, slen, &idx))
			c = child_index(d, node, idx);
		else
			return IDENTITY_NOT_OBJECT;
		if (c < 0 || !d->nodes[c].set)
			return IDENTITY_ABSENT;
		n = &d->nodes[c];
		if (!dot)
			break;
		seg = dot + 1;
	}
	if (n->type == JSON_NULL)
		return IDENTITY_ABSENT;
	if (n->type == JSON_INTEGER) {
		char num[24];
		int k;

		/* At most 18 digits and a sign (scan_number): a json_int_t, no overflow. */
		memcpy(num, n->v, n->vlen);
		num[n->vlen] = '\0';
		k = snprintf(out, size, "%" JSON_INTEGER_FORMAT,
			     (json_int_t)strtoll(num, NULL, 10));
		if (k < 0 || (size_t)k >= size) {
			out[0] = '\0';
			return IDENTITY_VALUE_TOO_LONG;
		}
		return IDENTITY_OK;
	}
	if (n->type != JSON_STRING)
		return IDENTITY_NOT_STRING;
	/* Measured first: out holds nothing but "" unless the value is given. */
	len = n->vlen;
	nul = false;
	if (n->escaped)
		decode_string(n, NULL, 0, &len, &nul);
	if (nul)
		return IDENTITY_HAS_NUL;
	if (!len)
		return IDENTITY_EMPTY;
	if (len >= size)
		return IDENTITY_VALUE_TOO_LONG;
	if (n->escaped)
		decode_string(n, out, size, &len, &nul);
	else
		memcpy(out, n->v, len);
	out[len] = '\0';
	return IDENTITY_OK;
}

void idjson_close(struct idjson_doc *d)
{
	json_decref(d->root);
	d->root = NULL;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Connection and message identity (see identity.h).  JSON is read with jansson; this file
 * only bounds its input, walks paths and turns values into bounded strings.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "identity.h"
#include "jwt.h"

static const char *const reason_names[IDENTITY__COUNT] = {
	[IDENTITY_OK] = "ok",
	[IDENTITY_ABSENT] = "absent",
	[IDENTITY_PREFIX_MISMATCH] = "prefix_mismatch",
	[IDENTITY_TOO_LONG] = "too_long",
	[IDENTITY_BAD_BASE64] = "bad_base64",
	[IDENTITY_NOT_JWT] = "not_jwt",
	[IDENTITY_BAD_JSON] = "bad_json",
	[IDENTITY_TOO_DEEP] = "too_deep",
	[IDENTITY_NOT_OBJECT] = "not_object",
	[IDENTITY_NOT_STRING] = "not_string",
	[IDENTITY_HAS_NUL] = "has_nul",
	[IDENTITY_EMPTY] = "empty",
	[IDENTITY_VALUE_TOO_LONG] = "value_too_long",
	[IDENTITY_BINARY] = "binary",
	[IDENTITY_CONTROL] = "control",
	[IDENTITY_NOT_A_USER] = "not_a_user",
	[IDENTITY_NO_MEMORY] = "no_memory",
	[IDENTITY_AMBIGUOUS] = "ambiguous",
};

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

bool identity_message_names_user(const struct policy *p, const void *data, size_t len)
{
	char key[IDENTITY_MAX_VALUE + 3];
	const char *last;

	if (len > IDENTITY_MAX_MESSAGE)
		len = IDENTITY_MAX_MESSAGE;
	for (size_t i = 0; i < p->nmessage; i++) {
		last = strrchr(p->message[i].json, '.');
		last = last ? last + 1 : p->message[i].json;
		if (snprintf(key, sizeof(key), "\"%s\"", last) >= (int)sizeof(key))
			continue;
		if (memmem(data, len, key, strlen(key)))
			return true;
	}
	return false;
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

/* --- connection ------------------------------------------------------------------------------ */

/* A candidate value from the request: points into the request or into a query buffer. */
struct found {
	const char *prefix;
	const char *v;
	size_t len;
	bool dup; /* another occurrence with a different value */
};

static void found_add(struct found *f, const char *v, size_t len)
{
	if (!f->v) {
		f->v = v;
		f->len = len;
	} else if (f->len != len || memcmp(f->v, v, len)) {
		f->dup = true;
	}
}

static bool subprotocol_entry(void *ctx, const char *elem, size_t len)
{
	struct found *f = ctx;
	size_t plen = strlen(f->prefix);

	if (len >= plen && !memcmp(elem, f->prefix, plen))
		found_add(f, elem + plen, len - plen);
	return false; /* every entry is looked at */
}

/*
 * http1_query_param_at() says only true or false, and percent-decoding may put a NUL inside
 * the value ("alice%00bob" must not name alice).  The buffer is filled with 0xff first: the
 * decoder writes the value and its terminator, so the last byte that is not 0xff is the
 * terminator and gives the decoded length.  The buffer is as large as a whole request head,
 * so a present parameter always fits and false means absent.
 */
static enum identity_reason query_value(const struct http1_message *m, const char *name, size_t nth,
					char *buf, size_t size, size_t *len)
{
	size_t end = size;

	memset(buf, 0xff, size);
	if (!http1_query_param_at(m, name, nth, buf, size))
		return IDENTITY_ABSENT;
	while (end && (unsigned char)buf[end - 1] == 0xff)
		end--;
	*len = end ? end - 1 : 0;
	return strlen(buf) == *len ? IDENTITY_OK : IDENTITY_HAS_NUL;
}

static enum identity_reason plain_value(const char *v, size_t len, char *out, size_t size)
{
	if (!len)
		return IDENTITY_EMPTY;
	if (memchr(v, '\0', len))
		return IDENTITY_HAS_NUL;
	if (len >= size)
		return IDENTITY_VALUE_TOO_LONG;
	memcpy(out, v, len);
	out[len] = '\0';
	return IDENTITY_OK;
}

#define QUERY_REPEATS_MAX 64

/*
 * Every occurrence of a query parameter, decoded: the first in qbuf, the others compared
 * with it in qbuf2.  Bounded: a head holds at most HTTP1_MAX_HEAD / 2 parameters.
 */
static enum identity_reason query_found(const struct policy_conn_rule *r,
					const struct http1_message *m, char *qbuf, char *qbuf2,
					struct found *f)
{
	enum identity_reason ret;
	size_t len, len2;

	ret = query_value(m, r->name, 0, qbuf, HTTP1_MAX_HEAD, &len);
	if (ret != IDENTITY_OK)
		return ret;
	for (size_t n = 1;; n++) {
		/* Bounded work: that many repeats of one parameter is ambiguous in itself. */
		if (n == QUERY_REPEATS_MAX) {
			f->dup = true;
			break;
		}
		ret = query_value(m, r->name, n, qbuf2, HTTP1_MAX_HEAD, &len2);
		if (ret == IDENTITY_ABSENT)
			break;
		if (ret != IDENTITY_OK || len2 != len || memcmp(qbuf, qbuf2, len)) {
			f->dup = true;
			break;
		}
	}
	f->v = qbuf;
	f->len = len;
	return IDENTITY_OK;
}

static enum identity_reason one_rule(const struct policy_conn_rule *r,
				     const struct http1_message *m, char *qbuf, char *qbuf2,
				     char *out, size_t size, const char **ambiguous)
{
	struct found f = { .prefix = r->prefix };
	size_t plen = strlen(r->prefix);
	enum identity_reason ret;
	json_t *payload;

	switch (r->from) {
	case POLICY_FROM_SUBPROTOCOL:
		/* Entries are tokens, compared exactly, over every instance of the header. */
		http1_header_each(m, "Sec-WebSocket-Protocol", subprotocol_entry, &f);
		if (!f.v)
			return IDENTITY_ABSENT;
		if (f.dup)
			*ambiguous = "duplicate_subprotocol";
		break;
	case POLICY_FROM_HEADER:
		for (size_t i = 0; i < m->nheaders; i++) {
			if (!strcasecmp(m->headers[i].name, r->name))
				found_add(&f, m->headers[i].value, strlen(m->headers[i].value));
		}
		if (!f.v)
			return IDENTITY_ABSENT;
		if (f.dup)
			*ambiguous = "duplicate_header";
		/* Auth schemes are case-insensitive (RFC 9110 11.1): "bearer x" is "Bearer x". */
		if (strncasecmp(f.v, r->prefix, plen))
			return IDENTITY_PREFIX_MISMATCH;
		f.v += plen;
		while (*f.v == ' ' || *f.v == '\t')
			f.v++;
		f.len = strlen(f.v);
		break;
	case POLICY_FROM_QUERY:
		ret = query_found(r, m, qbuf, qbuf2, &f);
		if (ret != IDENTITY_OK)
			return ret;
		if (f.dup)
			*ambiguous = "duplicate_query";
		if (f.len < plen || memcmp(qbuf, r->prefix, plen))
			return IDENTITY_PREFIX_MISMATCH;
		f.v = qbuf + plen;
		f.len -= plen;
		break;
	default:
		return IDENTITY_ABSENT;
	}
	if (f.len > IDENTITY_MAX_TOKEN)
		return IDENTITY_TOO_LONG;
	if (r->decode == POLICY_DECODE_NONE)
		return plain_value(f.v, f.len, out, size);
	ret = jwt_payload(f.v, f.len, r->decode == POLICY_DECODE_JWT_B64, &payload);
	if (ret != IDENTITY_OK)
		return ret;
	ret = identity_json_get(payload, r->claim, out, size);
	json_decref(payload);
	return ret;
}

int identity_from_request(const struct policy *p, const struct http1_message *req,
			  struct identity_conn *out)
{
	char value[IDENTITY_MAX_VALUE + 1];
	const char *ambiguous = NULL;
	char *qbuf = NULL;
	bool need_q = false;

	memset(out, 0, sizeof(*out));
	out->reason = IDENTITY_ABSENT;
	out->rule = -1;
	if (req->kind != HTTP1_REQUEST)
		return -EINVAL;
	for (size_t i = 0; i < p->nconn; i++)
		need_q |= p->conn[i].from == POLICY_FROM_QUERY;
	if (need_q) {
		qbuf = malloc(2 * HTTP1_MAX_HEAD);
		if (!qbuf)
			return -ENOMEM;
	}
	for (size_t i = 0; i < p->nconn && i < POLICY_MAX_LIST; i++) {
		const char *dup = NULL;
		enum identity_reason r;

		r = one_rule(&p->conn[i], req, qbuf, qbuf ? qbuf + HTTP1_MAX_HEAD : NULL, value,
			     sizeof(value), &dup);
		out->rules[i] = r;
		if (dup && !ambiguous)
			ambiguous = dup;
		if (r == IDENTITY_OK) {
			if (out->rule < 0) {
				out->rule = (int)i;
				memcpy(out->user, value, sizeof(out->user));
			} else if (strcmp(out->user, value) && !ambiguous) {
				ambiguous = "sources_disagree";
			}
		} else if (out->reason == IDENTITY_ABSENT) {
			out->reason = r;
		}
	}
	if (ambiguous) {
		out->reason = IDENTITY_AMBIGUOUS;
		out->ambiguous = ambiguous;
		out->rule = -1;
		out->user[0] = '\0';
	} else if (out->rule >= 0) {
		out->reason = IDENTITY_OK;
	}
	free(qbuf);
	return 0;
}

/* --- message --------------------------------------------------------------------------------- */

/* The first of paths with a value; else the first failure that is not ABSENT; else ABSENT. */
static void first_field(const json_t *root, const struct policy_list *paths,
			struct identity_field *f)
{
	f->reason = IDENTITY_ABSENT;
	f->path = NULL;
	for (size_t i = 0; i < paths->n; i++) {
		enum identity_reason r;

		r = identity_json_get(root, paths->v[i], f->value, sizeof(f->value));
		if (r == IDENTITY_OK) {
			f->reason = r;
			f->path = paths->v[i];
			return;
		}
		if (f->reason == IDENTITY_ABSENT && r != IDENTITY_ABSENT) {
			f->reason = r;
			f->path = paths->v[i];
		}
	}
}

/*
 * The first identity.message rule with a value that is a user: a value equal to the rule's
 * unless_equals field is that field (a thread id in user_id), not a user, and is skipped.
 */
static void message_user(const json_t *root, const struct policy *p, struct identity_field *f)
{
	char other[IDENTITY_MAX_VALUE + 1];
	enum identity_reason r;

	f->reason = IDENTITY_ABSENT;
	f->path = NULL;
	for (size_t i = 0; i < p->nmessage; i++) {
		r = identity_json_get(root, p->message[i].json, f->value, sizeof(f->value));
		if (r == IDENTITY_OK && p->message[i].unless_equals &&
		    identity_json_get(root, p->message[i].unless_equals, other, sizeof(other)) ==
			    IDENTITY_OK &&
		    !strcmp(other, f->value))
			r = IDENTITY_NOT_A_USER;
		if (r == IDENTITY_OK) {
			f->reason = r;
			f->path = p->message[i].json;
			return;
		}
		if (f->reason == IDENTITY_ABSENT && r != IDENTITY_ABSENT) {
			f->reason = r;
			f->path = p->message[i].json;
		}
	}
	f->value[0] = '\0';
}

int identity_from_message(const struct policy *p, unsigned int opcode, const void *data, size_t len,
			  struct identity_message *out)
{
	json_t *root;

	memset(out, 0, sizeof(*out));
	out->user.reason = out->type.reason = out->run.reason = IDENTITY_ABSENT;
	if (opcode == 2) {
		out->reason = IDENTITY_BINARY;
		return 0;
	}
	if (opcode != 1) {
		out->reason = IDENTITY_CONTROL;
		return 0;
	}
	out->reason = identity_json_parse(data, len, &root);
	if (out->reason == IDENTITY_NO_MEMORY)
		return -ENOMEM;
	if (out->reason != IDENTITY_OK)
		return 0;
	if (!json_is_object(root)) {
		out->reason = IDENTITY_NOT_OBJECT;
		goto out;
	}
	message_user(root, p, &out->user);
	first_field(root, &p->type_fields, &out->type);
	first_field(root, &p->runs.key, &out->run);
	for (size_t i = 0; i < p->ownership.n && i < POLICY_MAX_LIST; i++) {
		struct identity_owner *o = &out->owners[out->nowners++];
		const char *dot = strrchr(p->ownership.v[i], '.');

		o->key = dot ? dot + 1 : p->ownership.v[i];
		o->f.path = p->ownership.v[i];
		o->f.reason = identity_json_get(root, o->f.path, o->f.value, sizeof(o->f.value));
	}
out:
	json_decref(root);
	return 0;
}

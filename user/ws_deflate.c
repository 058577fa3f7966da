// SPDX-License-Identifier: GPL-2.0
/*
 * permessage-deflate (RFC 7692) with zlib.  The inflater always opens a 2^15 window: a
 * window at least as large as the sender's decodes its stream, so the negotiated
 * max_window_bits only need validating.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "ws_deflate.h"

/* Bytes a message's buffer grows by while inflating. */
#define GROW_STEP 16384

struct ws_inflater {
	z_stream zs;
	uint8_t probe; /* the byte past a full message, discarded */
};

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 7692 7.1.2: 1*DIGIT from 8 to 15, no leading zero. */
static int window_bits(const char *v, size_t n)
{
	int bits = 0;

	if (!n || n > 2 || v[0] == '0')
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		bits = bits * 10 + (v[i] - '0');
	}
	return bits >= 8 && bits <= 15 ? bits : -1;
}

struct span {
	const char *s;
	size_t n;
};

static bool span_is(struct span a, const char *lit)
{
	return a.n == strlen(lit) && !strncasecmp(a.s, lit, a.n);
}

static void trim(struct span *a)
{
	while (a->n && is_ows(a->s[0])) {
		a->s++;
		a->n--;
	}
	while (a->n && is_ows(a->s[a->n - 1]))
		a->n--;
}

/* Ends at the next sep outside a quoted string, or at the end. */
static size_t until(const char *s, size_t n, char sep)
{
	bool quoted = false;
	size_t i;

	for (i = 0; i < n; i++) {
		if (quoted && s[i] == '\\' && i + 1 < n)
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && s[i] == sep)
			break;
	}
	return i;
}

/* Parses the parameters of one permessage-deflate element. */
static int parse_params(struct span el, struct ws_deflate_params *out, char *err, size_t errsz)
{
	bool seen[4] = { false };
	static const char *const names[4] = { "server_no_context_takeover",
					      "client_no_context_takeover",
					      "server_max_window_bits", "client_max_window_bits" };

	while (el.n) {
		size_t k = until(el.s, el.n, ';');
		struct span prm = { el.s, k }, name, val = { NULL, 0 };
		const char *eq;
		int idx = -1, bits;

		el.s += k < el.n ? k + 1 : k;
		el.n -= k < el.n ? k + 1 : k;
		trim(&prm);
		if (!prm.n) {
			snprintf(err, errsz, "empty permessage-deflate parameter");
			return -EINVAL;
		}
		eq = memchr(prm.s, '=', prm.n);
		name.s = prm.s;
		name.n = eq ? (size_t)(eq - prm.s) : prm.n;
		trim(&name);
		if (eq) {
			val.s = eq + 1;
			val.n = prm.n - (eq + 1 - prm.s);
			trim(&val);
			/* RFC 7692 7.1: a quoted-string value must be a valid token inside. */
			if (val.n >= 2 && val.s[0] == '"' && val.s[val.n - 1] == '"') {
				val.s++;
				val.n -= 2;
			}
		}
		for (int i = 0; i < 4; i++) {
			if (span_is(name, names[i]))
				idx = i;
		}
		if (idx < 0) {
			snprintf(err, errsz, "unknown permessage-deflate parameter '%.*s'",
				 (int)(name.n > 40 ? 40 : name.n), name.s);
			return -EINVAL;
		}
		if (seen[idx]) {
			snprintf(err, errsz, "duplicate permessage-deflate parameter %s",
				 names[idx]);
			return -EINVAL;
		}
		seen[idx] = true;
		if (idx < 2) {
			if (eq) {
				snprintf(err, errsz, "%s takes no value", names[idx]);
				return -EINVAL;
			}
			if (idx == 0)
				out->server_no_context_takeover = true;
			else
				out->client_no_context_takeover = true;
			continue;
		}
		if (!eq) {
			snprintf(err, errsz, "%s needs a value in a response", names[idx]);
			return -EINVAL;
		}
		bits = window_bits(val.s, val.n);
		if (bits < 0) {
			snprintf(err, errsz, "%s must be 8 to 15", names[idx]);
			return -EINVAL;
		}
		if (idx == 2)
			out->server_max_window_bits = bits;
		else
			out->client_max_window_bits = bits;
	}
	return 0;
}

int ws_deflate_parse(const char *value, struct ws_deflate_params *out, char *err, size_t errsz)
{
	struct span rest = { value, value ? strlen(value) : 0 };
	int ret;

	memset(out, 0, sizeof(*out));
	out->server_max_window_bits = 15;
	out->client_max_window_bits = 15;
	if (errsz)
		err[0] = '\0';
	while (rest.n) {
		size_t k = until(rest.s, rest.n, ',');
		struct span el = { rest.s, k }, name;

		rest.s += k < rest.n ? k + 1 : k;
		rest.n -= k < rest.n ? k + 1 : k;
		trim(&el);
		if (!el.n)
			continue;
		name.s = el.s;
		name.n = until(el.s, el.n, ';');
		trim(&name);
		if (!span_is(name, "permessage-deflate"))
			continue;
		if (out->enabled) {
			snprintf(err, errsz, "permessage-deflate accepted twice");
			return -EINVAL;
		}
		out->enabled = true;
		el.s += name.n;
		el.n -= name.n;
		trim(&el);
		if (el.n) {
			/* skip the ';' after the name */
			el.s++;
			el.n--;
			if (!el.n) {
				snprintf(err, errsz, "empty permessage-deflate parameter");
				return -EINVAL;
			}
		}
		ret = parse_params(el, out, err, errsz);
		if (ret)
			return ret;
	}
	return 0;
}

bool ws_deflate_no_takeover(const struct ws_deflate_params *prm, bool server_to_client)
{
	return server_to_client ? prm->server_no_context_takeover : prm->client_no_context_takeover;
}

void ws_buf_reset(struct ws_buf *b, size_t limit)
{
	b->len = 0;
	b->total = 0;
	b->limit = limit;
}

void ws_buf_free(struct ws_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* Makes room for at least want more bytes (bounded by the limit); 0 or -ENOMEM. */
static int buf_grow(struct ws_buf *b, size_t want)
{
	size_t need = b->len + want, cap;
	uint8_t *nd;

	if (need > b->limit)
		need = b->limit;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 1024;
	while (cap < need)
		cap *= 2;
	if (cap > b->limit)
		cap = b->limit;
	nd = realloc(b->data, cap);
	if (!nd)
		return -ENOMEM;
	b->data = nd;
	b->cap = cap;
	return 0;
}

int ws_buf_append(struct ws_buf *b, const void *data, size_t len)
{
	size_t take = b->limit - b->len < len ? b->limit - b->len : len;
	int err;

	b->total += len;
	if (!take)
		return 0;
	err = buf_grow(b, take);
	if (err)
		return err;
	memcpy(b->data + b->len, data, take);
	b->len += take;
	return 0;
}

struct ws_inflater *ws_inflater_new(void)
{
	struct ws_inflater *inf = calloc(1, sizeof(*inf));

	if (!inf)
		return NULL;
	if (inflateInit2(&inf->zs, -15) != Z_OK) {
		free(inf);
		errno = ENOMEM;
		return NULL;
	}
	return inf;
}

void ws_inflater_free(struct ws_inflater *inf)
{
	if (!inf)
		return;
	inflateEnd(&inf->zs);
	free(inf);
}

int ws_inflater_begin(struct ws_inflater *inf, bool fresh)
{
	if (fresh && inflateReset(&inf->zs) != Z_OK)
		return -EINVAL;
	return 0;
}

int ws_inflater_prime(struct ws_inflater *inf, const void *dict, size_t len)
{
	const uint8_t *d = dict;

	/* A raw inflater takes a dictionary at any point; only the window's size counts. */
	if (len > 32768) {
		d += len - 32768;
		len = 32768;
	}
	if (inflateReset(&inf->zs) != Z_OK)
		return -EINVAL;
	if (len && inflateSetDictionary(&inf->zs, d, len) != Z_OK)
		return -EINVAL;
	return 0;
}

/*
 * Inflates into the message until its limit.  At the limit, one byte more is asked for: if
 * the stream has it, the message is too large and inflation stops there (-E2BIG) instead
 * of decoding the rest only to count it, which would let a few compressed bytes cost the
 * collector a thousand times their size in work.
 */
static int inflate_some(struct ws_inflater *inf, const uint8_t *in, size_t len, struct ws_buf *out)
{
	z_stream *zs = &inf->zs;
	int err;

	zs->next_in = (Bytef *)in;
	zs->avail_in = len;
	for (;;) {
		uint8_t *dst;
		size_t room, made;
		int zr;

		err = buf_grow(out, GROW_STEP);
		if (err)
			return err;
		if (out->len < out->cap) {
			dst = out->data + out->len;
			room = out->cap - out->len;
		} else {
			/* full: does the message go on? */
			dst = &inf->probe;
			room = 1;
		}
		zs->next_out = dst;
		zs->avail_out = room;
		zr = inflate(zs, Z_SYNC_FLUSH);
		if (zr == Z_MEM_ERROR)
			return -ENOMEM;
		if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR)
			return -EBADMSG;
		made = room - zs->avail_out;
		out->total += made;
		if (dst == &inf->probe) {
			if (made)
				return -E2BIG;
		} else {
			out->len += made;
		}
		if (zr == Z_STREAM_END) {
			/* A final block: the sender starts a new stream for what follows. */
			if (inflateReset(zs) != Z_OK)
				return -EBADMSG;
			if (!zs->avail_in)
				return 0;
			continue;
		}
		if (zr == Z_BUF_ERROR || (!zs->avail_in && zs->avail_out))
			return 0;
	}
}

int ws_inflater_feed(struct ws_inflater *inf, const void *data, size_t len, bool last,
		     struct ws_buf *out)
{
	static const uint8_t tail[4] = { 0x00, 0x00, 0xff, 0xff };
	int err = 0;

	if (len)
		err = inflate_some(inf, data, len, out);
	if (!err && last)
		err = inflate_some(inf, tail, sizeof(tail), out);
	return err;
}

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
#include "idjson.h"
#include "jwt.h"

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
static void first_field(const struct idjson_doc *doc, const struct policy_list *paths,
			struct identity_field *f)
{
	f->reason = IDENTITY_ABSENT;
	f->path = NULL;
	for (size_t i = 0; i < paths->n; i++) {
		enum identity_reason r;

		r = idjson_get(doc, paths->v[i], f->value, sizeof(f->value));
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
static void message_user(const struct idjson_doc *doc, const struct policy *p,
			 struct identity_field *f)
{
	char other[IDENTITY_MAX_VALUE + 1];
	enum identity_reason r;

	f->reason = IDENTITY_ABSENT;
	f->path = NULL;
	for (size_t i = 0; i < p->nmessage; i++) {
		r = idjson_get(doc, p->message[i].json, f->value, sizeof(f->value));
		if (r == IDENTITY_OK && p->message[i].unless_equals &&
		    idjson_get(doc, p->message[i].unless_equals, other, sizeof(other)) ==
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

/* Every path identity_from_message reads, into paths[]; their number. */
static size_t message_paths(const struct policy *p, const char **paths)
{
	size_t n = 0;

	/* The policy holds at most POLICY_MAX_LIST entries per list (policy.c). */
	for (size_t i = 0; i < p->nmessage && i < POLICY_MAX_LIST; i++) {
		paths[n++] = p->message[i].json;
		if (p->message[i].unless_equals)
			paths[n++] = p->message[i].unless_equals;
	}
	for (size_t i = 0; i < p->type_fields.n && i < POLICY_MAX_LIST; i++)
		paths[n++] = p->type_fields.v[i];
	for (size_t i = 0; i < p->runs.key.n && i < POLICY_MAX_LIST; i++)
		paths[n++] = p->runs.key.v[i];
	for (size_t i = 0; i < p->ownership.n && i < POLICY_MAX_LIST; i++)
		paths[n++] = p->ownership.v[i];
	return n;
}

int identity_from_message(const struct policy *p, unsigned int opcode, const void *data, size_t len,
			  struct identity_message *out)
{
	const char *paths[5 * POLICY_MAX_LIST];
	struct idjson_doc doc;

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
	out->reason = idjson_open(&doc, data, len, paths, message_paths(p, paths));
	if (out->reason == IDENTITY_NO_MEMORY)
		return -ENOMEM;
	if (out->reason != IDENTITY_OK)
		goto out;
	message_user(&doc, p, &out->user);
	first_field(&doc, &p->type_fields, &out->type);
	first_field(&doc, &p->runs.key, &out->run);
	for (size_t i = 0; i < p->ownership.n && i < POLICY_MAX_LIST; i++) {
		struct identity_owner *o = &out->owners[out->nowners++];
		const char *dot = strrchr(p->ownership.v[i], '.');

		o->key = dot ? dot + 1 : p->ownership.v[i];
		o->f.path = p->ownership.v[i];
		o->f.reason = idjson_get(&doc, o->f.path, o->f.value, sizeof(o->f.value));
	}
out:
	idjson_close(&doc);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * HTTP/1.1 head parser (RFC 9112 section 2-5).  The head is collected into a bounded
 * buffer until its empty line, then split in place.  Bare LF line ends are accepted (RFC
 * 9112 2.2 allows it); obsolete line folding and whitespace before a header's colon are
 * rejected, as RFC 9112 5.1 and 5.2 require of a server.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "http1.h"

enum http1_state {
	HS_COLLECT,
	HS_DONE,
	HS_ERROR,
};

struct http1_parser {
	enum http1_kind kind;
	enum http1_state st;
	size_t len; /* bytes collected */
	size_t scanned; /* bytes already searched for the end of the head */
	char err[160];
	struct http1_message msg;
	char buf[HTTP1_MAX_HEAD + 1];
	char path[HTTP1_MAX_HEAD + 1];
};

struct http1_parser *http1_parser_new(enum http1_kind kind)
{
	struct http1_parser *p = malloc(sizeof(*p));

	if (!p)
		return NULL;
	p->kind = kind;
	http1_parser_reset(p);
	return p;
}

void http1_parser_free(struct http1_parser *p)
{
	free(p);
}

void http1_parser_reset(struct http1_parser *p)
{
	p->st = HS_COLLECT;
	p->len = 0;
	p->scanned = 0;
	p->err[0] = '\0';
	memset(&p->msg, 0, sizeof(p->msg));
	p->msg.kind = p->kind;
}

const char *http1_parser_error(const struct http1_parser *p)
{
	return p->err[0] ? p->err : NULL;
}

static enum http1_result fail(struct http1_parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static enum http1_result fail(struct http1_parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	p->st = HS_ERROR;
	return HTTP1_ERROR;
}

/* RFC 9110 5.6.2 tchar */
static bool is_tchar(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Field values: visible characters, obs-text, SP and HTAB (RFC 9110 5.5). */
static bool value_ok(const char *s)
{
	for (; *s; s++) {
		unsigned char c = *s;

		if (c < 0x20 && c != '\t')
			return false;
		if (c == 0x7f)
			return false;
	}
	return true;
}

/* Parses "HTTP/1.x"; returns the minor version or -1. */
static int parse_version(const char *s)
{
	if (strncmp(s, "HTTP/1.", 7) || !isdigit((unsigned char)s[7]) || s[8])
		return -1;
	return s[7] - '0';
}

static enum http1_result parse_request_line(struct http1_parser *p, char *line)
{
	struct http1_message *m = &p->msg;
	char *sp1 = strchr(line, ' '), *sp2, *q;
	size_t plen;

	if (!sp1)
		return fail(p, "malformed request line");
	*sp1 = '\0';
	sp2 = strchr(sp1 + 1, ' ');
	if (!sp2)
		return fail(p, "malformed request line");
	*sp2 = '\0';
	m->method = line;
	m->target = sp1 + 1;
	if (!*m->method)
		return fail(p, "empty method");
	for (const char *c = m->method; *c; c++) {
		if (!is_tchar(*c))
			return fail(p, "invalid character in method");
	}
	if (!*m->target)
		return fail(p, "empty request target");
	for (const char *c = m->target; *c; c++) {
		if ((unsigned char)*c <= 0x20 || *c == 0x7f)
			return fail(p, "invalid character in request target");
	}
	m->version_minor = parse_version(sp2 + 1);
	if (m->version_minor < 0)
		return fail(p, "unsupported protocol version in request line");
	q = strchr(m->target, '?');
	plen = q ? (size_t)(q - m->target) : strlen(m->target);
	memcpy(p->path, m->target, plen);
	p->path[plen] = '\0';
	m->path = p->path;
	m->query = q ? q + 1 : "";
	return HTTP1_DONE;
}

static enum http1_result parse_status_line(struct http1_parser *p, char *line)
{
	struct http1_message *m = &p->msg;
	char *sp = strchr(line, ' ');
	const char *code;

	if (!sp)
		return fail(p, "malformed status line");
	*sp = '\0';
	m->version_minor = parse_version(line);
	if (m->version_minor < 0)
		return fail(p, "unsupported protocol version in status line");
	code = sp + 1;
	if (!isdigit((unsigned char)code[0]) || !isdigit((unsigned char)code[1]) ||
	    !isdigit((unsigned char)code[2]) || (code[3] && code[3] != ' '))
		return fail(p, "malformed status code");
	m->status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
	if (m->status < 100)
		return fail(p, "status code %d out of range", m->status);
	m->reason = code[3] ? code + 4 : "";
	if (!value_ok(m->reason))
		return fail(p, "invalid character in reason phrase");
	return HTTP1_DONE;
}

static enum http1_result parse_header(struct http1_parser *p, char *line, unsigned int lineno)
{
	struct http1_message *m = &p->msg;
	char *colon, *v, *end;

	if (is_ows(line[0]))
		return fail(p, "obsolete line folding at line %u", lineno);
	colon = strchr(line, ':');
	if (!colon)
		return fail(p, "header without colon at line %u", lineno);
	if (colon == line)
		return fail(p, "empty header name at line %u", lineno);
	*colon = '\0';
	for (const char *c = line; *c; c++) {
		if (is_ows(*c))
			return fail(p, "whitespace before colon in header at line %u", lineno);
		if (!is_tchar(*c))
			return fail(p, "invalid character in header name at line %u", lineno);
	}
	v = colon + 1;
	while (is_ows(*v))
		v++;
	end = v + strlen(v);
	while (end > v && is_ows(end[-1]))
		*--end = '\0';
	if (!value_ok(v))
		return fail(p, "invalid character in value of header %s", line);
	if (m->nheaders == HTTP1_MAX_HEADERS)
		return fail(p, "more than %d header fields", HTTP1_MAX_HEADERS);
	m->headers[m->nheaders].name = line;
	m->headers[m->nheaders].value = v;
	m->nheaders++;
	return HTTP1_DONE;
}

/* Splits buf[start, head_end) into lines and parses them. */
static enum http1_result parse_head(struct http1_parser *p, size_t start, size_t head_end)
{
	char *s = p->buf + start, *end = p->buf + head_end;
	unsigned int lineno = 0;
	enum http1_result r;

	p->buf[head_end] = '\0';
	while (s < end) {
		char *nl = memchr(s, '\n', end - s);
		char *e = nl ? nl : end;

		if (e > s && e[-1] == '\r')
			e--;
		*e = '\0';
		if (memchr(s, '\r', e - s))
			return fail(p, "bare CR at line %u", lineno + 1);
		if (!*s)
			break; /* the empty line that ends the head */
		lineno++;
		if (lineno == 1)
			r = p->kind == HTTP1_REQUEST ? parse_request_line(p, s) :
						       parse_status_line(p, s);
		else
			r = parse_header(p, s, lineno);
		if (r != HTTP1_DONE)
			return r;
		s = nl ? nl + 1 : end;
	}
	if (!lineno)
		return fail(p, "empty head");
	return HTTP1_DONE;
}

/* Finds the end of the head (after its empty line); 0 when not there yet. */
static size_t find_head_end(const struct http1_parser *p, size_t from)
{
	for (size_t i = from; i < p->len; i++) {
		if (p->buf[i] != '\n')
			continue;
		if (i >= 1 && p->buf[i - 1] == '\n')
			return i + 1;
		if (i >= 2 && p->buf[i - 1] == '\r' && p->buf[i - 2] == '\n')
			return i + 1;
	}
	return 0;
}

enum http1_result http1_parser_feed(struct http1_parser *p, const void *data, size_t len,
				    const struct http1_message **msg, size_t *consumed)
{
	size_t before = p->len, take, start = 0, end;
	enum http1_result r;

	*consumed = 0;
	if (p->st == HS_DONE)
		return fail(p, "head already complete: reset the parser first");
	if (p->st == HS_ERROR)
		return HTTP1_ERROR;
	take = HTTP1_MAX_HEAD - p->len < len ? HTTP1_MAX_HEAD - p->len : len;
	memcpy(p->buf + p->len, data, take);
	p->len += take;
	/* RFC 9112 2.2: ignore empty lines before the start line. */
	while (start + 1 < p->len && p->buf[start] == '\r' && p->buf[start + 1] == '\n')
		start += 2;
	while (start < p->len && p->buf[start] == '\n')
		start++;
	end = find_head_end(p, p->scanned > start ? p->scanned : start);
	if (!end) {
		p->scanned = p->len;
		if (p->len == HTTP1_MAX_HEAD)
			return fail(p, "head larger than %d bytes", HTTP1_MAX_HEAD);
		*consumed = take;
		return HTTP1_NEED_MORE;
	}
	r = parse_head(p, start, end);
	if (r != HTTP1_DONE)
		return r;
	p->msg.head_len = end;
	p->st = HS_DONE;
	*consumed = end - before;
	*msg = &p->msg;
	return HTTP1_DONE;
}

const char *http1_header(const struct http1_message *m, const char *name)
{
	for (size_t i = 0; i < m->nheaders; i++) {
		if (!strcasecmp(m->headers[i].name, name))
			return m->headers[i].value;
	}
	return NULL;
}

static bool each_element(const char *v, bool (*fn)(void *ctx, const char *elem, size_t len),
			 void *ctx)
{
	const char *s = v;

	while (*s) {
		const char *e = s, *a, *b;
		bool quoted = false;

		/* Commas inside quoted strings (extension parameters) do not separate. */
		for (; *e && (quoted || *e != ','); e++) {
			if (quoted && *e == '\\' && e[1])
				e++;
			else if (*e == '"')
				quoted = !quoted;
		}
		a = s;
		b = e;
		while (a < b && is_ows(*a))
			a++;
		while (b > a && is_ows(b[-1]))
			b--;
		/* RFC 9110 5.6.1: empty elements are allowed and ignored. */
		if (b > a && fn(ctx, a, b - a))
			return true;
		s = *e ? e + 1 : e;
	}
	return false;
}

bool http1_header_each(const struct http1_message *m, const char *name,
		       bool (*fn)(void *ctx, const char *elem, size_t len), void *ctx)
{
	for (size_t i = 0; i < m->nheaders; i++) {
		if (strcasecmp(m->headers[i].name, name))
			continue;
		if (each_element(m->headers[i].value, fn, ctx))
			return true;
	}
	return false;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decodes s[0..n) (application/x-www-form-urlencoded: '+' is a space) into buf;
 * returns the decoded length, or -1 when it does not fit with its NUL.
 */
static ssize_t form_decode(const char *s, size_t n, char *buf, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
			   hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		}
		if (o + 1 >= size)
			return -1;
		buf[o++] = c;
	}
	if (o >= size)
		return -1;
	buf[o] = '\0';
	return o;
}

bool http1_query_param(const struct http1_message *m, const char *name, char *buf, size_t size)
{
	return http1_query_param_at(m, name, 0, buf, size);
}

bool http1_query_param_at(const struct http1_message *m, const char *name, size_t nth, char *buf,
			  size_t size)
{
	const char *s = m->query;
	char key[256];

	if (!s || !size)
		return false;
	while (*s) {
		const char *amp = strchr(s, '&');
		const char *e = amp ? amp : s + strlen(s);
		const char *eq = memchr(s, '=', e - s);
		const char *kend = eq ? eq : e;

		if (form_decode(s, kend - s, key, sizeof(key)) >= 0 && !strcmp(key, name) &&
		    !nth--) {
			const char *v = eq ? eq + 1 : e;

			return form_decode(v, e - v, buf, size) >= 0;
		}
		s = amp ? amp + 1 : e;
	}
	return false;
}

bool http1_looks_like_request_line(const char *s, size_t len)
{
	const char *end = s + len, *sp;
	size_t n;

	for (n = 0; s + n < end && is_tchar(s[n]); n++)
		;
	if (!n || s + n >= end || s[n] != ' ')
		return false;
	s += n + 1;
	sp = memchr(s, ' ', end - s);
	if (!sp || sp == s)
		return false;
	for (const char *c = s; c < sp; c++) {
		if ((unsigned char)*c <= 0x20 || *c == 0x7f)
			return false;
	}
	s = sp + 1;
	return end - s >= 8 && !memcmp(s, "HTTP/1.", 7) && isdigit((unsigned char)s[7]);
}

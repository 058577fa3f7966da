/* SPDX-License-Identifier: GPL-2.0 */
/*
 * HTTP/1.1 upgrade request and response parsing (RFC 9110/9112, RFC 6455 section 4).
 * Incremental: a request or response may arrive over several reads.  Sizes are bounded and
 * a message past a bound is an error with a reason, never a silent cut.
 */
#ifndef WSAUDIT_HTTP1_H
#define WSAUDIT_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP1_MAX_HEAD 16384 /* request/status line + headers, bytes */
#define HTTP1_MAX_HEADERS 100

struct http1_header {
	const char *name; /* NUL-terminated, as sent */
	const char *value; /* NUL-terminated, surrounding whitespace removed */
};

enum http1_kind {
	HTTP1_REQUEST,
	HTTP1_RESPONSE,
};

struct http1_message {
	enum http1_kind kind;
	/* request */
	const char *method;
	const char *target; /* as sent: path and query */
	const char *path; /* target before '?' */
	const char *query; /* after '?', or "" */
	/* response */
	int status;
	const char *reason;
	int version_minor; /* HTTP/1.x */
	size_t nheaders;
	struct http1_header headers[HTTP1_MAX_HEADERS];
	size_t head_len; /* bytes of the head, including the final CRLF CRLF */
};

enum http1_result {
	HTTP1_DONE = 0, /* a whole head was parsed */
	HTTP1_NEED_MORE = 1, /* feed more bytes */
	HTTP1_ERROR = -1, /* see http1_parser_error() */
};

struct http1_parser;

struct http1_parser *http1_parser_new(enum http1_kind kind);
void http1_parser_free(struct http1_parser *p);
void http1_parser_reset(struct http1_parser *p);
/*
 * Appends bytes.  On HTTP1_DONE, *msg points into the parser (valid until the next feed or
 * reset) and *consumed tells how many of these bytes belonged to the head: the rest are the
 * first bytes after it (for a 101 response, the first WebSocket frames).
 */
enum http1_result http1_parser_feed(struct http1_parser *p, const void *data, size_t len,
				    const struct http1_message **msg, size_t *consumed);
const char *http1_parser_error(const struct http1_parser *p);

/* First value of a header, case-insensitive name; NULL when absent. */
const char *http1_header(const struct http1_message *m, const char *name);
/*
 * Calls fn for every comma-separated element of every instance of a header (the list syntax
 * of RFC 9110 5.6.1), trimmed; stops and returns true when fn returns true.
 */
bool http1_header_each(const struct http1_message *m, const char *name,
		       bool (*fn)(void *ctx, const char *elem, size_t len), void *ctx);
/* Value of a query parameter, percent-decoded into buf; false when absent or too long. */
bool http1_query_param(const struct http1_message *m, const char *name, char *buf, size_t size);
/* The same for its nth occurrence (0: the first). */
bool http1_query_param_at(const struct http1_message *m, const char *name, size_t nth, char *buf,
			  size_t size);
/*
 * Whether s[0..len) starts with what reads as a request line ("METHOD target HTTP/1.x"):
 * a fragment of a head that would parse as a request of its own.
 */
bool http1_looks_like_request_line(const char *s, size_t len);

#endif /* WSAUDIT_HTTP1_H */

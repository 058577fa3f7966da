// SPDX-License-Identifier: GPL-2.0
/*
 * HTTP/1.1 head parser: the input as a request and as a response, fed in two pieces cut
 * where its first byte says, then every accessor on the result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "ws_deflate.h"

static bool count(void *ctx, const char *elem, size_t len)
{
	size_t *n = ctx;

	if (!len || memchr(elem, '\0', len))
		abort();
	(*n)++;
	return false;
}

static void check(const struct http1_message *m, size_t size)
{
	static char big[HTTP1_MAX_HEAD + 1];
	char buf[64];
	size_t n = 0;
	struct ws_deflate_params prm;
	char err[128];

	if (m->head_len > size || m->nheaders > HTTP1_MAX_HEADERS)
		abort();
	for (size_t i = 0; i < m->nheaders; i++) {
		if (!m->headers[i].name[0])
			abort();
		http1_header_each(m, m->headers[i].name, count, &n);
	}
	http1_header(m, "Sec-WebSocket-Protocol");
	ws_deflate_parse(http1_header(m, "Sec-WebSocket-Extensions"), &prm, err, sizeof(err));
	if (m->kind == HTTP1_REQUEST) {
		if (strlen(m->path) > strlen(m->target))
			abort();
		http1_query_param(m, "token", buf, sizeof(buf));
		http1_query_param(m, "", buf, 1);
		/* A later occurrence exists only when an earlier one does (all fit in big). */
		if (http1_query_param_at(m, "token", 1, big, sizeof(big)) &&
		    !http1_query_param_at(m, "token", 0, big, sizeof(big)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cut, used;

	if (!size)
		return 0;
	/* Every suffix is what a read starting there would be taken for. */
	for (size_t i = 0; i < size && i < 64; i++)
		http1_looks_like_request_line((const char *)data + i, size - i);
	cut = data[0] % (size + 1);
	for (int kind = 0; kind < 2; kind++) {
		struct http1_parser *p = http1_parser_new(kind ? HTTP1_RESPONSE : HTTP1_REQUEST);
		const struct http1_message *m = NULL;
		enum http1_result r;

		if (!p)
			return 0;
		r = http1_parser_feed(p, data, cut, &m, &used);
		if (r == HTTP1_NEED_MORE) {
			if (used != cut)
				abort();
			r = http1_parser_feed(p, data + cut, size - cut, &m, &used);
		}
		if (r == HTTP1_DONE)
			check(m, size);
		else if (r == HTTP1_ERROR && !http1_parser_error(p))
			abort();
		http1_parser_free(p);
	}
	return 0;
}

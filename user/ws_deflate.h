/* SPDX-License-Identifier: GPL-2.0 */
/*
 * permessage-deflate (RFC 7692): the parameters negotiated in a 101 response's
 * Sec-WebSocket-Extensions, and a per-direction inflater.
 */
#ifndef WSAUDIT_WS_DEFLATE_H
#define WSAUDIT_WS_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ws_deflate_params {
	bool enabled; /* permessage-deflate was negotiated */
	bool server_no_context_takeover;
	bool client_no_context_takeover;
	int server_max_window_bits; /* 8..15; 15 when not given */
	int client_max_window_bits;
};

/*
 * Parses a Sec-WebSocket-Extensions value as sent in a response (one accepted extension
 * configuration).  Returns 0 with out->enabled false when permessage-deflate is not in it,
 * 0 with the parameters when it is, or -EINVAL with a reason in err (unknown, duplicate or
 * malformed parameter, window bits outside 8..15, permessage-deflate accepted twice).
 * Extensions other than permessage-deflate are ignored (none is registered that uses the
 * RSV bits).  NULL or "" is "not negotiated".
 */
int ws_deflate_parse(const char *value, struct ws_deflate_params *out, char *err, size_t errsz);

/* Whether a message sent in a direction starts with a fresh compression context. */
bool ws_deflate_no_takeover(const struct ws_deflate_params *prm, bool server_to_client);

/*
 * Where decoded bytes go: the first `limit` bytes are kept.  ws_buf_append() counts the rest
 * in total; the inflater stops one byte past the limit (total is then limit + 1).
 */
struct ws_buf {
	uint8_t *data;
	size_t len; /* bytes kept */
	size_t cap;
	size_t limit;
	uint64_t total; /* bytes produced, kept or not */
};

/* Appends, keeping at most limit bytes; 0 or -ENOMEM. */
int ws_buf_append(struct ws_buf *b, const void *data, size_t len);
void ws_buf_reset(struct ws_buf *b, size_t limit);
void ws_buf_free(struct ws_buf *b);

struct ws_inflater;

/* A raw-deflate inflater; NULL and errno on failure. */
struct ws_inflater *ws_inflater_new(void);
void ws_inflater_free(struct ws_inflater *inf);
/*
 * Starts a message.  fresh: the sender reset its context (no_context_takeover), or the
 * previous context cannot be trusted; the inflater starts from an empty window.
 */
int ws_inflater_begin(struct ws_inflater *inf, bool fresh);
/*
 * Starts a message from a known history: the window is emptied and then holds the last
 * bytes of dict (at most 2^15), as if the sender's earlier messages had been inflated.
 * Returns 0 or -EINVAL.
 */
int ws_inflater_prime(struct ws_inflater *inf, const void *dict, size_t len);
/*
 * Inflates one frame's payload of the current message into out.  last: the message's
 * final frame, after which the 00 00 ff ff tail that RFC 7692 7.2.1 strips is inflated.
 * Returns 0; -E2BIG when the message decodes to more than out->limit bytes: inflation
 * stopped there, the rest of the message is not decoded (bounded work per input byte) and
 * the context is broken until the next begin(fresh); -EBADMSG when the data is not valid
 * deflate (the context is broken likewise); or -ENOMEM.
 */
int ws_inflater_feed(struct ws_inflater *inf, const void *data, size_t len, bool last,
		     struct ws_buf *out);

#endif /* WSAUDIT_WS_DEFLATE_H */

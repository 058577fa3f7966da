/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One direction of one WebSocket connection: frame parser + message assembly +
 * permessage-deflate inflater.  Bytes go in with their stream positions (and holes);
 * frames and completed messages come out through two callbacks.
 *
 *   struct ws_stream_opts o = { .direction = WS_SERVER_TO_CLIENT };
 *   s = ws_stream_new(&o, on_frame, on_message, ctx);
 *   ws_stream_set_extensions(s, "permessage-deflate; server_no_context_takeover", err, n);
 *   ws_stream_feed(s, pos, buf, len);   ws_stream_gap(s, pos, lost);   ...
 *   ws_stream_finish(s);  ws_stream_free(s);
 *
 * Ordering: for the frame that completes a data message, the message callback runs first
 * and the frame callback then gets the same message in info->message, so a frame record
 * can carry what the message says.  Control frames pass straight through (they may arrive
 * between the fragments of a message).  When a loss of sync or ws_stream_finish() cuts an
 * open message, the message callback runs alone with status truncated.
 *
 * Compression contexts: a hole or lost frame that may have touched a compressed message,
 * an inflate error, a message that decodes past max_message (inflation stops there, so
 * the work per input byte stays bounded) or compressed bytes beyond the kept bound make
 * the direction's context untrusted.  With no_context_takeover for the direction, the next compressed
 * message that starts afterwards is decodable again; otherwise every later compressed
 * message has status undecodable_gap.  Each case is counted.
 */
#ifndef WSAUDIT_WS_MESSAGE_H
#define WSAUDIT_WS_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ws_deflate.h"
#include "ws_frame.h"

/*
 * A message's status, X(NAME, "name"): the one list behind the enum and the tables of names
 * (ws_msg_status_name(), the metrics' label values).
 *   TRUNCATED        bytes of it were lost (a hole, or its start was not seen)
 *   UNDECODABLE_GAP  compressed, and the compression context is not trusted
 *   INFLATE_ERROR    compressed, and not valid deflate
 *   TOO_LARGE        decodes to more than max_message bytes: data holds a prefix
 */
#define WS_MSG_STATUSES(X)                    \
	X(OK, "ok")                           \
	X(TRUNCATED, "truncated")             \
	X(UNDECODABLE_GAP, "undecodable_gap") \
	X(INFLATE_ERROR, "inflate_error")     \
	X(TOO_LARGE, "too_large")

#define WS_MSG_ENUM(name, str) WS_MSG_##name,
enum ws_msg_status {
	WS_MSG_STATUSES(WS_MSG_ENUM) WS_MSG__COUNT,
};
#undef WS_MSG_ENUM

/* Its name in WS_MSG_STATUSES; "unknown" outside the enum. */
const char *ws_msg_status_name(enum ws_msg_status status);

struct ws_message {
	uint8_t opcode; /* text or binary; continuation when its first frame was not seen */
	bool compressed; /* RSV1 on its first frame */
	enum ws_msg_status status;
	uint64_t stream_off; /* header of its first frame seen */
	uint64_t wire_len; /* sum of its frames' declared payload lengths */
	unsigned int frames;
	/*
	 * Decoded bytes (inflated when compressed): all of them for ok, a prefix otherwise
	 * (what could be decoded before the loss, or max_message bytes), none for
	 * undecodable_gap.  A single-frame uncompressed message points at the frame's
	 * payload (no copy).  Valid only during the callback.
	 */
	const uint8_t *data;
	size_t len;
	/*
	 * Bytes it decodes to, when known: ok, and too_large uncompressed.  0 for a compressed
	 * too_large message, whose inflation stopped at max_message.
	 */
	uint64_t decoded_len;
};

struct ws_frame_info {
	bool compressed; /* the frame belongs to a compressed message */
	bool compressed_known; /* false: its message's first frame was not seen */
	const struct ws_message *message; /* the message this frame completes, else NULL */
};

struct ws_stream_opts {
	enum ws_direction direction;
	/* Decoded bytes kept per message; 0 means WS_STREAM_DEFAULT_MAX_MESSAGE. */
	size_t max_message;
};

#define WS_STREAM_DEFAULT_MAX_MESSAGE (1u << 20)

typedef void (*ws_stream_frame_cb)(void *ctx, const struct ws_frame *frame,
				   const struct ws_frame_info *info);
typedef void (*ws_stream_message_cb)(void *ctx, const struct ws_message *msg);

struct ws_stream_stats {
	uint64_t messages[WS_MSG__COUNT];
	uint64_t context_losses; /* times the compression context became untrusted */
	uint64_t context_recoveries; /* times it was trusted again */
	uint64_t history_recovered; /* of which: from the sender's history (adopted streams) */
};

/*
 * The history source of an adopted stream: called when a compressed message whose context
 * is not trusted ended whole, with the message's compressed bytes (its frames' payloads
 * joined, without the RFC 7692 tail) and its last frame.  Returns 0 with the sender's history the message was
 * compressed after (*dict valid until the source is called again; len 0 is an empty
 * history), or a negative errno when none was found: the message stays undecodable_gap.
 */
typedef int (*ws_stream_history_cb)(void *ctx, const struct ws_frame *last, uint8_t opcode,
				    const uint8_t *wire, size_t len, const uint8_t **dict,
				    size_t *dict_len);

/* Compressed bytes of one message kept for its history source. */
#define WS_STREAM_HISTORY_WIRE_MAX (64u << 10)

struct ws_stream;

/* Either callback may be NULL.  NULL and errno on failure. */
struct ws_stream *ws_stream_new(const struct ws_stream_opts *opts, ws_stream_frame_cb frame_cb,
				ws_stream_message_cb message_cb, void *ctx);
void ws_stream_free(struct ws_stream *s);
/*
 * Applies the Sec-WebSocket-Extensions value of the 101 response (NULL: none).  Call it
 * before the first frame.  Returns 0, or -EINVAL with a reason in err: the stream then
 * still parses frames, and compressed messages inflate as if the context were taken over.
 */
int ws_stream_set_extensions(struct ws_stream *s, const char *value, char *err, size_t errsz);
const struct ws_deflate_params *ws_stream_deflate(const struct ws_stream *s);
/*
 * A connection whose beginning was not seen: frames start at pos, and a compression
 * context from before is unknown.
 */
void ws_stream_adopt(struct ws_stream *s, uint64_t pos);
/* Where an adopted stream asks for its compression history (NULL: nowhere). */
void ws_stream_set_history(struct ws_stream *s, ws_stream_history_cb cb, void *ctx);
/*
 * Whether an adopted stream still lacks its compression history: it was not recovered, and
 * a compressed message was seen or no data message yet.
 */
bool ws_stream_history_unknown(const struct ws_stream *s);
/* See ws_parser_feed() and ws_parser_gap().  0 or -ENOMEM. */
int ws_stream_feed(struct ws_stream *s, uint64_t pos, const void *data, size_t len);
int ws_stream_gap(struct ws_stream *s, uint64_t pos, uint64_t len);
/*
 * End of the stream: a frame cut by the end is reported truncated (ws_parser_finish()) and a
 * message still open is delivered as truncated.
 */
void ws_stream_finish(struct ws_stream *s);
const struct ws_stream_stats *ws_stream_stats(const struct ws_stream *s);
const struct ws_parser_stats *ws_stream_parser_stats(const struct ws_stream *s);
struct ws_parser *ws_stream_parser(struct ws_stream *s);

#endif /* WSAUDIT_WS_MESSAGE_H */

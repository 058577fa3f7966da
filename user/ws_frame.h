/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Streaming RFC 6455 frame parser for one direction of one connection.
 *
 * Bytes arrive as (stream position, bytes) pieces, possibly with holes: the kernel side
 * captures at most a configured number of bytes per write and says so, and a full ring
 * buffer loses whole records.  The parser keeps frame sync across holes by the declared
 * payload lengths: a hole inside a payload only truncates that frame; a hole that swallows a
 * frame header loses sync, which is detected (the next bytes cannot be a frame), counted, and
 * recovered from by scanning for a plausible header.  It never reports a frame it did not
 * see the header of.
 */
#ifndef WSAUDIT_WS_FRAME_H
#define WSAUDIT_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The opcodes RFC 6455 assigns, X(NAME, value, "name"): the one list behind the enum and
 * every table of their names (the parser's, the policy's, the metrics' label values).
 */
#define WS_OPCODES(X)                        \
	X(CONTINUATION, 0x0, "continuation") \
	X(TEXT, 0x1, "text")                 \
	X(BINARY, 0x2, "binary")             \
	X(CLOSE, 0x8, "close")               \
	X(PING, 0x9, "ping")                 \
	X(PONG, 0xa, "pong")

#define WS_OP_ENUM(name, value, str) WS_OP_##name = value,
enum ws_opcode { WS_OPCODES(WS_OP_ENUM) };
#undef WS_OP_ENUM

/* "text", "binary", ..., or "reserved" for the opcodes RFC 6455 leaves unassigned. */
const char *ws_opcode_name(unsigned int opcode);
/* Whether RFC 6455 assigns opcode (ws_opcode_name() is not "reserved"). */
bool ws_opcode_assigned(unsigned int opcode);
bool ws_opcode_is_control(unsigned int opcode);

enum ws_direction {
	WS_SERVER_TO_CLIENT, /* frames must not be masked */
	WS_CLIENT_TO_SERVER, /* frames must be masked */
};

struct ws_frame {
	uint64_t stream_off; /* position of the frame's first header byte */
	uint64_t payload_len; /* as declared in the header */
	uint64_t captured_len; /* payload bytes that were seen (<= payload_len) */
	uint8_t opcode;
	bool fin;
	bool rsv1, rsv2, rsv3;
	bool masked;
	bool truncated; /* captured_len < payload_len: part of the payload fell in a hole */
	uint8_t header_len;
	uint8_t mask_key[4];
	/*
	 * The payload bytes that were kept, unmasked: the first min(captured, keep limit)
	 * bytes, contiguous only when there was no hole before them (payload_gap false).
	 * Valid only during the callback.  NULL when nothing was kept.  Keeping stops at the
	 * first hole, so the kept bytes are always a contiguous prefix of the payload and
	 * payload_gap is never set by this parser (a hole shows as truncated instead).
	 * Control frames keep their whole payload (at most 125 bytes) whatever the limit,
	 * since close codes are needed.  When the payload is contiguous in one feed and not
	 * masked, payload points into the fed buffer (no copy).
	 */
	const uint8_t *payload;
	size_t payload_kept;
	bool payload_gap; /* a hole lies inside the kept prefix: do not interpret payload */
	/* Close frames: code and reason, validated (RFC 6455 7.4). */
	int close_code; /* -1: no code (empty close payload), 0: not a close frame */
	bool close_valid; /* code is one an endpoint may send and the reason is UTF-8 */
	const char *close_reason; /* not NUL-terminated; points into payload */
	size_t close_reason_len;
	/*
	 * A protocol violation that still left the frame readable (its length is known), e.g.
	 * a continuation with no message open; WS_ERR_NONE otherwise.  Violations that make
	 * the header meaningless (reserved opcode, RSV2/RSV3, 64-bit length with the top bit
	 * set) are not frames at all: they are counted as a loss of sync.
	 */
	int error;
	/* First frame after sync was lost and found again: frames may be missing before it. */
	bool resynced;
};

enum ws_parse_error {
	WS_ERR_NONE = 0,
	WS_ERR_RESERVED_OPCODE,
	WS_ERR_CONTROL_TOO_LONG, /* control frame payload > 125 */
	WS_ERR_CONTROL_FRAGMENTED, /* control frame without FIN */
	WS_ERR_BAD_LENGTH, /* non-minimal length encoding or MSB set in 64-bit length */
	WS_ERR_MASK_MISMATCH, /* masked server frame or unmasked client frame */
	WS_ERR_UNEXPECTED_CONTINUATION, /* continuation with no message in progress */
	WS_ERR_EXPECTED_CONTINUATION, /* new data frame while a fragmented one is open */
	WS_ERR_RSV_BITS, /* RSV set without a negotiated extension */
	WS_ERR__COUNT,
};

const char *ws_parse_error_name(enum ws_parse_error err);

/* A close code an endpoint may send (RFC 6455 7.4.1/7.4.2 and the IANA registry). */
bool ws_close_code_valid(int code);

struct ws_parser_stats {
	uint64_t frames;
	uint64_t bytes; /* bytes fed */
	uint64_t gap_bytes; /* bytes reported as holes or implied by positions */
	uint64_t truncated_frames;
	uint64_t desyncs; /* times sync was lost */
	uint64_t resyncs; /* times it was found again */
	uint64_t skipped_bytes; /* bytes discarded while out of sync */
	uint64_t errors[WS_ERR__COUNT];
};

struct ws_parser_opts {
	enum ws_direction direction;
	/* RSV1 is legal (permessage-deflate negotiated). */
	bool allow_rsv1;
	/* Payload bytes kept per frame for the callback; 0 keeps none (parse-only). */
	size_t keep_payload;
};

typedef void (*ws_frame_cb)(void *ctx, const struct ws_frame *frame);

struct ws_parser;

/* NULL and errno on failure. */
struct ws_parser *ws_parser_new(const struct ws_parser_opts *opts, ws_frame_cb cb, void *ctx);
void ws_parser_free(struct ws_parser *p);

/*
 * Feeds bytes that start at stream position pos.  A pos past the expected one is an implied
 * hole; bytes before the expected position (already seen) are ignored.  Every frame that
 * completes is passed to the callback before this returns.  Returns 0 or -errno (ENOMEM).
 */
int ws_parser_feed(struct ws_parser *p, uint64_t pos, const void *data, size_t len);
/*
 * End of the stream: a frame whose header was seen but whose payload did not all arrive is
 * reported, truncated; the bytes of a partial header, or of a frame found by scanning that
 * was never confirmed, are counted as skipped.
 */
void ws_parser_finish(struct ws_parser *p);
/* Declares [pos, pos + len) lost. */
int ws_parser_gap(struct ws_parser *p, uint64_t pos, uint64_t len);
/*
 * Positions: the parser starts expecting position 0.  ws_parser_set_pos() moves the
 * expectation without counting a hole (a stream whose first bytes are an HTTP head, or a
 * connection adopted mid-stream: call it before the first feed).
 */
void ws_parser_set_pos(struct ws_parser *p, uint64_t pos);
/* The next stream position the parser expects. */
uint64_t ws_parser_pos(const struct ws_parser *p);
/* True while out of sync (scanning for a header). */
bool ws_parser_desynced(const struct ws_parser *p);
/* The allow_rsv1 setting can change once the handshake has been seen. */
void ws_parser_set_allow_rsv1(struct ws_parser *p, bool allow);
const struct ws_parser_stats *ws_parser_stats(const struct ws_parser *p);

/*
 * Classifies the start of a stream whose beginning was not seen (a connection that was open
 * before tracing started): true when data holds one or more complete, valid frames of the
 * given direction back to back with nothing left over.
 */
bool ws_looks_like_frames(const void *data, size_t len, enum ws_direction dir);
/*
 * The same for the first len bytes of a write of write_len (a large write's first record):
 * every header strict, every frame ends inside the write, and either the bytes are the
 * whole write and end with a frame, or at least two frames are complete in them.
 */
bool ws_write_looks_like_frames(const void *data, size_t len, uint64_t write_len,
				enum ws_direction dir);

#endif /* WSAUDIT_WS_FRAME_H */

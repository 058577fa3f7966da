/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The connection table: turns the kernel's records (new connection, data chunks, close,
 * process exit) into WebSocket connections and their outbound frames.  It recognises the
 * upgrade handshake, adopts connections that were open before tracing began once their
 * writes parse as server frames, parses each connection's server-to-client stream, and ties
 * each frame to the syscall that wrote its first byte.  Pure: the kernel is reached only
 * through the verdict callback, so it can be driven by tests.
 */
#ifndef WSAUDIT_CONNTRACK_H
#define WSAUDIT_CONNTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsaudit/events.h"
#include "ws_frame.h"
#include "ws_message.h"

struct http1_message;
struct attrib_stack;
struct records;

#define CT_USER_MAX 256

enum ct_conn_state {
	CT_UNKNOWN, /* nothing recognised yet */
	CT_HANDSHAKE, /* upgrade request seen (or response under way) */
	CT_WEBSOCKET,
	CT_IGNORED, /* not WebSocket */
	/*
	 * Its writes are TLS records: the socket carries ciphertext.  What it says is followed
	 * through the probes on the process's libssl, on a connection of its own (tls) that
	 * this one is linked to, or not at all (then it is skipped, with the reason).
	 */
	CT_TLS,
};

/* Why a connection is not followed (a conn_skipped record, counted by reason). */
#define CT_SKIP_REASONS(X)                                                                      \
	X(CT_SKIP_TLS, "tls") /* TLS, and no probe on its process's TLS library */              \
	X(CT_SKIP_STATIC_SSL, "static_ssl") /* TLS by an OpenSSL linked into a binary */        \
	X(CT_SKIP_TLS_UNLINKED, "tls_unlinked") /* TLS, probes set, no plaintext linked */      \
	X(CT_SKIP_NOT_WEBSOCKET, "not_websocket") /* writes that are neither HTTP nor frames */ \
	/* the kernel saw the upgrade in a lost record and no write started with frames */      \
	X(CT_SKIP_RECORDS_LOST, "records_lost")                                                 \
	X(CT_SKIP_NOT_UPGRADED, "http_not_upgraded") /* HTTP answered other than 101 */         \
	X(CT_SKIP_BAD_RESPONSE, "bad_response") /* an HTTP response that does not parse */      \
	X(CT_SKIP_NOT_HTTP, "not_http") /* a request answered by something other than HTTP */   \
	X(CT_SKIP_OVER_LIMIT, "over_limit") /* the connection table is full */

#define CT_SKIP_ENUM(name, str) name,
enum ct_skip_reason { CT_SKIP_NONE = 0, CT_SKIP_REASONS(CT_SKIP_ENUM) CT_SKIP__COUNT };
#undef CT_SKIP_ENUM

/* The reason's name in records and metrics; NULL for CT_SKIP_NONE. */
const char *ct_skip_name(enum ct_skip_reason r);

struct ct_conn {
	struct conn_id id;
	char id_str[40];
	char local[64]; /* "ip:port", IPv6 in brackets */
	char peer[64];
	uint32_t tgid;
	char comm[16];
	enum ct_conn_state state;
	bool adopted; /* open before tracing began: no handshake seen */
	/*
	 * The plaintext of a TLS connection, read by the probes on libssl (conn.id is not a
	 * socket's: see TLS_CONN_INO); local and peer are its socket's once it is linked.
	 */
	bool tls;
	/*
	 * A TLS connection: whether its socket is known ("linked"), not yet ("pending"), or two
	 * sockets claimed it ("conflict"); NULL for a connection that is not TLS.
	 */
	const char *tls_link;
	/* Why it is not followed (a conn_skipped record was made), or CT_SKIP_NONE. */
	enum ct_skip_reason skipped;
	/* Adopted, and its compression history is not (yet) known: see ws_stream_history_unknown(). */
	bool history_unknown;
	uint64_t frames;
	/* Bytes of its outbound stream not captured: over the cap, lost records, zero-copy. */
	uint64_t gap_bytes;
	/*
	 * When the connection has no user although its handshake may name one, why, as a short
	 * static name: user_unknown when the request head was not seen whole ("head_too_large",
	 * "head_gap", "head_not_captured", ...) or, adopted, its user could not be recovered
	 * ("adopted", set by the conn_open sink); user_ambiguous when it names more than one
	 * ("request_split", "bytes_after_request", "duplicate_header", ...).  At most one is set.
	 */
	const char *user_unknown;
	const char *user_ambiguous;
	/* The user the handshake names (set by the conn_open sink), redacted for display. */
	bool has_user;
	/*
	 * Where the request the user was read from came from: "handshake" (seen), or
	 * "process_memory" (adopted: read back from the server's connection object); NULL when
	 * no request was read.
	 */
	const char *identity_from;
	char user[CT_USER_MAX + 1];
	char user_shown[CT_USER_MAX + 1];
	/*
	 * The server sent a close frame (its code: -1 none, else as sent); frames after it are
	 * never delivered by a client.  A connection that ends without one was closed abruptly.
	 */
	bool close_sent;
	int close_code;
	/* Frames that did not leave the process (failed or partial writes), at its end. */
	uint64_t lost_frames;
	/*
	 * At its end by close(2): the stack of the thread that closed its last fd (a Python
	 * process's; NULL when none came), valid during the conn_close callback.
	 */
	const struct attrib_stack *closer;
	/* Upgrade request (raw head, NUL-terminated) and response fields, when seen. */
	char *request_head;
	/* The 101 response's head as sent (NUL-terminated), when seen whole. */
	char *response_head;
	/* Stream position of its first WebSocket byte (frames' stream_off count from it). */
	uint64_t ws_base;
	char *subprotocol;
	char *extensions;
	/* internal */
	struct ct_private *priv;
};

/* What a frame is attributed to: the syscall that wrote its first header byte. */
struct ct_frame {
	const struct ct_conn *conn;
	const struct ws_frame *frame;
	/* The message this frame completes (decoded when it was compressed), else NULL. */
	const struct ws_message *message;
	bool compressed;
	bool writer_known; /* false when that syscall's record was lost */
	uint64_t ts_ns; /* of the syscall, CLOCK_MONOTONIC */
	uint32_t pid, tid;
	char comm[16];
	uint8_t syscall; /* enum syscall_kind */
	/* Address of the frame's first byte in the writer's memory; 0 when unknown. */
	uint64_t user_addr;
	/* Stream position of the frame's first byte (bytes the server wrote before it). */
	uint64_t stream_pos;
	/* The writer's resolved Python stack; NULL when the write had no stack record. */
	const struct attrib_stack *stack;
	/*
	 * The write was not walked at its syscall (DATA_HANDED_OVER): the frame's stack is that
	 * of its buffer's hand-over to a transport (the token at user_addr).
	 */
	bool handed_over;
	/*
	 * The frame did not leave the process: a write failed or sent part of it and the
	 * connection ended before the rest went (lost_err: its errno, 0 for a partial write).
	 */
	bool lost;
	int lost_err;
	bool after_close; /* written after the connection's close frame */
};

struct ct_sink {
	/* The connection became WebSocket; the sink may fill its user fields. */
	void (*conn_open)(void *ctx, struct ct_conn *c, uint64_t ts_ns);
	void (*frame)(void *ctx, const struct ct_frame *f);
	/*
	 * Bytes of a WebSocket connection's server-to-client stream at stream position pos, as
	 * they left, before the frames they complete; data NULL: len bytes that left there were
	 * not captured (a cap, a fault, a zero-copy syscall).  Optional.
	 */
	void (*bytes)(void *ctx, const struct ct_conn *c, uint64_t pos, const uint8_t *data,
		      size_t len, uint64_t ts_ns);
	void (*conn_close)(void *ctx, const struct ct_conn *c, uint64_t ts_ns, const char *why);
	/*
	 * The connection's socket was sent to another process (SCM_RIGHTS, e->peer_pid): what
	 * that process writes on it is seen only if it is traced.  c is NULL when the connection
	 * is not in the table.
	 */
	void (*conn_passed)(void *ctx, const struct ct_conn *c, const struct evt_conn *e);
	/*
	 * Resolve a stack record (a reference the table keeps); NULL: none.  The table holds
	 * stacks as handles it never looks inside: with stack, stack_get takes another reference
	 * and stack_put gives one back.
	 */
	struct attrib_stack *(*stack)(void *ctx, const struct evt_stack *e);
	struct attrib_stack *(*stack_get)(struct attrib_stack *s);
	void (*stack_put)(struct attrib_stack *s);
	/*
	 * The compression history an adopted connection's message was compressed after (see
	 * ws_stream_history_cb), with the compressor that ended the message and its output
	 * count then (EVT_ZFLUSH; 0 when none came right before its write), and where its
	 * last frame's first byte was in the writer's memory (0: unknown); NULL: never looked
	 * for.
	 */
	int (*history)(void *ctx, const struct ct_conn *c, uint64_t strm, uint64_t total_out,
		       uint64_t user_addr, uint8_t opcode, const uint8_t *wire, size_t len,
		       const uint8_t **dict, size_t *dict_len);
	/*
	 * The connection will not be followed, for reason: said once per connection, with its
	 * process and peer.
	 */
	void (*conn_skipped)(void *ctx, const struct ct_conn *c, enum ct_skip_reason reason,
			     uint64_t ts_ns);
	/*
	 * The connection's writes are TLS records.  CT_SKIP_NONE when the process's TLS library
	 * is probed (its plaintext comes as a tls connection), else why it is not.  NULL: none.
	 */
	enum ct_skip_reason (*tls_seen)(void *ctx, const struct ct_conn *c);
	/* Tell the kernel side what an unclassified connection is (CONN_UNKNOWN: forget it). */
	int (*verdict)(void *ctx, const struct conn_id *id, enum conn_state state);
	void *ctx;
};

struct ct_stats {
	uint64_t conns_seen;
	uint64_t conns_websocket;
	uint64_t conns_adopted;
	uint64_t conns_ignored;
	uint64_t conns_open; /* WebSocket connections currently open */
	uint64_t frames;
	uint64_t truncated_frames;
	uint64_t gap_bytes; /* bytes of WebSocket streams that were not captured */
	uint64_t desyncs;
	uint64_t unknown_conn_records; /* data for a connection never announced (record lost) */
	uint64_t upgrades_lost; /* connections whose 101 only the kernel saw (record lost) */
	uint64_t bad_handshakes;
	uint64_t heads_given_up; /* request heads not kept whole (bound, gap, lost bytes) */
	uint64_t users_unknown; /* WebSocket connections whose user could not be read */
	uint64_t users_ambiguous; /* WebSocket connections whose request names several users */
	uint64_t malformed_records;
	uint64_t writer_unknown; /* frames whose writing syscall's record was lost */
	uint64_t conns_dropped_limit; /* connections not followed: table full */
	uint64_t conns_fd_passed; /* sockets handed to another process (SCM_RIGHTS) */
	uint64_t conns_skipped[CT_SKIP__COUNT]; /* connections not followed, by reason */
	uint64_t conns_tls; /* sockets whose writes are TLS records */
	uint64_t tls_conns; /* TLS connections followed through libssl (plaintext seen) */
	uint64_t tls_linked; /* of those, linked to their socket */
	uint64_t tls_unlinked; /* of those, closed without ever being linked */
	uint64_t tls_link_conflicts; /* links that named another socket than the first */
	uint64_t stacks_unmatched; /* stack records whose write never came (lost records) */
	uint64_t messages[WS_MSG__COUNT]; /* data messages by decoding status */
	uint64_t context_losses; /* times a compression context became untrusted */
	/* Adopted connections: history found, still unknown (open and closed), user unknown. */
	uint64_t adopted_history_recovered;
	uint64_t adopted_history_unknown;
	uint64_t adopted_user_unknown;
	uint64_t adopted_user_recovered; /* its request read back from the server's memory */
	uint64_t history_messages_tried; /* messages offered to the history source */
	uint64_t zflush_records; /* EVT_ZFLUSH records */
	uint64_t unsent_writes; /* writes that failed or sent part (DATA_UNSENT records) */
	uint64_t lost_frames; /* frames that never left: their writes failed, then the end */
	/* Unsent bytes still waiting for a retry when their connection was no longer followed. */
	uint64_t unsent_unresolved_bytes;
};

struct conntrack;

/* max_message: decoded bytes kept per message (0: the default of ws_stream). */
struct conntrack *conntrack_new(const struct ct_sink *sink, size_t max_message);
/* Ends every connection (conn_close with why) and frees the table. */
void conntrack_free(struct conntrack *ct, const char *why);

/*
 * The routes of the records it reads (user/records.h), malformed ones counted: a caller that
 * reads other kinds too copies them into its own table.
 */
const struct records *conntrack_routes(struct conntrack *ct);
/* One ring buffer record (records_dispatch()); -EINVAL for one not well formed (counted). */
int conntrack_record(struct conntrack *ct, const void *data, size_t size);
/* Every connection ends now (conn_close with why); the table and its totals stay. */
void conntrack_end_all(struct conntrack *ct, const char *why, uint64_t ts_ns);
/* A process exited: its connections end. */
void conntrack_forget_tgid(struct conntrack *ct, uint32_t tgid, uint64_t ts_ns);
const struct ct_stats *conntrack_stats(struct conntrack *ct);
/*
 * The stream position past the last byte the connection's socket was given: sent, or
 * refused by a write that failed or sent part.
 */
uint64_t conntrack_tx_end(const struct ct_conn *c);
/* Calls fn for every connection in the table. */
void conntrack_foreach(struct conntrack *ct, void (*fn)(void *ctx, const struct ct_conn *c),
		       void *ctx);
/*
 * Takes the message end (EVT_ZFLUSH) thread tid reported last, if no write took it yet: for a
 * hand-over to a transport that writes later.  true with *strm and *total_out.
 */
bool conntrack_zflush_take(struct conntrack *ct, uint32_t tid, uint64_t *strm, uint64_t *total_out);

#endif /* WSAUDIT_CONNTRACK_H */

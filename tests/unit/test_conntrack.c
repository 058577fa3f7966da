// SPDX-License-Identifier: GPL-2.0
/* The connection table driven by synthetic kernel records: handshakes, adoption, holes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conntrack.h"
#include "http1.h"

#define MAX_SEEN 64

struct seen_frame {
	uint8_t opcode;
	bool fin, truncated, writer_known;
	uint64_t payload_len, captured_len;
	uint32_t tid;
	uint64_t user_addr;
	int close_code;
	bool lost, after_close;
	int lost_err;
};

struct recorder {
	char head[1024]; /* request head and user state at conn_open */
	char user_state[40];
	struct seen_frame frames[MAX_SEEN];
	int nframes;
	int opens, closes;
	bool adopted;
	char close_why[32];
	bool close_sent;
	uint64_t lost_frames;
	int verdicts;
	enum conn_state last_verdict;
	int skips;
	enum ct_skip_reason last_skip;
	char skip_peer[64];
	enum ct_skip_reason tls_answer; /* what rec_tls_seen says */
};

static void rec_open(void *ctx, struct ct_conn *c, uint64_t ts)
{
	struct recorder *r = ctx;

	r->opens++;
	r->adopted = c->adopted;
	snprintf(r->head, sizeof(r->head), "%s", c->request_head ? c->request_head : "");
	snprintf(r->user_state, sizeof(r->user_state), "%s",
		 c->user_ambiguous ? c->user_ambiguous :
		 c->user_unknown   ? c->user_unknown :
				     "");
}

static void rec_close(void *ctx, const struct ct_conn *c, uint64_t ts, const char *why)
{
	struct recorder *r = ctx;

	r->closes++;
	strncpy(r->close_why, why, sizeof(r->close_why) - 1);
	r->close_sent = c->close_sent;
	r->lost_frames = c->lost_frames;
}

static void rec_frame(void *ctx, const struct ct_frame *f)
{
	struct recorder *r = ctx;
	struct seen_frame *s = &r->frames[r->nframes++];

	assert_true(r->nframes <= MAX_SEEN);
	s->opcode = f->frame->opcode;
	s->fin = f->frame->fin;
	s->truncated = f->frame->truncated;
	s->payload_len = f->frame->payload_len;
	s->captured_len = f->frame->captured_len;
	s->writer_known = f->writer_known;
	s->tid = f->tid;
	s->user_addr = f->user_addr;
	s->close_code = f->frame->close_code;
	s->lost = f->lost;
	s->lost_err = f->lost_err;
	s->after_close = f->after_close;
}

static int rec_verdict(void *ctx, const struct conn_id *id, enum conn_state state)
{
	struct recorder *r = ctx;

	r->verdicts++;
	r->last_verdict = state;
	return 0;
}

static void rec_skipped(void *ctx, const struct ct_conn *c, enum ct_skip_reason why, uint64_t ts)
{
	struct recorder *r = ctx;

	r->skips++;
	r->last_skip = why;
	snprintf(r->skip_peer, sizeof(r->skip_peer), "%s", c->peer);
}

static enum ct_skip_reason rec_tls_seen(void *ctx, const struct ct_conn *c)
{
	return ((struct recorder *)ctx)->tls_answer;
}

static struct conntrack *new_ct(struct recorder *r)
{
	struct ct_sink sink = {
		.conn_open = rec_open,
		.conn_close = rec_close,
		.frame = rec_frame,
		.conn_skipped = rec_skipped,
		.tls_seen = rec_tls_seen,
		.verdict = rec_verdict,
		.ctx = r,
	};

	memset(r, 0, sizeof(*r));
	r->tls_answer = CT_SKIP_TLS;
	return conntrack_new(&sink, 0);
}

static const struct conn_id CONN = { .ino = 4242, .gen = 7 };
/* The connection send_chunk() writes to, when set (a TLS connection's plaintext). */
static struct conn_id chunk_conn;

static void send_conn(struct conntrack *ct, uint16_t type)
{
	struct evt_conn e = {
		.hdr = { .type = type, .version = EVT_VERSION, .size = sizeof(e), .ts_ns = 1 },
		.conn = CONN,
		.family = 2,
		.sport = 8765,
		.dport = 40000,
		.tgid = 100,
	};

	e.saddr[0] = 127;
	e.saddr[3] = 1;
	e.daddr[0] = 127;
	e.daddr[3] = 1;
	assert_int_equal(conntrack_record(ct, &e, sizeof(e)), 0);
}

/* One chunk: bytes at stream position pos of a syscall covering [io_pos, io_pos + io_len). */
static void send_chunk(struct conntrack *ct, uint8_t dir, uint64_t io_pos, uint64_t io_len,
		       uint64_t pos, const void *data, uint32_t len, uint16_t flags, uint32_t tid)
{
	size_t size = sizeof(struct evt_data) + len;
	struct evt_data *e = calloc(1, size);

	assert_non_null(e);
	e->hdr.type = EVT_DATA;
	e->hdr.version = EVT_VERSION;
	e->hdr.size = size;
	e->hdr.ts_ns = 2;
	e->conn = chunk_conn.ino ? chunk_conn : CONN;
	e->stream_pos = pos;
	e->io_pos = io_pos;
	e->io_len = io_len;
	e->tgid = 100;
	e->tid = tid;
	e->len = len;
	e->user_ptr = 0x10000 + (pos - io_pos);
	e->dir = dir;
	e->flags = flags;
	memcpy(e + 1, data, len);
	assert_int_equal(conntrack_record(ct, e, size), 0);
	free(e);
}

static void send_write(struct conntrack *ct, uint64_t pos, const void *data, uint32_t len,
		       uint32_t tid)
{
	send_chunk(ct, DIR_TX, pos, len, pos, data, len, DATA_FIRST | DATA_LAST, tid);
}

/* A write given len bytes at io_pos that sent `sent` of them (err: its -errno, or 0). */
static void send_unsent(struct conntrack *ct, uint64_t io_pos, uint64_t sent, const void *data,
			uint32_t len, int err, uint32_t tid)
{
	size_t size = sizeof(struct evt_data) + len;
	struct evt_data *e = calloc(1, size);

	assert_non_null(e);
	e->hdr.type = EVT_DATA;
	e->hdr.version = EVT_VERSION;
	e->hdr.size = size;
	e->hdr.ts_ns = 3;
	e->conn = CONN;
	e->stream_pos = io_pos;
	e->io_pos = io_pos;
	e->io_len = sent;
	e->tgid = 100;
	e->tid = tid;
	e->len = len;
	e->user_ptr = 0x20000;
	e->dir = DIR_TX;
	e->flags = DATA_FIRST | DATA_LAST | DATA_UNSENT;
	e->err = err;
	memcpy(e + 1, data, len);
	assert_int_equal(conntrack_record(ct, e, size), 0);
	free(e);
}

static const char REQUEST[] =
	"GET /ws?token=abc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
	"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	"Sec-WebSocket-Version: 13\r\n\r\n";
static const char RESPONSE[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			       "Connection: Upgrade\r\n"
			       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
			       "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";

static void test_handshake_then_frames_in_same_write(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	uint8_t buf[512];
	size_t n = strlen(RESPONSE);

	send_conn(ct, EVT_CONN_NEW);
	send_chunk(ct, DIR_RX, 0, strlen(REQUEST), 0, REQUEST, strlen(REQUEST),
		   DATA_FIRST | DATA_LAST, 1);
	/* The 101 response followed by a text frame "Hi" and a ping in one write. */
	memcpy(buf, RESPONSE, n);
	memcpy(buf + n, "\x81\x02Hi\x89\x00", 6);
	send_write(ct, 0, buf, n + 6, 11);
	assert_int_equal(r.opens, 1);
	assert_false(r.adopted);
	assert_int_equal(r.nframes, 2);
	assert_int_equal(r.frames[0].opcode, WS_OP_TEXT);
	assert_int_equal(r.frames[0].payload_len, 2);
	assert_true(r.frames[0].writer_known);
	assert_int_equal(r.frames[0].tid, 11);
	/* The frame's first byte sits right after the head in the writer's buffer. */
	assert_int_equal(r.frames[0].user_addr, 0x10000 + n);
	assert_int_equal(r.frames[1].opcode, WS_OP_PING);
	send_conn(ct, EVT_CONN_CLOSE);
	assert_int_equal(r.closes, 1);
	assert_string_equal(r.close_why, "closed");
	assert_int_equal(conntrack_stats(ct)->frames, 2);
	conntrack_free(ct, "end");
}

static void test_response_split_across_writes(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	size_t n = strlen(RESPONSE);

	send_conn(ct, EVT_CONN_NEW);
	send_chunk(ct, DIR_RX, 0, strlen(REQUEST), 0, REQUEST, strlen(REQUEST),
		   DATA_FIRST | DATA_LAST, 1);
	/* "H", then the rest and a frame: followed, not ignored. */
	send_write(ct, 0, RESPONSE, 1, 11);
	assert_int_equal(r.verdicts, 0);
	send_write(ct, 1, RESPONSE + 1, n - 1, 11);
	assert_int_equal(r.opens, 1);
	send_write(ct, n, "\x81\x02Hi", 4, 11);
	assert_int_equal(r.nframes, 1);
	assert_int_equal(conntrack_stats(ct)->conns_ignored, 0);
	conntrack_free(ct, "end");
}

/* What the bytes sink (trace --write) is told: the response as sent, then every byte in order. */
struct bytes_seen {
	char response[512];
	uint64_t ws_base;
	uint8_t data[64];
	uint64_t pos[8], len[8];
	bool hole[8];
	int n;
};

static void bytes_open(void *ctx, struct ct_conn *c, uint64_t ts)
{
	struct bytes_seen *b = ctx;

	snprintf(b->response, sizeof(b->response), "%s", c->response_head ? c->response_head : "");
	b->ws_base = c->ws_base;
}

static void bytes_cb(void *ctx, const struct ct_conn *c, uint64_t pos, const uint8_t *data,
		     size_t len, uint64_t ts)
{
	struct bytes_seen *b = ctx;

	assert_true(b->n < 8);
	b->pos[b->n] = pos;
	b->len[b->n] = len;
	b->hole[b->n] = !data;
	if (data && pos - b->ws_base + len <= sizeof(b->data))
		memcpy(b->data + (pos - b->ws_base), data, len);
	b->n++;
}

static void test_bytes_sink_gets_response_and_stream(void **state)
{
	struct bytes_seen b = {};
	struct ct_sink sink = { .conn_open = bytes_open, .bytes = bytes_cb, .ctx = &b };
	struct conntrack *ct = conntrack_new(&sink, 0);
	size_t n = strlen(RESPONSE);
	uint8_t buf[512];

	send_conn(ct, EVT_CONN_NEW);
	send_chunk(ct, DIR_RX, 0, strlen(REQUEST), 0, REQUEST, strlen(REQUEST),
		   DATA_FIRST | DATA_LAST, 1);
	/* The response in two writes, its end and a frame sharing the second. */
	send_write(ct, 0, RESPONSE, 10, 11);
	memcpy(buf, RESPONSE + 10, n - 10);
	memcpy(buf + n - 10, "\x81\x02Hi", 4);
	send_write(ct, 10, buf, n - 10 + 4, 11);
	assert_string_equal(b.response, RESPONSE);
	assert_int_equal(b.ws_base, n);
	assert_int_equal(b.n, 1);
	assert_int_equal(b.pos[0], n);
	assert_int_equal(b.len[0], 4);
	assert_memory_equal(b.data, "\x81\x02Hi", 4);
	/* A write of 10 bytes of which 3 were captured: 3 bytes, then a hole of 7. */
	send_chunk(ct, DIR_TX, n + 4, 10, n + 4, "\x82\x08x", 3, DATA_FIRST | DATA_LAST, 11);
	assert_int_equal(b.n, 3);
	assert_false(b.hole[1]);
	assert_int_equal(b.pos[1], n + 4);
	assert_int_equal(b.len[1], 3);
	assert_true(b.hole[2]);
	assert_int_equal(b.pos[2], n + 7);
	assert_int_equal(b.len[2], 7);
	conntrack_free(ct, "end");
}

/* A zero-copy write (sendfile, splice): an empty record whose range is a hole, said per conn. */
static void test_zero_copy_write_is_a_gap(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	size_t n = strlen(RESPONSE);
	const struct ct_stats *st;

	send_conn(ct, EVT_CONN_NEW);
	send_chunk(ct, DIR_RX, 0, strlen(REQUEST), 0, REQUEST, strlen(REQUEST),
		   DATA_FIRST | DATA_LAST, 1);
	send_write(ct, 0, RESPONSE, n, 11);
	send_write(ct, n, "\x81\x02Hi", 4, 11);
	send_chunk(ct, DIR_TX, n + 4, 40, n + 4, "", 0, DATA_FIRST | DATA_LAST, 11);
	st = conntrack_stats(ct);
	assert_int_equal(r.nframes, 1);
	assert_int_equal(st->gap_bytes, 40);
	assert_int_equal(conntrack_stats(ct)->conns_ignored, 0);
	conntrack_free(ct, "end");
}

/* Reads of the request, one record each, then the 101: the user state at conn_open. */
static void handshake_in_reads(struct recorder *r, const char *const *reads, bool lose_one)
{
	struct conntrack *ct = new_ct(r);
	uint64_t pos = 0;

	send_conn(ct, EVT_CONN_NEW);
	for (int i = 0; reads[i]; i++) {
		size_t n = strlen(reads[i]);

		if (!(lose_one && i == 1))
			send_chunk(ct, DIR_RX, pos, n, pos, reads[i], n, DATA_FIRST | DATA_LAST, 1);
		pos += n;
	}
	send_write(ct, 0, RESPONSE, strlen(RESPONSE), 11);
	assert_int_equal(r->opens, 1);
	conntrack_free(ct, "end");
}

static void test_request_head_across_reads(void **state)
{
	static const char *const split[] = { "GET /ws HTTP/1.1\r\nHost: x\r\nAuthor",
					     "ization: Bearer a\r\n\r", "\n", NULL };
	static const char *const smuggle[] = {
		"GET /ws HTTP/1.1\r\nAuthorization: Bearer m\r\n"
		"X-Junk: ",
		"GET /ws HTTP/1.1\r\nAuthorization: Bearer v\r\n\r\n", NULL
	};
	static const char *const lines[] = { "GET /ws HTTP/1.1\r\n", "GET: /x HTTP/1.1\r\n\r\n",
					     NULL };
	static const char *const pipelined[] = { "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n",
						 NULL };
	struct recorder r;

	/* The whole head, from three reads, as the server reads it. */
	handshake_in_reads(&r, split, false);
	assert_string_equal(r.head,
			    "GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\n\r\n");
	assert_string_equal(r.user_state, "");
	/* A read that starts mid-line with a request line of its own. */
	handshake_in_reads(&r, smuggle, false);
	assert_string_equal(r.user_state, "request_split");
	/* A read that starts a line is only the next header. */
	handshake_in_reads(&r, lines, false);
	assert_string_equal(r.user_state, "");
	/* A second request behind the first. */
	handshake_in_reads(&r, pipelined, false);
	assert_string_equal(r.user_state, "bytes_after_request");
	/* A lost read: the head is not what the server read. */
	handshake_in_reads(&r, split, true);
	assert_string_equal(r.user_state, "head_gap");
	assert_string_equal(r.head, "");
}

static void test_request_head_over_bound(void **state)
{
	static char big[HTTP1_MAX_HEAD + 64];
	static const char *reads[3];
	struct recorder r;

	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	reads[0] = big;
	reads[1] = "\r\n\r\n";
	handshake_in_reads(&r, reads, false);
	assert_string_equal(r.user_state, "head_too_large");
	/* No request seen at all (read before tracing began). */
	reads[0] = NULL;
	handshake_in_reads(&r, reads, false);
	assert_string_equal(r.user_state, "head_not_seen");
}

static void test_frame_split_across_writes_is_attributed_to_first(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	size_t n = strlen(RESPONSE);
	uint8_t frame[6 + 300];

	send_conn(ct, EVT_CONN_NEW);
	send_write(ct, 0, RESPONSE, n, 1);
	frame[0] = 0x82;
	frame[1] = 126;
	frame[2] = 300 >> 8;
	frame[3] = 300 & 0xff;
	memset(frame + 4, 0xab, 300);
	send_write(ct, n, frame, 100, 21);
	assert_int_equal(r.nframes, 0);
	send_write(ct, n + 100, frame + 100, 204, 22);
	assert_int_equal(r.nframes, 1);
	assert_int_equal(r.frames[0].payload_len, 300);
	assert_false(r.frames[0].truncated);
	assert_int_equal(r.frames[0].tid, 21);
	conntrack_free(ct, "end");
	assert_int_equal(r.closes, 1);
	assert_string_equal(r.close_why, "end");
}

static void test_capped_write_truncates_frame_and_keeps_sync(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	size_t n = strlen(RESPONSE);
	uint8_t big[4 + 1000];

	send_conn(ct, EVT_CONN_NEW);
	send_write(ct, 0, RESPONSE, n, 1);
	big[0] = 0x81;
	big[1] = 126;
	big[2] = 1000 >> 8;
	big[3] = 1000 & 0xff;
	memset(big + 4, 'x', 1000);
	/* Only 500 of the 1004 bytes were captured (the cap): the rest is a known hole. */
	send_chunk(ct, DIR_TX, n, sizeof(big), n, big, 500, DATA_FIRST | DATA_LAST, 5);
	assert_int_equal(r.nframes, 1);
	assert_true(r.frames[0].truncated);
	assert_int_equal(r.frames[0].payload_len, 1000);
	assert_int_equal(r.frames[0].captured_len, 496);
	/* The next write is still parsed. */
	send_write(ct, n + sizeof(big), "\x88\x02\x03\xf3", 4, 5);
	assert_int_equal(r.nframes, 2);
	assert_int_equal(r.frames[1].opcode, WS_OP_CLOSE);
	assert_int_equal(r.frames[1].close_code, 1011);
	assert_int_equal(conntrack_stats(ct)->desyncs, 0);
	conntrack_free(ct, "end");
}

static void test_open_connection_is_adopted(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);

	/* No announcement and no handshake: a connection open before tracing began. */
	send_write(ct, 0,
		   "\x81\x03"
		   "abc\x81\x01z",
		   8, 3);
	assert_int_equal(r.opens, 1);
	assert_true(r.adopted);
	assert_int_equal(r.verdicts, 1);
	assert_int_equal(r.last_verdict, CONN_WS);
	assert_int_equal(r.nframes, 2);
	assert_int_equal(conntrack_stats(ct)->conns_adopted, 1);
	assert_int_equal(conntrack_stats(ct)->unknown_conn_records, 1);
	conntrack_free(ct, "end");
}

/* Ten text frames of 30 bytes: a flush of a burst. */
static void burst_frames(uint8_t *buf)
{
	for (int i = 0; i < 10; i++) {
		buf[32 * i] = 0x81;
		buf[32 * i + 1] = 30;
		memset(buf + 32 * i + 2, 'a' + i, 30);
	}
}

static void test_upgrade_in_lost_record_is_adopted(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	uint64_t at = strlen(RESPONSE);
	uint8_t buf[320];

	send_conn(ct, EVT_CONN_NEW);
	send_chunk(ct, DIR_RX, 0, strlen(REQUEST), 0, REQUEST, strlen(REQUEST),
		   DATA_FIRST | DATA_LAST, 1);
	/*
	 * The 101 (at 0) went into a lost record; the kernel matched it, so the next write's
	 * records are not DATA_UNCLASSIFIED.  A large write in two records: the first is judged.
	 */
	burst_frames(buf);
	send_chunk(ct, DIR_TX, at, 320, at, buf, 100, DATA_FIRST, 11);
	send_chunk(ct, DIR_TX, at, 320, at + 100, buf + 100, 220, DATA_LAST, 11);
	assert_int_equal(r.skips, 0);
	assert_int_equal(r.opens, 1);
	assert_true(r.adopted);
	/* The kernel knows it for a WebSocket already: no verdict to give. */
	assert_int_equal(r.verdicts, 0);
	assert_string_equal(r.head, REQUEST);
	assert_int_equal(r.nframes, 10);
	assert_int_equal(r.frames[9].payload_len, 30);
	assert_int_equal(conntrack_stats(ct)->upgrades_lost, 1);
	conntrack_free(ct, "end");
}

static void test_upgrade_lost_and_no_frames_is_records_lost(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	uint64_t at = strlen(RESPONSE);

	send_conn(ct, EVT_CONN_NEW);
	send_chunk(ct, DIR_RX, 0, strlen(REQUEST), 0, REQUEST, strlen(REQUEST),
		   DATA_FIRST | DATA_LAST, 1);
	/* Writes that start inside frames (the rest of a partial send): never a boundary. */
	for (int i = 0; i < 16; i++, at += 8)
		send_write(ct, at, "zzzzzzzz", 8, 11);
	assert_int_equal(r.opens, 0);
	assert_int_equal(r.skips, 1);
	assert_int_equal(r.last_skip, CT_SKIP_RECORDS_LOST);
	assert_string_equal(ct_skip_name(CT_SKIP_RECORDS_LOST), "records_lost");
	conntrack_free(ct, "end");
}

static void test_other_protocols_are_ignored(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

	send_conn(ct, EVT_CONN_NEW);
	send_write(ct, 0, resp, strlen(resp), 1);
	assert_int_equal(r.opens, 0);
	assert_int_equal(r.last_verdict, CONN_IGNORE);
	assert_int_equal(conntrack_stats(ct)->conns_ignored, 1);
	/* Said once, with its peer, and counted by reason. */
	assert_int_equal(r.skips, 1);
	assert_int_equal(r.last_skip, CT_SKIP_NOT_UPGRADED);
	assert_string_equal(r.skip_peer, "127.0.0.1:40000");
	send_write(ct, strlen(resp), resp, strlen(resp), 1);
	assert_int_equal(r.skips, 1);
	assert_int_equal(conntrack_stats(ct)->conns_skipped[CT_SKIP_NOT_UPGRADED], 1);
	conntrack_free(ct, "end");
}

/* A ServerHello (TLS handshake record, version 3.3). */
static const uint8_t SERVER_HELLO[] = { 0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00 };

static void test_tls_socket_not_probed_is_skipped_at_once(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);

	send_conn(ct, EVT_CONN_NEW);
	send_write(ct, 0, SERVER_HELLO, sizeof(SERVER_HELLO), 1);
	assert_int_equal(r.last_verdict, CONN_IGNORE);
	assert_int_equal(r.skips, 1);
	assert_int_equal(r.last_skip, CT_SKIP_TLS);
	assert_int_equal(conntrack_stats(ct)->conns_tls, 1);
	assert_int_equal(conntrack_stats(ct)->conns_skipped[CT_SKIP_TLS], 1);
	/* Its close says nothing more. */
	send_conn(ct, EVT_CONN_CLOSE);
	assert_int_equal(r.skips, 1);
	/* Open before the trace: its first write seen is application data. */
	send_conn(ct, EVT_CONN_NEW);
	send_write(ct, 0, (const uint8_t[]){ 0x17, 0x03, 0x03, 0x00, 0x01, 0xaa }, 6, 1);
	assert_int_equal(r.skips, 2);
	assert_int_equal(r.last_skip, CT_SKIP_TLS);
	conntrack_free(ct, "end");
}

static const struct conn_id TLS_CONN = { .ino = TLS_CONN_INO | 1, .gen = 9 };

static void send_tls_conn(struct conntrack *ct, uint16_t type)
{
	struct evt_conn e = {
		.hdr = { .type = type, .version = EVT_VERSION, .size = sizeof(e), .ts_ns = 1 },
		.conn = TLS_CONN,
		.tgid = 100,
	};

	assert_int_equal(conntrack_record(ct, &e, sizeof(e)), 0);
}

static void send_link(struct conntrack *ct, const struct conn_id *sock)
{
	struct evt_tls_link e = {
		.hdr = { .type = EVT_TLS_LINK, .version = EVT_VERSION, .size = sizeof(e) },
		.tls = TLS_CONN,
		.sock = *sock,
		.tgid = 100,
	};

	assert_int_equal(conntrack_record(ct, &e, sizeof(e)), 0);
}

/* Peers seen by frames, in order. */
static char frame_peers[MAX_SEEN][64];

static void rec_frame_peer(void *ctx, const struct ct_frame *f)
{
	struct recorder *r = ctx;

	snprintf(frame_peers[r->nframes], sizeof(frame_peers[0]), "%s", f->conn->peer);
	rec_frame(ctx, f);
}

static void test_tls_plaintext_followed_and_linked_to_its_socket(void **state)
{
	struct recorder r;
	struct ct_sink sink = {
		.conn_open = rec_open,
		.conn_close = rec_close,
		.frame = rec_frame_peer,
		.conn_skipped = rec_skipped,
		.tls_seen = rec_tls_seen,
		.verdict = rec_verdict,
		.ctx = &r,
	};
	struct conntrack *ct;
	const uint8_t text[] = { 0x81, 0x02, 'h', 'i' };

	memset(&r, 0, sizeof(r));
	r.tls_answer = CT_SKIP_NONE;
	ct = conntrack_new(&sink, 0);
	/* The socket: its ServerHello, then its ciphertext is not looked at. */
	send_conn(ct, EVT_CONN_NEW);
	send_write(ct, 0, SERVER_HELLO, sizeof(SERVER_HELLO), 1);
	/* The plaintext: request read, 101 written, then a frame before the link, one after. */
	send_tls_conn(ct, EVT_CONN_NEW);
	chunk_conn = TLS_CONN;
	send_chunk(ct, DIR_RX, 0, strlen(REQUEST), 0, REQUEST, strlen(REQUEST),
		   DATA_FIRST | DATA_LAST, 1);
	send_write(ct, 0, RESPONSE, strlen(RESPONSE), 1);
	assert_int_equal(r.opens, 1);
	/* The 101 of a TLS connection is told to the kernel (no byte match in the plaintext). */
	assert_int_equal(r.last_verdict, CONN_WS);
	send_write(ct, strlen(RESPONSE), text, sizeof(text), 1);
	send_link(ct, &CONN);
	send_write(ct, strlen(RESPONSE) + sizeof(text), text, sizeof(text), 1);
	chunk_conn = (struct conn_id){ 0 };
	assert_int_equal(r.nframes, 2);
	assert_string_equal(frame_peers[0], "unknown");
	assert_string_equal(frame_peers[1], "127.0.0.1:40000");
	assert_int_equal(conntrack_stats(ct)->tls_conns, 1);
	assert_int_equal(conntrack_stats(ct)->tls_linked, 1);
	/* A second socket for it is a conflict; the first one stays. */
	send_link(ct, &(struct conn_id){ .ino = 5555, .gen = 3 });
	assert_int_equal(conntrack_stats(ct)->tls_link_conflicts, 1);
	/* Its socket's close ends it, and nothing was skipped. */
	send_conn(ct, EVT_CONN_CLOSE);
	assert_int_equal(r.closes, 1);
	assert_int_equal(r.skips, 0);
	assert_int_equal(conntrack_stats(ct)->desyncs, 0);
	assert_int_equal(conntrack_stats(ct)->tls_unlinked, 0);
	conntrack_free(ct, "end");
}

static void test_tls_socket_probed_but_never_linked_is_skipped_at_close(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);

	r.tls_answer = CT_SKIP_NONE;
	send_conn(ct, EVT_CONN_NEW);
	send_write(ct, 0, SERVER_HELLO, sizeof(SERVER_HELLO), 1);
	assert_int_equal(r.skips, 0);
	assert_int_equal(r.opens, 0);
	send_conn(ct, EVT_CONN_CLOSE);
	assert_int_equal(r.skips, 1);
	assert_int_equal(r.last_skip, CT_SKIP_TLS_UNLINKED);
	conntrack_free(ct, "end");
}

static void test_binary_protocol_ignored_after_tries(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	/* A Postgres-like message: type byte, length; cannot be a server frame sequence. */
	const uint8_t msg[] = { 'Q', 0, 0, 0, 9, 's', 'e', 'l', 0 };
	uint64_t pos = 0;

	send_conn(ct, EVT_CONN_NEW);
	for (int i = 0; i < 20 && !r.verdicts; i++) {
		send_write(ct, pos, msg, sizeof(msg), 1);
		pos += sizeof(msg);
	}
	assert_int_equal(r.opens, 0);
	assert_int_equal(r.last_verdict, CONN_IGNORE);
	conntrack_free(ct, "end");
}

static void test_malformed_records_counted(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	struct evt_hdr h = { .type = EVT_DATA, .version = EVT_VERSION, .size = 10000 };
	struct evt_hdr v = { .type = EVT_DATA, .version = 99, .size = sizeof(v) };

	assert_int_equal(conntrack_record(ct, &h, sizeof(h)), -22);
	assert_int_equal(conntrack_record(ct, &v, sizeof(v)), -22);
	assert_int_equal(conntrack_record(ct, &h, 3), -22);
	assert_int_equal(conntrack_stats(ct)->malformed_records, 3);
	conntrack_free(ct, "end");
}

/*
 * A writev of the 101 response and three frames, one iovec each, gathered into one record:
 * the segment map sent before it gives each frame the address of its own buffer.
 */
static void test_gathered_write_maps_each_frame_to_its_segment(void **state)
{
	static const uint8_t f1[] = { 0x81, 0x02, 'h', 'i' };
	static const uint8_t f2[] = { 0x82, 0x03, 1, 2, 3 };
	static const uint8_t f3[] = { 0x81, 0x01, 'x' };
	size_t rlen = strlen(RESPONSE), n = rlen + sizeof(f1) + sizeof(f2) + sizeof(f3);
	uint64_t req_len = strlen(REQUEST), ptrs[4] = { 0x7000, 0x9100, 0xa200, 0xb300 };
	uint64_t lens[4] = { rlen, sizeof(f1), sizeof(f2), sizeof(f3) }, pos = 0;
	struct evt_segs segs = {
		.hdr = { .type = EVT_SEGS, .version = EVT_VERSION, .size = EVT_SEGS_SIZE(4) },
		.conn = CONN,
		.tgid = 100,
		.n = 4,
	};
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	uint8_t *data = malloc(n);

	assert_non_null(data);
	memcpy(data, RESPONSE, rlen);
	memcpy(data + rlen, f1, sizeof(f1));
	memcpy(data + rlen + sizeof(f1), f2, sizeof(f2));
	memcpy(data + rlen + sizeof(f1) + sizeof(f2), f3, sizeof(f3));
	send_conn(ct, EVT_CONN_NEW);
	send_chunk(ct, DIR_RX, 0, req_len, 0, REQUEST, req_len, DATA_FIRST | DATA_LAST, 1);
	for (int i = 0; i < 4; i++) {
		segs.seg[i].stream_pos = pos;
		segs.seg[i].ptr = ptrs[i];
		segs.seg[i].len = lens[i];
		pos += lens[i];
	}
	assert_int_equal(conntrack_record(ct, &segs, EVT_SEGS_SIZE(4)), 0);
	send_chunk(ct, DIR_TX, 0, n, 0, data, n, DATA_FIRST | DATA_LAST | DATA_GATHERED, 1);
	assert_int_equal(r.nframes, 3);
	assert_int_equal(r.frames[0].user_addr, 0x9100);
	assert_int_equal(r.frames[1].user_addr, 0xa200);
	assert_int_equal(r.frames[2].user_addr, 0xb300);
	assert_int_equal(conntrack_stats(ct)->malformed_records, 0);
	free(data);
	conntrack_free(ct, "end");
}

static void test_malformed_segment_maps_counted(void **state)
{
	struct evt_segs segs = {
		.hdr = { .type = EVT_SEGS, .version = EVT_VERSION, .size = EVT_SEGS_SIZE(2) },
		.conn = CONN,
		.n = 3,
	};
	struct recorder r;
	struct conntrack *ct = new_ct(&r);

	/* More entries than the record holds, then more than a record can hold. */
	assert_int_equal(conntrack_record(ct, &segs, EVT_SEGS_SIZE(2)), -22);
	segs.n = SEGS_PER_CALL + 1;
	segs.hdr.size = sizeof(segs);
	assert_int_equal(conntrack_record(ct, &segs, sizeof(segs)), -22);
	assert_int_equal(conntrack_stats(ct)->malformed_records, 2);
	conntrack_free(ct, "end");
}

static void test_process_exit_ends_connections(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);

	send_conn(ct, EVT_CONN_NEW);
	send_write(ct, 0, RESPONSE, strlen(RESPONSE), 1);
	assert_int_equal(r.opens, 1);
	conntrack_forget_tgid(ct, 100, 5);
	assert_int_equal(r.closes, 1);
	assert_string_equal(r.close_why, "process_exit");
	assert_int_equal(conntrack_stats(ct)->conns_open, 0);
	conntrack_free(ct, "end");
	assert_int_equal(r.closes, 1);
}

static size_t open_websocket(struct conntrack *ct)
{
	size_t n = strlen(RESPONSE);

	send_conn(ct, EVT_CONN_NEW);
	send_chunk(ct, DIR_RX, 0, strlen(REQUEST), 0, REQUEST, strlen(REQUEST),
		   DATA_FIRST | DATA_LAST, 1);
	send_write(ct, 0, RESPONSE, n, 11);
	return n;
}

/*
 * An agent that keeps writing after EPIPE: each failed write's frame is lost, with its own
 * writer, at the connection's end; what was sent before is not.
 */
static void test_failed_writes_are_lost_at_close(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	size_t pos = open_websocket(ct);

	send_write(ct, pos, "\x81\x02Hi", 4, 11);
	pos += 4;
	send_unsent(ct, pos, 0, "\x81\x03one", 5, -EPIPE, 12);
	send_unsent(ct, pos, 0, "\x81\x03two", 5, -EPIPE, 13);
	/* The same bytes again: a retry, not a third frame. */
	send_unsent(ct, pos, 0, "\x81\x03one", 5, -ECONNRESET, 14);
	assert_int_equal(r.nframes, 1);
	send_conn(ct, EVT_CONN_CLOSE);
	assert_int_equal(r.nframes, 3);
	assert_false(r.frames[0].lost);
	assert_true(r.frames[1].lost);
	assert_true(r.frames[2].lost);
	assert_int_equal(r.frames[1].payload_len, 3);
	assert_int_equal(r.frames[2].tid, 13);
	assert_int_equal(r.frames[2].lost_err, EPIPE);
	assert_int_equal(r.frames[1].tid, 14);
	assert_int_equal(r.frames[1].lost_err, ECONNRESET);
	assert_int_equal(r.lost_frames, 2);
	assert_false(r.close_sent);
	assert_int_equal(conntrack_stats(ct)->unsent_writes, 3);
	assert_int_equal(conntrack_stats(ct)->lost_frames, 2);
	conntrack_free(ct, "end");
}

/* A partial write whose rest a later write sends: nothing is lost. */
static void test_partial_write_sent_later_is_not_lost(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	size_t pos = open_websocket(ct);

	send_unsent(ct, pos, 3,
		    "\x81\x04"
		    "abcd",
		    6, 0, 11);
	assert_int_equal(r.nframes, 0);
	send_write(ct, pos + 3, "bcd", 3, 11);
	assert_int_equal(r.nframes, 1);
	assert_false(r.frames[0].lost);
	send_write(ct, pos + 6, "\x88\x02\x03\xe8", 4, 11);
	send_conn(ct, EVT_CONN_CLOSE);
	assert_int_equal(r.nframes, 2);
	assert_int_equal(r.lost_frames, 0);
	assert_true(r.close_sent);
	conntrack_free(ct, "end");
}

/* A partial write never finished: the frame it cut is lost, its error "partial" (0). */
static void test_partial_write_never_finished_is_lost(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	size_t pos = open_websocket(ct);

	send_unsent(ct, pos, 3,
		    "\x81\x04"
		    "abcd",
		    6, 0, 11);
	send_conn(ct, EVT_CONN_CLOSE);
	assert_int_equal(r.nframes, 1);
	assert_true(r.frames[0].lost);
	assert_int_equal(r.frames[0].lost_err, 0);
	assert_int_equal(r.frames[0].payload_len, 4);
	assert_false(r.frames[0].truncated);
	conntrack_free(ct, "end");
}

/* Unsent bytes when only the trace ends: a retry may still send them, so nothing is judged. */
static void test_unsent_at_trace_end_is_not_judged(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	size_t pos = open_websocket(ct);

	send_unsent(ct, pos, 0, "\x81\x02Hi", 4, -EAGAIN, 11);
	conntrack_end_all(ct, "trace_ended", 9);
	assert_int_equal(r.nframes, 0);
	assert_int_equal(conntrack_stats(ct)->unsent_unresolved_bytes, 4);
	conntrack_free(ct, "end");
}

/* Frames after the close frame are after_close; the close frame's code is the connection's. */
static void test_frames_after_close_frame(void **state)
{
	struct recorder r;
	struct conntrack *ct = new_ct(&r);
	size_t pos = open_websocket(ct);

	send_write(ct, pos, "\x88\x02\x03\xf3\x81\x02Hi", 8, 11);
	assert_int_equal(r.nframes, 2);
	assert_int_equal(r.frames[0].close_code, 1011);
	assert_false(r.frames[0].after_close);
	assert_true(r.frames[1].after_close);
	send_conn(ct, EVT_CONN_CLOSE);
	assert_true(r.close_sent);
	conntrack_free(ct, "end");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_then_frames_in_same_write),
		cmocka_unit_test(test_request_head_across_reads),
		cmocka_unit_test(test_response_split_across_writes),
		cmocka_unit_test(test_bytes_sink_gets_response_and_stream),
		cmocka_unit_test(test_zero_copy_write_is_a_gap),
		cmocka_unit_test(test_request_head_over_bound),
		cmocka_unit_test(test_frame_split_across_writes_is_attributed_to_first),
		cmocka_unit_test(test_capped_write_truncates_frame_and_keeps_sync),
		cmocka_unit_test(test_open_connection_is_adopted),
		cmocka_unit_test(test_upgrade_in_lost_record_is_adopted),
		cmocka_unit_test(test_upgrade_lost_and_no_frames_is_records_lost),
		cmocka_unit_test(test_other_protocols_are_ignored),
		cmocka_unit_test(test_tls_socket_not_probed_is_skipped_at_once),
		cmocka_unit_test(test_tls_socket_probed_but_never_linked_is_skipped_at_close),
		cmocka_unit_test(test_tls_plaintext_followed_and_linked_to_its_socket),
		cmocka_unit_test(test_binary_protocol_ignored_after_tries),
		cmocka_unit_test(test_malformed_records_counted),
		cmocka_unit_test(test_process_exit_ends_connections),
		cmocka_unit_test(test_gathered_write_maps_each_frame_to_its_segment),
		cmocka_unit_test(test_malformed_segment_maps_counted),
		cmocka_unit_test(test_failed_writes_are_lost_at_close),
		cmocka_unit_test(test_partial_write_sent_later_is_not_lost),
		cmocka_unit_test(test_partial_write_never_finished_is_lost),
		cmocka_unit_test(test_unsent_at_trace_end_is_not_judged),
		cmocka_unit_test(test_frames_after_close_frame),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

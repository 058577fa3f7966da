// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conntrack.h"
#include "delivery.h"
#include "http1.h"
#include "log.h"
#include "records.h"
#include "ws_message.h"

/* Writes remembered per connection to attribute frames that span several of them. */
#define WRITE_RING 64
/*
 * Byte ranges remembered per connection, to know where a frame's first byte was in the
 * writer's memory: a chunk, or one segment of a gathered write (a writev of hundreds).
 */
#define CHUNK_RING 256
/* Writes of an unclassified connection tried for adoption before it is ignored. */
#define ADOPT_TRIES 16
/*
 * Compressed messages of an adopted connection offered to the history source before it is
 * given up (its history then stays unknown): each offer reads the process's memory.
 */
#define HISTORY_TRIES 64
#define TABLE_MIN_BUCKETS 256
/* Reads a request head may arrive in; past it the head is given up (counted). */
#define HEAD_READS_MAX 64
/* Writes whose unsent bytes are kept per connection, for their lost frames' writers. */
#define UNSENT_WRITES 16
/* Threads whose last message end (EVT_ZFLUSH) is remembered, by tid, direct mapped. */
#define ZFLUSH_SLOTS 1024

struct write_rec {
	uint64_t start, end; /* stream positions */
	uint64_t ts_ns;
	uint32_t pid, tid;
	char comm[16];
	uint8_t syscall;
	bool handed_over; /* DATA_HANDED_OVER: not walked at the syscall */
	struct attrib_stack *stack;
	/* The message end its thread's compressor reported right before it (0: none). */
	uint64_t zstrm, ztotal_out;
	int err; /* unsent_writes: the write's errno, 0 when it sent part */
};

struct zflush_slot {
	uint32_t tid;
	bool fresh; /* not yet taken by a write */
	uint64_t strm, total_out;
};

struct chunk_rec {
	uint64_t start, end; /* stream positions */
	uint64_t user_ptr;
};

struct ct_private {
	struct conntrack *ct;
	struct ct_conn *next; /* hash chain */
	struct http1_parser *req;
	/*
	 * The request head as read so far, across reads, bounded by HTTP1_MAX_HEAD: identity is
	 * parsed from the whole of it, as the server parses it, never from one read's bytes.
	 */
	char *head;
	size_t head_len;
	uint64_t head_next; /* stream position the next read of the head must start at */
	bool head_done; /* parsed, or given up */
	unsigned int nbreaks;
	uint32_t breaks[HEAD_READS_MAX]; /* offsets in head where a read after the first began */
	struct http1_parser *resp;
	/* The response head as sent so far, kept for a bytes sink only (HTTP1_MAX_HEAD). */
	char *resp_head;
	size_t resp_len;
	struct ws_stream *tx;
	uint64_t ws_base; /* stream position of the first WebSocket byte */
	unsigned int adopt_tries;
	bool upgrade_lost; /* the kernel saw its 101 in a record that was lost */
	uint64_t tx_next; /* where the written bytes seen before the upgrade end */
	unsigned int history_tries;
	struct write_rec writes[WRITE_RING];
	unsigned int nwrites; /* total pushed; the ring holds the last WRITE_RING */
	struct chunk_rec chunks[CHUNK_RING];
	unsigned int nchunks;
	/* Bytes writes were given but did not send, and how far the stream was sent. */
	struct delivery_unsent unsent;
	uint64_t sent_end;
	/* The writes of the unsent bytes, at the positions they are kept at (see unsent). */
	struct write_rec unsent_writes[UNSENT_WRITES];
	unsigned int nunsent_writes;
	bool lost_mode; /* the unsent bytes are being parsed at the end: lost frames */
	/* The stack record that precedes its write's data records. */
	struct attrib_stack *pending_stack;
	uint64_t pending_pos;
	/* Bytes the socket had sent when it was closed (its close walk's io_pos), 0: unknown. */
	uint64_t close_pos;
	uint32_t pending_tid;
	uint8_t pending_site; /* enum stack_site */
	/* A socket that carries TLS: the connection of its plaintext, once linked. */
	struct conn_id carried;
};

struct conntrack {
	struct ct_sink sink;
	size_t max_message;
	struct ct_conn **buckets;
	size_t nbuckets;
	size_t nconns;
	struct ct_stats stats;
	/* parser counters of connections already freed */
	uint64_t closed_truncated, closed_gap_bytes, closed_desyncs;
	uint64_t closed_messages[WS_MSG__COUNT], closed_context_losses;
	uint64_t closed_history_unknown;
	struct zflush_slot zflush[ZFLUSH_SLOTS];
	struct records routes; /* the records it reads (conntrack_routes()) */
};

static size_t bucket_of(const struct conntrack *ct, uint64_t ino)
{
	/* Inode numbers are sequential: a multiplicative hash spreads them. */
	return (size_t)((ino * 0x9e3779b97f4a7c15ULL) >> 32) & (ct->nbuckets - 1);
}

static struct ct_conn *table_find(struct conntrack *ct, uint64_t ino)
{
	struct ct_conn *c;

	for (c = ct->buckets[bucket_of(ct, ino)]; c; c = c->priv->next) {
		if (c->id.ino == ino)
			return c;
	}
	return NULL;
}

static int table_grow(struct conntrack *ct)
{
	size_t n = ct->nbuckets * 2, i;
	struct ct_conn **b = calloc(n, sizeof(*b)), *c, *next;
	struct ct_conn **old = ct->buckets;
	size_t oldn = ct->nbuckets;

	if (!b)
		return -ENOMEM;
	ct->buckets = b;
	ct->nbuckets = n;
	for (i = 0; i < oldn; i++) {
		for (c = old[i]; c; c = next) {
			next = c->priv->next;
			c->priv->next = b[bucket_of(ct, c->id.ino)];
			b[bucket_of(ct, c->id.ino)] = c;
		}
	}
	free(old);
	return 0;
}

static void table_unlink(struct conntrack *ct, struct ct_conn *c)
{
	struct ct_conn **pp = &ct->buckets[bucket_of(ct, c->id.ino)];

	while (*pp && *pp != c)
		pp = &(*pp)->priv->next;
	if (*pp)
		*pp = c->priv->next;
	ct->nconns--;
}

static void format_addr(char *buf, size_t size, uint16_t family, const uint8_t *addr, uint16_t port)
{
	char ip[INET6_ADDRSTRLEN];

	if (!inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr, ip, sizeof(ip)))
		snprintf(ip, sizeof(ip), "?");
	if (family == AF_INET6)
		snprintf(buf, size, "[%s]:%u", ip, port);
	else
		snprintf(buf, size, "%s:%u", ip, port);
}

static void frame_cb(void *ctx, const struct ws_frame *f, const struct ws_frame_info *info);
static void conn_skip(struct conntrack *ct, struct ct_conn *c, enum ct_skip_reason why,
		      uint64_t ts_ns);

static struct ct_conn *conn_create(struct conntrack *ct, const struct conn_id *id, uint32_t tgid,
				   const uint8_t *comm)
{
	struct ct_conn *c;

	if (ct->nconns >= CONN_MAX) {
		struct ct_conn gone = { .id = *id, .tgid = tgid };

		ct->stats.conns_dropped_limit++;
		if (ct->sink.verdict)
			ct->sink.verdict(ct->sink.ctx, id, CONN_IGNORE);
		/* Not in the table: said with what is known of it. */
		snprintf(gone.id_str, sizeof(gone.id_str), "%llx-%llx", (unsigned long long)id->ino,
			 (unsigned long long)id->gen);
		snprintf(gone.local, sizeof(gone.local), "unknown");
		snprintf(gone.peer, sizeof(gone.peer), "unknown");
		memcpy(gone.comm, comm, sizeof(gone.comm));
		gone.comm[sizeof(gone.comm) - 1] = '\0';
		conn_skip(ct, &gone, CT_SKIP_OVER_LIMIT, 0);
		return NULL;
	}
	if (ct->nconns >= ct->nbuckets && table_grow(ct))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->priv = calloc(1, sizeof(*c->priv));
	if (!c->priv) {
		free(c);
		return NULL;
	}
	c->priv->ct = ct;
	c->id = *id;
	snprintf(c->id_str, sizeof(c->id_str), "%llx-%llx", (unsigned long long)id->ino,
		 (unsigned long long)id->gen);
	snprintf(c->local, sizeof(c->local), "unknown");
	snprintf(c->peer, sizeof(c->peer), "unknown");
	c->tgid = tgid;
	memcpy(c->comm, comm, sizeof(c->comm));
	c->comm[sizeof(c->comm) - 1] = '\0';
	c->state = CT_UNKNOWN;
	c->priv->next = ct->buckets[bucket_of(ct, id->ino)];
	ct->buckets[bucket_of(ct, id->ino)] = c;
	ct->nconns++;
	ct->stats.conns_seen++;
	return c;
}

static void conn_release_parsers(struct conntrack *ct, struct ct_conn *c)
{
	const struct ws_parser_stats *ps;
	const struct ws_stream_stats *ss;

	if (c->priv->tx) {
		ps = ws_stream_parser_stats(c->priv->tx);
		ss = ws_stream_stats(c->priv->tx);
		ct->closed_truncated += ps->truncated_frames;
		ct->closed_gap_bytes += ps->gap_bytes;
		ct->closed_desyncs += ps->desyncs;
		for (int i = 0; i < WS_MSG__COUNT; i++)
			ct->closed_messages[i] += ss->messages[i];
		ct->closed_context_losses += ss->context_losses;
		ws_stream_free(c->priv->tx);
		c->priv->tx = NULL;
	}
	delivery_unsent_free(&c->priv->unsent);
	http1_parser_free(c->priv->req);
	http1_parser_free(c->priv->resp);
	c->priv->req = c->priv->resp = NULL;
	free(c->priv->head);
	c->priv->head = NULL;
	free(c->priv->resp_head);
	c->priv->resp_head = NULL;
}

/* Stacks are the sink's (ct_sink.stack): the table holds references, never looks inside. */
static void stack_put(const struct ct_conn *c, struct attrib_stack *s)
{
	if (s)
		c->priv->ct->sink.stack_put(s);
}

static struct attrib_stack *stack_get(const struct ct_conn *c, struct attrib_stack *s)
{
	return s ? c->priv->ct->sink.stack_get(s) : NULL;
}

static void conn_drop_stacks(struct ct_conn *c)
{
	for (unsigned int i = 0; i < WRITE_RING; i++) {
		stack_put(c, c->priv->writes[i].stack);
		c->priv->writes[i].stack = NULL;
	}
	stack_put(c, c->priv->pending_stack);
	c->priv->pending_stack = NULL;
	for (unsigned int i = 0; i < UNSENT_WRITES; i++) {
		stack_put(c, c->priv->unsent_writes[i].stack);
		c->priv->unsent_writes[i].stack = NULL;
	}
}

/*
 * The connection ends with bytes its writes did not send.  When its socket was closed (or its
 * process exited) they never leave: they are parsed after what was sent, and the frames they
 * hold (those cut by the failed write included, through ws_stream_finish) are lost frames.
 * When only the trace ends, a retry may still send them: counted, not judged.
 */
static void conn_unsent_end(struct conntrack *ct, struct ct_conn *c, const char *why)
{
	struct ct_private *p = c->priv;
	struct delivery_unsent *u = &p->unsent;

	if (strcmp(why, "closed") && strcmp(why, "process_exit")) {
		ct->stats.unsent_unresolved_bytes += u->len + u->beyond;
		return;
	}
	if (u->pos < p->ws_base)
		return;
	p->lost_mode = true;
	if (u->pos > p->sent_end && p->sent_end >= p->ws_base)
		ws_stream_gap(p->tx, p->sent_end - p->ws_base, u->pos - p->sent_end);
	if (u->len && ws_stream_feed(p->tx, u->pos - p->ws_base, u->buf, u->len))
		log_warn("connection %s: out of memory parsing frames", c->id_str);
	if (u->beyond)
		ws_stream_gap(p->tx, u->pos + u->len - p->ws_base, u->beyond);
}

uint64_t conntrack_tx_end(const struct ct_conn *c)
{
	const struct delivery_unsent *u = &c->priv->unsent;
	uint64_t end = c->priv->sent_end;

	if (delivery_unsent_any(u) && u->pos + u->len + u->beyond > end)
		end = u->pos + u->len + u->beyond;
	/* The kernel's count: the records of the last writes may have been lost. */
	if (c->priv->close_pos > end)
		end = c->priv->close_pos;
	return end;
}

static void conn_destroy(struct conntrack *ct, struct ct_conn *c, uint64_t ts_ns, const char *why)
{
	/* Its verdict may still wait in the kernel if the close came first: take it back. */
	if ((c->state == CT_IGNORED || c->state == CT_TLS) && ct->sink.verdict)
		ct->sink.verdict(ct->sink.ctx, &c->id, CONN_UNKNOWN);
	if (c->tls && c->tls_link && !strcmp(c->tls_link, "pending"))
		ct->stats.tls_unlinked++;
	/*
	 * Its plaintext ends with it: the SSL object may be freed much later (a reference cycle
	 * left to Python's collector), and nothing more can be sent on it.
	 */
	if (c->state == CT_TLS && c->priv->carried.ino) {
		struct ct_conn *t = table_find(ct, c->priv->carried.ino);

		if (t && t->id.gen == c->priv->carried.gen && t != c)
			conn_destroy(ct, t, ts_ns, why);
	}
	/* TLS whose plaintext was expected through libssl, and never came linked to it. */
	if (c->state == CT_TLS && !c->tls_link)
		conn_skip(ct, c, CT_SKIP_TLS_UNLINKED, ts_ns);
	if (c->priv->tx && delivery_unsent_any(&c->priv->unsent))
		conn_unsent_end(ct, c, why);
	/* A frame or message cut by the end is still reported, as truncated. */
	if (c->priv->tx)
		ws_stream_finish(c->priv->tx);
	c->priv->lost_mode = false;
	if (c->state == CT_WEBSOCKET) {
		ct->stats.conns_open--;
		if (c->adopted && c->priv->tx && ws_stream_history_unknown(c->priv->tx))
			ct->closed_history_unknown++;
		if (ct->sink.conn_close)
			ct->sink.conn_close(ct->sink.ctx, c, ts_ns, why);
	}
	table_unlink(ct, c);
	conn_release_parsers(ct, c);
	conn_drop_stacks(c);
	free(c->request_head);
	free(c->response_head);
	free(c->subprotocol);
	free(c->extensions);
	free(c->priv);
	free(c);
}

#define CT_SKIP_NAME(name, str) [name] = str,
static const char *const skip_names[CT_SKIP__COUNT] = { CT_SKIP_REASONS(CT_SKIP_NAME) };
#undef CT_SKIP_NAME

const char *ct_skip_name(enum ct_skip_reason r)
{
	return r > CT_SKIP_NONE && r < CT_SKIP__COUNT ? skip_names[r] : NULL;
}

/* Said once per connection: the record, the count and the sink's warning. */
static void conn_skip(struct conntrack *ct, struct ct_conn *c, enum ct_skip_reason why,
		      uint64_t ts_ns)
{
	if (c->skipped || why <= CT_SKIP_NONE || why >= CT_SKIP__COUNT)
		return;
	c->skipped = why;
	ct->stats.conns_skipped[why]++;
	if (ct->sink.conn_skipped)
		ct->sink.conn_skipped(ct->sink.ctx, c, why, ts_ns);
}

static void conn_ignore(struct conntrack *ct, struct ct_conn *c, enum ct_skip_reason why,
			uint64_t ts_ns)
{
	c->state = CT_IGNORED;
	ct->stats.conns_ignored++;
	conn_release_parsers(ct, c);
	if (ct->sink.verdict)
		ct->sink.verdict(ct->sink.ctx, &c->id, CONN_IGNORE);
	conn_skip(ct, c, why, ts_ns);
}

/*
 * The first bytes of a TLS record (RFC 8446 5.1: content type 20 to 23, legacy version 3.x):
 * a server's first write on a TLS connection (ServerHello), or any write of one open before
 * the trace.  No WebSocket server writes them: 0x14 to 0x17 would be a non-final frame of a
 * reserved opcode (with RSV3 for application data).
 */
static bool looks_like_tls(const uint8_t *data, size_t len)
{
	return len >= 3 && data[0] >= 20 && data[0] <= 23 && data[1] == 0x03 && data[2] <= 0x04;
}

/*
 * A socket that carries TLS: its ciphertext is of no use, and no longer captured.  Whether
 * its plaintext is followed is the sink's to say; when it is not, the connection is skipped
 * now, else when it closes without its plaintext having been linked to it.
 */
static void conn_tls(struct conntrack *ct, struct ct_conn *c, uint64_t ts_ns)
{
	enum ct_skip_reason why = ct->sink.tls_seen ? ct->sink.tls_seen(ct->sink.ctx, c) :
						      CT_SKIP_TLS;

	c->state = CT_TLS;
	ct->stats.conns_tls++;
	conn_release_parsers(ct, c);
	if (ct->sink.verdict)
		ct->sink.verdict(ct->sink.ctx, &c->id, CONN_IGNORE);
	if (why != CT_SKIP_NONE)
		conn_skip(ct, c, why, ts_ns);
}

static const struct write_rec *find_write(const struct ct_conn *c, uint64_t pos);
static uint64_t find_user_addr(const struct ct_conn *c, uint64_t pos);

static int conn_history(void *ctx, const struct ws_frame *last, uint8_t opcode, const uint8_t *wire,
			size_t len, const uint8_t **dict, size_t *dict_len)
{
	struct ct_conn *c = ctx;
	struct conntrack *ct = c->priv->ct;
	const struct write_rec *w = find_write(c, c->priv->ws_base + last->stream_off);
	int err;

	ct->stats.history_messages_tried++;
	err = ct->sink.history(ct->sink.ctx, c, w ? w->zstrm : 0, w ? w->ztotal_out : 0,
			       find_user_addr(c, c->priv->ws_base + last->stream_off), opcode, wire,
			       len, dict, dict_len);
	if (!err) {
		ct->stats.adopted_history_recovered++;
		return 0;
	}
	if (++c->priv->history_tries >= HISTORY_TRIES)
		ws_stream_set_history(c->priv->tx, NULL, NULL);
	return err;
}

static int conn_start_websocket(struct conntrack *ct, struct ct_conn *c, uint64_t base,
				uint64_t ts_ns, bool adopted)
{
	struct ws_stream_opts opts = {
		.direction = WS_SERVER_TO_CLIENT,
		.max_message = ct->max_message,
	};
	char err[128];

	c->priv->tx = ws_stream_new(&opts, frame_cb, NULL, c);
	if (!c->priv->tx)
		return -ENOMEM;
	if (adopted) {
		ws_stream_adopt(c->priv->tx, 0);
		if (ct->sink.history)
			ws_stream_set_history(c->priv->tx, conn_history, c);
	} else if (ws_stream_set_extensions(c->priv->tx, c->extensions, err, sizeof(err)))
		log_info("connection %s: extensions '%s': %s", c->id_str, c->extensions, err);
	c->priv->ws_base = base;
	c->ws_base = base;
	c->state = CT_WEBSOCKET;
	/* The kernel tells a socket's 101 itself; a TLS connection's plaintext is told. */
	if (c->tls && !adopted && ct->sink.verdict)
		ct->sink.verdict(ct->sink.ctx, &c->id, CONN_WS);
	c->adopted = adopted;
	c->history_unknown = adopted;
	ct->stats.conns_websocket++;
	ct->stats.conns_open++;
	if (adopted)
		ct->stats.conns_adopted++;
	if (ct->sink.conn_open)
		ct->sink.conn_open(ct->sink.ctx, c, ts_ns);
	if (c->user_unknown && adopted)
		ct->stats.adopted_user_unknown++;
	else if (adopted && c->identity_from)
		ct->stats.adopted_user_recovered++;
	else if (c->user_unknown)
		ct->stats.users_unknown++;
	else if (c->user_ambiguous)
		ct->stats.users_ambiguous++;
	return 0;
}

static void push_write(struct ct_conn *c, const struct evt_data *e)
{
	struct zflush_slot *z = &c->priv->ct->zflush[e->tid % ZFLUSH_SLOTS];
	struct write_rec *w;

	/*
	 * Several chunks of one syscall share its range: remember it once.  A write tried again
	 * at the same position (after one that sent nothing) is a syscall of its own.
	 */
	if (c->priv->nwrites) {
		w = &c->priv->writes[(c->priv->nwrites - 1) % WRITE_RING];
		if (w->start == e->io_pos && w->tid == e->tid && !(e->flags & DATA_FIRST)) {
			if ((e->flags & DATA_UNSENT) && e->stream_pos + e->len > w->end)
				w->end = e->stream_pos + e->len;
			return;
		}
	}
	w = &c->priv->writes[c->priv->nwrites++ % WRITE_RING];
	stack_put(c, w->stack);
	w->stack = NULL;
	if (c->priv->pending_stack) {
		if (c->priv->pending_pos == e->io_pos && c->priv->pending_tid == e->tid)
			w->stack = c->priv->pending_stack;
		else
			stack_put(c, c->priv->pending_stack);
		c->priv->pending_stack = NULL;
	}
	w->zstrm = w->ztotal_out = 0;
	/* The write that follows a message end on the same thread carries that message. */
	if (z->fresh && z->tid == e->tid) {
		w->zstrm = z->strm;
		w->ztotal_out = z->total_out;
		z->fresh = false;
	}
	w->start = e->io_pos;
	w->end = e->io_pos + e->io_len;
	/* The bytes it did not send are its too, should they be lost frames. */
	if ((e->flags & DATA_UNSENT) && e->stream_pos + e->len > w->end)
		w->end = e->stream_pos + e->len;
	w->ts_ns = e->hdr.ts_ns;
	w->pid = e->tgid;
	w->tid = e->tid;
	w->syscall = e->syscall;
	w->handed_over = e->flags & DATA_HANDED_OVER;
	memcpy(w->comm, e->comm, sizeof(w->comm));
	w->comm[sizeof(w->comm) - 1] = '\0';
}

static const struct write_rec *find_write(const struct ct_conn *c, uint64_t pos)
{
	unsigned int n = c->priv->nwrites < WRITE_RING ? c->priv->nwrites : WRITE_RING;
	const struct write_rec *w;

	for (unsigned int i = 1; i <= n; i++) {
		w = &c->priv->writes[(c->priv->nwrites - i) % WRITE_RING];
		if (pos >= w->start && pos < w->end)
			return w;
	}
	return NULL;
}

static uint64_t find_user_addr(const struct ct_conn *c, uint64_t pos)
{
	unsigned int n = c->priv->nchunks < CHUNK_RING ? c->priv->nchunks : CHUNK_RING;
	const struct chunk_rec *r;

	for (unsigned int i = 1; i <= n; i++) {
		r = &c->priv->chunks[(c->priv->nchunks - i) % CHUNK_RING];
		if (pos >= r->start && pos < r->end)
			return r->user_ptr ? r->user_ptr + (pos - r->start) : 0;
	}
	return 0;
}

static const struct write_rec *find_unsent_write(const struct ct_conn *c, uint64_t pos)
{
	unsigned int n = c->priv->nunsent_writes < UNSENT_WRITES ? c->priv->nunsent_writes :
								   UNSENT_WRITES;
	const struct write_rec *w;

	for (unsigned int i = 1; i <= n; i++) {
		w = &c->priv->unsent_writes[(c->priv->nunsent_writes - i) % UNSENT_WRITES];
		if (pos >= w->start && pos < w->end)
			return w;
	}
	return NULL;
}

static void frame_cb(void *ctx, const struct ws_frame *f, const struct ws_frame_info *info)
{
	struct ct_conn *c = ctx;
	struct conntrack *ct = c->priv->ct;
	const struct write_rec *w;
	struct ct_frame out = {
		.conn = c,
		.frame = f,
		.compressed = info->compressed,
		.message = info->message,
	};

	out.stream_pos = c->priv->ws_base + f->stream_off;
	out.user_addr = find_user_addr(c, out.stream_pos);
	w = c->priv->lost_mode ? find_unsent_write(c, c->priv->ws_base + f->stream_off) : NULL;
	if (!w)
		w = find_write(c, c->priv->ws_base + f->stream_off);
	if (w) {
		out.writer_known = true;
		out.ts_ns = w->ts_ns;
		out.pid = w->pid;
		out.tid = w->tid;
		out.syscall = w->syscall;
		out.stack = w->stack;
		out.handed_over = w->handed_over;
		memcpy(out.comm, w->comm, sizeof(out.comm));
	} else {
		ct->stats.writer_unknown++;
		out.pid = c->tgid;
		memcpy(out.comm, c->comm, sizeof(out.comm));
	}
	c->history_unknown = c->adopted && ws_stream_history_unknown(c->priv->tx);
	out.after_close = c->close_sent;
	if (c->priv->lost_mode) {
		out.lost = true;
		out.lost_err = w && w->err >= 0 ? w->err : c->priv->unsent.err;
		c->lost_frames++;
		ct->stats.lost_frames++;
	} else if (f->opcode == WS_OP_CLOSE && !c->close_sent) {
		c->close_sent = true;
		c->close_code = f->close_code;
	}
	c->frames++;
	ct->stats.frames++;
	if (ct->sink.frame)
		ct->sink.frame(ct->sink.ctx, &out);
}

static void chunk_remember(struct ct_conn *c, uint64_t pos, uint64_t len, uint64_t user_ptr)
{
	struct chunk_rec *r = &c->priv->chunks[c->priv->nchunks++ % CHUNK_RING];

	r->start = pos;
	r->end = pos + len;
	r->user_ptr = user_ptr;
}

/* Feeds WebSocket bytes; those before the WebSocket start (handshake) are skipped. */
static void ws_feed(struct ct_conn *c, const struct evt_data *e, const uint8_t *data)
{
	uint64_t pos = e->stream_pos, len = e->len, end_io = e->io_pos + e->io_len;
	uint64_t base = c->priv->ws_base;
	const struct ct_sink *sink = &c->priv->ct->sink;

	/* A gathered chunk's segments came in an EVT_SEGS record before it. */
	if (e->len && !(e->flags & DATA_GATHERED))
		chunk_remember(c, e->stream_pos, e->len, e->user_ptr);
	if (pos + len <= base)
		return;
	if (pos < base) {
		data += base - pos;
		len -= base - pos;
		pos = base;
	}
	if (sink->bytes && len)
		sink->bytes(sink->ctx, c, pos, data, len, e->hdr.ts_ns);
	if (ws_stream_feed(c->priv->tx, pos - base, data, len))
		log_warn("connection %s: out of memory parsing frames", c->id_str);
	/* Bytes of this syscall that were not captured (cap, fault) are a known hole. */
	if ((e->flags & DATA_LAST) && pos + len < end_io) {
		if (sink->bytes)
			sink->bytes(sink->ctx, c, pos + len, NULL, end_io - (pos + len),
				    e->hdr.ts_ns);
		ws_stream_gap(c->priv->tx, pos + len - base, end_io - (pos + len));
	}
	c->gap_bytes = ws_stream_parser_stats(c->priv->tx)->gap_bytes;
}

/* The response's bytes as they were sent, for the bytes sink (the upgrade in a capture). */
static void resp_keep(struct ct_private *p, const uint8_t *data, size_t len)
{
	if (!p->resp_head) {
		p->resp_head = malloc(HTTP1_MAX_HEAD + 1);
		p->resp_len = 0;
		if (!p->resp_head)
			return;
	}
	if (len > HTTP1_MAX_HEAD - p->resp_len)
		len = HTTP1_MAX_HEAD - p->resp_len;
	memcpy(p->resp_head + p->resp_len, data, len);
	p->resp_len += len;
}

static void handle_response(struct conntrack *ct, struct ct_conn *c, const struct evt_data *e,
			    const uint8_t *data)
{
	const struct http1_message *m;
	enum http1_result r;
	const char *v;
	size_t used = 0;

	if (!c->priv->resp) {
		c->priv->resp = http1_parser_new(HTTP1_RESPONSE);
		if (!c->priv->resp)
			return;
	}
	r = http1_parser_feed(c->priv->resp, data, e->len, &m, &used);
	if (ct->sink.bytes)
		resp_keep(c->priv, data, r == HTTP1_DONE ? used : e->len);
	if (r == HTTP1_NEED_MORE)
		return;
	if (r == HTTP1_ERROR) {
		ct->stats.bad_handshakes++;
		log_info("connection %s: unparsable response: %s", c->id_str,
			 http1_parser_error(c->priv->resp));
		conn_ignore(ct, c, CT_SKIP_BAD_RESPONSE, e->hdr.ts_ns);
		return;
	}
	if (m->status != 101) {
		conn_ignore(ct, c, CT_SKIP_NOT_UPGRADED, e->hdr.ts_ns);
		return;
	}
	/* The server answered a head not read whole, or none at all (read before tracing). */
	if (!c->request_head && !c->user_unknown && !c->user_ambiguous)
		c->user_unknown = c->priv->head_len ? "head_incomplete" : "head_not_seen";
	v = http1_header(m, "Sec-WebSocket-Protocol");
	if (v)
		c->subprotocol = strdup(v);
	v = http1_header(m, "Sec-WebSocket-Extensions");
	if (v)
		c->extensions = strdup(v);
	if (c->priv->resp_head) {
		c->response_head = c->priv->resp_head;
		c->response_head[c->priv->resp_len] = '\0';
		c->priv->resp_head = NULL;
	}
	if (conn_start_websocket(ct, c, e->stream_pos + used, e->hdr.ts_ns, false))
		return;
	http1_parser_free(c->priv->resp);
	c->priv->resp = NULL;
	if (used < e->len)
		ws_feed(c, e, data);
}

/* The request head cannot be read whole: the connection's user is unknown, and why. */
static void head_give_up(struct conntrack *ct, struct ct_conn *c, const char *why)
{
	if (!c->user_unknown && !c->user_ambiguous) {
		c->user_unknown = why;
		ct->stats.heads_given_up++;
		log_info("connection %s: request head not read whole (%s): its user is unknown",
			 c->id_str, why);
	}
	c->priv->head_done = true;
	http1_parser_free(c->priv->req);
	c->priv->req = NULL;
	free(c->priv->head);
	c->priv->head = NULL;
}

static void head_ambiguous(struct ct_conn *c, const char *why)
{
	if (!c->user_unknown && !c->user_ambiguous) {
		c->user_ambiguous = why;
		log_info("connection %s: request head is ambiguous (%s)", c->id_str, why);
	}
}

/*
 * A read that began inside a line of the head (not after a line end) and reads as a request
 * line of its own: parsed alone, as a naive reader of that read would, it is another request
 * than the one the server parses (the "X-Junk: " smuggle).
 */
static bool head_split_changes_meaning(const struct ct_private *p, size_t head_len)
{
	for (unsigned int i = 0; i < p->nbreaks; i++) {
		size_t b = p->breaks[i];

		if (b && b < head_len && p->head[b - 1] != '\n' &&
		    http1_looks_like_request_line(p->head + b, head_len - b))
			return true;
	}
	return false;
}

static void handle_request(struct conntrack *ct, struct ct_conn *c, const struct evt_data *e,
			   const uint8_t *data)
{
	struct ct_private *p = c->priv;
	const struct http1_message *m;
	enum http1_result r;
	size_t used = 0, take;

	if (p->head_done) {
		/* Bytes after the head before the response: a second request, pipelined. */
		if (e->len && c->request_head)
			head_ambiguous(c, "bytes_after_request");
		return;
	}
	if (!p->req) {
		p->req = http1_parser_new(HTTP1_REQUEST);
		p->head = malloc(HTTP1_MAX_HEAD);
		if (!p->req || !p->head) {
			head_give_up(ct, c, "no_memory");
			return;
		}
		p->head_len = 0;
		p->nbreaks = 0;
		p->head_next = e->stream_pos;
	}
	c->state = CT_HANDSHAKE;
	/* A lost record (full ring buffer) leaves a hole the server did not see. */
	if (e->stream_pos != p->head_next) {
		head_give_up(ct, c, "head_gap");
		return;
	}
	p->head_next += e->len;
	if ((e->flags & DATA_FIRST) && p->head_len) {
		if (p->nbreaks == HEAD_READS_MAX) {
			head_give_up(ct, c, "head_too_fragmented");
			return;
		}
		p->breaks[p->nbreaks++] = (uint32_t)p->head_len;
	}
	take = e->len < HTTP1_MAX_HEAD - p->head_len ? e->len : HTTP1_MAX_HEAD - p->head_len;
	memcpy(p->head + p->head_len, data, take);
	r = http1_parser_feed(p->req, data, e->len, &m, &used);
	if (r == HTTP1_NEED_MORE) {
		p->head_len += take;
		/* Bytes of this read that were not captured (cap, fault) are missing from it. */
		if ((e->flags & DATA_LAST) && e->stream_pos + e->len < e->io_pos + e->io_len)
			head_give_up(ct, c, "head_not_captured");
		return;
	}
	if (r == HTTP1_ERROR) {
		if (p->head_len + e->len >= HTTP1_MAX_HEAD) {
			head_give_up(ct, c, "head_too_large");
			return;
		}
		ct->stats.bad_handshakes++;
		log_info("connection %s: unparsable request: %s", c->id_str,
			 http1_parser_error(p->req));
		head_give_up(ct, c, "head_unparsable");
		return;
	}
	p->head_len += used;
	c->request_head = strndup(p->head, p->head_len);
	if (used < e->len)
		head_ambiguous(c, "bytes_after_request");
	else if (head_split_changes_meaning(p, p->head_len))
		head_ambiguous(c, "request_split");
	p->head_done = true;
	http1_parser_free(p->req);
	p->req = NULL;
	free(p->head);
	p->head = NULL;
}

/*
 * Judge records at the start of a write only, where a frame boundary is sure: the whole write,
 * or the first record of a large one (an event loop's flush of a burst).
 */
static bool write_starts_with_frames(const struct evt_data *e, const uint8_t *data)
{
	return (e->flags & DATA_FIRST) && e->stream_pos == e->io_pos &&
	       ws_write_looks_like_frames(data, e->len, e->io_len, WS_SERVER_TO_CLIENT);
}

static void try_adopt(struct conntrack *ct, struct ct_conn *c, const struct evt_data *e,
		      const uint8_t *data)
{
	if (write_starts_with_frames(e, data)) {
		if (conn_start_websocket(ct, c, e->io_pos, e->hdr.ts_ns, true))
			return;
		if (ct->sink.verdict)
			ct->sink.verdict(ct->sink.ctx, &c->id, CONN_WS);
		ws_feed(c, e, data);
		return;
	}
	if (e->flags & DATA_FIRST && ++c->priv->adopt_tries >= ADOPT_TRIES)
		conn_ignore(ct, c, CT_SKIP_NOT_WEBSOCKET, e->hdr.ts_ns);
}

/*
 * A write the kernel captured as a WebSocket's (it matched the 101 in an earlier write) on a
 * connection whose upgrade the collector never read: the record of that write was lost (full
 * ring buffer).  The request head, when it was read, still names the user; the response's
 * extensions are unknown, so the stream is followed as an adopted one from the first write
 * that starts with frames.  None in ADOPT_TRIES writes: skipped as records_lost.
 */
static void upgrade_lost(struct conntrack *ct, struct ct_conn *c, const struct evt_data *e,
			 const uint8_t *data)
{
	if (!c->priv->upgrade_lost) {
		c->priv->upgrade_lost = true;
		c->priv->adopt_tries = 0;
		ct->stats.upgrades_lost++;
		log_info("connection %s: its upgrade was in a lost record (full ring buffer): "
			 "followed from the first write that starts with frames",
			 c->id_str);
		http1_parser_free(c->priv->resp);
		c->priv->resp = NULL;
		free(c->priv->resp_head);
		c->priv->resp_head = NULL;
		if (!c->request_head && !c->user_unknown && !c->user_ambiguous)
			c->user_unknown = c->priv->head_len ? "head_incomplete" : "head_not_seen";
	}
	if (write_starts_with_frames(e, data)) {
		if (conn_start_websocket(ct, c, e->io_pos, e->hdr.ts_ns, true))
			return;
		ws_feed(c, e, data);
		return;
	}
	if (e->flags & DATA_FIRST && ++c->priv->adopt_tries >= ADOPT_TRIES)
		conn_ignore(ct, c, CT_SKIP_RECORDS_LOST, e->hdr.ts_ns);
}

/*
 * The writer of unsent bytes kept at [start, end): the write record of its syscall (the last
 * one pushed), copied at its first unsent bytes, extended by the following ones.
 */
static void unsent_write(struct ct_conn *c, const struct evt_data *e, uint64_t start, uint64_t end,
			 bool first)
{
	struct ct_private *p = c->priv;
	const struct write_rec *last = p->nwrites ? &p->writes[(p->nwrites - 1) % WRITE_RING] :
						    NULL;
	struct write_rec *w;

	if (!first && p->nunsent_writes) {
		w = &p->unsent_writes[(p->nunsent_writes - 1) % UNSENT_WRITES];
		if (w->end == start && w->tid == e->tid) {
			w->end = end;
			return;
		}
	}
	if (!last || last->start != e->io_pos || last->tid != e->tid)
		return;
	w = &p->unsent_writes[p->nunsent_writes++ % UNSENT_WRITES];
	stack_put(c, w->stack);
	*w = *last;
	w->stack = stack_get(c, last->stack);
	w->err = -e->err;
	w->start = start;
	w->end = end;
}

/*
 * A chunk of a write that failed or sent part: its bytes below io_pos + io_len left and are
 * parsed as any; the others are kept until the stream moves past them or the connection ends.
 */
static void handle_unsent(struct conntrack *ct, struct ct_conn *c, const struct evt_data *e,
			  const uint8_t *data)
{
	uint64_t sent_end = e->io_pos + e->io_len, end = e->stream_pos + e->len, from, at;
	struct evt_data head = *e;

	if (e->flags & DATA_FIRST)
		ct->stats.unsent_writes++;
	if (sent_end > c->priv->sent_end) {
		c->priv->sent_end = sent_end;
		delivery_unsent_sent(&c->priv->unsent, sent_end);
	}
	if (e->stream_pos < sent_end) {
		head.len = (uint32_t)((end < sent_end ? end : sent_end) - e->stream_pos);
		ws_feed(c, &head, data);
	}
	if (end <= sent_end)
		return;
	from = e->stream_pos >= sent_end ? e->stream_pos : sent_end;
	at = delivery_unsent_add(&c->priv->unsent, from, data + (from - e->stream_pos), end - from,
				 -e->err, e->stream_pos <= sent_end || (e->flags & DATA_FIRST));
	if (at == UINT64_MAX)
		return;
	if (!(e->flags & DATA_GATHERED))
		chunk_remember(c, at, end - from,
			       e->user_ptr ? e->user_ptr + (from - e->stream_pos) : 0);
	unsent_write(c, e, at, at + (end - from),
		     e->stream_pos <= sent_end || (e->flags & DATA_FIRST));
}

static int handle_data(void *ctx, const void *rec, size_t size)
{
	struct conntrack *ct = ctx;
	const struct evt_data *e = rec;
	const uint8_t *data = (const uint8_t *)(e + 1);
	struct ct_conn *c = table_find(ct, e->conn.ino);

	if (c && c->id.gen != e->conn.gen) {
		conn_destroy(ct, c, e->hdr.ts_ns, "replaced");
		c = NULL;
	}
	if (!c) {
		/* Its announcement was lost (full ring buffer): follow it without addresses. */
		ct->stats.unknown_conn_records++;
		c = conn_create(ct, &e->conn, e->tgid, e->comm);
		if (!c)
			return 0;
		if (e->conn.ino & TLS_CONN_INO) {
			c->tls = true;
			c->tls_link = "pending";
			ct->stats.tls_conns++;
		}
	}
	if (c->state == CT_IGNORED || c->state == CT_TLS)
		return 0;
	if (e->dir == DIR_RX) {
		if (c->state != CT_WEBSOCKET)
			handle_request(ct, c, e, data);
		return 0;
	}
	push_write(c, e);
	if (c->state == CT_WEBSOCKET && (e->flags & DATA_UNSENT)) {
		handle_unsent(ct, c, e, data);
		return 0;
	}
	if (c->state == CT_WEBSOCKET) {
		if (e->io_pos + e->io_len > c->priv->sent_end) {
			c->priv->sent_end = e->io_pos + e->io_len;
			delivery_unsent_sent(&c->priv->unsent, c->priv->sent_end);
		}
		if (e->syscall >= SC_SENDFILE && e->syscall <= SC_COPY_FILE_RANGE)
			log_info(
				"connection %s: %llu bytes sent by a zero-copy syscall: not captured",
				c->id_str, (unsigned long long)e->io_len);
		ws_feed(c, e, data);
		return 0;
	}
	/* A zero-copy write before the upgrade: nothing to classify it by. */
	if (!e->len)
		return 0;
	/*
	 * The kernel knows it for a WebSocket (it matched the 101), the collector does not, and
	 * written bytes are missing before this record: the record of the 101 was lost.
	 */
	if (!(e->flags & DATA_UNCLASSIFIED) &&
	    (c->priv->upgrade_lost || e->stream_pos > c->priv->tx_next)) {
		upgrade_lost(ct, c, e, data);
		return 0;
	}
	if (e->stream_pos + e->len > c->priv->tx_next)
		c->priv->tx_next = e->stream_pos + e->len;
	if ((e->flags & DATA_LAST) && e->io_pos + e->io_len > c->priv->tx_next)
		c->priv->tx_next = e->io_pos + e->io_len;
	/* The response to a request may come a byte at a time: "H", then the rest. */
	if (c->priv->resp || (e->len >= 5 && !memcmp(data, "HTTP/", 5)) ||
	    (c->state == CT_HANDSHAKE && e->len && e->len < 5 && !memcmp(data, "HTTP/", e->len)))
		handle_response(ct, c, e, data);
	else if (c->state == CT_UNKNOWN && !c->tls && (e->flags & DATA_FIRST) &&
		 looks_like_tls(data, e->len))
		conn_tls(ct, c, e->hdr.ts_ns);
	else if (c->state == CT_UNKNOWN)
		try_adopt(ct, c, e, data);
	else /* a handshake answered by something other than HTTP */
		conn_ignore(ct, c, CT_SKIP_NOT_HTTP, e->hdr.ts_ns);
	return 0;
}

static int handle_stack(void *ctx, const void *rec, size_t size)
{
	struct conntrack *ct = ctx;
	const struct evt_stack *e = rec;
	struct ct_conn *c = table_find(ct, e->conn.ino);

	/* The write that carries the 101 has its stack too: first frames may share it. */
	if (!c || c->id.gen != e->conn.gen || c->state == CT_IGNORED || c->state == CT_TLS ||
	    !ct->sink.stack)
		return 0;
	if (c->priv->pending_stack) {
		ct->stats.stacks_unmatched++;
		stack_put(c, c->priv->pending_stack);
	}
	c->priv->pending_stack = ct->sink.stack(ct->sink.ctx, e);
	c->priv->pending_pos = e->io_pos;
	c->priv->pending_tid = e->tid;
	c->priv->pending_site = e->site;
	return 0;
}

static int handle_segs(void *ctx, const void *rec, size_t size)
{
	struct conntrack *ct = ctx;
	const struct evt_segs *e = rec;
	struct ct_conn *c = table_find(ct, e->conn.ino);

	/* Also before the upgrade: its response and the first frames can share a writev. */
	if (!c || c->id.gen != e->conn.gen)
		return 0;
	for (uint32_t i = 0; i < e->n; i++)
		chunk_remember(c, e->seg[i].stream_pos, e->seg[i].len, e->seg[i].ptr);
	return 0;
}

static int handle_zflush(void *ctx, const void *rec, size_t size)
{
	struct conntrack *ct = ctx;
	const struct evt_zflush *e = rec;
	struct zflush_slot *z = &ct->zflush[e->tid % ZFLUSH_SLOTS];

	ct->stats.zflush_records++;
	z->tid = e->tid;
	z->strm = e->strm;
	z->total_out = e->total_out;
	z->fresh = e->total_out != 0;
	return 0;
}

bool conntrack_zflush_take(struct conntrack *ct, uint32_t tid, uint64_t *strm, uint64_t *total_out)
{
	struct zflush_slot *z = &ct->zflush[tid % ZFLUSH_SLOTS];

	if (!z->fresh || z->tid != tid)
		return false;
	z->fresh = false;
	*strm = z->strm;
	*total_out = z->total_out;
	return true;
}

static int handle_conn(void *ctx, const void *rec, size_t size)
{
	struct conntrack *ct = ctx;
	const struct evt_conn *e = rec;
	struct ct_conn *c = table_find(ct, e->conn.ino);

	if (e->hdr.type == EVT_CONN_CLOSE) {
		if (!c || c->id.gen != e->conn.gen)
			return 0;
		/* The closing thread's stack came right before (bpf/pystack.bpf.c, close_walk). */
		if (c->priv->pending_stack && c->priv->pending_site == STACK_AT_CLOSE &&
		    c->priv->pending_tid == e->tid) {
			c->closer = c->priv->pending_stack;
			c->priv->close_pos = c->priv->pending_pos;
		}
		conn_destroy(ct, c, e->hdr.ts_ns, "closed");
		return 0;
	}
	if (c && c->id.gen != e->conn.gen) {
		conn_destroy(ct, c, e->hdr.ts_ns, "replaced");
		c = NULL;
	}
	if (!c)
		c = conn_create(ct, &e->conn, e->tgid, e->comm);
	if (!c)
		return 0;
	if (e->conn.ino & TLS_CONN_INO) {
		/* Its addresses are its socket's, once the link names it. */
		if (!c->tls) {
			c->tls = true;
			c->tls_link = "pending";
			ct->stats.tls_conns++;
		}
		return 0;
	}
	format_addr(c->local, sizeof(c->local), e->family, e->saddr, e->sport);
	format_addr(c->peer, sizeof(c->peer), e->family, e->daddr, e->dport);
	return 0;
}

/*
 * A TLS connection's ciphertext went out on a socket: the connection takes the socket's
 * addresses, and the socket is known to carry it (its ciphertext is neither skipped nor
 * parsed).  A second socket for the same connection is a conflict, said and counted: the
 * first link is kept.
 */
static int handle_tls_link(void *ctx, const void *rec, size_t size)
{
	struct conntrack *ct = ctx;
	const struct evt_tls_link *e = rec;
	struct ct_conn *t = table_find(ct, e->tls.ino), *c = table_find(ct, e->sock.ino);

	if (!t || t->id.gen != e->tls.gen || !t->tls)
		return 0;
	if (c && c->id.gen != e->sock.gen)
		c = NULL;
	if (t->tls_link && !strcmp(t->tls_link, "linked")) {
		t->tls_link = "conflict";
		ct->stats.tls_link_conflicts++;
		log_warn("TLS connection %s of pid %u: its ciphertext went out on a second socket "
			 "(%s): its peer stays the first one's",
			 t->id_str, t->tgid, c ? c->peer : "unknown");
		return 0;
	}
	if (strcmp(t->tls_link, "pending"))
		return 0;
	t->tls_link = "linked";
	ct->stats.tls_linked++;
	if (!c)
		return 0;
	memcpy(t->local, c->local, sizeof(t->local));
	memcpy(t->peer, c->peer, sizeof(t->peer));
	if (c->state == CT_UNKNOWN || c->state == CT_HANDSHAKE) {
		/* Its TLS handshake went unseen (a lost record, or before the trace). */
		c->state = CT_TLS;
		ct->stats.conns_tls++;
		conn_release_parsers(ct, c);
		if (ct->sink.verdict)
			ct->sink.verdict(ct->sink.ctx, &c->id, CONN_IGNORE);
	}
	c->tls_link = "linked";
	c->priv->carried = t->id;
	return 0;
}

static int handle_passed(void *ctx, const void *rec, size_t size)
{
	struct conntrack *ct = ctx;
	const struct evt_conn *e = rec;
	struct ct_conn *c = table_find(ct, e->conn.ino);

	if (c && c->id.gen != e->conn.gen)
		c = NULL;
	ct->stats.conns_fd_passed++;
	if (ct->sink.conn_passed)
		ct->sink.conn_passed(ct->sink.ctx, c, e);
	return 0;
}

static int count_malformed(void *ctx, const void *rec, size_t size)
{
	struct conntrack *ct = ctx;

	ct->stats.malformed_records++;
	return 0;
}

const struct records *conntrack_routes(struct conntrack *ct)
{
	return &ct->routes;
}

int conntrack_record(struct conntrack *ct, const void *data, size_t size)
{
	return records_dispatch(&ct->routes, data, size);
}

void conntrack_forget_tgid(struct conntrack *ct, uint32_t tgid, uint64_t ts_ns)
{
	struct ct_conn *c, *next;

	for (size_t i = 0; i < ct->nbuckets; i++) {
		for (c = ct->buckets[i]; c; c = next) {
			next = c->priv->next;
			if (c->tgid == tgid)
				conn_destroy(ct, c, ts_ns, "process_exit");
		}
	}
}

struct conntrack *conntrack_new(const struct ct_sink *sink, size_t max_message)
{
	struct conntrack *ct = calloc(1, sizeof(*ct));

	if (!ct)
		return NULL;
	ct->sink = *sink;
	ct->max_message = max_message;
	ct->routes.on[EVT_DATA] = (struct record_route){ handle_data, ct };
	ct->routes.on[EVT_STACK] = (struct record_route){ handle_stack, ct };
	ct->routes.on[EVT_SEGS] = (struct record_route){ handle_segs, ct };
	ct->routes.on[EVT_ZFLUSH] = (struct record_route){ handle_zflush, ct };
	ct->routes.on[EVT_TLS_LINK] = (struct record_route){ handle_tls_link, ct };
	ct->routes.on[EVT_CONN_PASSED] = (struct record_route){ handle_passed, ct };
	ct->routes.on[EVT_CONN_NEW] = (struct record_route){ handle_conn, ct };
	ct->routes.on[EVT_CONN_CLOSE] = (struct record_route){ handle_conn, ct };
	ct->routes.malformed = (struct record_route){ count_malformed, ct };
	ct->nbuckets = TABLE_MIN_BUCKETS;
	ct->buckets = calloc(ct->nbuckets, sizeof(*ct->buckets));
	if (!ct->buckets) {
		free(ct);
		return NULL;
	}
	return ct;
}

void conntrack_end_all(struct conntrack *ct, const char *why, uint64_t ts_ns)
{
	struct ct_conn *c, *next;

	for (size_t i = 0; i < ct->nbuckets; i++) {
		for (c = ct->buckets[i]; c; c = next) {
			next = c->priv->next;
			conn_destroy(ct, c, ts_ns, why);
		}
	}
}

void conntrack_foreach(struct conntrack *ct, void (*fn)(void *ctx, const struct ct_conn *c),
		       void *ctx)
{
	for (size_t i = 0; i < ct->nbuckets; i++) {
		for (struct ct_conn *c = ct->buckets[i]; c; c = c->priv->next)
			fn(ctx, c);
	}
}

void conntrack_free(struct conntrack *ct, const char *why)
{
	if (!ct)
		return;
	conntrack_end_all(ct, why, 0);
	free(ct->buckets);
	free(ct);
}

const struct ct_stats *conntrack_stats(struct conntrack *ct)
{
	const struct ws_parser_stats *ps;
	const struct ws_stream_stats *ss;
	struct ct_conn *c;

	ct->stats.truncated_frames = ct->closed_truncated;
	ct->stats.gap_bytes = ct->closed_gap_bytes;
	ct->stats.desyncs = ct->closed_desyncs;
	ct->stats.context_losses = ct->closed_context_losses;
	ct->stats.adopted_history_unknown = ct->closed_history_unknown;
	memcpy(ct->stats.messages, ct->closed_messages, sizeof(ct->stats.messages));
	for (size_t i = 0; i < ct->nbuckets; i++) {
		for (c = ct->buckets[i]; c; c = c->priv->next) {
			if (!c->priv->tx)
				continue;
			ps = ws_stream_parser_stats(c->priv->tx);
			ss = ws_stream_stats(c->priv->tx);
			ct->stats.truncated_frames += ps->truncated_frames;
			ct->stats.gap_bytes += ps->gap_bytes;
			ct->stats.desyncs += ps->desyncs;
			ct->stats.context_losses += ss->context_losses;
			if (c->adopted && ws_stream_history_unknown(c->priv->tx))
				ct->stats.adopted_history_unknown++;
			for (int m = 0; m < WS_MSG__COUNT; m++)
				ct->stats.messages[m] += ss->messages[m];
		}
	}
	return &ct->stats;
}

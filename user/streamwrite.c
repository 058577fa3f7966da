// SPDX-License-Identifier: GPL-2.0
/*
 * The bytes of a connection's stream are held back until the frames they hold are reported
 * (ws_stream reports a frame when its last byte comes), so that a frame's origin and verdict
 * go on the packet that carries its first byte.  What is held is bounded per connection
 * (SW_SEGS chunks, SW_PENDING_MAX bytes): past it the oldest chunks are written, and a frame
 * that began in one already written is described on the packet of its last bytes.
 *
 * Sequence numbers are stream positions: a server byte at position P has sequence number
 * ISN_SERVER + 1 + P - start (start: where the 101 response began), so a hole (bytes that
 * left but were not captured) is a jump of sequence numbers, said in a comment too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "causal.h"
#include "clock.h"
#include "log.h"
#include "pcapng.h"
#include "rules.h"
#include "streamwrite.h"

#define SW_BUCKETS 256
/* Chunks and bytes held back per connection, waiting for their frames' verdicts. */
#define SW_SEGS 64
#define SW_PENDING_MAX (256 << 10)
/* Frames described on one packet; more are counted (a chunk can hold hundreds of pings). */
#define SW_COMMENTS_MAX 32
/* Comments on one packet: those frames', a hole's and the connection's own. */
#define SW_NOTES_MAX (SW_COMMENTS_MAX + 8)
/* Room kept under the bounds for a connection's last packet, which says why it ends. */
#define SW_RESERVE 2048
/* Give-ups said one by one on stderr; past this they are counted (and in the summary). */
#define SW_SAID_MAX 8
#define ISN_SERVER 0x10000000U
#define ISN_CLIENT 0x20000000U

#ifndef WSAUDIT_VERSION
#define WSAUDIT_VERSION "0.0.0"
#endif

/* Comments for one packet: NUL-separated strings. */
struct sw_notes {
	char *buf;
	size_t len, cap;
	unsigned int n;
	unsigned int dropped; /* frames past SW_COMMENTS_MAX */
};

struct sw_seg {
	uint64_t pos;
	size_t len;
	uint64_t ts_ns;
	uint64_t hole; /* bytes not captured right before it */
	uint8_t *data;
	struct sw_notes notes;
};

struct sw_conn {
	struct conn_id id;
	struct sw_conn *chain;
	char name[48]; /* the files' name without suffix */
	int pcap, raw; /* -1: closed */
	uint64_t pcap_len, raw_len; /* bytes written whole, where a failed write is cut back to */
	uint64_t written; /* bytes of both files */
	struct pcapng_addr server, client;
	uint32_t ack; /* the client's next sequence number */
	uint64_t start; /* stream position of sequence number ISN_SERVER + 1 */
	uint64_t next; /* stream position after the last byte taken (data or hole) */
	uint64_t hole; /* bytes of a hole not yet said, before the next chunk */
	uint64_t done; /* end of the last frame reported */
	uint64_t frames;
	uint64_t last_ts;
	bool raw_on;
	bool stopped; /* given up (a bound, an error): nothing more is written */
	struct sw_seg seg[SW_SEGS]; /* held back, oldest first */
	unsigned int nseg;
	size_t pending;
	struct sw_notes carry; /* for the next packet written */
};

struct streamwrite {
	char dir[4096];
	int dirfd;
	uint64_t conn_max, run_max;
	int64_t real_off; /* CLOCK_MONOTONIC to Unix time */
	bool run_full;
	unsigned int said;
	struct sw_conn *buckets[SW_BUCKETS];
	struct pcapng_buf buf;
	struct streamwrite_stats stats;
};

#define SW_SKIP_NAME(name, str) [name] = str,
static const char *const skip_names[SW_SKIP__COUNT] = { STREAMWRITE_SKIP_REASONS(SW_SKIP_NAME) };
#undef SW_SKIP_NAME

const char *streamwrite_skip_name(enum streamwrite_skip r)
{
	return r < SW_SKIP__COUNT ? skip_names[r] : "unknown";
}

static void notes_add(struct sw_notes *n, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void notes_add(struct sw_notes *n, const char *fmt, ...)
{
	char line[PCAPNG_COMMENT_MAX];
	size_t len;
	va_list ap;
	char *p;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	len = strlen(line) + 1;
	if (n->cap - n->len < len) {
		size_t cap = n->cap ? n->cap * 2 : 512;

		while (cap - n->len < len)
			cap *= 2;
		p = realloc(n->buf, cap);
		if (!p)
			return;
		n->buf = p;
		n->cap = cap;
	}
	memcpy(n->buf + n->len, line, len);
	n->len += len;
	n->n++;
}

/* The notes of b appended to a's. */
static void notes_move(struct sw_notes *a, struct sw_notes *b)
{
	for (size_t off = 0; off < b->len; off += strlen(b->buf + off) + 1)
		notes_add(a, "%s", b->buf + off);
	a->dropped += b->dropped;
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

static void notes_free(struct sw_notes *n)
{
	free(n->buf);
	memset(n, 0, sizeof(*n));
}

static size_t bucket_of(const struct conn_id *id)
{
	return (size_t)((id->ino ^ (id->gen * 0x9e3779b97f4a7c15ULL)) % SW_BUCKETS);
}

static struct sw_conn *find(struct streamwrite *w, const struct conn_id *id)
{
	struct sw_conn *c;

	for (c = w->buckets[bucket_of(id)]; c; c = c->chain)
		if (c->id.ino == id->ino && c->id.gen == id->gen)
			return c;
	return NULL;
}

static void unlink_conn(struct streamwrite *w, struct sw_conn *c)
{
	struct sw_conn **pp = &w->buckets[bucket_of(&c->id)];

	while (*pp && *pp != c)
		pp = &(*pp)->chain;
	if (*pp)
		*pp = c->chain;
}

static void say(struct streamwrite *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A give-up on stderr: the first SW_SAID_MAX one by one, then that more are counted. */
static void say(struct streamwrite *w, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (w->said > SW_SAID_MAX)
		return;
	if (w->said++ == SW_SAID_MAX) {
		log_warn("--write: more connections not written whole are counted only (stats "
			 "record, `write`)");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("--write: %s", msg);
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t r = write(fd, b, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static void close_files(struct sw_conn *c)
{
	if (c->pcap >= 0)
		close(c->pcap);
	if (c->raw >= 0)
		close(c->raw);
	c->pcap = c->raw = -1;
}

static void drop_pending(struct streamwrite *w, struct sw_conn *c)
{
	for (unsigned int i = 0; i < c->nseg; i++) {
		w->stats.bytes_not_written += c->seg[i].len;
		free(c->seg[i].data);
		notes_free(&c->seg[i].notes);
	}
	c->nseg = 0;
	c->pending = 0;
}

/*
 * A failed write: both files are cut back to what was written whole (a valid pcapng, a
 * stream that ends on a byte it had), and nothing more is written.
 */
static void write_failed(struct streamwrite *w, struct sw_conn *c, const char *file, int err)
{
	w->stats.write_errors++;
	w->stats.skipped[SW_SKIP_WRITE_ERROR]++;
	if (c->pcap >= 0 && ftruncate(c->pcap, (off_t)c->pcap_len))
		log_debug("--write: cutting %s.pcapng back: %s", c->name, strerror(errno));
	if (c->raw >= 0 && ftruncate(c->raw, (off_t)c->raw_len))
		log_debug("--write: cutting %s.ws back: %s", c->name, strerror(errno));
	say(w, "%s/%s%s: %s: the rest of the connection is not written", w->dir, c->name, file,
	    strerror(-err));
	c->stopped = true;
	if (w->stats.conns_open)
		w->stats.conns_open--;
	close_files(c);
	drop_pending(w, c);
}

static uint32_t seq_of(const struct sw_conn *c, uint64_t pos)
{
	return (uint32_t)(ISN_SERVER + 1 + (pos - c->start));
}

/* One packet, its comments, and raw bytes for the .ws file; no bound checked.  0 or -errno. */
static int put(struct streamwrite *w, struct sw_conn *c, const struct pcapng_seg *s,
	       struct sw_notes *notes, bool raw)
{
	const char *comments[SW_NOTES_MAX + 1];
	unsigned int dropped = notes ? notes->dropped : 0;
	char more[128];
	size_t n = 0, off;
	int err;

	for (off = 0; notes && off < notes->len;) {
		if (n < SW_NOTES_MAX)
			comments[n++] = notes->buf + off;
		else
			dropped++; /* counted: one comment says how many */
		off += strlen(notes->buf + off) + 1;
	}
	if (dropped) {
		snprintf(more, sizeof(more),
			 "%u more comments on this packet (frames beginning in it) not written: "
			 "the bound of comments a packet",
			 dropped);
		comments[n++] = more;
		w->stats.comments_dropped += dropped;
	}
	pcapng_buf_reset(&w->buf);
	err = pcapng_packet(&w->buf, s, comments, n);
	if (!err)
		err = write_all(c->pcap, w->buf.p, w->buf.len);
	if (err) {
		write_failed(w, c, ".pcapng", err);
		return err;
	}
	c->pcap_len += w->buf.len;
	c->written += w->buf.len;
	w->stats.bytes += w->buf.len;
	w->stats.packets++;
	if (raw && c->raw_on && s->len) {
		err = write_all(c->raw, s->data, s->len);
		if (err) {
			write_failed(w, c, ".ws", err);
			return err;
		}
		c->raw_len += s->len;
		c->written += s->len;
		w->stats.bytes += s->len;
	}
	return 0;
}

static void server_seg(const struct sw_conn *c, struct pcapng_seg *s, uint32_t seq, uint8_t flags,
		       uint64_t ts_ns)
{
	s->src = &c->server;
	s->dst = &c->client;
	s->seq = seq;
	s->ack = c->ack;
	s->flags = flags;
	s->ts_ns = ts_ns;
	s->data = NULL;
	s->len = 0;
}

/*
 * The connection's last packet: an empty segment at the stream's end (a FIN when it was
 * closed), with what is held and why it ends.  Written past the bounds (SW_RESERVE).
 */
static void finish(struct streamwrite *w, struct sw_conn *c, uint64_t ts_ns, bool fin,
		   struct sw_notes *why)
{
	struct pcapng_seg s;

	if (c->hole) {
		notes_add(&c->carry,
			  "hole: the last %llu bytes of the stream left but were not captured "
			  "(sequence numbers jump to %u)",
			  (unsigned long long)c->hole, seq_of(c, c->next));
		w->stats.holes++;
		w->stats.hole_bytes += c->hole;
		c->hole = 0;
	}
	notes_move(&c->carry, why);
	server_seg(c, &s, seq_of(c, c->next), PCAPNG_TCP_ACK | (fin ? PCAPNG_TCP_FIN : 0), ts_ns);
	if (!put(w, c, &s, &c->carry, false) && w->stats.conns_open)
		w->stats.conns_open--;
	notes_free(&c->carry);
	close_files(c);
	c->stopped = true;
}

/* Gives the connection up for reason (a bound): its last packet says so. */
static void give_up(struct streamwrite *w, struct sw_conn *c, enum streamwrite_skip reason,
		    uint64_t ts_ns)
{
	struct sw_notes why = {};
	uint64_t held = c->pending;

	w->stats.skipped[reason]++;
	/* What is held is not written: said with the packet, counted with the rest. */
	for (unsigned int i = 0; i < c->nseg; i++)
		notes_move(&c->carry, &c->seg[i].notes);
	drop_pending(w, c);
	notes_add(&why,
		  "not written from here: %s (%llu bytes of files for this connection, %llu for "
		  "the run; %llu bytes held back dropped)",
		  reason == SW_SKIP_CONN_MAX ? "the connection's bound (--write-conn-max)" :
					       "the run's bound (--write-run-max)",
		  (unsigned long long)c->written, (unsigned long long)w->stats.bytes,
		  (unsigned long long)held);
	say(w, "%s/%s: %s reached: the rest of the connection is not written", w->dir, c->name,
	    reason == SW_SKIP_CONN_MAX ? "--write-conn-max" : "--write-run-max");
	finish(w, c, ts_ns, false, &why);
	notes_free(&why);
}

/* Whether need more bytes fit the bounds; if not, the connection is given up. */
static bool fits(struct streamwrite *w, struct sw_conn *c, uint64_t need, uint64_t ts_ns)
{
	if (!w->run_full && w->stats.bytes + need + SW_RESERVE > w->run_max) {
		w->run_full = true;
		log_warn("--write: the run's bound (%llu bytes) is reached: no more is written "
			 "to %s",
			 (unsigned long long)w->run_max, w->dir);
	}
	if (w->run_full) {
		give_up(w, c, SW_SKIP_RUN_MAX, ts_ns);
		return false;
	}
	if (c->written + need + SW_RESERVE > w->conn_max) {
		give_up(w, c, SW_SKIP_CONN_MAX, ts_ns);
		return false;
	}
	return true;
}

/* The oldest held chunk, written (in pieces of at most PCAPNG_SEG_MAX). */
static void flush_one(struct streamwrite *w, struct sw_conn *c)
{
	struct sw_seg *g = &c->seg[0];
	struct pcapng_seg s;
	size_t off = 0;

	if (g->hole) {
		notes_add(&g->notes,
			  "hole: %llu bytes of the stream left before this packet but were not "
			  "captured (sequence numbers jump from %u to %u)",
			  (unsigned long long)g->hole, seq_of(c, g->pos - g->hole),
			  seq_of(c, g->pos));
		w->stats.holes++;
		w->stats.hole_bytes += g->hole;
		if (c->raw_on) {
			notes_add(&g->notes,
				  "%s.ws ends before this packet: a raw stream cannot show a hole",
				  c->name);
			c->raw_on = false;
			w->stats.raw_cut++;
		}
	}
	if (c->carry.n || c->carry.dropped) {
		notes_move(&c->carry, &g->notes);
		g->notes = c->carry;
		memset(&c->carry, 0, sizeof(c->carry));
	}
	if (fits(w, c, g->len + 256 + g->notes.len + (c->raw_on ? g->len : 0), g->ts_ns)) {
		do {
			size_t n = g->len - off < PCAPNG_SEG_MAX ? g->len - off : PCAPNG_SEG_MAX;

			server_seg(c, &s, seq_of(c, g->pos + off), PCAPNG_TCP_PSH | PCAPNG_TCP_ACK,
				   g->ts_ns);
			s.data = g->data + off;
			s.len = n;
			if (put(w, c, &s, off ? NULL : &g->notes, true))
				return; /* the connection is given up: its chunks are freed */
			off += n;
		} while (off < g->len);
	}
	if (c->stopped)
		return;
	free(g->data);
	notes_free(&g->notes);
	c->pending -= g->len;
	memmove(&c->seg[0], &c->seg[1], (c->nseg - 1) * sizeof(c->seg[0]));
	c->nseg--;
}

/* Writes the chunks whose every frame has been reported. */
static void flush_done(struct streamwrite *w, struct sw_conn *c)
{
	while (!c->stopped && c->nseg && c->seg[0].pos + c->seg[0].len <= c->done)
		flush_one(w, c);
}

static void flush_all(struct streamwrite *w, struct sw_conn *c)
{
	while (!c->stopped && c->nseg)
		flush_one(w, c);
}

static int open_file(struct streamwrite *w, struct sw_conn *c, const char *base, const char *ext)
{
	char path[128];
	int fd = -1;

	/* A file of an earlier run with the same name is kept: the next free suffix is taken. */
	for (int i = 0; i < 100 && fd < 0; i++) {
		if (i)
			snprintf(path, sizeof(path), "%s.%d%s", base, i, ext);
		else
			snprintf(path, sizeof(path), "%s%s", base, ext);
		fd = openat(w->dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0600);
		if (fd < 0 && errno != EEXIST)
			return -errno;
		if (fd >= 0 && !strcmp(ext, ".pcapng")) {
			/* The raw file takes the same name. */
			snprintf(c->name, sizeof(c->name), "%.*s",
				 (int)(strlen(path) - strlen(ext)), path);
		}
	}
	if (fd < 0)
		return -EEXIST;
	/* Whatever the umask: the bytes are the users'. */
	if (fchmod(fd, 0600)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void addr_of(const char *s, struct pcapng_addr *a, struct sw_notes *n, const char *what)
{
	if (!pcapng_parse_addr(s, a))
		return;
	memset(a, 0, sizeof(*a));
	notes_add(n, "the %s's address is not known (%s): 0.0.0.0 port 0 stands for it", what, s);
}

void streamwrite_conn_open(struct streamwrite *w, const struct ct_conn *c, uint64_t ts_ns)
{
	struct pcapng_seg s = {};
	struct sw_conn *sc;
	struct sw_notes n = {};
	char base[48];
	uint64_t ts;
	size_t rlen;
	int err;

	if (!w)
		return;
	ts = ts_ns + (uint64_t)w->real_off;
	if (w->run_full || w->stats.conns_open >= STREAMWRITE_OPEN_MAX) {
		enum streamwrite_skip r = w->run_full ? SW_SKIP_RUN_MAX : SW_SKIP_TOO_MANY_OPEN;

		w->stats.skipped[r]++;
		say(w, "connection %s (%s, pid %u) is not written: %s", c->id_str, c->peer, c->tgid,
		    r == SW_SKIP_RUN_MAX ? "--write-run-max reached" :
					   "too many connections written at once");
		return;
	}
	sc = calloc(1, sizeof(*sc));
	if (!sc) {
		w->stats.skipped[SW_SKIP_WRITE_ERROR]++;
		say(w, "connection %s is not written: out of memory", c->id_str);
		return;
	}
	sc->id = c->id;
	sc->pcap = sc->raw = -1;
	snprintf(base, sizeof(base), "%s", c->id_str);
	err = open_file(w, sc, base, ".pcapng");
	if (err >= 0) {
		sc->pcap = err;
		err = open_file(w, sc, sc->name, ".ws");
		if (err >= 0)
			sc->raw = err;
	}
	if (err < 0) {
		w->stats.write_errors++;
		w->stats.skipped[SW_SKIP_WRITE_ERROR]++;
		say(w, "connection %s is not written: cannot make its file in %s: %s", c->id_str,
		    w->dir, strerror(-err));
		close_files(sc);
		free(sc);
		return;
	}
	sc->chain = w->buckets[bucket_of(&c->id)];
	w->buckets[bucket_of(&c->id)] = sc;
	w->stats.conns++;
	w->stats.conns_open++;
	sc->raw_on = true;
	sc->last_ts = ts;

	pcapng_buf_reset(&w->buf);
	err = pcapng_header(&w->buf, "wsaudit " WSAUDIT_VERSION " (trace --write)");
	if (!err)
		err = write_all(sc->pcap, w->buf.p, w->buf.len);
	if (err) {
		write_failed(w, sc, ".pcapng", err);
		return;
	}
	sc->pcap_len = sc->written = w->buf.len;
	w->stats.bytes += w->buf.len;

	notes_add(&n,
		  "wsaudit trace --write: connection %s of pid %u (%s), server %s, client %s%s. "
		  "Read at the socket: the IP and TCP headers are made up, sequence numbers are "
		  "stream positions, and a hole is a jump of them, said in a comment",
		  c->id_str, c->tgid, c->comm, c->local, c->peer,
		  c->tls ? "; the plaintext of a TLS connection, read at libssl" : "");
	addr_of(c->local, &sc->server, &n, "server");
	addr_of(c->peer, &sc->client, &n, "client");
	if (sc->server.v6 != sc->client.v6) {
		memset(&sc->server, 0, sizeof(sc->server));
		memset(&sc->client, 0, sizeof(sc->client));
	}
	sc->next = c->ws_base;
	sc->done = c->ws_base;
	rlen = c->response_head ? strlen(c->response_head) : 0;
	if (c->adopted) {
		/* Open before the trace: its stream is followed from a frame boundary on. */
		sc->start = 0;
		sc->ack = ISN_CLIENT + 1;
		notes_add(&n,
			  "adopted: open before the trace, no handshake seen; its stream from "
			  "position %llu on (%s.ws too: decode it with --extensions if it is "
			  "compressed)",
			  (unsigned long long)c->ws_base, sc->name);
		sc->carry = n;
		return;
	}
	sc->start = rlen <= c->ws_base ? c->ws_base - rlen : c->ws_base;
	s.src = &sc->client;
	s.dst = &sc->server;
	s.ts_ns = ts;
	s.seq = ISN_CLIENT;
	s.flags = PCAPNG_TCP_SYN;
	if (put(w, sc, &s, &n, false))
		goto out;
	notes_free(&n);
	server_seg(sc, &s, ISN_SERVER, PCAPNG_TCP_SYN | PCAPNG_TCP_ACK, ts);
	s.ack = ISN_CLIENT + 1;
	if (put(w, sc, &s, NULL, false))
		return;
	s.src = &sc->client;
	s.dst = &sc->server;
	s.seq = ISN_CLIENT + 1;
	s.ack = ISN_SERVER + 1;
	s.flags = PCAPNG_TCP_ACK;
	if (put(w, sc, &s, NULL, false))
		return;
	if (c->request_head) {
		s.flags = PCAPNG_TCP_PSH | PCAPNG_TCP_ACK;
		s.data = (const uint8_t *)c->request_head;
		s.len = strlen(c->request_head);
		if (s.len > PCAPNG_SEG_MAX)
			s.len = PCAPNG_SEG_MAX;
		notes_add(&n, "the upgrade request as the server read it");
		if (put(w, sc, &s, &n, false))
			goto out;
		notes_free(&n);
		sc->ack = ISN_CLIENT + 1 + (uint32_t)s.len;
	} else {
		sc->ack = ISN_CLIENT + 1;
		notes_add(&sc->carry, "the upgrade request was not seen whole (%s): not written",
			  c->user_unknown ? c->user_unknown : "not captured");
	}
	server_seg(sc, &s, seq_of(sc, sc->start), PCAPNG_TCP_PSH | PCAPNG_TCP_ACK, ts);
	if (rlen) {
		s.data = (const uint8_t *)c->response_head;
		s.len = rlen;
		notes_add(&n, "the server's 101 response");
		notes_move(&n, &sc->carry);
		put(w, sc, &s, &n, true);
	} else {
		notes_add(&sc->carry, "the 101 response was not kept: %s.ws starts with frames",
			  sc->name);
	}
out:
	notes_free(&n);
}

void streamwrite_bytes(struct streamwrite *w, const struct ct_conn *c, uint64_t pos,
		       const uint8_t *data, size_t len, uint64_t ts_ns)
{
	struct sw_conn *sc = w ? find(w, &c->id) : NULL;
	struct sw_seg *g;

	if (!sc)
		return;
	if (sc->stopped) {
		if (data)
			w->stats.bytes_not_written += len;
		return;
	}
	if (pos + len <= sc->next)
		return;
	if (pos < sc->next) {
		if (data)
			data += sc->next - pos;
		len -= sc->next - pos;
		pos = sc->next;
	}
	/* Bytes that left but never came (lost records) are a hole too. */
	if (pos > sc->next)
		sc->hole += pos - sc->next;
	sc->next = pos + len;
	if (!data) {
		sc->hole += len;
		return;
	}
	while (sc->nseg && (sc->nseg == SW_SEGS || sc->pending + len > SW_PENDING_MAX)) {
		flush_one(w, sc);
		if (sc->stopped) {
			w->stats.bytes_not_written += len;
			return;
		}
	}
	g = &sc->seg[sc->nseg];
	memset(g, 0, sizeof(*g));
	g->data = malloc(len);
	if (!g->data) {
		/* Not kept: a hole like any other, said on the next packet. */
		sc->hole += len;
		w->stats.bytes_not_written += len;
		return;
	}
	memcpy(g->data, data, len);
	g->pos = pos;
	g->len = len;
	g->ts_ns = ts_ns + (uint64_t)w->real_off;
	g->hole = sc->hole;
	sc->hole = 0;
	sc->last_ts = g->ts_ns;
	sc->nseg++;
	sc->pending += len;
}

/* "text fin len 42 at stream 1234; origin: f (file:line) via task; verdict: ok" */
static void describe(const struct sw_conn *sc, const struct frame_view *fv, uint64_t pos,
		     const char *where, struct sw_notes *n)
{
	const struct ws_frame *f = fv->frame->frame;
	const struct attrib_frame *af;
	enum causal_via via = VIA_NONE;
	char origin[640], verdict[256] = "ok", extra[96] = "";
	size_t vn = 0;

	af = causal_origin(fv->stack, fv->link, &via);
	if (af)
		snprintf(origin, sizeof(origin), "%s (%s:%d)%s%s", af->function, af->file, af->line,
			 via != VIA_NONE ? " via " : "",
			 via != VIA_NONE ? causal_via_name(via) : "");
	else
		snprintf(origin, sizeof(origin), "unattributed (%s)",
			 unattributed_name(fv->stack->why));
	if (!fv->verdict)
		snprintf(verdict, sizeof(verdict), "not judged");
	for (size_t i = 0; fv->verdict && i < fv->verdict->nviolations && vn < sizeof(verdict); i++)
		vn += (size_t)snprintf(verdict + vn, sizeof(verdict) - vn, "%s%s", i ? ", " : "",
				       rule_name(fv->verdict->v[i].rule));
	if (f->truncated)
		snprintf(extra, sizeof(extra), "; truncated: %llu of its payload captured",
			 (unsigned long long)f->captured_len);
	else if (f->opcode == WS_OP_CLOSE && f->close_code > 0)
		snprintf(extra, sizeof(extra), "; close code %d", f->close_code);
	notes_add(n, "frame %llu: %s%s len %llu at seq %u%s%s; origin: %s; verdict: %s",
		  (unsigned long long)sc->frames, ws_opcode_name(f->opcode),
		  f->fin ? "" : " (more)", (unsigned long long)f->payload_len, seq_of(sc, pos),
		  where, extra, origin, verdict);
}

void streamwrite_frame(struct streamwrite *w, const struct frame_view *fv)
{
	const struct ct_frame *f = fv->frame;
	struct sw_conn *sc = w ? find(w, &f->conn->id) : NULL;
	uint64_t pos, end;
	struct sw_notes *n = NULL;
	const char *where = "";

	if (!sc || sc->stopped)
		return;
	sc->frames++;
	w->stats.frames++;
	pos = f->conn->ws_base + f->frame->stream_off;
	end = pos + f->frame->header_len + f->frame->payload_len;
	if (f->lost) {
		/* Its bytes never left: it has no packet. */
		if (sc->carry.n >= SW_COMMENTS_MAX)
			sc->carry.dropped++;
		else
			describe(sc, fv, pos,
				 " (never sent: the write failed and the connection ended)",
				 &sc->carry);
		return;
	}
	for (unsigned int i = 0; i < sc->nseg && !n; i++)
		if (pos >= sc->seg[i].pos && pos < sc->seg[i].pos + sc->seg[i].len)
			n = &sc->seg[i].notes;
	if (!n && sc->nseg) {
		/* Its first bytes were written already (the bound of what is held back). */
		n = &sc->seg[sc->nseg - 1].notes;
		where = " (it begins in an earlier packet)";
	}
	if (!n)
		n = &sc->carry;
	if (n->n >= SW_COMMENTS_MAX)
		n->dropped++;
	else
		describe(sc, fv, pos, where, n);
	if (end > sc->done)
		sc->done = end;
	flush_done(w, sc);
}

void streamwrite_conn_close(struct streamwrite *w, const struct ct_conn *c, uint64_t ts_ns,
			    const char *why)
{
	struct sw_conn *sc = w ? find(w, &c->id) : NULL;
	struct sw_notes n = {};
	bool fin = !strcmp(why, "closed") || !strcmp(why, "process_exit");

	if (!sc)
		return;
	if (!sc->stopped) {
		flush_all(w, sc);
		if (!sc->stopped) {
			notes_add(&n,
				  fin ? "the connection ended (%s)" :
					"the trace ended, the connection still open (%s)",
				  why);
			finish(w, sc, ts_ns ? ts_ns + (uint64_t)w->real_off : sc->last_ts, fin, &n);
		}
	}
	notes_free(&n);
	notes_free(&sc->carry);
	drop_pending(w, sc);
	unlink_conn(w, sc);
	free(sc);
}

struct streamwrite *streamwrite_open(const struct streamwrite_opts *o, char *err, size_t errlen)
{
	struct streamwrite *w = calloc(1, sizeof(*w));
	char probe[64];
	int fd;

	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(w->dir, sizeof(w->dir), "%s", o->dir);
	w->conn_max = o->conn_max ? o->conn_max : STREAMWRITE_CONN_MAX_DEFAULT;
	w->run_max = o->run_max ? o->run_max : STREAMWRITE_RUN_MAX_DEFAULT;
	if (mkdir(o->dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "--write %s: cannot make the directory: %s", o->dir,
			 strerror(errno));
		goto fail;
	}
	w->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		snprintf(err, errlen, "--write %s: %s", o->dir, strerror(errno));
		goto fail;
	}
	/* A directory that cannot take a file is said now, not with the first connection. */
	snprintf(probe, sizeof(probe), ".wsaudit-write-check.%d", (int)getpid());
	fd = openat(w->dirfd, probe, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "--write %s: cannot write in it: %s", o->dir,
			 strerror(errno));
		close(w->dirfd);
		goto fail;
	}
	close(fd);
	unlinkat(w->dirfd, probe, 0);
	w->real_off = mono_to_real_offset();
	return w;

fail:
	free(w);
	return NULL;
}

void streamwrite_close(struct streamwrite *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < SW_BUCKETS; i++) {
		while (w->buckets[i]) {
			struct ct_conn gone = { .id = w->buckets[i]->id };

			streamwrite_conn_close(w, &gone, 0, "trace_end");
		}
	}
	pcapng_buf_free(&w->buf);
	close(w->dirfd);
	free(w);
}

const struct streamwrite_stats *streamwrite_stats(const struct streamwrite *w)
{
	return &w->stats;
}

const char *streamwrite_dir(const struct streamwrite *w)
{
	return w->dir;
}

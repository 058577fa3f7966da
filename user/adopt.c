// SPDX-License-Identifier: GPL-2.0
/*
 * Compression history of adopted connections.  See adopt.h and docs/adoption.md.
 *
 * Why positions and not content: the collector reads the ring buffer behind the process, so
 * a history read now is that of a message the collector has not seen yet, and a raw deflate
 * stream has no check value: inflating with the wrong history "succeeds" with wrong bytes,
 * and connections sending alike messages (a broadcast, a heartbeat) make wrong bytes look
 * right.  The output count pins the position exactly: the history read when the count was T
 * belongs to the message after the one that ended at T, whose own end must then be at
 * T + its compressed length + 4 (the 00 00 ff ff tail that RFC 7692 strips).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "adopt.h"
#include "utf8.h"
#include "ws_deflate.h"
#include "ws_frame.h"
#include "ws_message.h"
#include "zhist.h"

/* Histories kept per compressor: read at the ends of messages not seen yet. */
#define SNAPS 8
/* Histories kept in all (32 KiB each). */
#define SNAPS_MAX 1024
#define COMPS_MAX 4096
/* What a message's end adds to the output count besides its compressed bytes. */
#define TAIL_LEN 4

struct comp {
	uint64_t strm;
	bool bound; /* its connection's history was found */
	struct conn_id conn; /* bound: its connection; else the one pending is for */
	struct zhist_snap *snaps[SNAPS];
	unsigned int nsnaps;
};

struct adopt_proc {
	pid_t pid;
	struct comp *comps;
	size_t ncomps;
	struct adopt_proc *next;
};

struct adopt {
	struct adopt_proc *procs;
	struct ws_inflater *trial;
	struct ws_buf out;
	struct zhist_snap *now; /* scratch */
	struct zhist_snap *dict; /* what the last success returned */
	uint64_t *found; /* scratch of a scan */
	size_t nsnaps;
	struct adopt_stats stats;
};

struct adopt *adopt_new(void)
{
	struct adopt *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->trial = ws_inflater_new();
	a->now = malloc(sizeof(*a->now));
	a->dict = malloc(sizeof(*a->dict));
	a->found = calloc(ZHIST_SCAN_FOUND_MAX, sizeof(*a->found));
	if (!a->trial || !a->now || !a->dict || !a->found) {
		adopt_free(a);
		return NULL;
	}
	return a;
}

static void snap_free(struct adopt *a, struct zhist_snap *s)
{
	if (!s)
		return;
	free(s);
	a->nsnaps--;
}

static void comp_clear(struct adopt *a, struct comp *c)
{
	for (unsigned int i = 0; i < c->nsnaps; i++)
		snap_free(a, c->snaps[i]);
	c->nsnaps = 0;
}

static void proc_free(struct adopt *a, struct adopt_proc *p)
{
	for (size_t i = 0; i < p->ncomps; i++)
		comp_clear(a, &p->comps[i]);
	free(p->comps);
	free(p);
}

void adopt_free(struct adopt *a)
{
	struct adopt_proc *p, *next;

	if (!a)
		return;
	for (p = a->procs; p; p = next) {
		next = p->next;
		proc_free(a, p);
	}
	ws_inflater_free(a->trial);
	ws_buf_free(&a->out);
	free(a->now);
	free(a->dict);
	free(a->found);
	free(a);
}

static struct adopt_proc *proc_get(struct adopt *a, pid_t pid)
{
	struct adopt_proc *p;

	for (p = a->procs; p; p = p->next) {
		if (p->pid == pid)
			return p;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	p->next = a->procs;
	a->procs = p;
	return p;
}

static struct comp *comp_get(struct adopt_proc *p, uint64_t strm)
{
	struct comp *c;

	for (size_t i = 0; i < p->ncomps; i++) {
		if (p->comps[i].strm == strm)
			return &p->comps[i];
	}
	if (p->ncomps >= COMPS_MAX)
		return NULL;
	c = realloc(p->comps, (p->ncomps + 1) * sizeof(*c));
	if (!c)
		return NULL;
	p->comps = c;
	c = &p->comps[p->ncomps++];
	memset(c, 0, sizeof(*c));
	c->strm = strm;
	return c;
}

static bool same_conn(const struct conn_id *x, const struct conn_id *y)
{
	return x->ino == y->ino && x->gen == y->gen;
}

/* A copy of a->now, counted against the bound; NULL when over it. */
static struct zhist_snap *snap_copy(struct adopt *a)
{
	struct zhist_snap *s;

	if (a->nsnaps >= SNAPS_MAX) {
		a->stats.snapshots_over_limit++;
		return NULL;
	}
	s = malloc(sizeof(*s));
	if (!s)
		return NULL;
	memcpy(s, a->now, sizeof(*s));
	a->nsnaps++;
	return s;
}

/* Drops the histories of message ends before total_out: no message to come needs them. */
static void comp_prune(struct adopt *a, struct comp *c, uint64_t total_out)
{
	unsigned int k = 0;

	for (unsigned int i = 0; i < c->nsnaps; i++) {
		if (c->snaps[i]->total_out < total_out)
			snap_free(a, c->snaps[i]);
		else
			c->snaps[k++] = c->snaps[i];
	}
	c->nsnaps = k;
}

/* Inflates the message with s's history: clean, and valid UTF-8 for text. */
static bool trial(struct adopt *a, const struct zhist_snap *s, uint8_t opcode, const uint8_t *wire,
		  size_t len)
{
	ws_buf_reset(&a->out, WS_STREAM_DEFAULT_MAX_MESSAGE);
	if (ws_inflater_prime(a->trial, s->dict, s->len) ||
	    ws_inflater_feed(a->trial, wire, len, true, &a->out))
		return false;
	/* Text beyond the kept bound is not checked: too_large is said for it anyway. */
	return opcode != WS_OP_TEXT || utf8_valid(a->out.data, a->out.len);
}

/* Keeps a copy of a->now for the message that follows its end, newest replacing the oldest. */
static void comp_keep(struct adopt *a, struct comp *c)
{
	struct zhist_snap *s;

	for (unsigned int i = 0; i < c->nsnaps; i++) {
		if (c->snaps[i]->total_out == a->now->total_out)
			return; /* kept already */
	}
	s = snap_copy(a);
	if (!s)
		return;
	if (c->nsnaps == SNAPS) {
		snap_free(a, c->snaps[0]);
		memmove(c->snaps, c->snaps + 1, (SNAPS - 1) * sizeof(c->snaps[0]));
		c->nsnaps--;
	}
	c->snaps[c->nsnaps++] = s;
}

/* Reads c's history now into a->now and keeps it; 0 or -errno. */
static int comp_snapshot(struct adopt *a, pid_t pid, struct comp *c)
{
	int err = zhist_snapshot(pid, c->strm, a->now);

	if (err == -EAGAIN)
		a->stats.snapshots_busy++;
	else if (err)
		a->stats.snapshots_failed++;
	else
		a->stats.snapshots++;
	if (!err)
		comp_keep(a, c);
	return err;
}

int adopt_history(struct adopt *a, pid_t pid, const struct conn_id *conn, uint64_t strm,
		  uint64_t total_out, uint8_t opcode, const uint8_t *wire, size_t len,
		  const uint8_t **dict, size_t *dict_len)
{
	struct adopt_proc *p;
	struct comp *c;

	a->stats.attempts++;
	if (!strm || !total_out) {
		a->stats.untagged++;
		return -ENOENT;
	}
	p = proc_get(a, pid);
	c = p ? comp_get(p, strm) : NULL;
	if (!c)
		return -ENOMEM;
	if (c->bound) {
		/* Its history went to its connection already: a misattributed write. */
		a->stats.conflicts++;
		return -ENOENT;
	}
	/* A history read at the end of the message right before this one? */
	for (unsigned int i = 0; i < c->nsnaps; i++) {
		struct zhist_snap *s = c->snaps[i];

		if (s->total_out + len + TAIL_LEN != total_out)
			continue;
		/*
		 * The compressor's input after s must be what s inflates the message to: a
		 * message of another connection written at the moment this compressor's
		 * message ended (a misattributed write) fails here unless it is byte for byte
		 * the same (docs/adoption.md).
		 */
		if (!trial(a, s, opcode, wire, len) || zhist_snapshot(pid, strm, a->now) ||
		    !zhist_verify(s, a->now, a->out.data, a->out.len)) {
			a->stats.rejected++;
			break;
		}
		memcpy(a->dict, s, sizeof(*s));
		comp_clear(a, c);
		c->bound = true;
		c->conn = *conn;
		a->stats.recovered++;
		*dict = a->dict->dict;
		*dict_len = a->dict->len;
		return 0;
	}
	/* Histories of ends before this one's serve no message to come. */
	comp_prune(a, c, total_out);
	comp_snapshot(a, pid, c);
	return -ENOENT;
}

int adopt_scan_process(struct adopt *a, pid_t pid, bool *whole)
{
	struct zhist_scan_result res;
	struct adopt_proc *p = proc_get(a, pid);
	struct comp *c;
	int err;

	*whole = false;
	if (!p)
		return -ENOMEM;
	a->stats.scans++;
	err = zhist_scan(pid, a->found, ZHIST_SCAN_FOUND_MAX, &res);
	a->stats.scan_bytes += res.bytes_read;
	if (err) {
		a->stats.scan_errors++;
		return err;
	}
	if (res.limited)
		a->stats.scans_limited++;
	*whole = !res.limited;
	a->stats.compressors_found += res.found;
	for (size_t i = 0; i < res.found; i++) {
		c = comp_get(p, a->found[i]);
		if (c && !c->bound)
			comp_snapshot(a, pid, c);
	}
	return (int)res.found;
}

void adopt_conn_closed(struct adopt *a, pid_t pid, const struct conn_id *conn)
{
	struct adopt_proc *p;

	for (p = a->procs; p; p = p->next) {
		if (p->pid != pid)
			continue;
		for (size_t i = 0; i < p->ncomps; i++) {
			struct comp *c = &p->comps[i];

			if (same_conn(&c->conn, conn)) {
				comp_clear(a, c);
				p->comps[i--] = p->comps[--p->ncomps];
			}
		}
	}
}

void adopt_forget_pid(struct adopt *a, pid_t pid)
{
	struct adopt_proc **pp = &a->procs, *p;

	while ((p = *pp)) {
		if (p->pid == pid) {
			*pp = p->next;
			proc_free(a, p);
			return;
		}
		pp = &p->next;
	}
}

const struct adopt_stats *adopt_stats(const struct adopt *a)
{
	return &a->stats;
}

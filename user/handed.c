// SPDX-License-Identifier: GPL-2.0
/* Writes handed to a transport, followed until they reach its socket (see handed.h). */
#include <stdlib.h>
#include <string.h>

#include "handed.h"
#include "keyhash.h"

#define TRANSPORT_BUCKETS 4096

struct entry {
	struct handed_write w;
	uint64_t token;
	struct entry *next; /* the transport's writes, in the order it was given them */
};

struct transport {
	uint32_t tgid;
	uint64_t addr;
	struct entry *head, *tail;
	size_t n;
	/* Linked: a frame of one of its writes left on conn. */
	bool linked;
	/* Placed: head starts at stream position pos (every length since the link known). */
	bool placed;
	struct conn_id conn;
	uint64_t pos;
	uint64_t last_ns; /* when it was last given a write */
	struct transport *next; /* hash chain */
	struct transport *lru_prev, *lru_next; /* least recently given a write first */
	struct transport *link_prev, *link_next; /* the linked ones */
};

struct handed {
	struct transport *buckets[TRANSPORT_BUCKETS];
	struct transport *lru_head, *lru_tail;
	struct transport *linked;
	struct handed_stats stats;
};

/* The address is chosen by the traced process: keyed, so it cannot pick colliding ones. */
static struct transport **bucket(struct handed *h, uint32_t tgid, uint64_t addr)
{
	return &h->buckets[keyhash_table2(addr, tgid) & (TRANSPORT_BUCKETS - 1)];
}

static struct transport *find(struct handed *h, uint32_t tgid, uint64_t addr)
{
	for (struct transport *t = *bucket(h, tgid, addr); t; t = t->next) {
		if (t->tgid == tgid && t->addr == addr)
			return t;
	}
	return NULL;
}

static void lru_unlink(struct handed *h, struct transport *t)
{
	if (t->lru_prev)
		t->lru_prev->lru_next = t->lru_next;
	else
		h->lru_head = t->lru_next;
	if (t->lru_next)
		t->lru_next->lru_prev = t->lru_prev;
	else
		h->lru_tail = t->lru_prev;
	t->lru_prev = t->lru_next = NULL;
}

static void lru_append(struct handed *h, struct transport *t)
{
	t->lru_prev = h->lru_tail;
	if (h->lru_tail)
		h->lru_tail->lru_next = t;
	else
		h->lru_head = t;
	h->lru_tail = t;
}

static void link_unlink(struct handed *h, struct transport *t)
{
	if (!t->linked)
		return;
	if (t->link_prev)
		t->link_prev->link_next = t->link_next;
	else
		h->linked = t->link_next;
	if (t->link_next)
		t->link_next->link_prev = t->link_prev;
	t->link_prev = t->link_next = NULL;
	t->linked = false;
}

/* Drops the transport's first write, moving its stream position past it. */
static void pop(struct handed *h, struct transport *t)
{
	struct entry *e = t->head;

	t->head = e->next;
	if (!t->head)
		t->tail = NULL;
	t->n--;
	h->stats.held--;
	if (t->placed && e->w.len != HANDED_LEN_UNKNOWN)
		t->pos += e->w.len;
	else
		t->placed = false;
	attrib_stack_put(e->w.stack);
	free(e);
}

static void transport_free(struct handed *h, struct transport *t)
{
	struct transport **pp = bucket(h, t->tgid, t->addr);

	while (t->head)
		pop(h, t);
	while (*pp != t)
		pp = &(*pp)->next;
	*pp = t->next;
	lru_unlink(h, t);
	link_unlink(h, t);
	free(t);
}

struct handed *handed_new(void)
{
	return calloc(1, sizeof(struct handed));
}

void handed_free(struct handed *h)
{
	if (!h)
		return;
	while (h->lru_head)
		transport_free(h, h->lru_head);
	free(h);
}

void handed_put(struct handed *h, uint32_t tgid, uint32_t tid, uint64_t transport, uint64_t token,
		uint64_t len, uint64_t ts_ns, struct attrib_stack *stack)
{
	struct transport *t = find(h, tgid, transport), **pp;
	struct entry *e;

	if (!transport)
		return;
	h->stats.writes++;
	/* Past the bound the least recently written transport goes, and what it held. */
	while (h->stats.held >= HANDED_MAX && h->lru_head) {
		h->stats.evicted += h->lru_head->n;
		if (h->lru_head == t)
			t = NULL;
		transport_free(h, h->lru_head);
	}
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return;
		t->tgid = tgid;
		t->addr = transport;
		pp = bucket(h, tgid, transport);
		t->next = *pp;
		*pp = t;
	} else {
		lru_unlink(h, t);
	}
	lru_append(h, t);
	t->last_ns = ts_ns;
	if (t->n >= HANDED_PER_TRANSPORT) {
		h->stats.evicted++;
		pop(h, t);
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->token = token;
	e->w.ts_ns = ts_ns;
	e->w.len = len;
	e->w.tid = tid;
	e->w.stack = attrib_stack_get(stack);
	if (t->tail)
		t->tail->next = e;
	else
		t->head = e;
	t->tail = e;
	t->n++;
	h->stats.held++;
}

void handed_sent(struct handed *h, uint32_t tgid, uint64_t transport, uint64_t token,
		 const struct conn_id *conn, uint64_t pos)
{
	struct transport *t = find(h, tgid, transport);
	struct entry *e;

	if (!t)
		return;
	/* The oldest write of that object not yet sent: a transport sends in order. */
	for (e = t->head; e && e->token != token; e = e->next)
		;
	if (!e)
		return;
	/* Those before it were sent before it, whether or not a frame started at them. */
	while (t->head != e)
		pop(h, t);
	if (t->linked && (t->conn.ino != conn->ino || t->conn.gen != conn->gen))
		link_unlink(h, t);
	if (!t->linked) {
		t->linked = true;
		t->conn = *conn;
		t->link_next = h->linked;
		if (h->linked)
			h->linked->link_prev = t;
		h->linked = t;
		h->stats.linked++;
	}
	t->placed = true;
	t->pos = pos;
	pop(h, t);
}

uint64_t handed_close(struct handed *h, uint32_t tgid, const struct conn_id *conn, uint64_t end,
		      void (*fn)(void *ctx, const struct handed_write *w), void *ctx, bool *linked)
{
	struct transport *t, *next;
	uint64_t n = 0;

	*linked = false;
	for (t = h->linked; t; t = next) {
		next = t->link_next;
		if (t->tgid != tgid || t->conn.ino != conn->ino || t->conn.gen != conn->gen)
			continue;
		*linked = true;
		while (t->head) {
			if (!t->placed || t->head->w.len == HANDED_LEN_UNKNOWN) {
				/* Where the rest starts is not known: not judged, counted. */
				h->stats.unplaced_writes += t->n;
				break;
			}
			if (t->pos >= end) {
				h->stats.queued_writes++;
				h->stats.queued_bytes += t->head->w.len;
				fn(ctx, &t->head->w);
				n++;
			}
			pop(h, t);
		}
		transport_free(h, t);
	}
	return n;
}

void handed_count_unseen(struct handed *h)
{
	h->stats.unseen_conns++;
}

void handed_expire(struct handed *h, uint64_t now_ns, uint64_t max_age_ns)
{
	struct transport *t, *next;

	/* Least recently written first: the walk ends at the first one written since. */
	for (t = h->lru_head; t && now_ns - t->last_ns >= max_age_ns; t = next) {
		next = t->lru_next;
		if (!t->linked)
			transport_free(h, t);
	}
}

void handed_forget_process(struct handed *h, uint32_t tgid)
{
	struct transport *t, *next;

	for (t = h->lru_head; t; t = next) {
		next = t->lru_next;
		if (t->tgid == tgid)
			transport_free(h, t);
	}
}

const struct handed_stats *handed_stats(const struct handed *h)
{
	return &h->stats;
}

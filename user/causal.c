// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "causal.h"
#include "keyhash.h"
#include "policy.h"

#define LINK_BUCKETS 8192
/*
 * Creation stacks held: most tasks and callbacks never send, and a context's address says
 * nothing of when it dies, so the oldest unused go first.  One used by a send is renewed.
 */
#define LINKS_MAX 32768

/*
 * One recorded creation: its stack and the creation of the context it was made in (its
 * parent), resolved when it is recorded.  A parent context often dies first (a handle's,
 * once its callback ran) and its address is taken by another: the node keeps what it was.
 * Shared, refcounted: by the table entry of its context and by the nodes made under it.
 */
struct node {
	unsigned int refs;
	unsigned int depth; /* 1 + the parent's; a chain deeper than CAUSAL_DEPTH is cut */
	struct attrib_stack *stack;
	struct node *parent;
};

struct link {
	uint32_t tgid;
	uint64_t ctx;
	uint64_t ts_ns; /* when the copy was made */
	struct node *node;
	/*
	 * The creation recorded at this address before, and when: a send is often read after
	 * its work ended and a new copy took its context's address (uvloop flushes a task's
	 * write after the task is done), and its walk came before that copy.
	 */
	uint64_t prev_ts_ns;
	struct node *prev;
	struct link *next; /* hash chain */
	struct link *older, *newer; /* age list */
};

struct causal {
	struct attrib *attrib;
	struct link *buckets[LINK_BUCKETS];
	struct link *oldest, *newest;
	struct causal_stats stats;
};

static const char *const via_names[VIA__COUNT] = {
	[VIA_NONE] = "stack",	 [VIA_TASK] = "task",	[VIA_CALLBACK] = "callback",
	[VIA_THREAD] = "thread", [VIA_QUEUE] = "queue", [VIA_TRANSPORT] = "transport",
};

const char *causal_via_name(enum causal_via v)
{
	return v < VIA__COUNT ? via_names[v] : "unknown";
}

struct causal *causal_new(struct attrib *a)
{
	struct causal *c = calloc(1, sizeof(*c));

	if (c)
		c->attrib = a;
	return c;
}

/* A context's address is chosen by the traced process: keyed, so it cannot pick collisions. */
static size_t link_bucket(uint32_t tgid, uint64_t ctx)
{
	return (size_t)keyhash_table2(ctx, tgid) & (LINK_BUCKETS - 1);
}

static void age_unlink(struct causal *c, struct link *l)
{
	if (l->older)
		l->older->newer = l->newer;
	else
		c->oldest = l->newer;
	if (l->newer)
		l->newer->older = l->older;
	else
		c->newest = l->older;
	l->older = l->newer = NULL;
}

static void age_append(struct causal *c, struct link *l)
{
	l->older = c->newest;
	l->newer = NULL;
	if (c->newest)
		c->newest->newer = l;
	else
		c->oldest = l;
	c->newest = l;
}

static void node_put(struct node *n)
{
	while (n && !--n->refs) {
		struct node *parent = n->parent;

		attrib_stack_put(n->stack);
		free(n);
		n = parent;
	}
}

static void link_remove(struct causal *c, struct link *l)
{
	struct link **pp = &c->buckets[link_bucket(l->tgid, l->ctx)];

	while (*pp != l)
		pp = &(*pp)->next;
	*pp = l->next;
	age_unlink(c, l);
	node_put(l->node);
	node_put(l->prev);
	free(l);
	c->stats.entries--;
}

void causal_free(struct causal *c)
{
	if (!c)
		return;
	while (c->oldest)
		link_remove(c, c->oldest);
	free(c);
}

static struct link *link_find(struct causal *c, uint32_t tgid, uint64_t ctx)
{
	struct link *l;

	for (l = c->buckets[link_bucket(tgid, ctx)]; l; l = l->next) {
		if (l->tgid == tgid && l->ctx == ctx)
			return l;
	}
	return NULL;
}

/*
 * The creation of the context at l's address as it was at ts_ns (0: now): the last one
 * recorded before.  One made since at the same address is another context's.
 */
static struct node *link_node_at(const struct link *l, uint64_t ts_ns)
{
	if (!l)
		return NULL;
	if (!ts_ns || l->ts_ns < ts_ns)
		return l->node;
	if (l->prev && l->prev_ts_ns < ts_ns)
		return l->prev;
	return NULL;
}

int causal_put(struct causal *c, uint32_t tgid, uint64_t ctx, uint64_t parent, uint64_t ts_ns,
	       struct attrib_stack *s)
{
	struct link *l = link_find(c, tgid, ctx);
	struct node *n = calloc(1, sizeof(*n));
	struct node *p = parent ? link_node_at(link_find(c, tgid, parent), ts_ns) : NULL;
	size_t b;

	c->stats.put++;
	if (!n) {
		attrib_stack_put(s);
		return -ENOMEM;
	}
	n->refs = 1;
	n->depth = 1;
	n->stack = s;
	/*
	 * The parent context is current, so alive: its entry is its creation unless that was
	 * not seen and the address is a dead context's, recorded before (a later one is not).
	 */
	if (p) {
		if (p->depth < CAUSAL_DEPTH) {
			n->parent = p;
			n->parent->refs++;
			n->depth = p->depth + 1;
		} else {
			c->stats.chain_cut++;
		}
	}
	if (l) {
		/* The address of a context that died, taken by a new copy: the new creator. */
		node_put(l->prev);
		l->prev = l->node;
		l->prev_ts_ns = l->ts_ns;
		l->node = n;
		l->ts_ns = ts_ns;
		age_unlink(c, l);
		age_append(c, l);
		c->stats.replaced++;
		return 0;
	}
	if (c->stats.entries >= LINKS_MAX && c->oldest) {
		link_remove(c, c->oldest);
		c->stats.evicted++;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		node_put(n);
		return -ENOMEM;
	}
	l->tgid = tgid;
	l->ctx = ctx;
	l->ts_ns = ts_ns;
	l->node = n;
	b = link_bucket(tgid, ctx);
	l->next = c->buckets[b];
	c->buckets[b] = l;
	age_append(c, l);
	c->stats.entries++;
	return 0;
}

void causal_forget_process(struct causal *c, uint32_t tgid)
{
	struct link *l, *newer;

	for (l = c->oldest; l; l = newer) {
		newer = l->newer;
		if (l->tgid == tgid)
			link_remove(c, l);
	}
}

/*
 * asyncio's functions that hand work over, as they appear on the creator's stack above the
 * context copy, innermost first.  uvloop's are compiled: its hand-overs show none of them.
 */
static const struct {
	const char *function;
	enum causal_via via;
} handoffs[] = {
	{ "to_thread", VIA_THREAD },	 { "*Handle.__init__", VIA_CALLBACK },
	{ "*call_soon", VIA_CALLBACK },	 { "*call_soon_threadsafe", VIA_CALLBACK },
	{ "*call_later", VIA_CALLBACK }, { "*call_at", VIA_CALLBACK },
	{ "*create_task", VIA_TASK },	 { "*ensure_future", VIA_TASK },
	{ "Task.__init__", VIA_TASK },
};

enum causal_via causal_classify(const struct attrib_frame *frames, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct attrib_frame *f = &frames[i];

		if (!f->function || !f->file)
			continue;
		if (!f->transport)
			break;
		if (f->sym ? !f->in_asyncio : !policy_glob_match("*/asyncio/*", f->file))
			continue;
		for (size_t k = 0; k < sizeof(handoffs) / sizeof(handoffs[0]); k++) {
			if (policy_glob_match(handoffs[k].function, f->function))
				return handoffs[k].via;
		}
	}
	return VIA_TASK;
}

/*
 * asyncio.sleep's copy is its timer handle's: the callback (_set_result_unless_cancelled)
 * only sets the sleeping future's result, and the task it wakes runs in its own context, so
 * no send runs in that copy, nor in a copy made in it.  Under uvloop sleep is the copy's
 * innermost frame; under asyncio's own loop call_later, call_at and the handles' __init__ lie
 * inside it.  Any other frame inside it (a loop of another library) and it is not trusted.
 */
int causal_inert_creator(const struct attrib_frame *frames, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct attrib_frame *f = &frames[i];

		if (!f->function || !f->file ||
		    (f->sym ? !f->in_asyncio : !policy_glob_match("*/asyncio/*", f->file)))
			return -1;
		if (!strcmp(f->function, "sleep") &&
		    policy_glob_match("*/asyncio/tasks.py", f->file))
			return (int)i;
	}
	return -1;
}

/*
 * A stack whose frames could not all be read or named (its process exited before the
 * collector read its code objects, a read fault): an application function may be among the
 * missing ones.  Its work's creator is not its producer then; the frame stays unjudged with
 * that reason rather than named after whoever created the work.
 */
static bool names_lost(const struct attrib_stack *s)
{
	return s->origin < 0 &&
	       (s->why == UNATTR_SYMBOL_READ_FAILED || s->why == UNATTR_STACK_READ_FAILED);
}

/*
 * A deferred write is sent by the transport's writer callback, which runs in the context of
 * the write that first found the socket full: that writer is not the producer of what the
 * callback sends later, so such a send is not linked through its context.
 */
static bool links_by_context(const struct attrib_stack *s)
{
	return s->py_context && s->why != UNATTR_DEFERRED_WRITE &&
	       s->why != UNATTR_QUEUE_NOT_LINKED && !names_lost(s);
}

/*
 * A creation made by the loop's add_writer: a writer callback registered by a buffered
 * write (a library's own transport, as Twisted's and tornado's are), which sends whatever
 * was buffered until the socket drains, whoever wrote it.  Its creator registered the
 * callback; it is not the producer of what the callback sends, and neither is the context it
 * was made in.  asyncio's sock_sendall registers one for the remainder of its own bytes: that
 * one is their producer.
 */
static bool writer_registration(const struct attrib_stack *s)
{
	bool registration = false;

	for (size_t i = 0; i < s->nframes; i++) {
		const struct attrib_frame *f = &s->frames[i];

		if (!f->function || !f->file)
			continue;
		if (!f->transport)
			break;
		if (f->sym ? !f->in_asyncio : !policy_glob_match("*/asyncio/*", f->file))
			continue;
		if (policy_glob_match("*sock_sendall", f->function))
			return false;
		if (policy_glob_match("*add_writer", f->function))
			registration = true;
	}
	return registration;
}

void causal_link(struct causal *c, uint32_t tgid, const struct attrib_stack *s,
		 struct causal_link *out)
{
	struct node *start;
	struct link *l;

	memset(out, 0, sizeof(*out));
	out->origin_level = -1;
	if (!s)
		return;
	/* Its origin is judged from checked names (the stack is never const itself). */
	attrib_stack_check(c->attrib, (struct attrib_stack *)s);
	if (!links_by_context(s)) {
		if (s->origin < 0 && s->why != UNATTR_DEFERRED_WRITE &&
		    s->why != UNATTR_QUEUE_NOT_LINKED && !names_lost(s))
			c->stats.no_context++;
		return;
	}
	l = link_find(c, tgid, s->py_context);
	/* A context made after the send is not the one it ran in: its address was reused. */
	start = link_node_at(l, s->ts_ns);
	if (start) {
		/* In use: renewed, so that a long-lived task keeps its creator. */
		age_unlink(c, l);
		age_append(c, l);
	}
	for (struct node *n = start; n && out->n < CAUSAL_DEPTH; n = n->parent) {
		attrib_stack_check(c->attrib, n->stack);
		if (writer_registration(n->stack)) {
			/*
			 * Neither names nor judges the frame: sent by a buffer's flush.  Said on
			 * the send's stack, shared only by sends that ran in the same context.
			 */
			if (s->origin < 0 && out->origin_level < 0) {
				((struct attrib_stack *)s)->why = UNATTR_DEFERRED_WRITE;
				return;
			}
			break;
		}
		if (s->origin < 0 && out->origin_level < 0 && names_lost(n->stack)) {
			/*
			 * The creator lost names too: it may be the producer, and the contexts
			 * it was made in name someone further away.  Unjudged, said so.
			 */
			((struct attrib_stack *)s)->why = n->stack->why;
			break;
		}
		out->creators[out->n] = n->stack;
		out->vias[out->n] = causal_classify(n->stack->frames, n->stack->nframes);
		if (s->origin < 0 && out->origin_level < 0 && n->stack->origin >= 0)
			out->origin_level = (int)out->n;
		out->n++;
	}
	if (s->origin >= 0)
		return;
	if (out->origin_level >= 0)
		c->stats.linked++;
	else
		c->stats.no_link++;
}

const struct attrib_frame *causal_origin(const struct attrib_stack *s, const struct causal_link *l,
					 enum causal_via *via)
{
	const struct attrib_stack *cs;

	*via = VIA_NONE;
	if (s->origin >= 0)
		return &s->frames[s->origin];
	if (!l || l->origin_level < 0)
		return NULL;
	cs = l->creators[l->origin_level];
	*via = l->vias[l->origin_level];
	return &cs->frames[cs->origin];
}

const struct causal_stats *causal_stats(const struct causal *c)
{
	return &c->stats;
}

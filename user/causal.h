/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Causal links: a send made by a task, a scheduled callback or a worker thread, joined to the
 * stack of the code that created that work (docs/causal.md).
 *
 * asyncio runs each of those in a copy of the contextvars context taken when the work was
 * created, and the copy is the one object both ends share: its creator's stack is recorded
 * when it is made (bpf/link.bpf.c, site STACK_AT_CONTEXT_COPY), and a send's walk reads the
 * context its thread runs in.  A copy made while another linked context was current has that
 * one as parent, so a chain (a task created by a task created by the handler) is followed
 * back until a creator names an application function.
 */
#ifndef WSAUDIT_CAUSAL_H
#define WSAUDIT_CAUSAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attrib.h"

/* Hand-offs followed back from a send; a longer chain is cut (counted). */
#define CAUSAL_DEPTH 8

/* How the work that sent a frame was handed over; the strings are the JSON "via" values. */
enum causal_via {
	VIA_NONE = 0, /* the origin is on the send's own stack */
	VIA_TASK, /* a Task wrapping a coroutine (create_task, ensure_future, gather, ...) */
	VIA_CALLBACK, /* a scheduled handle (call_soon, call_later, call_soon_threadsafe) */
	VIA_THREAD, /* a function run in a worker thread (asyncio.to_thread) */
	VIA_QUEUE,
	VIA_TRANSPORT, /* bytes a transport buffered and sent later */
	VIA__COUNT,
};

const char *causal_via_name(enum causal_via v);

/* The creation stacks a send was linked to, innermost hand-off first. */
struct causal_link {
	size_t n;
	struct attrib_stack *creators[CAUSAL_DEPTH];
	enum causal_via vias[CAUSAL_DEPTH]; /* how creators[i]'s work was handed over */
	/* The creator that names the origin, -1 when the send's own stack does or none does. */
	int origin_level;
};

/* Why a frame's producer stays unknown; the strings are the "unjudged" reasons. */
struct causal_stats {
	uint64_t put; /* creation stacks recorded */
	uint64_t replaced; /* ... for a context address recorded before (reused) */
	uint64_t evicted; /* ... forgotten, oldest first, past the bound */
	uint64_t linked; /* frames whose origin came from a creation stack */
	uint64_t no_link; /* frames whose context had no creation stack */
	uint64_t no_context; /* frames whose thread ran in no context (or unread) */
	uint64_t chain_cut; /* chains longer than CAUSAL_DEPTH */
	uint64_t entries; /* creation stacks held now */
};

struct causal;

struct causal *causal_new(struct attrib *a);
void causal_free(struct causal *c);

/*
 * Records the stack of a context copy's creator (a record of site STACK_AT_CONTEXT_COPY,
 * made at ts_ns): takes the reference to s.  0 or -ENOMEM.
 */
int causal_put(struct causal *c, uint32_t tgid, uint64_t ctx, uint64_t parent, uint64_t ts_ns,
	       struct attrib_stack *s);
/* Forgets a process's creation stacks (it exited or ran a new program). */
void causal_forget_process(struct causal *c, uint32_t tgid);

/*
 * Fills out with the creation stacks of the contexts the send of stack s ran in, checked and
 * ready to judge; out->n == 0 when there is none.  The stacks stay valid until the next
 * causal_put or causal_forget_process.
 */
void causal_link(struct causal *c, uint32_t tgid, const struct attrib_stack *s,
		 struct causal_link *out);

/*
 * The origin of a frame whose send's stack is s and whose link is l (may be NULL): the frame
 * and its stack, and via (VIA_NONE when on s itself).  NULL when none could be named.
 */
const struct attrib_frame *causal_origin(const struct attrib_stack *s, const struct causal_link *l,
					 enum causal_via *via);

const struct causal_stats *causal_stats(const struct causal *c);

/*
 * Pure: the index of the frame of a creation stack under which no send can run in the copy
 * (asyncio.sleep, with only asyncio's frames inside it), or -1.
 */
int causal_inert_creator(const struct attrib_frame *frames, size_t n);

/* Pure, for tests: how a creation stack handed its work over (VIA_TASK when it cannot tell). */
enum causal_via causal_classify(const struct attrib_frame *frames, size_t n);

#endif /* WSAUDIT_CAUSAL_H */

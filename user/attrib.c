// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attrib.h"
#include "clock.h"
#include "htable.h"
#include "keyhash.h"
#include "log.h"
#include "policy.h"
#include "pyproc.h"
#include "pysym.h"

#define SYM_CACHE_ENTRIES 65536
#define TOKEN_BUCKETS 4096
/* Hand-overs waiting for their bytes to be sent; past this the oldest are dropped. */
#define TOKENS_MAX 65536

struct token {
	uint32_t tgid;
	uint64_t token;
	uint64_t transport; /* the transport it was handed to (its self) */
	uint64_t ts_ns;
	struct attrib_stack *stack;
	/*
	 * Hash chain, oldest first.  Doubly linked with a tail: an allocator hands the same
	 * addresses out again and again, so one chain can hold thousands of unmatched tokens,
	 * and appending or unlinking must not walk it.
	 */
	struct token *next, *prev;
	struct token *age_next, *age_prev; /* all tokens, oldest first */
};

/* What a stack resolved without validation needs to be checked later. */
struct attrib_pending {
	unsigned long long consumed_ns; /* CLOCK_MONOTONIC when the record was read: walk done */
	pid_t tgid;
	int ctx_frame; /* index in frames[] of the context frame, -1 when none */
	unsigned int failed; /* frames that could not be named */
	bool read_fault; /* the walk stopped at a read fault */
	struct py_frame raw[]; /* raw[i]: frames[i] as the walk read it */
};

struct token_chain {
	struct token *head, *tail;
};

enum proc_state {
	PROC_PYTHON,
	PROC_NOT_PYTHON,
	PROC_UNSUPPORTED,
};

struct proc_entry {
	pid_t pid;
	enum proc_state state;
	struct pyproc_info *info; /* shared by a parent and its forked children */
	unsigned int *info_refs;
	UT_hash_handle hh;
};

/* Hand-overs whose later frames are followed at once: the writes of a process in flight. */
#define TOKEN_RUNS 8

/* Bits kept in a symbol's user_bits, valid for user_gen == transport_gen. */
#define SYM_TRANSPORT 1u
#define SYM_ASYNCIO 2u
#define SYM_TWISTED 4u

struct attrib {
	const char *const *transport;
	size_t ntransport;
	const struct policy_queue_rule *queues; /* the policy's, by reference */
	size_t nqueues;
	/* Changes with the transport globs, so verdicts kept in symbols are redone. */
	unsigned int transport_gen;
	/* Numbers each process image whose walks send names (struct py_names_layout.gen). */
	unsigned int names_gen;
	struct pysym *sym;
	struct proc_entry *procs; /* by pid */
	struct token_chain tokens[TOKEN_BUCKETS];
	struct token *oldest, *newest;
	size_t ntokens;
	/*
	 * The frames of one handed-over object taken so far, by the write that sends them: an
	 * object can hold several frames (a library that serializes a burst and writes it in one
	 * call), and its token names the first.  Newest at runs[nruns % TOKEN_RUNS].
	 */
	struct token_run {
		uint32_t tgid, tid;
		uint64_t write_ts; /* the syscall that sends it */
		uint64_t next_addr; /* where its next frame would start */
		struct attrib_stack *stack; /* a reference */
	} runs[TOKEN_RUNS];
	unsigned int nruns;
	bool disabled;
	/*
	 * The last stack resolved, while unchecked, with what its walk read: a hand-over is
	 * often recorded several times over with the same stack, which is then shared.
	 */
	struct attrib_stack *last;
	struct {
		pid_t tgid;
		uint8_t status;
		uint16_t nframes;
		uint16_t ctx_frame;
		uint8_t ctx_status;
		uint8_t ctx_len;
		unsigned long long py_context;
		char ctx_value[CTX_VALUE_MAX];
		struct py_frame frames[PY_FRAMES_MAX];
	} last_walk;
	struct attrib_stats stats;
};

#define UNATTR_NAME(name, str) [name] = str,
static const char *const unattributed_names[UNATTR__COUNT] = { [UNATTR_NONE] = "none",
							       UNATTRIBUTED_REASONS(UNATTR_NAME) };
#undef UNATTR_NAME

const char *unattributed_name(enum unattributed why)
{
	return why < UNATTR__COUNT ? unattributed_names[why] : "unknown";
}

/*
 * asyncio's event loop: a frame of these runs callbacks and task steps.  Frames outside it
 * (the program's start-up: main, asyncio.run) did not ask for the write, so the search for
 * the originating function stops there.
 */
static const char *const loop_functions[] = {
	"*run_forever", "*run_until_complete", "*_run_once", "Runner.run",
	"run",		"Handle._run",	       "_run",
};

/*
 * asyncio transport methods that send bytes queued earlier, when the socket buffer had been
 * full: whoever wrote them is no longer on the stack.
 */
static const char *const flush_functions[] = {
	"*_write_ready",
	"*_write_sendmsg",
};

/*
 * Twisted's transports never send in write(): FileDescriptor.write appends to the
 * transport's buffer and registers the reactor's writer, whose doWrite sends everything
 * buffered since, whoever wrote it.  On the asyncio reactor the writer runs in a copy of the
 * context of the write that registered it: linked through it, every frame flushed with that
 * one would be credited to that writer (docs/causal.md).
 */
static const char *const twisted_flush_functions[] = {
	"*doWrite",
};

static bool asyncio_file(const char *file)
{
	return !fnmatch("*/asyncio/*", file, 0);
}

static bool twisted_file(const char *file)
{
	return !fnmatch("*/twisted/internet/*", file, 0);
}

static bool asyncio_function_in(const struct attrib_frame *f, const char *const *globs, size_t n)
{
	if (!f->file || !f->function)
		return false;
	/* A resolved frame knows from its symbol; frames built by hand are matched here. */
	if (f->sym ? !f->in_asyncio : !asyncio_file(f->file))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (policy_glob_match(globs[i], f->function))
			return true;
	}
	return false;
}

#define ASYNCIO_IN(f, list) asyncio_function_in(f, list, sizeof(list) / sizeof(list[0]))

static bool twisted_flush(const struct attrib_frame *f)
{
	size_t n = sizeof(twisted_flush_functions) / sizeof(twisted_flush_functions[0]);

	if (!f->file || !f->function || (f->sym ? !f->in_twisted : !twisted_file(f->file)))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (policy_glob_match(twisted_flush_functions[i], f->function))
			return true;
	}
	return false;
}

int attrib_pick_origin(const struct attrib_frame *frames, size_t n, enum unattributed *why)
{
	*why = UNATTR_NONE;
	if (!n) {
		*why = UNATTR_NO_PYTHON_FRAMES;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (ASYNCIO_IN(&frames[i], flush_functions) || twisted_flush(&frames[i])) {
			*why = UNATTR_DEFERRED_WRITE;
			return -1;
		}
		if (ASYNCIO_IN(&frames[i], loop_functions)) {
			/*
			 * The loop itself wrote (uvloop flushing its queue), or a task whose
			 * creator is not on this stack did.
			 */
			*why = i == 0 ? UNATTR_DEFERRED_WRITE : UNATTR_DETACHED_TASK;
			return -1;
		}
		if (!frames[i].transport && frames[i].function)
			return (int)i;
	}
	*why = UNATTR_NO_APPLICATION_FRAMES;
	return -1;
}

static void token_unlink(struct attrib *a, struct token *t);

static struct proc_entry *proc_find(struct attrib *a, pid_t pid)
{
	struct proc_entry *p;

	HASH_FIND_INT(a->procs, &pid, p);
	return p;
}

static void proc_release(struct proc_entry *p)
{
	if (p->info_refs && --*p->info_refs == 0) {
		free(p->info);
		free(p->info_refs);
	}
	free(p);
}

static struct proc_entry *proc_insert(struct attrib *a, pid_t pid)
{
	struct proc_entry *p = proc_find(a, pid);

	if (p) {
		HASH_DEL(a->procs, p);
		proc_release(p);
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	HASH_ADD_INT(a->procs, pid, p);
	if (!htable_added(p)) {
		free(p);
		return NULL;
	}
	return p;
}

struct attrib *attrib_new(const char *const *transport, size_t ntransport)
{
	struct attrib *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->transport = transport;
	a->ntransport = ntransport;
	a->transport_gen = 1;
	a->sym = pysym_new(SYM_CACHE_ENTRIES);
	if (!a->sym) {
		free(a);
		return NULL;
	}
	return a;
}

void attrib_free(struct attrib *a)
{
	struct proc_entry *p, *next;

	if (!a)
		return;
	attrib_token_expire(a, UINT64_MAX, 0);
	for (size_t i = 0; i < TOKEN_RUNS; i++)
		attrib_stack_put(a->runs[i].stack);
	attrib_stack_put(a->last);
	HASH_ITER(hh, a->procs, p, next) {
		HASH_DEL(a->procs, p);
		proc_release(p);
	}
	pysym_free(a->sym);
	free(a);
}

int attrib_add_process(struct attrib *a, pid_t pid, struct py_offsets *off)
{
	struct pyproc_info *info = calloc(1, sizeof(*info));
	struct proc_entry *p;
	int err;

	if (!info)
		return -ENOMEM;
	err = pyproc_inspect(pid, info);
	if (err) {
		free(info);
		return err;
	}
	p = proc_insert(a, pid);
	if (!p) {
		free(info);
		return -ENOMEM;
	}
	if (!info->is_python) {
		/* A CPython whose version or layout is not supported names itself in reason. */
		p->state = info->major ? PROC_UNSUPPORTED : PROC_NOT_PYTHON;
		if (p->state == PROC_UNSUPPORTED)
			log_warn("pid %d: unsupported Python: %s; its frames are captured without "
				 "attribution",
				 pid, info->reason);
		else
			log_info("pid %d: %s", pid, info->reason);
		free(info);
		return p->state == PROC_UNSUPPORTED ? -ENOTSUP : -ENOEXEC;
	}
	p->info_refs = malloc(sizeof(*p->info_refs));
	if (!p->info_refs) {
		free(info);
		p->state = PROC_UNSUPPORTED;
		return -ENOMEM;
	}
	*p->info_refs = 1;
	p->info = info;
	p->state = PROC_PYTHON;
	*off = info->off;
	log_info("pid %d: CPython %s (%s)", pid, info->version, info->path);
	return 0;
}

void attrib_fork_process(struct attrib *a, pid_t parent, pid_t child)
{
	struct proc_entry *pp = proc_find(a, parent), *c;

	if (!pp)
		return;
	c = proc_insert(a, child);
	if (!c)
		return;
	c->state = pp->state;
	if (pp->info) {
		c->info = pp->info;
		c->info_refs = pp->info_refs;
		++*c->info_refs;
	}
}

void attrib_forget_process(struct attrib *a, pid_t pid)
{
	struct proc_entry *p = proc_find(a, pid);

	if (!p)
		return;
	HASH_DEL(a->procs, p);
	proc_release(p);
	if (a->last && a->last_walk.tgid == pid) {
		attrib_stack_put(a->last);
		a->last = NULL;
	}
	pysym_forget_pid(a->sym, pid);
	for (struct token *t = a->oldest, *next; t; t = next) {
		next = t->age_next;
		if (t->tgid != (uint32_t)pid)
			continue;
		token_unlink(a, t);
		attrib_stack_put(t->stack);
		free(t);
	}
	for (size_t i = 0; i < TOKEN_RUNS; i++) {
		if (a->runs[i].tgid == (uint32_t)pid) {
			attrib_stack_put(a->runs[i].stack);
			a->runs[i] = (struct token_run){ 0 };
		}
	}
}

int attrib_names_layout(struct attrib *a, pid_t pid, struct py_names_layout *out)
{
	struct proc_entry *p = proc_find(a, pid);

	if (!p || p->state != PROC_PYTHON)
		return -ENOENT;
	return pysym_names_layout(p->info, ++a->names_gen, out);
}

int attrib_code_names(struct attrib *a, const struct evt_code_names *r)
{
	struct proc_entry *p = proc_find(a, (pid_t)r->tgid);
	int err;

	if (!p || p->state != PROC_PYTHON) {
		a->stats.names_unknown++;
		return -ENOENT;
	}
	err = pysym_learn(a->sym, (pid_t)r->tgid, p->info, r);
	if (err)
		a->stats.names_rejected++;
	else
		a->stats.names_records++;
	return err;
}

bool attrib_known(struct attrib *a, pid_t pid)
{
	return proc_find(a, pid) != NULL;
}

static struct attrib_stack *stack_alloc(size_t nframes)
{
	struct attrib_stack *s = calloc(1, sizeof(*s) + nframes * sizeof(s->frames[0]));

	if (!s)
		return NULL;
	s->refs = 1;
	s->origin = -1;
	return s;
}

void attrib_set_transport(struct attrib *a, const char *const *transport, size_t ntransport)
{
	a->transport = transport;
	a->ntransport = ntransport;
	if (++a->transport_gen == 0)
		a->transport_gen = 1;
}

void attrib_set_queues(struct attrib *a, const struct policy_queue_rule *queues, size_t n)
{
	a->queues = queues;
	a->nqueues = n;
}

void attrib_disable(struct attrib *a)
{
	a->disabled = true;
}

static enum unattributed proc_reason(struct attrib *a, pid_t pid)
{
	struct proc_entry *p = proc_find(a, pid);

	if (a->disabled)
		return UNATTR_DISABLED;
	if (!p || p->state == PROC_NOT_PYTHON)
		return UNATTR_NOT_PYTHON;
	if (p->state == PROC_UNSUPPORTED)
		return UNATTR_UNSUPPORTED_PYTHON;
	return UNATTR_STACK_LOST;
}

struct attrib_stack *attrib_missing(struct attrib *a, pid_t pid)
{
	struct attrib_stack *s = stack_alloc(0);

	if (s)
		s->why = proc_reason(a, pid);
	return s;
}

struct attrib_stack *attrib_handed_over(struct attrib *a, pid_t pid)
{
	struct attrib_stack *s = attrib_missing(a, pid);

	/* The event loop sent it, as the walk at the syscall would have shown. */
	if (s && s->why == UNATTR_STACK_LOST)
		s->why = UNATTR_DEFERRED_WRITE;
	return s;
}

static bool is_transport(const struct attrib *a, const char *file)
{
	/*
	 * The interpreter's own shim that runs after a Python __init__ (_Py_InitCleanup, 3.12+)
	 * names its file "__init__": a creation stack taken inside Handle.__init__ holds it.
	 */
	if (!strcmp(file, "__init__"))
		return true;
	for (size_t i = 0; i < a->ntransport; i++) {
		if (policy_glob_match(a->transport[i], file))
			return true;
	}
	return false;
}

/*
 * The verdicts that depend only on the file, kept in the symbol: the globs are matched once
 * per code object, not once per frame of every stack.
 */
static unsigned int sym_file_bits(struct attrib *a, struct pysym_sym *sym)
{
	if (sym->user_gen != a->transport_gen) {
		sym->user_bits = (is_transport(a, sym->file) ? SYM_TRANSPORT : 0) |
				 (asyncio_file(sym->file) ? SYM_ASYNCIO : 0) |
				 (twisted_file(sym->file) ? SYM_TWISTED : 0);
		sym->user_gen = a->transport_gen;
	}
	return sym->user_bits;
}

/*
 * 3.9/3.10 code objects carry no qualname: "Class.name" from the receiver the walk read, in
 * the frame's own copy.  NULL when the class is not known (the bare name stays).
 */
static char *qualified_name(const struct proc_entry *p, pid_t pid, const struct py_frame *in,
			    const struct pysym_sym *sym)
{
	char cls[PYSYM_NAME_MAX], fn[PYSYM_NAME_MAX];

	if (!in->arg0 || p->info->layout.code_qualname != PY_OFF_NONE)
		return NULL;
	if (pysym_receiver_class_typed(pid, p->info, in->code, in->arg0, in->arg0_type, cls,
				       sizeof(cls)))
		return NULL;
	if (snprintf(fn, sizeof(fn), "%s.%s", cls, sym->name) >= (int)sizeof(fn))
		return NULL;
	return strdup(fn);
}

static void frame_fill(struct attrib *a, const struct proc_entry *p, pid_t pid,
		       const struct py_frame *in, const struct pysym_hit *hit,
		       struct attrib_frame *out)
{
	unsigned int bits = sym_file_bits(a, hit->sym);

	out->code = in->code;
	out->sym = hit->sym;
	out->file = (char *)hit->sym->file;
	out->function = qualified_name(p, pid, in, hit->sym);
	if (!out->function)
		out->function = (char *)hit->sym->function;
	out->line = hit->line;
	out->transport = bits & SYM_TRANSPORT;
	out->in_asyncio = bits & SYM_ASYNCIO;
	out->in_twisted = bits & SYM_TWISTED;
}

static void frame_release(struct attrib_frame *f)
{
	if (!f->sym) {
		free(f->function);
		free(f->file);
		return;
	}
	if (f->function != f->sym->function)
		free(f->function);
	pysym_sym_put(f->sym);
}

/*
 * Names one frame; false when its code object could not be read.  A frame whose walk sent its
 * names (no PYF_UNNAMED) is named from that record when the collector has it (carried): such a
 * name needs no check, the process may be gone.
 */
static bool resolve_frame(struct attrib *a, const struct proc_entry *p, pid_t pid,
			  const struct py_frame *in, struct attrib_frame *out, bool check)
{
	bool carried = !(in->flags & PYF_UNNAMED);
	struct pysym_hit hit;
	int err;

	if (!check)
		err = pysym_resolve_unchecked(a->sym, pid, p->info, in->code, in->lasti, &hit);
	else if (carried)
		err = pysym_resolve_carried(a->sym, pid, p->info, in->code, in->lasti, &hit);
	else
		err = pysym_resolve(a->sym, pid, p->info, in->code, in->lasti, &hit);
	if (err)
		return false;
	frame_fill(a, p, pid, in, &hit, out);
	out->carried = carried && hit.sym->recorded;
	a->stats.frames_carried += out->carried;
	return true;
}

/*
 * A policy queue's consumer sends what producers enqueued earlier (docs/causal.md): until the
 * queued object is linked to the stack that enqueued it, neither the consumer nor the
 * context its task was created in is the producer, so the send is not named after either.
 */
static bool queue_consumer_sent(const struct attrib *a, const struct attrib_stack *s)
{
	for (size_t q = 0; q < a->nqueues; q++) {
		if (!a->queues[q].consumer)
			continue;
		for (size_t i = 0; i < s->nframes; i++) {
			if (s->frames[i].function &&
			    policy_glob_match(a->queues[q].consumer, s->frames[i].function))
				return true;
		}
	}
	return false;
}

static void stack_judge(const struct attrib *a, struct attrib_stack *s, unsigned int failed,
			bool read_fault)
{
	if (failed)
		s->partial = true;
	s->origin = attrib_pick_origin(s->frames, s->nframes, &s->why);
	if (queue_consumer_sent(a, s)) {
		s->origin = -1;
		s->why = UNATTR_QUEUE_NOT_LINKED;
	}
	if (s->origin < 0 && !s->nframes)
		s->why = failed	    ? UNATTR_SYMBOL_READ_FAILED :
			 read_fault ? UNATTR_STACK_READ_FAILED :
				      UNATTR_NO_PYTHON_FRAMES;
	/*
	 * No application function among the frames left, but some could not be named: the
	 * producer may be one of those.  Not "no application frames": a send so judged would be
	 * linked through its context to its work's creator, a wrong origin (a whole server's
	 * frames named after the coroutine that started it, once the process had exited).
	 */
	else if (failed &&
		 (s->why == UNATTR_NO_APPLICATION_FRAMES || s->why == UNATTR_DETACHED_TASK))
		s->why = UNATTR_SYMBOL_READ_FAILED;
}

/* Whether @e read exactly what the walk of a->last read, so it would resolve the same. */
static bool same_walk(const struct attrib *a, const struct evt_stack *e, size_t n)
{
	size_t len = e->ctx.len < CTX_VALUE_MAX ? e->ctx.len : CTX_VALUE_MAX;

	return a->last && a->last->pending && a->last_walk.tgid == (pid_t)e->tgid &&
	       a->last_walk.status == e->status && a->last_walk.nframes == n &&
	       a->last_walk.ctx_status == e->ctx.status && a->last_walk.ctx_frame == e->ctx.frame &&
	       a->last_walk.ctx_len == len && a->last_walk.py_context == e->py_context &&
	       !memcmp(a->last_walk.ctx_value, e->ctx.value, len) &&
	       !memcmp(a->last_walk.frames, e->frames, n * sizeof(e->frames[0]));
}

static void remember_walk(struct attrib *a, struct attrib_stack *s, const struct evt_stack *e,
			  size_t n)
{
	size_t len = e->ctx.len < CTX_VALUE_MAX ? e->ctx.len : CTX_VALUE_MAX;

	attrib_stack_put(a->last);
	a->last = attrib_stack_get(s);
	a->last_walk.tgid = (pid_t)e->tgid;
	a->last_walk.status = e->status;
	a->last_walk.nframes = (uint16_t)n;
	a->last_walk.ctx_status = e->ctx.status;
	a->last_walk.ctx_frame = e->ctx.frame;
	a->last_walk.ctx_len = (uint8_t)len;
	a->last_walk.py_context = e->py_context;
	memcpy(a->last_walk.ctx_value, e->ctx.value, len);
	memcpy(a->last_walk.frames, e->frames, n * sizeof(e->frames[0]));
}

struct attrib_stack *attrib_resolve(struct attrib *a, const struct evt_stack *e)
{
	struct proc_entry *p = proc_find(a, e->tgid);
	size_t n = e->nframes < PY_FRAMES_MAX ? e->nframes : PY_FRAMES_MAX;
	struct attrib_pending *pd = NULL;
	struct attrib_stack *s;
	unsigned int failed = 0;
	int ctx_frame = -1;

	a->stats.stacks++;
	/*
	 * The same walk as the last stack's, still unchecked: shared.  Its check must now come
	 * after this record too, so its record time moves forward.
	 */
	if (p && p->state == PROC_PYTHON && same_walk(a, e, n)) {
		a->last->pending->consumed_ns = mono_ns();
		a->stats.stacks_shared++;
		return attrib_stack_get(a->last);
	}
	s = stack_alloc(n);
	if (!s)
		return NULL;
	s->py_context = e->py_context;
	s->ts_ns = e->hdr.ts_ns;
	if (!p || p->state != PROC_PYTHON) {
		s->why = proc_reason(a, e->tgid);
		return s;
	}
	switch (e->status) {
	case WALK_NO_THREAD:
	case WALK_NO_THREAD_BASE:
		s->why = UNATTR_NO_PYTHON_THREAD;
		return s;
	case WALK_NO_FRAME:
		s->why = UNATTR_NO_PYTHON_FRAMES;
		return s;
	case WALK_READ_FAULT:
	case WALK_TRUNCATED:
		s->partial = true;
		break;
	}
	/*
	 * Most hand-overs are never matched by a send, and a send's own stack is not used when a
	 * hand-over's is: frames are checked when their stack is used (stack_check), not read
	 * here.  Failing the allocation, they are checked now.
	 */
	pd = malloc(sizeof(*pd) + n * sizeof(pd->raw[0]));
	if (pd)
		pd->consumed_ns = mono_ns();
	if (!pd) {
		unsigned long long codes[PY_FRAMES_MAX];
		size_t nc = 0;

		for (size_t i = 0; i < n; i++) {
			if (!(e->frames[i].flags & PYF_SKIP))
				codes[nc++] = e->frames[i].code;
		}
		pysym_prefetch(a->sym, e->tgid, p->info, codes, nc);
	}
	s->ctx_status = e->ctx.status;
	if (e->ctx.status == CTX_OK || e->ctx.status == CTX_TOO_LONG) {
		memcpy(s->ctx_user, e->ctx.value,
		       e->ctx.len < CTX_VALUE_MAX ? e->ctx.len : CTX_VALUE_MAX);
		s->ctx_user[CTX_VALUE_MAX] = '\0';
	}
	for (size_t i = 0; i < n; i++) {
		if (e->frames[i].flags & PYF_SKIP)
			continue;
		if (resolve_frame(a, p, e->tgid, &e->frames[i], &s->frames[s->nframes], !pd)) {
			if (e->ctx.status != CTX_NONE && i == e->ctx.frame) {
				s->ctx_function = s->frames[s->nframes].function;
				ctx_frame = (int)s->nframes;
			}
			if (pd)
				pd->raw[s->nframes] = e->frames[i];
			s->nframes++;
			a->stats.frames_resolved++;
		} else {
			failed++;
			a->stats.frames_failed++;
		}
	}
	if (pd) {
		pd->tgid = e->tgid;
		pd->ctx_frame = ctx_frame;
		pd->failed = failed;
		pd->read_fault = e->status == WALK_READ_FAULT;
		s->pending = pd;
		remember_walk(a, s, e, n);
	} else {
		pysym_prefetch_end(a->sym);
	}
	stack_judge(a, s, failed, e->status == WALK_READ_FAULT);
	return s;
}

/*
 * A frame named from the cache is trusted as a checked one is, when its code object was
 * found at its address by a read that began after the record was read, and so after the
 * walk: the validation pysym_resolve does, done once for every stack read before it.  A frame
 * named from the names record its walk relied on is trusted as it is.
 */
static bool frame_covered(const struct attrib_frame *f, const struct attrib_pending *pd)
{
	return f->sym && (f->carried || f->sym->checked_ns > pd->consumed_ns);
}

/*
 * Validates the names of a stack resolved unchecked, with the headers read now (after its
 * walk, as for any stack): a frame whose code object changed is named again from what its
 * address holds, one that can no longer be read is dropped and counted.
 */
static void stack_check(struct attrib *a, struct attrib_stack *s)
{
	struct attrib_pending *pd = s->pending;
	struct proc_entry *p = proc_find(a, pd->tgid);
	unsigned long long codes[PY_FRAMES_MAX];
	unsigned int failed = pd->failed;
	struct pysym_hit hit;
	size_t w = 0, nc = 0;
	int ctx = -1;

	s->pending = NULL;
	a->stats.stacks_checked++;
	if (p && p->state == PROC_PYTHON) {
		for (size_t i = 0; i < s->nframes; i++) {
			if (!frame_covered(&s->frames[i], pd))
				codes[nc++] = pd->raw[i].code;
		}
		if (nc)
			pysym_prefetch(a->sym, pd->tgid, p->info, codes, nc);
	}
	for (size_t i = 0; i < s->nframes; i++) {
		struct attrib_frame *f = &s->frames[i];

		if (p && p->state == PROC_PYTHON && frame_covered(f, pd))
			goto keep;
		if (!p || p->state != PROC_PYTHON ||
		    pysym_resolve(a->sym, pd->tgid, p->info, pd->raw[i].code, pd->raw[i].lasti,
				  &hit)) {
			frame_release(f);
			failed++;
			a->stats.frames_resolved--;
			a->stats.frames_failed++;
			continue;
		}
		a->stats.frames_read++;
		if (hit.sym == f->sym) {
			pysym_sym_put(hit.sym);
		} else {
			frame_release(f);
			frame_fill(a, p, pd->tgid, &pd->raw[i], &hit, f);
			f->carried = false;
		}
keep:
		if ((int)i == pd->ctx_frame)
			ctx = (int)w;
		if (w != i)
			s->frames[w] = *f;
		w++;
	}
	if (nc)
		pysym_prefetch_end(a->sym);
	s->nframes = w;
	s->ctx_function = ctx >= 0 ? s->frames[ctx].function : NULL;
	stack_judge(a, s, failed, pd->read_fault);
	free(pd);
}

const char *attrib_interpreter_path(struct attrib *a, pid_t pid)
{
	struct proc_entry *p = proc_find(a, pid);

	return p && p->state == PROC_PYTHON ? p->info->path : NULL;
}

struct attrib_stack *attrib_stack_get(struct attrib_stack *s)
{
	if (s)
		s->refs++;
	return s;
}

void attrib_stack_put(struct attrib_stack *s)
{
	if (!s || --s->refs)
		return;
	for (size_t i = 0; i < s->nframes; i++)
		frame_release(&s->frames[i]);
	free(s->pending);
	free(s);
}

int attrib_ctx_code(struct attrib *a, pid_t pid, unsigned long long code, const char *arg,
		    struct ctx_code *out)
{
	struct proc_entry *p = proc_find(a, pid);
	const struct py_layout *l;
	int slot;

	if (!p || !p->info || !p->info->unicode_type_addr)
		return -ENOENT;
	/*
	 * The caller matched a name that may come from a hand-over's unchecked stack: when the
	 * address holds another code object by now, that name was not its own.
	 */
	if (pysym_check(a->sym, pid, p->info, code) == -ESTALE)
		return -ESTALE;
	slot = pysym_local_slot(pid, p->info, code, arg);
	if (slot < 0)
		return slot;
	if (slot > 0xff)
		return -ERANGE;
	l = &p->info->layout;
	memset(out, 0, sizeof(*out));
	out->str_type = p->info->unicode_type_addr;
	out->slot = (uint16_t)slot;
	out->unicode_length = (uint16_t)l->unicode_length;
	out->unicode_state = (uint16_t)l->unicode_state;
	out->unicode_ascii_data = (uint16_t)l->unicode_ascii_data;
	out->compact_ascii_bits = l->unicode_compact_bit | l->unicode_ascii_bit;
	out->tag_bits = (uint8_t)l->stackref_mask_bits;
	return 0;
}

int attrib_code_check(struct attrib *a, pid_t pid, unsigned long long code)
{
	struct proc_entry *p = proc_find(a, pid);

	if (!p || p->state != PROC_PYTHON)
		return -ENOENT;
	return pysym_check(a->sym, pid, p->info, code);
}

void attrib_stack_check(struct attrib *a, struct attrib_stack *s)
{
	if (s && s->pending)
		stack_check(a, s);
}

void attrib_count(struct attrib *a, const struct attrib_stack *s)
{
	/* Used from here on: its names are checked first (the stack is never const itself). */
	if (s && s->pending)
		stack_check(a, (struct attrib_stack *)s);
	a->stats.unattributed[s ? s->why : UNATTR_STACK_LOST]++;
}

void attrib_count_linked(struct attrib *a, const struct attrib_stack *s, bool linked)
{
	if (s && s->pending)
		stack_check(a, (struct attrib_stack *)s);
	a->stats.unattributed[linked ? UNATTR_NONE : s ? s->why : UNATTR_STACK_LOST]++;
}

const struct attrib_stats *attrib_stats(const struct attrib *a)
{
	return &a->stats;
}

/* A token is an address the traced process chose: keyed, so it cannot pick colliding ones. */
static size_t token_bucket(uint32_t tgid, uint64_t token)
{
	return (size_t)keyhash_table2(token, tgid) & (TOKEN_BUCKETS - 1);
}

static void token_unlink(struct attrib *a, struct token *t)
{
	struct token_chain *c = &a->tokens[token_bucket(t->tgid, t->token)];

	if (t->prev)
		t->prev->next = t->next;
	else
		c->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		c->tail = t->prev;
	if (t->age_prev)
		t->age_prev->age_next = t->age_next;
	else
		a->oldest = t->age_next;
	if (t->age_next)
		t->age_next->age_prev = t->age_prev;
	else
		a->newest = t->age_prev;
	a->ntokens--;
}

int attrib_token_put(struct attrib *a, uint32_t tgid, uint64_t token, uint64_t transport,
		     uint64_t ts_ns, struct attrib_stack *s)
{
	struct token_chain *c;
	struct token *t;

	if (a->ntokens >= TOKENS_MAX && a->oldest) {
		t = a->oldest;
		token_unlink(a, t);
		attrib_stack_put(t->stack);
		free(t);
		a->stats.tokens_expired++;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		attrib_stack_put(s);
		return -ENOMEM;
	}
	t->tgid = tgid;
	t->token = token;
	t->transport = transport;
	t->ts_ns = ts_ns;
	t->stack = s;
	/* Append: attrib_token_take looks from the newest. */
	c = &a->tokens[token_bucket(tgid, token)];
	t->prev = c->tail;
	if (c->tail)
		c->tail->next = t;
	else
		c->head = t;
	c->tail = t;
	t->age_prev = a->newest;
	if (a->newest)
		a->newest->age_next = t;
	else
		a->oldest = t;
	a->newest = t;
	a->ntokens++;
	a->stats.tokens_put++;
	return 0;
}

uint64_t attrib_token_of(struct attrib *a, uint32_t tgid, uint64_t user_addr)
{
	struct proc_entry *p = proc_find(a, tgid);

	if (!p || !p->info || user_addr < p->info->layout.bytes_data)
		return 0;
	/* uvloop sends a bytes object straight from its buffer: data = object + ob_sval. */
	return user_addr - p->info->layout.bytes_data;
}

uint64_t attrib_bytes_len(struct attrib *a, uint32_t tgid, uint64_t ob_type, uint64_t ob_size)
{
	struct proc_entry *p = proc_find(a, tgid);

	if (!p || !p->info || !p->info->bytes_type_addr || ob_type != p->info->bytes_type_addr)
		return UINT64_MAX;
	return ob_size;
}

/*
 * The frame at user_addr continues the object a token was taken for in the same write: the
 * next frame of one object starts where the one before ended.  Another object cannot start
 * there while both are sent by one syscall (its header lies before its data), so the address
 * and the write together name the object.
 */
static struct token_run *token_run_find(struct attrib *a, const struct token_frame *f)
{
	struct token_run *r;

	for (unsigned int i = 0; i < TOKEN_RUNS; i++) {
		r = &a->runs[i];
		if (r->stack && r->tgid == f->tgid && r->tid == f->tid &&
		    r->write_ts == f->write_ts && r->next_addr == f->user_addr)
			return r;
	}
	return NULL;
}

static void token_run_start(struct attrib *a, const struct token_frame *f, struct attrib_stack *s)
{
	struct token_run *r = &a->runs[a->nruns++ % TOKEN_RUNS];

	attrib_stack_put(r->stack);
	*r = (struct token_run){
		.tgid = f->tgid,
		.tid = f->tid,
		.write_ts = f->write_ts,
		.next_addr = f->user_addr + f->len,
		.stack = attrib_stack_get(s),
	};
}

struct attrib_stack *attrib_token_take(struct attrib *a, const struct token_frame *f,
				       uint64_t *transport)
{
	struct attrib_stack *s;
	struct token_run *run;
	uint64_t obj;
	struct token *t;

	*transport = 0;
	/* Most frames of a process with no hand-over pending end here, without a lookup. */
	if (!a->ntokens)
		goto follow;
	obj = attrib_token_of(a, f->tgid, f->user_addr);
	if (!obj)
		return NULL;
	/*
	 * The newest hand-over of that address first.  A queued object is alive, so when an
	 * address was handed over more than once, an older token is either the same object
	 * queued again (a broadcast, whose stacks agree) or one that was freed after a send
	 * wsaudit did not see (a full ring buffer): taking the oldest named frames with the
	 * call site of a long-gone object.  Those stale tokens age out.
	 */
	for (t = a->tokens[token_bucket(f->tgid, obj)].tail; t; t = t->prev) {
		if (t->tgid == f->tgid && t->token == obj)
			break;
	}
	if (!t)
		goto follow;
	token_unlink(a, t);
	s = t->stack;
	*transport = t->transport;
	free(t);
	a->stats.tokens_matched++;
	if (s->pending)
		stack_check(a, s);
	token_run_start(a, f, s);
	return s;

follow:
	run = token_run_find(a, f);
	if (!run)
		return NULL;
	run->next_addr += f->len;
	a->stats.tokens_followed++;
	return attrib_stack_get(run->stack);
}

void attrib_token_expire(struct attrib *a, uint64_t now_ns, uint64_t max_age_ns)
{
	struct token *t;

	while ((t = a->oldest) && now_ns - t->ts_ns >= max_age_ns) {
		token_unlink(a, t);
		attrib_stack_put(t->stack);
		free(t);
		if (now_ns != UINT64_MAX)
			a->stats.tokens_expired++;
	}
}

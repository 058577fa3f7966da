// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adopt.h"
#include "attrib.h"
#include "capture.h"
#include "causal.h"
#include "clock.h"
#include "htable.h"
#include "log.h"
#include "podinfo.h"
#include "policy.h"
#include "procmaps.h"
#include "procs.h"
#include "rules.h"
#include "targets.h"
#include "tlshook.h"
#include "uvhook.h"
#include "zflush.h"

/*
 * A process caught at exec loads its interpreter and then uvloop over its first moments;
 * it is looked at again every WATCH_EVERY_NS for WATCH_NS, so that both are attached before
 * it serves (attaching at its first connection would miss the first frames).
 */
#define WATCH_MAX 256
#define WATCH_NS (30ULL * 1000000000ULL)
#define WATCH_EVERY_NS (200ULL * 1000000ULL)
/* How often processes holding marks or uprobes are checked for having gone unseen. */
#define SWEEP_EVERY_NS (5ULL * 1000000000ULL)
#define SWEEP_MAX 4096
/* (process, code object) pairs tried for identity.context, so each is looked at once. */
#define CTX_TRIED_SLOTS 8192
/* Processes whose transports queue writes (a hand-over was seen), latest kept. */
#define HANDOVER_PIDS 64
/* Processes whose binaries were searched for a linked-in OpenSSL, latest kept. */
#define TLS_STATIC_PIDS 64
/* The modules that hold per-process tables of their own. */
#define FORGETS_MAX 16

/* The container and pod of a followed process, looked up once (user/podinfo.c). */
struct proc_pod {
	pid_t pid;
	json_t *container; /* JSON null on the host */
	char k8s_namespace[PODINFO_NAMESPACE_MAX + 1]; /* podinfo_k8s_labels() */
	char k8s_workload[PODINFO_WORKLOAD_MAX + 1];
	UT_hash_handle hh;
};

struct ctx_tried {
	unsigned long long code;
	pid_t pid; /* 0: free */
};

struct watch {
	pid_t pid;
	bool python; /* interpreter attached; waiting for uvloop */
	uint64_t until;
};

struct procs {
	struct procs_opts opts;
	struct capture *cap;
	struct attrib *attrib;
	struct adopt *adopt;
	const struct policy *policy;
	struct rules *rules;
	uint64_t processes;
	struct forget_cb {
		enum procs_forget from;
		procs_forget_fn fn;
		void *ctx;
	} forgets[FORGETS_MAX];
	unsigned int nforgets;
	struct watch watch[WATCH_MAX];
	unsigned int nwatch;
	uint64_t last_watch;
	/* Processes holding marks or uprobes found gone at the last sweep, and when it was. */
	struct sweep {
		uint64_t last;
		pid_t held[SWEEP_MAX], gone[SWEEP_MAX], was[SWEEP_MAX];
		int ngone;
	} sweep;
	struct ctx_tried ctx_tried[CTX_TRIED_SLOTS];
	unsigned int nctx_tried;
	bool stop_marks_off; /* a mark failed: walks go on to the end */
	bool copy_skips_off; /* a copy_skips mark failed: every copy is recorded */
	uint32_t handover_pids[HANDOVER_PIDS];
	unsigned int nhandover_pids;
	struct tls_static {
		pid_t pid;
		int found; /* tlshook_find_static() */
	} tls_static[TLS_STATIC_PIDS];
	unsigned int ntls_static;
	struct podinfo_cache *pods;
	struct proc_pod *pod_of; /* by pid */
};

struct procs *procs_new(const struct procs_opts *opts, struct capture *cap, struct attrib *attrib,
			struct adopt *adopt)
{
	struct procs *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->opts = *opts;
	p->cap = cap;
	p->attrib = attrib;
	p->adopt = adopt;
	p->pods = podinfo_cache_new(0);
	if (!p->pods) {
		free(p);
		return NULL;
	}
	return p;
}

void procs_free(struct procs *p)
{
	struct proc_pod *pod, *tmp;

	if (!p)
		return;
	HASH_ITER(hh, p->pod_of, pod, tmp) {
		HASH_DEL(p->pod_of, pod);
		json_decref(pod->container);
		free(pod);
	}
	podinfo_cache_free(p->pods);
	free(p);
}

void procs_set_policy(struct procs *p, const struct policy *policy, struct rules *rules)
{
	bool reload = p->policy != NULL;

	p->policy = policy;
	p->rules = rules;
	/* Bridge and context rules may have changed: walks go to the end until marked again. */
	if (reload)
		capture_clear_stop_codes(p->cap);
}

uint64_t procs_count(const struct procs *p)
{
	return p->processes;
}

int procs_on_forget(struct procs *p, enum procs_forget from, procs_forget_fn fn, void *ctx)
{
	if (p->nforgets == FORGETS_MAX)
		return -ENOSPC;
	p->forgets[p->nforgets++] = (struct forget_cb){ .from = from, .fn = fn, .ctx = ctx };
	return 0;
}

/* The container and pod of pid (looked up at its first frame). */
static struct proc_pod *process_pod(struct procs *p, pid_t pid)
{
	struct proc_pod *pod;
	struct podinfo pi;
	enum podinfo_reason r;

	HASH_FIND_INT(p->pod_of, &pid, pod);
	if (pod)
		return pod;
	pod = calloc(1, sizeof(*pod));
	if (!pod)
		return NULL;
	r = podinfo_lookup(p->pods, NULL, p->opts.bundle_root, pid, &pi);
	if (r != PODINFO_OK)
		log_info("pid %d: container lookup: %s", pid, podinfo_reason_name(r));
	pod->pid = pid;
	pod->container = podinfo_json(&pi);
	podinfo_k8s_labels(&pi, pod->k8s_namespace, pod->k8s_workload);
	HASH_ADD_INT(p->pod_of, pid, pod);
	if (!htable_added(pod)) {
		json_decref(pod->container);
		free(pod);
		return NULL;
	}
	return pod;
}

const json_t *procs_container(struct procs *p, pid_t pid)
{
	struct proc_pod *pod = process_pod(p, pid);

	return pod ? pod->container : NULL;
}

void procs_k8s_labels(struct procs *p, pid_t pid, const char **k8s_namespace,
		      const char **k8s_workload)
{
	struct proc_pod *pod = process_pod(p, pid);

	*k8s_namespace = pod ? pod->k8s_namespace : NULL;
	*k8s_workload = pod ? pod->k8s_workload : NULL;
}

static void forget_container(struct procs *p, pid_t pid)
{
	struct proc_pod *pod;

	HASH_FIND_INT(p->pod_of, &pid, pod);
	if (!pod)
		return;
	HASH_DEL(p->pod_of, pod);
	json_decref(pod->container);
	free(pod);
}

/* True the first time (pid, code) is seen; false after, or when the table is full. */
static bool ctx_first_try(struct procs *p, pid_t pid, unsigned long long code)
{
	size_t i = (size_t)((code >> 4) ^ (unsigned int)pid) % CTX_TRIED_SLOTS;

	for (size_t n = 0; n < CTX_TRIED_SLOTS; n++, i = (i + 1) % CTX_TRIED_SLOTS) {
		if (!p->ctx_tried[i].pid) {
			if (p->nctx_tried >= CTX_TRIED_SLOTS / 2)
				return false;
			p->ctx_tried[i].pid = pid;
			p->ctx_tried[i].code = code;
			p->nctx_tried++;
			return true;
		}
		if (p->ctx_tried[i].pid == pid && p->ctx_tried[i].code == code)
			return false;
	}
	return false;
}

static void ctx_forget(struct procs *p, pid_t pid)
{
	/* Open addressing: rebuild without the process's entries. */
	struct ctx_tried *old = malloc(sizeof(p->ctx_tried));

	if (!old)
		return;
	memcpy(old, p->ctx_tried, sizeof(p->ctx_tried));
	memset(p->ctx_tried, 0, sizeof(p->ctx_tried));
	p->nctx_tried = 0;
	for (size_t i = 0; i < CTX_TRIED_SLOTS; i++) {
		if (old[i].pid && old[i].pid != pid)
			ctx_first_try(p, old[i].pid, old[i].code);
	}
	free(old);
}

static void watch_add(struct procs *p, pid_t pid, bool python)
{
	if (p->nwatch == WATCH_MAX || p->opts.capture_only)
		return;
	p->watch[p->nwatch].pid = pid;
	p->watch[p->nwatch].python = python;
	p->watch[p->nwatch].until = mono_ns() + WATCH_NS;
	p->nwatch++;
}

static void watch_remove(struct procs *p, unsigned int i)
{
	p->watch[i] = p->watch[--p->nwatch];
}

static void watch_forget(struct procs *p, pid_t pid)
{
	for (unsigned int i = 0; i < p->nwatch; i++) {
		if (p->watch[i].pid == pid)
			watch_remove(p, i--);
	}
}

static void tls_static_forget(struct procs *p, pid_t pid)
{
	for (unsigned int i = 0; i < TLS_STATIC_PIDS; i++) {
		if (p->tls_static[i].pid == pid)
			p->tls_static[i].pid = 0;
	}
}

/*
 * Everything held for a process, in the modules registered (their connections first: their
 * ends are written with the process's container), then here.
 */
void procs_forget(struct procs *p, pid_t pid, enum procs_forget what, uint64_t ts_ns)
{
	if (what == PROCS_FORGET_EXIT && p->processes)
		p->processes--;
	for (unsigned int i = 0; i < p->nforgets; i++) {
		if (what >= p->forgets[i].from)
			p->forgets[i].fn(p->forgets[i].ctx, pid, what, ts_ns);
	}
	ctx_forget(p, pid);
	if (what == PROCS_FORGET_MARKS)
		return;
	watch_forget(p, pid);
	tls_static_forget(p, pid);
	if (what == PROCS_FORGET_EXIT)
		forget_container(p, pid);
}

/*
 * identity.context: once a bridge function with a user argument has been named, the BPF walk
 * is told to read that argument in its frames from now on.
 */
static void mark_context_frames(struct procs *p, pid_t pid, const struct attrib_stack *stack)
{
	struct ctx_code cc;
	const char *arg;
	int err;

	if (!stack || !p->policy->nctx)
		return;
	for (size_t i = 0; i < stack->nframes; i++) {
		arg = policy_context_arg(p->policy, stack->frames[i].function);
		if (!arg || !ctx_first_try(p, pid, stack->frames[i].code))
			continue;
		err = attrib_ctx_code(p->attrib, pid, stack->frames[i].code, arg, &cc);
		if (!err)
			err = capture_mark_ctx_code(p->cap, pid, stack->frames[i].code, &cc);
		if (err)
			log_info("pid %d: cannot read argument %s of %s: %s", pid, arg,
				 stack->frames[i].function, strerror(-err));
		else
			log_info("pid %d: reading argument %s of %s", pid, arg,
				 stack->frames[i].function);
	}
}

/*
 * Whether a send's walk may stop after this frame: a bridge frame that is not transport names
 * the origin (at it or inside it), via_bridge and, when identity.context names that
 * function, the context's user.  With identity.context rules, only such a frame: a marked
 * frame further out would be missed otherwise.
 */
static bool stop_frame(struct procs *p, const struct attrib_frame *f)
{
	return f->function && !f->transport && rules_frame_is_bridge(p->rules, f) &&
	       (!p->policy->nctx || policy_context_arg(p->policy, f->function));
}

/*
 * Walk less (opts.walk_to_verdict): a send's walk stops at its innermost stop frame once the
 * collector has named it and marked its code object (bpf/lib/pywalk.bpf.h).  A walk that
 * stopped at a code object which is no stop frame now (a policy reload, its address reused
 * by another function) unmarks it.
 */
static void mark_stop_frame(struct procs *p, const struct evt_stack *e,
			    const struct attrib_stack *stack)
{
	const struct attrib_frame *last;
	int err;

	if (!p->opts.walk_to_verdict || p->stop_marks_off || !stack || !stack->nframes)
		return;
	last = &stack->frames[stack->nframes - 1];
	if (e->stopped) {
		if (!stop_frame(p, last))
			capture_mark_stop_code(p->cap, e->tgid, last->code, false);
		return;
	}
	for (size_t i = 0; i + 1 < stack->nframes; i++) {
		if (!stop_frame(p, &stack->frames[i]))
			continue;
		err = capture_mark_stop_code(p->cap, e->tgid, stack->frames[i].code, true);
		if (err) {
			p->stop_marks_off = true;
			log_info("cannot mark %s for shorter stack walks (%s): walks go on to the "
				 "end",
				 stack->frames[i].function, strerror(-err));
		} else {
			log_info("pid %u: stack walks stop at %s", e->tgid,
				 stack->frames[i].function);
		}
		return;
	}
}

/*
 * Context copies no send runs in are not recorded (bpf/link.bpf.c): once a creation's stack
 * shows a copy made by asyncio.sleep (causal_inert_creator), its code object is marked for
 * the process, its name checked against what the address holds now.
 */
static void mark_inert_creator(struct procs *p, const struct evt_stack *e,
			       const struct attrib_stack *stack)
{
	int i = stack && !p->copy_skips_off ? causal_inert_creator(stack->frames, stack->nframes) :
					      -1;
	int err;

	if (i < 0 || attrib_code_check(p->attrib, e->tgid, stack->frames[i].code))
		return;
	err = capture_mark_copy_skip(p->cap, e->tgid, stack->frames[i].code);
	if (err) {
		p->copy_skips_off = true;
		log_info("cannot mark %s to skip its context copies (%s): every copy is recorded",
			 stack->frames[i].function, strerror(-err));
	} else {
		log_info("pid %u: context copies made in %s are not recorded", e->tgid,
			 stack->frames[i].function);
	}
}

void procs_mark(struct procs *p, const struct evt_stack *e, const struct attrib_stack *stack)
{
	mark_context_frames(p, e->tgid, stack);
	if (e->site == STACK_AT_SYSCALL || e->site == STACK_AT_TRANSPORT_WRITE)
		mark_stop_frame(p, e, stack);
	else if (e->site == STACK_AT_CONTEXT_COPY)
		mark_inert_creator(p, e, stack);
}

bool procs_queues_writes(const struct procs *p, pid_t pid)
{
	for (unsigned int i = 0; i < HANDOVER_PIDS; i++) {
		if (p->handover_pids[i] == (uint32_t)pid)
			return true;
	}
	return false;
}

void procs_note_handover(struct procs *p, pid_t pid)
{
	if (!procs_queues_writes(p, pid))
		p->handover_pids[p->nhandover_pids++ % HANDOVER_PIDS] = pid;
}

/* What a site callback of the finders (zflush, tlshook, uvhook) attaches for. */
struct attach_target {
	struct procs *p;
	pid_t pid;
};

static void zlib_site(void *ctx, const char *path, dev_t dev, ino_t ino)
{
	struct attach_target *z = ctx;
	int err = capture_attach_zlib(z->p->cap, z->pid, path, dev, ino);

	if (err)
		log_warn("pid %d: cannot probe zlib's deflate in %s: %s; the compression history "
			 "of its adopted connections stays unknown",
			 z->pid, path, strerror(-err));
}

static void no_site(void *ctx, const char *path, dev_t dev, ino_t ino, unsigned long long offset)
{
}

/*
 * An adopted connection's compressor is named by the probes on deflate (docs/adoption.md),
 * set for that process only: when it is followed (its connections open then are adopted,
 * and their first messages are told apart from then on) and again at its first adopted
 * connection (a process that loaded zlib since).  adopted: say when there is no zlib.
 */
void procs_probe_zlib(struct procs *p, pid_t pid, bool adopted)
{
	struct attach_target z = { .p = p, .pid = pid };
	int n = zflush_find_libz(pid, zlib_site, &z);

	/*
	 * uvloop queues writes even when its hand-over is not hooked (--capture-only): the
	 * write after a message end is then no evidence of whose message it was.
	 */
	if (!procs_queues_writes(p, pid) && uvhook_find_in_process(pid, no_site, NULL) > 0)
		procs_note_handover(p, pid);

	if (n == 0 && adopted)
		log_info("pid %d maps no zlib shared library: the compression history of its "
			 "adopted connections stays unknown",
			 pid);
}

static void tls_site(void *ctx, const char *path, dev_t dev, ino_t ino)
{
	struct attach_target *t = ctx;
	int err = capture_attach_tls(t->p->cap, t->pid, path, dev, ino);

	/* An OpenSSL lacks some of the functions (1.1.0 has no _ex): the others still count. */
	if (err)
		log_info("pid %d: not every libssl function probed in %s: %s", t->pid, path,
			 strerror(-err));
}

/*
 * The probes on the libssl pid maps, and with installed on the ones in its library
 * directories, which its _ssl would load later (docs/tls.md).  Returns whether pid's TLS
 * plaintext is probed.
 */
static bool tls_attach(struct procs *p, pid_t pid, bool installed)
{
	struct attach_target t = { .p = p, .pid = pid };
	bool before = capture_tls_probed(p->cap, pid);

	tlshook_find_mapped(pid, tls_site, &t);
	if (installed)
		tlshook_find_installed(pid, tls_site, &t);
	if (!capture_tls_probed(p->cap, pid))
		return false;
	if (!before)
		log_info("pid %d: TLS plaintext probed in libssl", pid);
	return true;
}

bool procs_tls_probed(struct procs *p, pid_t pid)
{
	/* Probed, or libssl loaded since the process was looked at (Python imports ssl late). */
	return capture_tls_probed(p->cap, pid) || tls_attach(p, pid, false);
}

bool procs_tls_static(struct procs *p, pid_t pid)
{
	struct tls_static *t;
	char name[PATH_MAX];

	for (unsigned int i = 0; i < TLS_STATIC_PIDS; i++) {
		if (p->tls_static[i].pid == pid)
			return p->tls_static[i].found == 1;
	}
	t = &p->tls_static[p->ntls_static++ % TLS_STATIC_PIDS];
	t->pid = pid;
	t->found = tlshook_find_static(pid, name, sizeof(name));
	if (t->found == 1)
		log_warn(
			"pid %d: OpenSSL is linked into %s, which the TLS probes do not cover: the "
			"frames of its TLS connections are not seen",
			pid, name);
	return t->found == 1;
}

static void uvloop_site(void *ctx, const char *path, dev_t dev, ino_t ino,
			unsigned long long offset)
{
	struct attach_target *t = ctx;
	int err = capture_attach_transport_write(t->p->cap, t->pid, path, dev, ino, offset);

	if (err)
		log_warn("failed to attach to uvloop's transport write at %s+0x%llx: %s", path,
			 offset, strerror(-err));
}

/* uvloop sends later what it is given: its write methods take the stack instead. */
static int uvloop_attach(struct procs *p, pid_t pid)
{
	struct attach_target t = { .p = p, .pid = pid };
	int n = uvhook_find_in_process(pid, uvloop_site, &t);

	if (n > 0)
		log_info("pid %d: uvloop transport writes hooked at %d site(s)", pid, n);
	return n;
}

/*
 * Work handed to a task, a callback or a thread runs in a context copied at its creation: the
 * copies' creators are recorded (docs/causal.md).  Said when it cannot be, and then every
 * such send is unjudged with its reason.
 */
struct ctx_copy_target {
	struct procs *p;
	pid_t pid;
	const char *file; /* the interpreter's file, as the process's maps name it */
	int found, err;
};

static void ctx_copy_site(void *ctx, const char *path, const char *name, dev_t dev, ino_t ino)
{
	struct ctx_copy_target *t = ctx;

	if (t->found || strcmp(name, t->file))
		return;
	t->found = 1;
	t->err = capture_attach_context_copy(t->p->cap, t->pid, path, dev, ino);
}

static void context_copy_attach(struct procs *p, pid_t pid, const struct py_offsets *off)
{
	struct ctx_copy_target t = { .p = p, .pid = pid };
	int n;

	t.file = attrib_interpreter_path(p->attrib, pid);
	if (off->tstate_context == PY_OFF_NONE) {
		log_warn("pid %d: this CPython's context is not known: sends of tasks, callbacks "
			 "and threads are not linked to their creators",
			 pid);
		return;
	}
	if (!t.file)
		return;
	/* Through map_files: the file the process maps, from any mount namespace or root. */
	n = procmaps_each_file(pid, NULL, 256, ctx_copy_site, &t);
	if (n < 0 || !t.found)
		log_warn("pid %d: %s is not among its mappings (%s); sends of tasks, callbacks "
			 "and threads are not linked to their creators",
			 pid, t.file, n < 0 ? strerror(-n) : "not found");
	else if (t.err)
		log_warn("pid %d: cannot probe PyContext_CopyCurrent in %s: %s; sends of tasks, "
			 "callbacks and threads are not linked to their creators",
			 pid, t.file, strerror(-t.err));
	else
		log_info("pid %d: creations of tasks, callbacks and threads hooked", pid);
}

int procs_attach(struct procs *p, pid_t pid)
{
	struct attach_target t = { .p = p, .pid = pid };
	struct py_names_layout names;
	struct py_offsets off;
	int err;

	err = attrib_add_process(p->attrib, pid, &off);
	if (err)
		return err;
	if (p->opts.capture_only)
		return 0;
	/* Before the walk: its first stacks send the names of their code objects too. */
	err = attrib_names_layout(p->attrib, pid, &names);
	if (!err)
		err = capture_set_pynames(p->cap, pid, &names);
	if (err)
		log_warn("pid %d: walks will not send code objects' names (%s): frames of its "
			 "stacks are named only while it lives",
			 pid, strerror(-err));
	err = capture_set_pyoffsets(p->cap, pid, &off);
	if (err)
		log_warn("failed to enable the stack walk for pid %d: %s", pid, strerror(-err));
	context_copy_attach(p, pid, &off);
	/* libssl, mapped or where _ssl would load it from: TLS is terminated lazily too. */
	tls_attach(p, pid, true);
	/* uvloop where it would be imported from: hooked before the import, not after. */
	if (uvhook_find_installed(pid, uvloop_site, &t) > 0)
		log_info("pid %d: installed uvloop hooked ahead of its import", pid);
	return uvloop_attach(p, pid);
}

/* Looks again at processes that were starting: interpreter first, then uvloop. */
static void watch_poll(struct procs *p, uint64_t now)
{
	struct watch *w;
	int n;

	if (!p->nwatch || now - p->last_watch < WATCH_EVERY_NS)
		return;
	p->last_watch = now;
	for (unsigned int i = 0; i < p->nwatch; i++) {
		w = &p->watch[i];
		if (now >= w->until) {
			watch_remove(p, i--);
			continue;
		}
		if (!w->python) {
			n = procs_attach(p, w->pid);
			if (n == -ENOEXEC)
				continue; /* no interpreter yet */
			if (n != 0) {
				/* A CPython we cannot walk, or done (uvloop hooked too). */
				watch_remove(p, i--);
				continue;
			}
			w->python = true;
			continue;
		}
		if (uvloop_attach(p, w->pid) > 0)
			watch_remove(p, i--);
	}
}

int procs_add(struct procs *p, pid_t pid, const char *how)
{
	char comm[32];
	bool followed, whole;
	int err, py;

	target_comm(pid, comm, sizeof(comm));
	/*
	 * Counted once: a process found by a reload's scan may have its exec record still
	 * queued, and a forked child that execs was counted at the fork.
	 */
	followed = capture_is_traced(p->cap, pid);
	/* Marks and uprobes of an earlier process with this pid, or of the image before exec. */
	procs_forget(p, pid, PROCS_FORGET_MARKS, 0);
	/*
	 * Its interpreter, uvloop's hand-over and zlib's deflate are hooked before its writes
	 * are followed, so that the time between the two is short: the compressors' histories
	 * are read right after (adopt_scan_process), and the messages written before that
	 * cannot be decoded (docs/adoption.md).
	 */
	py = procs_attach(p, pid);
	procs_probe_zlib(p, pid, false);
	err = capture_trace_pid(p->cap, pid);
	if (err) {
		log_err("failed to trace pid %d (%s): %s", pid, comm, strerror(-err));
		return err;
	}
	/*
	 * Every message end from now on is reported: each history read fits its successor.  No
	 * compressor in its memory (a whole scan): no connection it holds now has a compression
	 * history to recover, and later ones are followed from their start, so the deflate
	 * probes, four traps per permessage-deflate message, go (bench/realistic.md).
	 */
	if (adopt_scan_process(p->adopt, pid, &whole) == 0 && whole)
		capture_detach_zlib(p->cap, pid);
	if (!followed)
		p->processes++;
	log_info("tracing pid %d (%s)%s", pid, comm, how);
	/*
	 * Reaped already (its exec record or a reload's scan came late): the kernel saw its exit
	 * untraced, so no exit record will come, and its bit is still set (a traced exit clears
	 * it).  It is forgotten now, or it would be counted for good.
	 */
	if (kill(pid, 0) && errno == ESRCH && capture_is_traced(p->cap, pid)) {
		log_info("pid %d exited before it was followed", pid);
		capture_untrace_pid(p->cap, pid);
		procs_forget(p, pid, PROCS_FORGET_EXIT, mono_ns());
		return 0;
	}
	err = py;
	/*
	 * A process caught at exec may not have loaded its interpreter yet, nor uvloop: it is
	 * watched until both are there.
	 */
	if (*how && (err == -ENOEXEC || err == 0))
		watch_add(p, pid, err == 0);
	else if (!*how && err == -ENOEXEC)
		log_warn("pid %d (%s) runs no CPython interpreter: its frames are captured, "
			 "without Python attribution",
			 pid, comm);
	return 0;
}

/* The executable globs in force: the policy's targets, or the caller's. */
static char *const *exe_globs(const struct procs *p, size_t *n)
{
	if (p->opts.targets_from_policy) {
		*n = p->policy->exe.n;
		return p->policy->exe.v;
	}
	*n = p->opts.nglobs;
	return (char *const *)p->opts.exe_globs;
}

static void scan_cb(void *ctx, pid_t pid)
{
	procs_add(ctx, pid, " (executable matched)");
}

int procs_scan_exe(struct procs *p)
{
	size_t n;
	char *const *globs = exe_globs(p, &n);

	if (!n)
		return 0;
	return target_scan_exe(globs, n, scan_cb, p);
}

static bool exec_matches(struct procs *p, const struct evt_proc *e)
{
	size_t n;
	char *const *globs = exe_globs(p, &n);
	char exe[4096];

	struct podinfo pi;

	/* A process started in a followed container (`kubectl exec`, a restarted worker). */
	if (p->opts.pods &&
	    podinfo_lookup(p->pods, NULL, p->opts.bundle_root, e->pid, &pi) != PODINFO_NO_PROCESS &&
	    podinfo_selected(p->opts.pods, &pi))
		return true;
	if (!n)
		return false;
	/* The path as exec'd, or the resolved one (for relative or symlinked paths). */
	return target_exe_matches(e->filename, globs, n) ||
	       (!target_exe_path(e->pid, exe, sizeof(exe)) && target_exe_matches(exe, globs, n));
}

/* A followed process that exec'd: forget its old image and look at the new one. */
static void reinspect(struct procs *p, pid_t pid, bool by_leader)
{
	int err;

	procs_forget(p, pid, by_leader ? PROCS_FORGET_EXEC_LEADER : PROCS_FORGET_EXEC, 0);
	log_info("traced pid %d runs a new program", pid);
	err = procs_attach(p, pid);
	/* Its interpreter (and uvloop) may load later: it is watched until both are there. */
	if (err == -ENOEXEC || err == 0)
		watch_add(p, pid, err == 0);
}

bool procs_exec(struct procs *p, const struct evt_proc *e)
{
	if (e->traced) {
		/*
		 * A traced process runs a new program (a shell starting python): what was
		 * learned of the old image is void, the new one is inspected like a new
		 * process (the kernel dropped its offsets at the exec).
		 */
		reinspect(p, e->pid, e->by_leader);
		return true;
	}
	if (exec_matches(p, e)) {
		procs_add(p, e->pid, " (exec matched)");
		return true;
	}
	return false;
}

void procs_fork(struct procs *p, pid_t parent, pid_t child)
{
	p->processes++;
	procs_forget(p, child, PROCS_FORGET_MARKS, 0);
	attrib_fork_process(p->attrib, parent, child);
	if (capture_fork_transport_writes(p->cap, parent, child) < 0)
		log_warn("pid %u: failed to hook uvloop's transport writes as its parent's", child);
	log_info("tracing pid %u, forked by traced pid %u", child, parent);
}

void procs_exit(struct procs *p, pid_t pid, uint64_t ts_ns)
{
	procs_forget(p, pid, PROCS_FORGET_EXIT, ts_ns);
}

/*
 * A process whose exit record was lost (a full ring buffer) would keep its marks, uprobes and
 * state for good: those holding marks or uprobes are checked now and then, and one found gone
 * twice in a row (its exit record, if any, has been read by then) is forgotten as at its exit,
 * and said.
 */
static void sweep_gone(struct procs *p, uint64_t now)
{
	struct sweep *sw = &p->sweep;
	int n, nwas, j;

	if (now - sw->last < SWEEP_EVERY_NS)
		return;
	sw->last = now;
	memcpy(sw->was, sw->gone, sw->ngone * sizeof(sw->gone[0]));
	nwas = sw->ngone;
	sw->ngone = 0;
	n = capture_held_tgids(p->cap, sw->held, SWEEP_MAX);
	for (int i = 0; i < n; i++) {
		if (kill(sw->held[i], 0) == 0 || errno != ESRCH)
			continue;
		for (j = 0; j < nwas && sw->was[j] != sw->held[i]; j++)
			;
		if (j == nwas) {
			/* First sighting: looked at again at the next sweep. */
			sw->gone[sw->ngone++] = sw->held[i];
			continue;
		}
		if (attrib_known(p->attrib, sw->held[i])) {
			log_warn("pid %d exited unseen (its exit record was lost): its state is "
				 "dropped",
				 sw->held[i]);
			procs_forget(p, sw->held[i], PROCS_FORGET_EXIT, now);
		} else {
			/* Its exit was handled, yet something of it was left in the kernel. */
			log_warn("pid %d exited, but marks or uprobes of it were left: dropped",
				 sw->held[i]);
			procs_forget(p, sw->held[i], PROCS_FORGET_MARKS, now);
		}
	}
}

void procs_poll(struct procs *p, uint64_t now)
{
	watch_poll(p, now);
	sweep_gone(p, now);
}

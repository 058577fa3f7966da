/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Walking the current thread's CPython stack into an evt_stack record.
 *
 * The GIL may be released (during a send it is), so neither the GIL holder nor the 3.12+
 * thread-local current thread state can be used.  The thread's PyThreadState is found by
 * walking the interpreters' thread lists and matching thread_id, which CPython sets to
 * pthread_self(), i.e. the thread pointer (x86_64: the FS base), against the current task's.
 * The match is cached per thread and re-checked on every use.  Each frame costs one read of
 * its first frame_read_size bytes; code objects and instruction offsets go to user space,
 * which turns them into names and lines (user/pysym.c).  Every address and offset comes from
 * the process's struct py_offsets (user/pyproc.c), so one program serves CPython 3.9 to 3.14.
 */
#ifndef WSAUDIT_PYWALK_BPF_H
#define WSAUDIT_PYWALK_BPF_H

#include "names.bpf.h"

static __always_inline __u64 thread_base(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(task, thread.fsbase);
#elif defined(__TARGET_ARCH_arm64)
	return BPF_CORE_READ(task, thread.uw.tp_value);
#else
	return 0;
#endif
}

static __always_inline __u64 read_ptr(__u64 addr)
{
	__u64 v = 0;

	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

/* Fields of the frame at window offset rel (see struct walk_scratch for the masks). */
static __always_inline __u64 win_u64(const struct walk_scratch *w, __u64 rel, __u16 off)
{
	return *(const __u64 *)(w->win + ((rel + off) & (2 * PY_WALK_WIN - 1)));
}

static __always_inline __u32 win_u32(const struct walk_scratch *w, __u64 rel, __u16 off)
{
	return *(const __u32 *)(w->win + ((rel + off) & (2 * PY_WALK_WIN - 1)));
}

static __always_inline __u8 win_u8(const struct walk_scratch *w, __u64 rel, __u16 off)
{
	return w->win[(rel + off) & (2 * PY_WALK_WIN - 1)];
}

/* The bytes [base, base + len) that w->win holds. */
struct walk_window {
	__u64 base;
	__u64 len;
};

/*
 * Makes the window hold the span bytes of the frame at fp.  With `below`, it reads the
 * PY_WALK_WIN bytes that end with that frame instead, so that the callers beneath it in the
 * thread's data stack come with it; when that would cross the start of the mapping, it reads
 * from the frame's page on.
 */
static __always_inline int window_load(struct walk_scratch *w, struct walk_window *win, __u64 fp,
				       __u32 span, bool below)
{
	__u64 start, len;

	if (below) {
		start = fp + span - PY_WALK_WIN;
		if (!bpf_probe_read_user(w->win, PY_WALK_WIN, (void *)start)) {
			win->base = start;
			win->len = PY_WALK_WIN;
			return 0;
		}
		start = fp & ~(__u64)4095;
		len = fp + span - start;
		if (len <= PY_WALK_WIN + PY_FRAME_READ &&
		    !bpf_probe_read_user(w->win, len & (2 * PY_WALK_WIN - 1), (void *)start)) {
			win->base = start;
			win->len = len;
			return 0;
		}
	}
	if (bpf_probe_read_user(w->win, span & (2 * PY_FRAME_READ - 1), (void *)fp))
		return -1;
	win->base = fp;
	win->len = span;
	return 0;
}

/* The thread state whose thread_id is `base`, searching every interpreter.  0 if none. */
static __always_inline __u64 find_tstate(const struct py_offsets *off, __u64 base)
{
	__u64 interp, ts, fallback = 0;
	__u32 i;

	interp = read_ptr(off->runtime_addr + off->runtime_interp_head);
	ts = interp ? read_ptr(interp + off->interp_threads_head) : 0;
	for (i = 0; i < PY_THREADS_WALK && interp; i++) {
		if (!ts) {
			interp = read_ptr(interp + off->interp_next);
			ts = interp ? read_ptr(interp + off->interp_threads_head) : 0;
			continue;
		}
		if (read_ptr(ts + off->tstate_thread_id) == base) {
			/*
			 * A thread owns one thread state per interpreter it entered: prefer
			 * the one that is running Python code.
			 */
			if (read_ptr(ts + off->tstate_frame))
				return ts;
			fallback = ts;
		}
		ts = read_ptr(ts + off->tstate_next);
	}
	return fallback;
}

static __always_inline __u64 current_frame(const struct py_offsets *off, __u64 ts)
{
	__u64 fp = read_ptr(ts + off->tstate_frame);

	if (fp && off->frame_kind == PY_FRAME_CFRAME)
		fp = read_ptr(fp + off->cframe_current_frame);
	return fp;
}

static __always_inline __s32 frame_lasti(const struct py_offsets *off, const struct walk_scratch *w,
					 __u64 rel, __u64 code)
{
	__s32 v;
	__u64 ip, start;

	switch (off->lasti_kind) {
	case PY_LASTI_BYTES:
		v = (__s32)win_u32(w, rel, off->frame_lasti);
		return v < 0 ? -1 : v;
	case PY_LASTI_UNITS:
		v = (__s32)win_u32(w, rel, off->frame_lasti);
		return v < 0 ? -1 : v * 2;
	case PY_LASTI_POINTER:
		if (off->flags & PY_OFF_F_UNSUP_TLBC)
			return -1;
		ip = win_u64(w, rel, off->frame_lasti);
		start = code + off->code_adaptive;
		/* 3.11/3.12 point one unit before the code until the first instruction. */
		if (ip < start || ip - start > 0x7fffffff)
			return -1;
		return (__s32)(ip - start);
	}
	return -1;
}

/*
 * The user argument of a marked bridge frame: a compact ASCII str copied into e->ctx, or a
 * status saying why not.
 */
static __always_inline void read_ctx(struct evt_stack *e, const struct py_offsets *off,
				     const struct ctx_code *cc, __u64 fp, __u32 i)
{
	__u64 obj, type, len;
	__u32 state;

	e->ctx.frame = i;
	obj = read_ptr(fp + off->frame_localsplus + 8 * (__u64)(cc->slot & 0xff));
	obj &= ~(__u64)cc->tag_bits;
	if (!obj) {
		e->ctx.status = CTX_NOT_STR;
		return;
	}
	type = read_ptr(obj + off->object_type);
	if (type != cc->str_type) {
		e->ctx.status = CTX_NOT_STR;
		return;
	}
	len = read_ptr(obj + cc->unicode_length);
	if (bpf_probe_read_user(&state, sizeof(state), (void *)(obj + cc->unicode_state))) {
		e->ctx.status = CTX_READ_FAULT;
		return;
	}
	if ((state & cc->compact_ascii_bits) != cc->compact_ascii_bits) {
		e->ctx.status = CTX_NOT_STR;
		return;
	}
	e->ctx.status = CTX_OK;
	if (len > CTX_VALUE_MAX) {
		len = CTX_VALUE_MAX;
		e->ctx.status = CTX_TOO_LONG;
	}
	e->ctx.len = len;
	if (bpf_probe_read_user(e->ctx.value, len & (CTX_VALUE_MAX * 2 - 1) & 0x7f,
				(void *)(obj + cc->unicode_ascii_data)))
		e->ctx.status = CTX_READ_FAULT;
}

/*
 * Fills e's status, thread base and frames for the current thread.  ss (may be NULL): the
 * process's stop marks (stop_sets for a send, copy_skips for a context copy); the walk ends
 * after a frame of a code object in it (e->stopped).
 */
static __always_inline void py_walk(struct evt_stack *e, const struct py_offsets *off,
				    struct walk_scratch *w, __u64 id, const struct stop_set *ss)
{
	__u64 base, ts, fp, inner = 0, code, rel, *cached;
	const struct py_names_layout *nl;
	struct walk_window win = {};
	const struct ctx_code *cc;
	struct ctx_code_key ck;
	bool want_ctx, below = false;
	__u64 stop0, stop1, hit;
	__u32 i, span;

	e->nframes = 0;
	e->stopped = 0;
	e->ctx.status = CTX_NONE;
	e->ctx.len = 0;
	base = thread_base();
	e->thread_base = base;
	if (!base) {
		e->status = WALK_NO_THREAD_BASE;
		return;
	}
	cached = bpf_map_lookup_elem(&tstate_cache, &id);
	if (cached && *cached && read_ptr(*cached + off->tstate_thread_id) == base) {
		ts = *cached;
	} else {
		ts = find_tstate(off, base);
		if (!ts) {
			e->status = WALK_NO_THREAD;
			return;
		}
		bpf_map_update_elem(&tstate_cache, &id, &ts, BPF_ANY);
	}
	/*
	 * The context the thread runs in: it links a send to where its work was created.  Work
	 * handed over runs in a context it entered; a thread's base context is never entered
	 * and links to nothing (its address may be a dead hand-off's).
	 */
	if (off->tstate_context != PY_OFF_NONE) {
		__u64 pc = read_ptr(ts + off->tstate_context);
		__u8 entered = 0;

		if (pc && !bpf_probe_read_user(&entered, 1, (void *)(pc + off->context_entered)) &&
		    entered)
			e->py_context = pc;
	}
	fp = current_frame(off, ts);
	if (!fp) {
		e->status = WALK_NO_FRAME;
		return;
	}
	span = off->frame_read_size;
	if (span > PY_FRAME_READ || span < 8) {
		e->status = WALK_READ_FAULT;
		return;
	}

	e->status = WALK_OK;
	ck.tgid = id >> 32;
	ck._pad = 0;
	/* One lookup per walk, so that processes without marks pay nothing per frame. */
	want_ctx = bpf_map_lookup_elem(&ctx_procs, &ck.tgid) != NULL;
	/* The stop marks, compared frame by frame (fewer lookups than frames). */
	_Static_assert(STOP_CODES_MAX == 2, "one compare per stop slot below");
	stop0 = ss ? ss->code[0] : STOP_CODE_NONE;
	stop1 = ss ? ss->code[1] : STOP_CODE_NONE;
	nl = bpf_map_lookup_elem(&py_names, &ck.tgid);

	/* Every visited frame takes a slot (shims flagged), so the loop stays linear. */
	for (i = 0; i < PY_FRAMES_MAX; i++) {
		if (!fp)
			break;
		/*
		 * A frame the window lacks costs a read.  On 3.11+ a frame the thread owns lies
		 * in its data stack, and a caller just beneath it usually does too: read the
		 * window below that caller, which holds the callers after it as well.  Frames
		 * of coroutines and generators live in their objects: one read each.
		 */
		rel = fp - win.base;
		if (fp < win.base || rel + span > win.len) {
			below = below && fp < inner && inner - fp < PY_WALK_WIN;
			if (window_load(w, &win, fp, span, below)) {
				e->status = WALK_READ_FAULT;
				break;
			}
			rel = fp - win.base;
		}
		code = win_u64(w, rel, off->frame_code) & off->code_tag_mask;
		e->frames[i].code = code;
		/* 3.9/3.10 code objects have no qualname: the receiver names the class. */
		e->frames[i].arg0 =
			off->flags & PY_OFF_F_RECEIVER ? read_ptr(fp + off->frame_localsplus) : 0;
		e->frames[i].arg0_type =
			e->frames[i].arg0 ? read_ptr(e->frames[i].arg0 + off->object_type) : 0;
		e->frames[i].lasti = frame_lasti(off, w, rel, code);
		e->frames[i].flags = 0;
		if (off->owner_skip_min && win_u8(w, rel, off->frame_owner) >= off->owner_skip_min)
			e->frames[i].flags = PYF_SKIP;
		e->nframes = i + 1;
		/* The innermost marked bridge frame gives the context identity. */
		if (want_ctx && i < CTX_FRAMES_MAX && e->ctx.status == CTX_NONE) {
			ck.code = code;
			cc = bpf_map_lookup_elem(&ctx_codes, &ck);
			if (cc)
				read_ctx(e, off, cc, fp, i);
		}
		below = off->frame_owner < PY_FRAME_READ &&
			win_u8(w, rel, off->frame_owner) == PY_FRAME_OWNED_BY_THREAD;
		inner = fp;
		fp = win_u64(w, rel, off->frame_previous);
		/*
		 * A stop mark: no caller is read (fp 0 ends the loop).  Without marks both are
		 * STOP_CODE_NONE: no branch on ss here, which would double the verifier's states.
		 */
		hit = (code == stop0) | (code == stop1);
		e->stopped = hit;
		fp &= hit - 1;
	}
	if (fp && e->status == WALK_OK && e->nframes == PY_FRAMES_MAX)
		e->status = WALK_TRUNCATED;
	/* The names of its code objects, sent while the process lives (bpf/names.bpf.c). */
	if (nl)
		py_walk_names(nl, e);
}

/*
 * The scratch stack record with its header filled, or NULL (counted) when the ring buffer has no
 * room for a whole one in its first three quarters: the walk is skipped then.  Origins go
 * before frames: the last quarter is left to the data records, which carry the frames' bytes,
 * so that under overload a frame loses its origin (stack_lost) before its bytes
 * (bench/degrade.md).
 */
static __always_inline struct evt_stack *stack_begin(struct walk_scratch *w, __u64 id, __u8 site)
{
	struct evt_stack *e = &w->stack;

	if (4 * (bpf_ringbuf_query(&events_rb, BPF_RB_AVAIL_DATA) + sizeof(*e) + 8) >
	    3 * bpf_ringbuf_query(&events_rb, BPF_RB_RING_SIZE)) {
		count_drop(DROP_STACK_RINGBUF_FULL);
		return NULL;
	}
	e->hdr.type = EVT_STACK;
	e->hdr.version = EVT_VERSION;
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->site = site;
	e->stopped = 0;
	e->token = 0;
	e->py_context = 0;
	e->io_pos = 0;
	e->conn.ino = 0;
	e->conn.gen = 0;
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	return e;
}

/* Sends the record with the frames found only; false when the ring buffer had no room. */
static __always_inline bool stack_submit(struct evt_stack *e)
{
	__u64 size = EVT_STACK_SIZE(e->nframes);

	if (size > sizeof(*e))
		size = sizeof(*e);
	e->hdr.size = size;
	if (bpf_ringbuf_output(&events_rb, e, size, ringbuf_flags(size, false))) {
		count_drop(DROP_STACK_RINGBUF_FULL);
		return false;
	}
	count_stat(STAT_EVENTS, 1);
	return true;
}

/*
 * Whether every buffer of the write that io describes is the data of a bytes object that
 * thread id handed over to a transport less than HANDOVER_MAX_AGE_NS ago, its hand-over
 * stack sent (transport_write_uprobe): the collector takes the stacks of its frames from
 * those hand-overs (their tokens), and the syscall's own stack, the event loop's, would add
 * nothing.  The entries it finds are used up.  A write with more buffers than io->segs holds,
 * or any buffer not handed over so, is walked.
 */
static __always_inline bool handed_over(const struct io_desc *io, const struct py_offsets *off,
					__u64 id)
{
	struct handover_key k = { .tgid = id >> 32 };
	__u32 i, n = io->nsegs;
	struct handover *h;
	bool all = true;
	__u64 now;

	if (!off->bytes_data || !n || n > IOV_MAX_WALK || io->iov_cnt > n)
		return false;
	now = bpf_ktime_get_ns();
	for (i = 0; i < IOV_MAX_WALK; i++) {
		if (i >= n)
			break;
		k.data = io->segs[i].ptr;
		h = bpf_map_lookup_elem(&handover_map, &k);
		if (!h || h->tid != (__u32)id || now - h->ts_ns > HANDOVER_MAX_AGE_NS) {
			all = false;
			continue;
		}
		bpf_map_delete_elem(&handover_map, &k);
	}
	return all;
}

/*
 * The stack of the thread whose bytes the per-CPU io_desc describes, before they are sent:
 * the body of the programs entered by tail call at TAIL_PY_STACK of progs, which go on to
 * the chunk emitter through the same array.  With `handover`, a write whose buffers were all
 * handed over (handed_over) is not walked: its data records say so (DATA_HANDED_OVER).
 */
static __always_inline int py_stack_walk_run(void *ctx, void *progs, bool handover)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0, tgid = id >> 32;
	const struct py_offsets *off;
	struct walk_scratch *w;
	struct evt_stack *e;
	struct io_desc *io;

	off = bpf_map_lookup_elem(&py_procs, &tgid);
	io = bpf_map_lookup_elem(&io_heap, &zero);
	w = bpf_map_lookup_elem(&walk_heap, &zero);
	if (!off || !io || !w)
		goto out;
	if (handover && !io->closing && handed_over(io, off, id)) {
		io->flags |= DATA_HANDED_OVER;
		goto out;
	}
	e = stack_begin(w, id, io->closing ? STACK_AT_CLOSE : STACK_AT_SYSCALL);
	if (!e)
		goto out;
	e->conn = io->conn;
	e->io_pos = io->io_pos;
	py_walk(e, off, w, id, bpf_map_lookup_elem(&stop_sets, &tgid));
	stack_submit(e);
out:
	/* Entered from close_enter: the close record follows its stack, there are no bytes. */
	if (io && io->closing) {
		io->closing = 0;
		conn_close_emit(io);
		return 0;
	}
	bpf_tail_call(ctx, progs, TAIL_EMIT_CHUNKS);
	count_drop(DROP_LOOP_LIMIT);
	return 0;
}

#endif /* WSAUDIT_PYWALK_BPF_H */

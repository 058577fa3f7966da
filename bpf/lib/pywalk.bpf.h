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

static __always_inline __u64 block_u64(const struct walk_scratch *w, __u16 off)
{
	return *(const __u64 *)(w->block + (off & (PY_FRAME_READ - 1)));
}

static __always_inline __u32 block_u32(const struct walk_scratch *w, __u16 off)
{
	return *(const __u32 *)(w->block + (off & (PY_FRAME_READ - 1)));
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
					 __u64 code)
{
	__s32 v;
	__u64 ip, start;

	switch (off->lasti_kind) {
	case PY_LASTI_BYTES:
		v = (__s32)block_u32(w, off->frame_lasti);
		return v < 0 ? -1 : v;
	case PY_LASTI_UNITS:
		v = (__s32)block_u32(w, off->frame_lasti);
		return v < 0 ? -1 : v * 2;
	case PY_LASTI_POINTER:
		if (off->flags & PY_OFF_F_UNSUP_TLBC)
			return -1;
		ip = block_u64(w, off->frame_lasti);
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

/* Fills e's status, thread base and frames for the current thread. */
static __always_inline void py_walk(struct evt_stack *e, const struct py_offsets *off,
				    struct walk_scratch *w, __u64 id)
{
	__u64 base, ts, fp, code, *cached;
	const struct ctx_code *cc;
	struct ctx_code_key ck;
	bool want_ctx;
	__u32 i, span;

	e->nframes = 0;
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
	/* Every visited frame takes a slot (shims flagged), so the loop stays linear. */
	for (i = 0; i < PY_FRAMES_MAX; i++) {
		if (!fp)
			break;
		if (bpf_probe_read_user(w->block, span & (2 * PY_FRAME_READ - 1), (void *)fp)) {
			e->status = WALK_READ_FAULT;
			break;
		}
		code = block_u64(w, off->frame_code) & off->code_tag_mask;
		e->frames[i].code = code;
		/* 3.9/3.10 code objects have no qualname: the receiver names the class. */
		e->frames[i].arg0 =
			off->flags & PY_OFF_F_RECEIVER ? read_ptr(fp + off->frame_localsplus) : 0;
		e->frames[i].arg0_type =
			e->frames[i].arg0 ? read_ptr(e->frames[i].arg0 + off->object_type) : 0;
		e->frames[i].lasti = frame_lasti(off, w, code);
		e->frames[i].flags = 0;
		if (off->owner_skip_min &&
		    w->block[off->frame_owner & (PY_FRAME_READ - 1)] >= off->owner_skip_min)
			e->frames[i].flags = PYF_SKIP;
		e->nframes = i + 1;
		/* The innermost marked bridge frame gives the context identity. */
		if (want_ctx && i < CTX_FRAMES_MAX && e->ctx.status == CTX_NONE) {
			ck.code = code;
			cc = bpf_map_lookup_elem(&ctx_codes, &ck);
			if (cc)
				read_ctx(e, off, cc, fp, i);
		}
		fp = block_u64(w, off->frame_previous);
	}
	if (fp && e->status == WALK_OK && e->nframes == PY_FRAMES_MAX)
		e->status = WALK_TRUNCATED;
}

/* A stack record with its header filled, or NULL (counted) when the ring buffer is full. */
static __always_inline struct evt_stack *stack_reserve(__u64 id, __u8 site)
{
	struct evt_stack *e;

	e = bpf_ringbuf_reserve(&events_rb, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_STACK_RINGBUF_FULL);
		return NULL;
	}
	e->hdr.type = EVT_STACK;
	e->hdr.version = EVT_VERSION;
	e->hdr.size = sizeof(*e);
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->site = site;
	e->token = 0;
	e->io_pos = 0;
	e->conn.ino = 0;
	e->conn.gen = 0;
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	return e;
}

#endif /* WSAUDIT_PYWALK_BPF_H */

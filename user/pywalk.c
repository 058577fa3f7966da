// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pyproc.h"
#include "pywalk.h"

static int read_u64(pid_t pid, unsigned long long addr, unsigned long long *v)
{
	return pyproc_read(pid, addr, v, sizeof(*v));
}

static unsigned long long buf_u64(const unsigned char *buf, unsigned int off)
{
	unsigned long long v;

	memcpy(&v, buf + off, sizeof(v));
	return v;
}

static int tstate_read(pid_t pid, const struct py_offsets *off, unsigned long long ts,
		       struct pywalk_thread *t, unsigned long long *next)
{
	unsigned char buf[1024];
	unsigned int span = off->tstate_read_size;
	unsigned long long fp;
	int err;

	if (!span || span > sizeof(buf))
		return -EINVAL;
	err = pyproc_read(pid, ts, buf, span);
	if (err)
		return err;
	t->tstate = ts;
	t->thread_id = buf_u64(buf, off->tstate_thread_id);
	t->native_id = off->tstate_native_thread_id != PY_OFF_NONE ?
			       buf_u64(buf, off->tstate_native_thread_id) :
			       0;
	fp = buf_u64(buf, off->tstate_frame);
	if (off->frame_kind == PY_FRAME_CFRAME && fp) {
		/* 3.11/3.12: the _PyCFrame lives on the C stack of the running eval loop. */
		err = read_u64(pid, fp + off->cframe_current_frame, &fp);
		if (err)
			return err;
	}
	t->frame = fp;
	*next = buf_u64(buf, off->tstate_next);
	return 0;
}

int pywalk_threads(pid_t pid, const struct py_offsets *off, struct pywalk_thread *out, int max)
{
	unsigned long long interp, ts;
	int ni, nt, cnt = 0, err;

	err = read_u64(pid, off->runtime_addr + off->runtime_interp_head, &interp);
	if (err)
		return err;
	for (ni = 0; interp && ni < PYWALK_MAX_INTERPS; ni++) {
		err = read_u64(pid, interp + off->interp_threads_head, &ts);
		if (err)
			return err;
		for (nt = 0; ts && nt < PYWALK_MAX_THREADS && cnt < max; nt++) {
			err = tstate_read(pid, off, ts, &out[cnt], &ts);
			if (err)
				return err;
			cnt++;
		}
		err = read_u64(pid, interp + off->interp_next, &interp);
		if (err)
			return err;
	}
	return cnt;
}

int pywalk_find_thread(pid_t pid, const struct py_offsets *off, unsigned long long thread_id,
		       struct pywalk_thread *out)
{
	unsigned long long interp, ts;
	struct pywalk_thread t;
	bool found = false;
	int ni, nt, err;

	err = read_u64(pid, off->runtime_addr + off->runtime_interp_head, &interp);
	if (err)
		return err;
	for (ni = 0; interp && ni < PYWALK_MAX_INTERPS; ni++) {
		err = read_u64(pid, interp + off->interp_threads_head, &ts);
		if (err)
			return err;
		for (nt = 0; ts && nt < PYWALK_MAX_THREADS; nt++) {
			err = tstate_read(pid, off, ts, &t, &ts);
			if (err)
				return err;
			if (t.thread_id != thread_id)
				continue;
			/* One OS thread may own a tstate per interpreter: the running one has a frame. */
			if (!found || (!out->frame && t.frame)) {
				*out = t;
				found = true;
			}
		}
		err = read_u64(pid, interp + off->interp_next, &interp);
		if (err)
			return err;
	}
	return found ? 0 : -ESRCH;
}

static int frame_lasti(const struct py_offsets *off, const unsigned char *buf,
		       unsigned long long code)
{
	int v;
	unsigned long long ip, base;

	switch (off->lasti_kind) {
	case PY_LASTI_BYTES:
		memcpy(&v, buf + off->frame_lasti, sizeof(v));
		return v < 0 ? -1 : v;
	case PY_LASTI_UNITS:
		memcpy(&v, buf + off->frame_lasti, sizeof(v));
		return v < 0 ? -1 : v * 2;
	case PY_LASTI_POINTER:
		/* 3.14t: instr_ptr may point into a thread's private copy of the bytecode. */
		if (off->flags & PY_OFF_F_UNSUP_TLBC)
			return -2;
		ip = buf_u64(buf, off->frame_lasti);
		base = code + off->code_adaptive;
		/* 3.11/3.12 set prev_instr one unit before the code until the first instruction. */
		if (ip < base || ip - base > INT32_MAX)
			return -1;
		return (int)(ip - base);
	}
	return -1;
}

int pywalk_stack(pid_t pid, const struct py_offsets *off, unsigned long long thread_id,
		 struct pywalk_frame *frames, int max, struct pywalk_stats *stats)
{
	unsigned char buf[512];
	struct pywalk_thread t;
	unsigned long long fp;
	unsigned int span;
	int n = 0, steps, err;

	memset(stats, 0, sizeof(*stats));
	span = off->frame_read_size;
	if (!span || span > sizeof(buf))
		return -EINVAL;

	err = pywalk_find_thread(pid, off, thread_id, &t);
	if (err)
		return err;
	fp = t.frame;
	for (steps = 0; fp && steps < PYWALK_MAX_FRAMES * 2; steps++) {
		unsigned long long code, type;

		err = pyproc_read(pid, fp, buf, span);
		if (err)
			return err;
		if (off->owner_skip_min && buf[off->frame_owner] >= off->owner_skip_min) {
			stats->skipped++;
			goto next;
		}
		if (n == max) {
			stats->truncated = 1;
			break;
		}
		code = buf_u64(buf, off->frame_code) & off->code_tag_mask;
		err = read_u64(pid, code + off->object_type, &type);
		if (err)
			return err;
		if (type != off->code_type_addr)
			return -EPROTO;
		frames[n].frame = fp;
		frames[n].code = code;
		frames[n].lasti = frame_lasti(off, buf, code);
		frames[n].first_arg = 0;
		if (off->flags & PY_OFF_F_RECEIVER) {
			err = read_u64(pid, fp + off->frame_localsplus, &frames[n].first_arg);
			if (err)
				return err;
		}
		n++;
next:
		fp = buf_u64(buf, off->frame_previous);
	}
	if (fp && n < max)
		stats->truncated = 1;
	return n;
}

#define VALIDATE_THREADS 64
#define VALIDATE_TRIES 3
/* x86_64 user space ends below 2^47 (4-level) or 2^56 (5-level paging). */
#define USER_ADDR_MAX (1ULL << 56)

int pywalk_validate(pid_t pid, const struct py_offsets *off, char *why, size_t len)
{
	struct pywalk_thread th[VALIDATE_THREADS];
	struct pywalk_frame frames[PYWALK_MAX_FRAMES];
	struct pywalk_stats st;
	int n, i, t, r = 0, with_frames = 0, walked = 0;

	n = pywalk_threads(pid, off, th, VALIDATE_THREADS);
	if (n < 0) {
		snprintf(why, len, "cannot read the thread list: %s", strerror(-n));
		return n;
	}
	if (!n) {
		snprintf(why, len, "no thread state yet");
		return -EAGAIN;
	}
	for (i = 0; i < n; i++) {
		if (!th[i].thread_id || th[i].thread_id >= USER_ADDR_MAX) {
			snprintf(why, len, "thread state %#llx: implausible thread_id %#llx",
				 th[i].tstate, th[i].thread_id);
			return -EPROTO;
		}
		if (!th[i].frame)
			continue;
		with_frames++;
		for (t = 0; t < VALIDATE_TRIES; t++) {
			r = pywalk_stack(pid, off, th[i].thread_id, frames, PYWALK_MAX_FRAMES, &st);
			if (r > 0)
				break;
		}
		if (r > 0) {
			walked++;
		} else if (r == -EPROTO) {
			snprintf(why, len, "thread %#llx: a frame does not hold a code object",
				 th[i].thread_id);
			return -EPROTO;
		}
	}
	if (with_frames && !walked) {
		snprintf(why, len, "no thread's stack could be walked: %s",
			 r < 0 ? strerror(-r) : "no frames");
		return -EPROTO;
	}
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdint.h>
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
		if (off->flags & PY_OFF_F_UNSUP_TLBC)
			return -1;
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
		n++;
next:
		fp = buf_u64(buf, off->frame_previous);
	}
	if (fp && n < max)
		stats->truncated = 1;
	return n;
}

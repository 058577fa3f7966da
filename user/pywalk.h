/* SPDX-License-Identifier: GPL-2.0 */
/*
 * User-space copy of the BPF CPython stack walk: the same reads at the same offsets from
 * struct py_offsets, done with process_vm_readv: the reference the tests compare the offsets
 * and the BPF walk with (tests/unit/test_pyproc.c).  The collector does not call it.
 */
#ifndef WSAUDIT_PYWALK_H
#define WSAUDIT_PYWALK_H

#include <sys/types.h>

#include "wsaudit/pyoffsets.h"

/* Bounds, as in BPF. */
#define PYWALK_MAX_INTERPS 8
#define PYWALK_MAX_THREADS 1024
#define PYWALK_MAX_FRAMES 64

struct pywalk_frame {
	unsigned long long frame; /* frame address (PyFrameObject / _PyInterpreterFrame) */
	unsigned long long code; /* code object, tag removed and type checked */
	/* instruction byte offset; -1 before the first instruction, -2 when it cannot be known */
	int lasti;
	unsigned long long first_arg; /* localsplus[0] with PY_OFF_F_RECEIVER, else 0 */
};

struct pywalk_thread {
	unsigned long long tstate;
	unsigned long long thread_id; /* pthread_self() */
	unsigned long long native_id; /* 0 before 3.11 */
	unsigned long long frame; /* innermost frame, 0 when none */
};

struct pywalk_stats {
	unsigned int skipped; /* shim / C-stack entries skipped by owner */
	unsigned int truncated; /* 1 when the stack had more than the frames given */
};

/* Every thread state of every interpreter: count (<= max) or -errno. */
int pywalk_threads(pid_t pid, const struct py_offsets *off, struct pywalk_thread *out, int max);

/* The thread state of @thread_id (prefers one with a frame): 0, -ESRCH or -errno. */
int pywalk_find_thread(pid_t pid, const struct py_offsets *off, unsigned long long thread_id,
		       struct pywalk_thread *out);

/*
 * Frames of @thread_id, innermost first: count or -errno (-ESRCH: no such thread, -EPROTO:
 * a frame that should hold a code object does not, i.e. the offsets are wrong).
 */
int pywalk_stack(pid_t pid, const struct py_offsets *off, unsigned long long thread_id,
		 struct pywalk_frame *frames, int max, struct pywalk_stats *stats);

/*
 * Checks @off against the live process before BPF relies on it: the interpreter list is
 * reachable, thread ids are plausible and every thread's frames hold code objects (a running
 * thread is retried, its stack changes under the reads).  0; -EAGAIN when the interpreter
 * has no thread state yet; -EPROTO or -errno otherwise, with the reason in @why.
 */
int pywalk_validate(pid_t pid, const struct py_offsets *off, char *why, size_t len);

#endif /* WSAUDIT_PYWALK_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-process description of a CPython interpreter, filled by user space (user/pyproc.c) and
 * stored in a BPF hash map keyed by tgid.  The BPF stack walk reads nothing else: every
 * address and offset it dereferences comes from here, so one program serves 3.9 to 3.14.
 *
 * The walk, for the thread whose pthread_self() (x86_64: task->thread.fsbase) is T:
 *   interp = *(runtime_addr + runtime_interp_head)
 *   for each interp (next: *(interp + interp_next)):
 *     ts = *(interp + interp_threads_head)
 *     for each ts (one read of tstate_read_size bytes; next: *(ts + tstate_next)):
 *       if *(ts + tstate_thread_id) == T, found
 *   frame = *(ts + tstate_frame)                         frame_kind OBJECT / DIRECT
 *   frame = *(*(ts + tstate_frame) + cframe_current_frame)   frame_kind CFRAME
 *   for each frame (one read of frame_read_size bytes; next: *(frame + frame_previous)):
 *     if owner_skip_min && *(u8 *)(frame + frame_owner) >= owner_skip_min: skip (shim/C stack)
 *     code = *(frame + frame_code) & code_tag_mask; check *(code + object_type) == code_type_addr
 *     lasti: see enum py_lasti_kind
 *     with PY_OFF_F_RECEIVER: also record *(frame + frame_localsplus) (the first argument)
 * Frames still in their prologue (3.11+: instr < firsttraceable, CPython's "incomplete"
 * frames) are not skipped: a thread blocked in a system call is never in that state.
 * A thread can own one tstate per interpreter; prefer the match with a non-NULL frame.
 */
#ifndef WSAUDIT_PYOFFSETS_H
#define WSAUDIT_PYOFFSETS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Bumped when the layout of struct py_offsets changes. */
#define PY_OFFSETS_ABI 2

/* An offset that does not exist in this version. */
#define PY_OFF_NONE 0xffff

enum py_frame_kind {
	/* 3.9, 3.10: tstate->frame is a PyFrameObject *. */
	PY_FRAME_OBJECT = 1,
	/* 3.11, 3.12: tstate->cframe (a _PyCFrame *), then ->current_frame. */
	PY_FRAME_CFRAME = 2,
	/* 3.13+: tstate->current_frame is the _PyInterpreterFrame *. */
	PY_FRAME_DIRECT = 3,
};

enum py_lasti_kind {
	/* 3.9: int f_lasti at frame_lasti, in bytes; -1 before the first instruction. */
	PY_LASTI_BYTES = 1,
	/* 3.10: int f_lasti at frame_lasti, in 2-byte code units; -1 before the first. */
	PY_LASTI_UNITS = 2,
	/*
	 * 3.11+: pointer at frame_lasti (prev_instr / instr_ptr) into the code object's inline
	 * bytecode; byte offset = ptr - (code + code_adaptive).
	 */
	PY_LASTI_POINTER = 3,
};

/* py_offsets.flags */
enum {
	/* Free-threaded build (3.13t/3.14t): 32-byte object header. */
	PY_OFF_F_FREE_THREADED = 1 << 0,
	/* Offsets came from the process's own _Py_DebugOffsets (3.13+). */
	PY_OFF_F_DEBUG_OFFSETS = 1 << 1,
	/* Offsets came from the built-in table verified per minor version (3.9-3.12). */
	PY_OFF_F_TABLE = 1 << 2,
	/* f_executable is a tagged _PyStackRef (3.14+): apply code_tag_mask. */
	PY_OFF_F_TAGGED_CODE = 1 << 3,
	/*
	 * Unsupported: thread-local bytecode (3.14t).  instr_ptr points into
	 * co_tlbc->entries[tlbc_index], so lasti computed from code_adaptive is wrong: record
	 * the code object with an unknown offset.
	 */
	PY_OFF_F_UNSUP_TLBC = 1 << 4,
	/*
	 * 3.9/3.10: code objects have no qualname.  Also record *(frame + frame_localsplus),
	 * the first argument, so user space can name the class of self/cls methods.
	 */
	PY_OFF_F_RECEIVER = 1 << 5,
};

struct py_offsets {
	/* Absolute address of _PyRuntime in the traced process (load bias applied). */
	__u64 runtime_addr;
	/* Absolute address of PyCode_Type: *(code + object_type) must equal it. */
	__u64 code_type_addr;
	/* AND-ed into frame->f_code/f_executable: ~0 before 3.14, ~3 (GIL) / ~1 (3.14t). */
	__u64 code_tag_mask;
	/* PY_VERSION_HEX when known (0 for 3.9/3.10 read from the file name). */
	__u32 hexversion;
	/* PY_OFF_F_* */
	__u32 flags;
	/* _PyRuntimeState.interpreters.head */
	__u16 runtime_interp_head;
	/* PyInterpreterState.next */
	__u16 interp_next;
	/* PyInterpreterState.tstate_head (3.9/3.10) / threads.head (3.11+) */
	__u16 interp_threads_head;
	/* PyThreadState.next */
	__u16 tstate_next;
	/* PyThreadState.thread_id: pthread_self(), the x86_64 fs base */
	__u16 tstate_thread_id;
	/* PyThreadState.native_thread_id (3.11+, PID-namespace TID) or PY_OFF_NONE */
	__u16 tstate_native_thread_id;
	/* PyThreadState.frame (3.9/3.10), .cframe (3.11/3.12), .current_frame (3.13+) */
	__u16 tstate_frame;
	/* _PyCFrame.current_frame for PY_FRAME_CFRAME, else PY_OFF_NONE */
	__u16 cframe_current_frame;
	/* f_back (3.9/3.10) / previous (3.11+) */
	__u16 frame_previous;
	/* f_code (3.9-3.12) / f_executable (3.13+) */
	__u16 frame_code;
	/* f_lasti (3.9/3.10), prev_instr (3.11/3.12), instr_ptr (3.13+) */
	__u16 frame_lasti;
	/* owner byte (3.11+) or PY_OFF_NONE */
	__u16 frame_owner;
	/* f_localsplus (3.9/3.10) / localsplus (3.11+): slot 0 is the first argument */
	__u16 frame_localsplus;
	/* PyCodeObject.co_code_adaptive (3.11+) or PY_OFF_NONE */
	__u16 code_adaptive;
	/* PyObject.ob_type (8, or 24 in free-threaded builds) */
	__u16 object_type;
	/* Bytes from a frame's start covering previous, code, lasti and owner: one read. */
	__u16 frame_read_size;
	/* Bytes from a tstate's start covering next, thread ids and the frame pointer. */
	__u16 tstate_read_size;
	/* PyThreadState.context (the current contextvars.Context) or PY_OFF_NONE */
	__u16 tstate_context;
	/* Version: 3 and 9..14 */
	__u8 major;
	__u8 minor;
	/* enum py_frame_kind */
	__u8 frame_kind;
	/* enum py_lasti_kind */
	__u8 lasti_kind;
	/*
	 * Skip frames whose owner >= this value: 3.12/3.13 CSTACK (3) shim frames, 3.14
	 * INTERPRETER (3) and CSTACK (4) entry frames.  0: no skipping (3.9-3.11).
	 */
	__u8 owner_skip_min;
	/*
	 * PyContext.ctx_entered (one byte read): a thread's base context, made on first use and
	 * never entered, is not a hand-off's (docs/causal.md).  Valid with tstate_context.
	 */
	__u8 context_entered;
	/*
	 * PyBytesObject.ob_sval: where a bytes object's data starts.  A write whose buffers are
	 * all bytes objects handed over to a transport (their address minus this is a token the
	 * hand-over probe recorded) is not walked again at its syscall.  0: unknown.
	 */
	__u8 bytes_data;
	/* Explicit padding, zero. */
	__u8 _pad1[5];
};

_Static_assert(sizeof(struct py_offsets) == 80, "struct py_offsets is a BPF wire struct");

/*
 * What the walk needs to copy a code object's names (struct evt_code_names), per process
 * (py_names map): where the fields are, nothing it interprets beyond a string's length.
 */
struct py_names_layout {
	/* The collector's number for this image of the process: a key of the walk's seen-set. */
	__u32 gen;
	/* Bytes of the code object to copy, covering the fields below (<= NAMES_CODE_HEAD). */
	__u16 code_span;
	__u16 code_filename;
	__u16 code_name;
	__u16 code_qualname; /* PY_OFF_NONE before 3.11 */
	__u16 code_linetable;
	__u16 code_firstlineno;
	/* PyASCIIObject.state and .length, and where the characters start */
	__u16 unicode_state;
	__u16 unicode_length;
	__u16 unicode_ascii_data;
	__u16 unicode_compact_data;
	/* PyVarObject.ob_size and PyBytesObject.ob_sval */
	__u16 var_size;
	__u16 bytes_data;
	__u32 unicode_ascii_bit; /* the state's ascii bit */
	__u8 unicode_kind_shift;
	__u8 _pad[3];
};

_Static_assert(sizeof(struct py_names_layout) == 36, "struct py_names_layout is a BPF wire struct");
_Static_assert(__builtin_offsetof(struct py_offsets, runtime_interp_head) == 32,
	       "u16 block after the u64/u32 block");
_Static_assert(__builtin_offsetof(struct py_offsets, major) == 68, "u8 block at the end");

#endif /* WSAUDIT_PYOFFSETS_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Python attribution: the registry of traced interpreters (user/pyproc.c) and the turning of
 * the kernel's stack records into named frames (user/pysym.c), the originating function, and,
 * when none can be named, the reason why.
 */
#ifndef WSAUDIT_ATTRIB_H
#define WSAUDIT_ATTRIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wsaudit/events.h"
#include "wsaudit/pyoffsets.h"

struct policy_queue_rule;

/*
 * Why a frame has no origin, and its name: the JSON "unattributed" value and the metrics'
 * reason label (user/metrics.c), from this one list.
 */
#define UNATTRIBUTED_REASONS(X)                                                                   \
	X(UNATTR_NOT_PYTHON, "not_python") /* the process runs no CPython interpreter */          \
	X(UNATTR_UNSUPPORTED_PYTHON, "unsupported_python") /* a CPython this build cannot walk */ \
	X(UNATTR_STACK_LOST, "stack_lost") /* the write's stack record was lost (ring full) */    \
	X(UNATTR_NO_PYTHON_THREAD, "no_python_thread") /* no Python thread state */               \
	X(UNATTR_NO_PYTHON_FRAMES, "no_python_frames") /* the thread ran no Python code */        \
	X(UNATTR_STACK_READ_FAILED, "stack_read_failed") /* interpreter memory unreadable */      \
	X(UNATTR_SYMBOL_READ_FAILED, "symbol_read_failed") /* code objects not read or named */   \
	X(UNATTR_DEFERRED_WRITE, "deferred_write") /* flushed later by the loop (buffer full) */  \
	X(UNATTR_NO_APPLICATION_FRAMES, "no_application_frames") /* every frame is transport */   \
	X(UNATTR_DETACHED_TASK, "detached_task") /* a task whose creator is not on the stack */   \
	X(UNATTR_DISABLED, "attribution_disabled") /* stack walks off (trace --capture-only) */   \
	X(UNATTR_QUEUE_NOT_LINKED, "queue_not_linked") /* sent by a policy queue's consumer */

#define UNATTR_ENUM(name, str) name,
enum unattributed {
	UNATTR_NONE = 0,
	UNATTRIBUTED_REASONS(UNATTR_ENUM) UNATTR__COUNT,
};
#undef UNATTR_ENUM

const char *unattributed_name(enum unattributed why);

struct pysym_sym;

struct attrib_frame {
	unsigned long long code; /* the code object */
	char *function; /* qualname; Class.method on 3.9/3.10 when the class is known */
	char *file;
	int line; /* 0: no line for the instruction */
	bool transport; /* matched by a transport glob */
	/*
	 * The symbol function and file come from (a reference), or NULL when they are the
	 * frame's own copies.  function is its own copy too when it differs from sym->function.
	 */
	struct pysym_sym *sym;
	bool in_asyncio; /* file is asyncio's; only meaningful with sym */
	bool in_twisted; /* file is Twisted's reactor (twisted/internet); the same */
	/* Named from the names record its walk relied on (pysym_resolve_carried): no check. */
	bool carried;
};

/* A resolved stack, shared (refcounted) by every frame its write carried. */
struct attrib_stack {
	unsigned int refs;
	enum unattributed why; /* UNATTR_NONE when origin >= 0 */
	int origin; /* index into frames of the originating function, or -1 */
	bool partial; /* the walk stopped early (read fault, depth): outer frames missing */
	/* The contextvars context the thread ran in (user/causal.c), 0 when unknown. */
	unsigned long long py_context;
	unsigned long long ts_ns; /* when the walk was made (the record's time), 0: unknown */
	/* identity.context: the user argument of the innermost marked bridge frame */
	enum ctx_status ctx_status;
	char ctx_user[CTX_VALUE_MAX + 1];
	const char *ctx_function; /* that frame's function (in frames[]), NULL when none */
	/*
	 * A stack is named from the symbol cache without reading the process (most hand-overs
	 * are never sent, and a send's own stack is unused when a hand-over's is): its frames are
	 * checked against the process when it is used (attrib_token_take, attrib_count), before
	 * anything is judged or printed from them.  NULL when checked.
	 */
	struct attrib_pending *pending;
	size_t nframes;
	struct attrib_frame frames[]; /* innermost first */
};

struct attrib_stats {
	uint64_t stacks;
	uint64_t tokens_put; /* stacks recorded at a transport hand-over */
	uint64_t tokens_matched; /* ... found again at the write that sent the object */
	uint64_t tokens_followed; /* frames after the first of an object, named by its token */
	uint64_t tokens_expired; /* ... never matched (not sent, or sent as a copy) */
	uint64_t frames_resolved;
	uint64_t frames_failed;
	uint64_t stacks_shared; /* records whose walk was the last one's: its stack shared */
	uint64_t stacks_checked; /* stacks named unchecked, checked when used */
	uint64_t frames_read; /* ... frames of those that needed a read of their own */
	/* Names records (EVT_CODE_NAMES, docs/names.md): taken, refused, of no walked process */
	uint64_t names_records;
	uint64_t names_rejected;
	uint64_t names_unknown;
	uint64_t frames_carried; /* frames named from a names record, without a read */
	uint64_t unattributed[UNATTR__COUNT];
};

struct attrib;

/* transport: file globs skipped when naming the originating function. */
struct attrib *attrib_new(const char *const *transport, size_t ntransport);
void attrib_free(struct attrib *a);
/* New transport globs (a policy reload); the caller keeps them alive. */
void attrib_set_transport(struct attrib *a, const char *const *transport, size_t ntransport);
/*
 * The policy's queues (kept by reference, as the transport globs): a send with a frame of a
 * queue's consumer on its stack is not named after it (UNATTR_QUEUE_NOT_LINKED).
 */
void attrib_set_queues(struct attrib *a, const struct policy_queue_rule *queues, size_t n);
/* No stacks will come: every frame says attribution was switched off. */
void attrib_disable(struct attrib *a);

/*
 * Inspects a newly traced process.  0 and *off filled when its interpreter can be walked;
 * -ENOEXEC when it runs no CPython; -ENOTSUP when its CPython is not supported (reported
 * once, with version and path); other -errno when it could not be inspected.
 */
int attrib_add_process(struct attrib *a, pid_t pid, struct py_offsets *off);
/* A forked child: same interpreter as its parent. */
void attrib_fork_process(struct attrib *a, pid_t parent, pid_t child);
void attrib_forget_process(struct attrib *a, pid_t pid);
/* The ELF file that holds the process's interpreter (as its maps name it), or NULL. */
const char *attrib_interpreter_path(struct attrib *a, pid_t pid);
/* Whether the process was inspected at all (the caller may retry later otherwise). */
bool attrib_known(struct attrib *a, pid_t pid);
/*
 * What the walks of a process added by attrib_add_process need to send its code objects'
 * names (a new gen each call): 0, -ENOENT, or -E2BIG (pysym_names_layout).
 */
int attrib_names_layout(struct attrib *a, pid_t pid, struct py_names_layout *out);
/* A names record (EVT_CODE_NAMES) of a process: 0 or -errno (counted). */
int attrib_code_names(struct attrib *a, const struct evt_code_names *r);

/*
 * Resolves a stack record; NULL only when out of memory.  Its names are unchecked (see
 * pending) until attrib_token_take or attrib_count.
 */
struct attrib_stack *attrib_resolve(struct attrib *a, const struct evt_stack *e);
/* A stack for a write that has no stack record: the reason only. */
struct attrib_stack *attrib_missing(struct attrib *a, pid_t pid);
/*
 * A stack for a frame of a write not walked at its syscall because its buffers were handed
 * over to a transport (DATA_HANDED_OVER), when the frame has no hand-over of its own (it
 * does not start its buffer, or the hand-over's stack was dropped): deferred_write.
 */
struct attrib_stack *attrib_handed_over(struct attrib *a, pid_t pid);
struct attrib_stack *attrib_stack_get(struct attrib_stack *s);
/* Checks the names of a stack resolved unchecked (see pending) before it is used. */
void attrib_stack_check(struct attrib *a, struct attrib_stack *s);
/*
 * Whether the name cached for code still is its own: 0 when the code object at that address
 * is the one named, -ESTALE when another (the name is dropped), other -errno when unknown.
 */
int attrib_code_check(struct attrib *a, pid_t pid, unsigned long long code);
void attrib_stack_put(struct attrib_stack *s);
/*
 * What the BPF walk needs to read the argument @arg of the frames of @code in @pid: 0 and
 * *out, -ENOENT when the code has no such local, -errno otherwise.
 */
int attrib_ctx_code(struct attrib *a, pid_t pid, unsigned long long code, const char *arg,
		    struct ctx_code *out);

/*
 * Counts one frame of a write by its attribution outcome.  A stack is used (judged, printed)
 * after this: a stack still unchecked (see pending) is checked here first.
 */
void attrib_count(struct attrib *a, const struct attrib_stack *s);
/* The same for a frame whose producer was named through a link (user/causal.c) when linked. */
void attrib_count_linked(struct attrib *a, const struct attrib_stack *s, bool linked);

const struct attrib_stats *attrib_stats(const struct attrib *a);

/*
 * Stacks recorded when Python code handed an object to a transport that sends it later
 * (site STACK_AT_TRANSPORT_WRITE).  put takes the reference.  Entries older than max_age_ns
 * are dropped (counted) by expire.
 */
int attrib_token_put(struct attrib *a, uint32_t tgid, uint64_t token, uint64_t transport,
		     uint64_t ts_ns, struct attrib_stack *s);
/* A frame sent from a process's memory, as attrib_token_take looks for its hand-over. */
struct token_frame {
	uint32_t tgid, tid;
	uint64_t write_ts; /* of the syscall that sent its first byte */
	uint64_t user_addr; /* of its first byte */
	uint64_t len; /* its header and payload */
};
/*
 * The stack of f's hand-over (a reference), or NULL: the newest token of the object whose
 * data starts at f's first byte, with the transport it was handed to in *transport; or, for a
 * later frame of an object whose token was taken in the same write, that token's stack
 * again (several frames written in one call), *transport left 0.
 */
struct attrib_stack *attrib_token_take(struct attrib *a, const struct token_frame *f,
				       uint64_t *transport);
/*
 * The length of an object of process tgid whose ob_type and ob_size were read (a hand-over):
 * ob_size when it is a bytes object, else UINT64_MAX.
 */
uint64_t attrib_bytes_len(struct attrib *a, uint32_t tgid, uint64_t ob_type, uint64_t ob_size);
/* The token (object address) whose data starts at user_addr in process tgid; 0: unknown. */
uint64_t attrib_token_of(struct attrib *a, uint32_t tgid, uint64_t user_addr);
void attrib_token_expire(struct attrib *a, uint64_t now_ns, uint64_t max_age_ns);

/*
 * The originating frame of a stack: the innermost frame that is not transport.  Pure, for
 * tests: fills why when there is none.
 */
int attrib_pick_origin(const struct attrib_frame *frames, size_t n, enum unattributed *why);

#endif /* WSAUDIT_ATTRIB_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The followed processes: everything the collector holds per process outside the pipeline's
 * own modules, and their one forget.
 *   - lifecycle: following a process (by pid, by executable, at exec), its forks and exit;
 *   - attach: its interpreter's stack walk, uvloop's writes, libssl, zlib's deflate, the
 *     context copies (docs/causal.md), and the watch of a process still starting;
 *   - marks: the code objects whose argument names the user (identity.context) and those a
 *     walk may stop at (walk_to_verdict);
 *   - its container and pod, looked up once;
 *   - the sweep of processes whose exit record was lost.
 * Modules with per-process tables of their own register a forget callback
 * (procs_on_forget()): a process's exit, exec or fork forgets it in each, in the order they
 * registered, and nowhere else.
 */
#ifndef WSAUDIT_PROCS_H
#define WSAUDIT_PROCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "wsaudit/events.h"

struct adopt;
struct attrib;
struct attrib_stack;
struct capture;
struct pod_selector;
struct policy;
struct rules;

/*
 * What is forgotten of a process, in the order of how much of it goes (a module registered
 * from one of them is told of it and of every one after).
 */
enum procs_forget {
	/* Marks and uprobes of its image: before it is followed anew (a fork, an add). */
	PROCS_FORGET_MARKS,
	/* All that was learned of its program: a thread other than its leader exec'd. */
	PROCS_FORGET_EXEC,
	/*
	 * The same, its leader exec'd: its uprobes serve the new image and stay (but for
	 * capture_exec_image()'s exceptions).
	 */
	PROCS_FORGET_EXEC_LEADER,
	/* Everything: it exited. */
	PROCS_FORGET_EXIT,
};

typedef void (*procs_forget_fn)(void *ctx, pid_t pid, enum procs_forget what, uint64_t ts_ns);

struct procs_opts {
	bool capture_only; /* no stack walks: nothing attached but the capture */
	bool walk_to_verdict; /* session_opts.walk_to_verdict */
	/* Executables followed at exec and by procs_scan_exe(); the policy's with from_policy. */
	const char *const *exe_globs;
	size_t nglobs;
	bool targets_from_policy;
	const struct pod_selector *pods; /* containers followed at exec; NULL: none */
	const char *bundle_root; /* containerd's task state (NULL: PODINFO_BUNDLE_ROOT) */
};

struct procs;

/* The modules are the caller's and outlive it.  NULL when out of memory. */
struct procs *procs_new(const struct procs_opts *opts, struct capture *cap, struct attrib *attrib,
			struct adopt *adopt);
void procs_free(struct procs *p);
/* The policy and rules in force (at start and at each reload); the caller's. */
void procs_set_policy(struct procs *p, const struct policy *policy, struct rules *rules);

/*
 * fn(ctx, pid, what, ts_ns) for every forget of at least `from`, in the order of
 * registration.  0, or -ENOSPC.
 */
int procs_on_forget(struct procs *p, enum procs_forget from, procs_forget_fn fn, void *ctx);
/* Forgets pid in every module registered for what (and the exit: a process fewer). */
void procs_forget(struct procs *p, pid_t pid, enum procs_forget what, uint64_t ts_ns);

/* Follows a process; how says why, for the log ("" for one the user named).  0 or -errno. */
int procs_add(struct procs *p, pid_t pid, const char *how);
/* Follows every running process whose executable matches the globs.  Matches or -errno. */
int procs_scan_exe(struct procs *p);
/* A process record: true when the process is followed (and its record worth showing). */
bool procs_exec(struct procs *p, const struct evt_proc *e);
void procs_fork(struct procs *p, pid_t parent, pid_t child);
void procs_exit(struct procs *p, pid_t pid, uint64_t ts_ns);
/* The processes followed. */
uint64_t procs_count(const struct procs *p);

/*
 * Finds the process's interpreter and enables the stack walk for it.  Returns the uvloop
 * sites hooked, or -errno when it is not a CPython that can be walked.
 */
int procs_attach(struct procs *p, pid_t pid);
/* Whether pid's TLS plaintext is probed, attaching to a libssl it loaded since. */
bool procs_tls_probed(struct procs *p, pid_t pid);
/* Whether an OpenSSL is linked into a binary of pid: looked for once per process, said once. */
bool procs_tls_static(struct procs *p, pid_t pid);
/* The deflate probes of pid (docs/adoption.md); adopted: at an adopted connection. */
void procs_probe_zlib(struct procs *p, pid_t pid, bool adopted);
/* pid's transport queues its writes (a hand-over was seen): a message end is not the next write's. */
void procs_note_handover(struct procs *p, pid_t pid);
bool procs_queues_writes(const struct procs *p, pid_t pid);

/*
 * A stack named: marks the code objects whose argument names the user; at a send (its
 * syscall or its hand-over) those a walk may stop at, at a context copy those whose copies
 * are not recorded.
 */
void procs_mark(struct procs *p, const struct evt_stack *e, const struct attrib_stack *stack);

/* The container of pid as JSON (null on the host); NULL when out of memory. */
const json_t *procs_container(struct procs *p, pid_t pid);
/* Its Kubernetes namespace and workload (session_k8s_labels()). */
void procs_k8s_labels(struct procs *p, pid_t pid, const char **k8s_namespace,
		      const char **k8s_workload);

/* Looks again at processes starting, and for processes whose exit record was lost. */
void procs_poll(struct procs *p, uint64_t now);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One auditing session: the pipeline that `trace` and `agent` share, wired once.
 *   capture (kernel records) -> conntrack (connections, frames, messages)
 *   -> attrib (the writer's Python stack) -> rules (policy) -> output (and an observer)
 * The caller chooses the targets and runs the loop; this module wires the stages together,
 * and the followed processes' state is user/procs.c's.
 */
#ifndef WSAUDIT_SESSION_H
#define WSAUDIT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "adopt.h"
#include "pyscope.h"
#include "attrib.h"
#include "capture.h"
#include "causal.h"
#include "conntrack.h"
#include "handed.h"
#include "keyhash.h"
#include "output.h"
#include "policy.h"
#include "rules.h"
#include "runs.h"
#include "streamwrite.h"

struct session_opts {
	enum output_format format;
	bool wide; /* text: every field whole, lines not fitted to a terminal */
	bool payload; /* payload bytes in the output (user data) */
	bool stack; /* whole stacks in the output */
	bool capture_only; /* no stack walks */
	/*
	 * Nothing printed needs a send's stack beyond the frame that settles its verdicts
	 * (trace without --stack): walks may stop there (mark_stop_frame).
	 */
	bool walk_to_verdict;
	bool violations_only; /* output only frames that break a rule */
	bool show_identities; /* user ids as they are, not hashed */
	/* The identity key file (keyhash_identity_setup()); NULL: $WSAUDIT_IDENTITY_KEY or
	 * a key made for the run. */
	const char *identity_key;
	/* Only the frames and connections of this user (an id, or its u# display); NULL: all. */
	const char *user_filter;
	/* trace's other filters (user/filter.h); NULL: every frame. */
	const struct frame_filter *filter;
	bool quiet_processes; /* no process records in the output */
	size_t ringbuf_size;
	uint64_t write_cap;
	/* Executables to follow when they start (exec), and to pick up by scanning. */
	const char *const *exe_globs;
	size_t nglobs;
	/* Take them from the policy's targets.exe instead (and again after a reload). */
	bool targets_from_policy;
	/* Containers whose processes are followed when they start (exec); NULL: none. */
	const struct pod_selector *pods;
	/* containerd's task state, for pod names (NULL: PODINFO_BUNDLE_ROOT). */
	const char *bundle_root;
	/* Name in each frame the test on its writer's stack (`run`), paths relative to this. */
	bool name_tests;
	const char *test_root;
	/*
	 * For a frame with no test on its writer's stack: the test that was running when it was
	 * written (user/testrun.c), or why none is named.  NULL: none asked.
	 */
	enum test_unknown (*running_test)(void *ctx, pid_t writer, uint64_t ts_ns, char *out,
					  size_t size);
	void *running_test_ctx;
	/*
	 * trace --write: each connection's bytes to files (user/streamwrite.h), the caller's;
	 * NULL: none.  --peer chooses the connections written too.
	 */
	struct streamwrite *write;
};

/* Told about every frame, after judgement, whether it is printed or not (for metrics). */
struct session_observer {
	void (*frame)(void *ctx, const struct ct_frame *f, const struct attrib_stack *s,
		      const struct causal_link *link, const struct rules_verdict *v);
	/* The same with all that is printed of it (the test it names too); optional. */
	void (*frame_view)(void *ctx, const struct frame_view *fv);
	/* A connection closed without a close frame (an abnormal_close finding); optional. */
	void (*conn_close)(void *ctx, const struct ct_conn *c, uint64_t ts_ns, const char *why);
	/* A write still queued in its transport when the connection ended; optional. */
	void (*queued)(void *ctx, const struct queued_view *qv);
	/* A run that did not reach its user whole, or was not judged (docs/runs.md); optional. */
	void (*run)(void *ctx, const struct run_report *rep);
	void *ctx;
};

struct session;

/*
 * Loads and attaches the BPF programs.  Takes ownership of policy.  NULL on failure (the
 * reason has been logged; the policy is freed).
 */
struct session *session_open(const struct session_opts *opts, struct policy *policy, FILE *out);
/* The display --user ID stands for: ID's keyed display, or ID when it is one.  0 or -EINVAL. */
int session_user_display(const char *id, char out[KEYHASH_DISPLAY_LEN]);
/* Detaches and frees; open connections end with `why`. */
void session_close(struct session *s, const char *why);

/* Follows a process; how says why, for the log ("" for one the user named). */
int session_add_pid(struct session *s, pid_t pid, const char *how);
/* Follows every running process whose executable matches the globs.  Matches or -errno. */
int session_scan_exe(struct session *s);
/*
 * Waits up to timeout_ms for kernel records and handles them for at most
 * CAPTURE_POLL_BUDGET_MS, so that the loop around it turns however many records wait.
 * 0 or -errno.
 */
int session_poll(struct session *s, int timeout_ms);
/* Handles every record queued (the final drain, up to a minute).  0 or -errno. */
int session_drain(struct session *s);
/* Whether the frames -n asked for have been printed (then nothing more is). */
bool session_count_reached(const struct session *s);
/* A stats record; final ones include every connection's parser state. */
void session_report(struct session *s, bool final);
/* The records written so far go out now (output_flush()). */
void session_flush(struct session *s);
/* Ends every open connection (their frames cut short are reported truncated). */
void session_end_connections(struct session *s, const char *why);

/*
 * Replaces the policy (SIGHUP); takes ownership.  Ownership learned under the old policy is
 * not carried over (its keys may differ).
 */
void session_set_policy(struct session *s, struct policy *policy);
/* Writes from now on to out (log rotation); the caller closes the old stream. */
void session_set_output(struct session *s, FILE *out);
/* JSON records to fn instead (output_set_sink()). */
void session_set_sink(struct session *s, output_line_fn fn, void *ctx);
void session_set_observer(struct session *s, const struct session_observer *obs);
/*
 * The Kubernetes namespace and workload of a followed process, for its metrics
 * (podinfo_k8s_labels(), looked up once per process); NULL and NULL when out of memory.
 * Valid until the process is forgotten; from the session's thread (an observer).
 */
void session_k8s_labels(struct session *s, pid_t pid, const char **k8s_namespace,
			const char **k8s_workload);

struct session_totals {
	uint64_t records;
	uint64_t processes;
	uint64_t output_errors; /* records lost to the output (output_errors()) */
	struct capture_counters kernel;
	struct ct_stats ct;
	struct attrib_stats attrib;
	struct causal_stats causal;
	struct handed_stats handed;
	struct rules_stats rules;
	struct runs_stats runs;
	struct adopt_stats adopt;
	struct pyscope_totals scope;
	unsigned int probes_attached, probes_failed;
	bool writing; /* trace --write: write holds its totals */
	struct streamwrite_stats write;
};

void session_totals(struct session *s, struct session_totals *out);
/*
 * Another reader of the session's records: a `trace` through the agent.  It has its own
 * output (format and options) and names the processes it wants; every record about them is
 * written to out, then commit is called (once per record, so the reader can queue or drop
 * whole records).  fork tells it of a child of a process it wants, exit of the end of one
 * (after its process_exit record).
 */
struct session_tap {
	struct output *out;
	bool violations_only;
	bool (*wants)(void *ctx, pid_t pid);
	void (*fork)(void *ctx, pid_t parent, pid_t child);
	void (*exit)(void *ctx, pid_t pid);
	void (*commit)(void *ctx);
	void *ctx;
	struct session_tap *next; /* the session's */
};

void session_add_tap(struct session *s, struct session_tap *t);
void session_remove_tap(struct session *s, struct session_tap *t);
/*
 * A conn_open record to the tap for each open WebSocket connection of the processes it
 * wants, with what the session knows of it (handshake, user).  Returns how many.
 */
unsigned int session_tap_open_conns(struct session *s, struct session_tap *t);
/* A final stats record (the session's totals) to the tap. */
void session_tap_stats(struct session *s, struct session_tap *t);
/* Whether the session's programs trace pid. */
bool session_follows(struct session *s, pid_t pid);
/* Readable when kernel records wait: poll it with other fds, then session_poll(s, 0). */
int session_fd(const struct session *s);

/* What loading the programs took (for the banner). */
void session_startup(const struct session *s, struct capture_startup *out);

/*
 * The self-check: a probe process of this instance writes a marker to a loopback TCP
 * connection, traced for this purpose only, and the marker must come back through the
 * instance's own programs and ring buffer within timeout_ms (user/selfcheck.h).  With
 * record, the result is a `selfcheck` record in the output.  0, or -EIO with the reason in
 * the state's why.  Without record (the agent's periodic check), a probe not back in time
 * while the drain still stops at its budget gives no verdict: its records may be queued
 * behind a flood, which must not make the instance look blind.  That is -EAGAIN, counted in
 * the state's deferred, the rest of the state left as it was.
 */
int session_selfcheck(struct session *s, int timeout_ms, bool record);

struct session_selfcheck {
	bool ok; /* the last check passed */
	uint64_t runs, failures;
	uint64_t deferred; /* checks without a verdict: the collector was behind (-EAGAIN) */
	int64_t last_ok_unix; /* wall-clock seconds of the last success; 0: never */
	uint64_t last_ns; /* how long the last check took */
	char why[160]; /* the last failure's reason */
};

const struct session_selfcheck *session_selfcheck_state(const struct session *s);
/*
 * Whether the capture path is known to work: a check ran and the last one passed.  Safe to
 * call from another thread (the health endpoint's).
 */
bool session_selfcheck_ok(const struct session *s);

#endif /* WSAUDIT_SESSION_H */

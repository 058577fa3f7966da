/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A registry of Prometheus metric families (counters and gauges with label sets), rendered in
 * the text exposition format 0.0.4: one HELP and one TYPE line per family, the series of a
 * family together, in a stable order (families in registration order, series sorted by their
 * label values), label values escaped (\\, \", \n), no timestamps.
 *
 * CARDINALITY.  Labels take values from bounded sets only.  Never use user ids, connection
 * ids, session ids, PIDs, pod UIDs, payload bytes or any free-form value as a label: each
 * distinct value is a new time series on every node, forever.  Those belong in the violation
 * log and the trace output.  Label names that usually carry such values (pid, user_id, ...)
 * and names that collide with the labels Prometheus and Kubernetes attach to the target
 * (namespace, pod, instance, job, ...; Prometheus would rename ours exported_*) are refused.
 *
 * A family whose values are not known in advance (the originating function of a violation) is
 * created with a cap on its label sets and a capped label.  The first `cap` distinct label
 * sets get their own series; past the cap, the capped label of a new set is replaced by
 * "other" (the other labels, which must come from bounded sets, are kept), and the update is
 * also counted in <prefix>_metrics_overflow_total{family="<name>"}.  A series once exposed is
 * never taken away or merged: a Prometheus counter must not go down or vanish, so "top N" is
 * the first N seen, and the ranking by count is left to PromQL (topk over increase()).
 *
 * THREADS.  Every update and the rendering take the registry's mutex: one or more writer
 * threads and the HTTP thread may share a registry.  Family handles stay valid until
 * metrics_free().
 */
#ifndef WSAUDIT_METRICS_H
#define WSAUDIT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_LABELS 4 /* labels of one family */
#define METRICS_MAX_VALUE 256 /* bytes of a label value */
#define METRICS_OTHER "other" /* the value of the capped label past the cap */
#define METRICS_ORIGIN_CAP 50 /* origins of violations with their own series */
#define METRICS_WORKLOAD_CAP 50 /* (rule, namespace, workload) sets with their own series */

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
};

struct metrics;
struct metrics_family;

/*
 * A registry.  prefix names the overflow family (<prefix>_metrics_overflow_total), created
 * with the first capped family and rendered last.  NULL and errno on failure.
 */
struct metrics *metrics_new(const char *prefix);
void metrics_free(struct metrics *m);

/*
 * A family.  labels: nlabels label names (0..METRICS_MAX_LABELS).  cap 0: no cap; otherwise
 * at most cap label sets before capped_label is replaced by METRICS_OTHER (capped_label must
 * be one of labels).  Counter names must end in _total, gauge names must not.  NULL and errno
 * on failure: EINVAL for a bad or forbidden name, EEXIST for a name already registered.
 * A family without labels has its single series, at 0, from the start.
 */
struct metrics_family *metrics_family_add(struct metrics *m, const char *name,
					  enum metrics_type type, const char *help,
					  const char *const *labels, size_t nlabels, size_t cap,
					  const char *capped_label);

/*
 * Past the cap, label is replaced by METRICS_OTHER too (a workload's namespace: the name means
 * nothing without it, and the namespaces are not a bounded set either).  Before the first
 * update; 0 or -EINVAL (no cap, not a label, the capped label, or series exist).
 */
int metrics_family_cap_also(struct metrics_family *f, const char *label);

/*
 * Updates.  values: the family's nlabels label values in its label order (NULL when it has
 * none).  0 or -errno: -EINVAL for the wrong type of family, -EILSEQ for a value that is not
 * UTF-8 (a Prometheus label value must be), -ENAMETOOLONG for one over METRICS_MAX_VALUE,
 * -ENOMEM.  Nothing is counted when an error is returned.
 */
int metrics_add(struct metrics_family *f, const char *const *values, uint64_t delta);
int metrics_gauge_set(struct metrics_family *f, const char *const *values, double v);
int metrics_gauge_add(struct metrics_family *f, const char *const *values, double delta);
/*
 * A counter mirrored from a source that keeps totals (the BPF drop and stat arrays, a
 * module's stats struct): set it to total.  -ERANGE, and nothing changes, if total is below
 * the current value: a counter must not go down.
 */
int metrics_counter_set(struct metrics_family *f, const char *const *values, uint64_t total);
/*
 * A counter whose integer totals are parts of its unit, per_unit to one (1e6: microseconds
 * of a seconds counter), rendered in its unit: totals stay exact integers.
 */
void metrics_counter_unit(struct metrics_family *f, double per_unit);
/* Create the series at 0 if it is not there ("avoid missing metrics"); counts toward the cap. */
int metrics_touch(struct metrics_family *f, const char *const *values);

/* Single-label shorthands. */
#define metrics_add1(f, v, delta) metrics_add(f, (const char *const[]){ v }, delta)
#define metrics_gauge_set1(f, v, x) metrics_gauge_set(f, (const char *const[]){ v }, x)
#define metrics_gauge_add1(f, v, x) metrics_gauge_add(f, (const char *const[]){ v }, x)

/*
 * The current value of a series, as it would be rendered (after the cap: ask for the values
 * given to the update, and a capped set reads the "other" series).  0 or -ENOENT.
 */
int metrics_get(struct metrics_family *f, const char *const *values, double *out);
/* Updates routed to "other" by the cap. */
uint64_t metrics_overflow(struct metrics_family *f);

/*
 * fn(arg) is called by metrics_render() before it renders, without the registry's lock, so
 * that totals kept elsewhere are read at scrape time (metrics_counter_set, metrics_gauge_set).
 * It runs in the thread that renders (the HTTP server's): whatever it reads must be safe to
 * read from there.  NULL removes it.
 */
void metrics_on_render(struct metrics *m, void (*fn)(void *arg), void *arg);

/*
 * The exposition (text format 0.0.4), NUL-terminated, in a buffer the caller frees; *len (if
 * not NULL) is its length without the NUL.  NULL and errno on failure.
 */
char *metrics_render(struct metrics *m, size_t *len);

/* The content type of metrics_render()'s output. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * The collector's families (names, HELP texts and label sets fixed here), with every known
 * label value created at 0 so that rate() and absent() work from the first scrape.
 */
struct metrics_wsaudit {
	struct metrics *reg;
	struct metrics_family *build_info; /* {version,revision} gauge, 1 */
	struct metrics_family *events; /* ring buffer records read */
	struct metrics_family *frames; /* {opcode} */
	struct metrics_family *captured_bytes;
	struct metrics_family *drops; /* {reason}: the BPF drop reasons, occurrences */
	struct metrics_family *dropped_bytes; /* {reason}: metrics_dropped_bytes_reasons */
	struct metrics_family *probes; /* {state="attached"|"failed"} gauge */
	struct metrics_family *processes; /* gauge: processes followed */
	struct metrics_family *connections; /* gauge: open WebSocket connections */
	struct metrics_family *connections_total; /* {kind="handshake"|"adopted"} */
	struct metrics_family *unattributed; /* {reason} */
	struct metrics_family *attributed;
	struct metrics_family *messages; /* {status} */
	struct metrics_family *parser_desyncs;
	struct metrics_family *truncated_frames;
	struct metrics_family *conn_users; /* {state}: ambiguous, unknown */
	struct metrics_family *conns_skipped; /* {reason}: metrics_skip_reasons */
	struct metrics_family *tls_connections; /* {link}: linked, unlinked */
	/* {state}: history_recovered, history_unknown, user_unknown (docs/adoption.md) */
	struct metrics_family *adopted;
	struct metrics_family *unjudged; /* {reason}: unjudged violations (docs/causal.md) */
	struct metrics_family *causal_links; /* {result}: linked, no_link, no_context */
	struct metrics_family *causal_creations; /* creation stacks recorded */
	struct metrics_family *code_names; /* names records of code objects, by result */
	struct metrics_family *causal_evicted; /* ... forgotten past the bound */
	struct metrics_family *causal_skipped; /* context copies not recorded (copy_skips) */
	struct metrics_family *violations; /* {rule} */
	/* Runs of the policy's runs section (docs/runs.md) */
	struct metrics_family *runs_completed; /* runs that ended */
	struct metrics_family *runs_open; /* gauge: runs followed now */
	struct metrics_family *runs_incomplete; /* {reason="conn_closed"|"timeout"} */
	struct metrics_family *runs_out_of_order; /* {reason="start_after_end"|"after_end"} */
	struct metrics_family *runs_missing_event; /* ended without a required event */
	struct metrics_family *runs_unjudged; /* {reason="evicted"|"message_unreadable"} */
	struct metrics_family *violations_by_origin; /* {rule,origin}, origin capped */
	/* {rule,k8s_namespace,k8s_workload}, the last two capped together */
	struct metrics_family *violations_by_workload;
	struct metrics_family *lost_frames; /* {origin,type}, origin capped */
	struct metrics_family *abnormal_closes; /* {code,origin}, origin capped */
	struct metrics_family *queued_at_close; /* {origin}, capped */
	struct metrics_family *queued_at_close_bytes; /* {origin}, capped */
	struct metrics_family *buffered_unseen;
	struct metrics_family *policy_reloads; /* {result="ok"|"error"} */
	struct metrics_family *policy_last_reload_success;
	struct metrics_family *log_write_errors; /* records not written when they came */
	struct metrics_family *log_dropped; /* records lost: the log's queue was full */
	struct metrics_family *log_queued; /* gauge: records waiting for the log */
	struct metrics_family *http_connections; /* gauge: open on /metrics' server */
	struct metrics_family *http_refused; /* {reason="limit"|"per_ip"} */
	struct metrics_family *http_expired; /* cut at their deadline */
	struct metrics_family *selfcheck_ok; /* gauge: the last self-check passed (1) or not */
	struct metrics_family *selfcheck_last_success; /* gauge: unix seconds */
	struct metrics_family *selfcheck_failures;
	struct metrics_family *selfcheck_deferred; /* no verdict: the collector was behind */
	struct metrics_family *trace_clients; /* gauge: `trace` clients of the agent's socket */
	struct metrics_family *trace_client_drops; /* records lost by slow clients */
};

/* The label values created at 0 (NULL-terminated lists). */
extern const char *const metrics_opcodes[];
extern const char *const metrics_drop_reasons[];
extern const char *const metrics_dropped_bytes_reasons[];
extern const char *const metrics_unattributed_reasons[];
extern const char *const metrics_message_statuses[];
extern const char *const metrics_rules[];
extern const char *const metrics_runs_incomplete_reasons[];
extern const char *const metrics_runs_out_of_order_reasons[];
extern const char *const metrics_runs_unjudged_reasons[];
extern const char *const metrics_skip_reasons[];
extern const char *const metrics_causal_results[];

/*
 * A process' own figures, as Prometheus client libraries name them (process_*): the agent
 * fills them from /proc/self (user/agent_metrics.c).  0, or -1 with errno.
 */
struct metrics_process {
	struct metrics_family *cpu, *rss, *vsize, *fds, *max_fds, *start;
};

int metrics_process_init(struct metrics *reg, struct metrics_process *p);

/* A registry with the collector's families; 0 or -errno.  metrics_wsaudit_fini() frees it. */
int metrics_wsaudit_init(struct metrics_wsaudit *w, const char *version, const char *revision);
void metrics_wsaudit_fini(struct metrics_wsaudit *w);

/*
 * One violation: wsaudit_violations_total{rule} and, by the function qualname that sent the
 * frame (no file or line: those multiply series), wsaudit_violations_by_origin_total{rule,
 * origin}, and by where the sender runs, wsaudit_violations_by_workload_total{rule,
 * k8s_namespace,k8s_workload} (podinfo_k8s_labels(); NULL or empty counts as "unknown").
 * origin NULL or empty counts as "unattributed".  0 or -errno (as metrics_add); the by-rule
 * count is made even when the origin is refused.
 */
int metrics_wsaudit_violation(struct metrics_wsaudit *w, const char *rule, const char *origin,
			      const char *k8s_namespace, const char *k8s_workload);
/*
 * A frame that never left (wsaudit_lost_frames_total{origin,type}): type is the message
 * type as shown, counted as "other" when it is a keyed hash (not among the policy's known
 * types) and "none" when there is none.
 */
int metrics_wsaudit_lost(struct metrics_wsaudit *w, const char *origin, const char *type);
/*
 * A write still queued in its transport when its connection ended
 * (wsaudit_queued_at_close_total{origin}, wsaudit_queued_at_close_bytes_total{origin}).
 */
int metrics_wsaudit_queued(struct metrics_wsaudit *w, const char *origin, uint64_t bytes);
/* An abnormal close (wsaudit_abnormal_closes_total{code,origin}): code 1011, or 0 for none. */
int metrics_wsaudit_abnormal_close(struct metrics_wsaudit *w, int code, const char *origin);

#endif /* WSAUDIT_METRICS_H */

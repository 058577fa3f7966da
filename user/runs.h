/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Run completeness (docs/runs.md): every agent run the policy's runs section describes is
 * followed per connection from the decoded messages, and one that did not reach its user
 * whole is reported:
 *   incomplete_run  it has no end event: its connection closed, or it was silent for the
 *                   policy's timeout;
 *   out_of_order    its start came after its end, or an event of it after its end;
 *   missing_event   it ended without one of the policy's required events.
 * Each report carries the connection, the run's key (as shown), its user and the origin of
 * the last event seen of it.  A run that cannot be judged is reported too, with why
 * (unjudged): evicted past a bound, or a message of its connection could not be read.
 *
 * Pure: it judges what it is given.  The traced service chooses the run ids, so the state is
 * bounded per connection (RUNS_PER_CONN) and in all (max_runs), in keyed hash tables; what
 * is evicted past a bound is reported and counted.  Runs that ended are kept (to tell events
 * that come after the end) until their timeout, and are the first to go past a bound.
 */
#ifndef WSAUDIT_RUNS_H
#define WSAUDIT_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define RUNS_PER_CONN 64 /* runs followed on one connection, ended ones included */
#define RUNS_MAX_DEFAULT 16384 /* runs followed in all */
#define RUNS_VALUE_MAX 256 /* bytes kept of a key, user, type, function or file */

enum run_rule {
	RUN_INCOMPLETE, /* incomplete_run */
	RUN_OUT_OF_ORDER, /* out_of_order */
	RUN_MISSING_EVENT, /* missing_event */
	RUN_UNJUDGED, /* not a finding: the run could not be judged (reason says why) */
	RUN_RULE__COUNT,
};

/*
 * The reasons of a report, X(REASON, "name", rule), one list per rule: the one list behind
 * the enum, its names in the output and each rule's reasons in the metrics.
 *   incomplete_run: its connection closed before its end; silent for the policy's timeout
 *     before its end.
 *   out_of_order: its start came after its end; an event of it came after its end.
 *   unjudged: forgotten past RUNS_PER_CONN or max_runs; a message of its connection could
 *     not be read; on a connection seen whole, events of a run that neither started nor
 *     ended there (a run's events sent to another user's connection: isolation_breach's
 *     matter); still open when the trace ended (the connection did not close).
 */
#define RUN_INCOMPLETE_REASONS(X, rule)         \
	X(RUN_CONN_CLOSED, "conn_closed", rule) \
	X(RUN_TIMEOUT, "timeout", rule)
#define RUN_OUT_OF_ORDER_REASONS(X, rule)               \
	X(RUN_START_AFTER_END, "start_after_end", rule) \
	X(RUN_AFTER_END, "after_end", rule)
#define RUN_MISSING_EVENT_REASONS(X, rule) X(RUN_REQUIRED_ABSENT, "required_absent", rule)
#define RUN_UNJUDGED_REASONS(X, rule)                 \
	X(RUN_EVICTED, "evicted", rule)               \
	X(RUN_UNREADABLE, "message_unreadable", rule) \
	X(RUN_FRAGMENT, "fragment", rule)             \
	X(RUN_TRACE_ENDED, "trace_ended", rule)
#define RUN_REASONS(X)                                  \
	RUN_INCOMPLETE_REASONS(X, RUN_INCOMPLETE)       \
	RUN_OUT_OF_ORDER_REASONS(X, RUN_OUT_OF_ORDER)   \
	RUN_MISSING_EVENT_REASONS(X, RUN_MISSING_EVENT) \
	RUN_UNJUDGED_REASONS(X, RUN_UNJUDGED)

#define RUN_REASON_ENUM(name, str, rule) name,
enum run_reason {
	RUN_REASONS(RUN_REASON_ENUM) RUN_REASON__COUNT,
};
#undef RUN_REASON_ENUM

/* "incomplete_run", "out_of_order", "missing_event", "unjudged" */
const char *run_rule_name(enum run_rule r);
/* "conn_closed", "timeout", "start_after_end", "after_end", "required_absent", "evicted",
 * "message_unreadable", "fragment", "trace_ended" */
const char *run_reason_name(enum run_reason r);
enum run_rule run_reason_rule(enum run_reason r);

/* One message of a run, as the session decoded it. */
struct run_msg {
	const char *conn; /* the connection's id (struct ct_conn id_str) */
	uint32_t pid;
	const char *comm;
	const char *peer;
	bool whole; /* the connection was followed from its handshake: no message went unseen */
	const char *user; /* the run's user as shown (the connection's, else the message's); NULL */
	const char *key; /* the run's key as shown */
	const char *type; /* the message type, as the policy names it */
	const char *type_shown; /* as it may be shown (a type the policy does not know: hashed) */
	/* Bytes of the connection's stream lost so far: more than before, and a message may be
	 * gone (runs_gap()). */
	uint64_t lost;
	const char *function, *file; /* its origin; NULL when unattributed */
	int line;
	uint64_t ts_ns;
};

struct run_report {
	enum run_rule rule;
	enum run_reason reason;
	const char *conn, *peer, *comm;
	uint32_t pid;
	const char *user; /* NULL when none was known */
	const char *key;
	const char *last_type; /* the last event seen of the run */
	const char *function, *file; /* origin of that event; NULL when it was unattributed */
	int line;
	const char *event; /* out_of_order: the event that came late */
	bool start_seen;
	unsigned int events; /* events of the run seen */
	/* missing_event: the required types absent, in policy order */
	const char *missing[POLICY_MAX_LIST];
	size_t nmissing;
	uint64_t first_ns, last_ns; /* its first and last event */
	uint64_t ts_ns; /* when it was judged */
};

typedef void (*runs_report_fn)(void *ctx, const struct run_report *rep);

struct runs_stats {
	uint64_t reports[RUN_REASON__COUNT];
	uint64_t completed; /* runs that ended (whatever else was found of them) */
	uint64_t open; /* runs followed now, ended ones included */
};

struct runs;

/* max_runs 0: RUNS_MAX_DEFAULT.  NULL and errno when out of memory. */
struct runs *runs_new(const struct policy *p, size_t max_runs, runs_report_fn fn, void *ctx);
/* Runs open at the end are not reported: the caller closes their connections first. */
void runs_free(struct runs *r);
/*
 * A reloaded policy: its lists judge the runs in flight from now on; without a runs section
 * they are forgotten unreported.
 */
void runs_set_policy(struct runs *r, const struct policy *p);
/* A message with a run key and a type (types the runs section does not name are ignored). */
void runs_message(struct runs *r, const struct run_msg *m);
/*
 * A message of the connection could not be read (lost bytes, not decodable, not JSON): its
 * type and key are unknown, so the runs open on it can no longer be judged.
 */
void runs_gap(struct runs *r, const char *conn);
/*
 * The connection closed (lost: as in struct run_msg): its runs without an end are incomplete.
 * closed false: only the trace of it ended (the tracer stops): they are not judged.
 */
void runs_conn_closed(struct runs *r, const char *conn, bool closed, uint64_t lost, uint64_t ts_ns);
/* Runs silent for the timeout: incomplete when open, forgotten when ended. */
void runs_tick(struct runs *r, uint64_t now_ns);
const struct runs_stats *runs_stats(const struct runs *r);
/* What a report says, in words (timeout_s: the policy's): a run record's detail. */
void runs_detail(const struct run_report *rep, unsigned int timeout_s, char *out, size_t size);

#endif /* WSAUDIT_RUNS_H */

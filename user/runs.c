// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyhash.h"
#include "runs.h"

#define RUN_BUCKETS 8192
#define CONN_BUCKETS 4096

struct rconn {
	char id[48];
	char peer[64];
	char comm[16];
	uint32_t pid;
	bool whole; /* followed from its handshake: every message of it was seen */
	uint64_t lost; /* bytes of its stream lost, when last told */
	char user[RUNS_VALUE_MAX + 1]; /* "" when none is known */
	struct run *runs; /* its runs, newest first */
	unsigned int nruns;
	struct rconn *next; /* hash chain */
};

struct run {
	struct rconn *conn;
	char key[RUNS_VALUE_MAX + 1];
	char last_type[RUNS_VALUE_MAX + 1];
	char function[RUNS_VALUE_MAX + 1]; /* "" when the last event was unattributed */
	char file[RUNS_VALUE_MAX + 1];
	int line;
	uint64_t first_ns, last_ns;
	uint64_t required; /* bit i: runs.required[i] was seen */
	unsigned int events;
	bool start_seen, ended, gap, order_reported;
	struct run *next; /* hash chain */
	struct run *conn_next; /* the connection's list */
	struct run *older, *newer; /* by last event, for the timeout and eviction */
};

struct runs {
	const struct policy *policy;
	size_t max_runs;
	runs_report_fn report;
	void *ctx;
	struct run *buckets[RUN_BUCKETS];
	struct rconn *conns[CONN_BUCKETS];
	struct run *oldest, *newest;
	struct runs_stats stats;
};

static const char *const rule_names[RUN_RULE__COUNT] = {
	[RUN_INCOMPLETE] = "incomplete_run",
	[RUN_OUT_OF_ORDER] = "out_of_order",
	[RUN_MISSING_EVENT] = "missing_event",
	[RUN_UNJUDGED] = "unjudged",
};

#define RUN_REASON_ENTRY(name, str, rl) [name] = { str, rl },
static const struct {
	const char *name;
	enum run_rule rule;
} reasons[RUN_REASON__COUNT] = { RUN_REASONS(RUN_REASON_ENTRY) };
#undef RUN_REASON_ENTRY

const char *run_rule_name(enum run_rule r)
{
	return r < RUN_RULE__COUNT ? rule_names[r] : "unknown";
}

const char *run_reason_name(enum run_reason r)
{
	return r < RUN_REASON__COUNT ? reasons[r].name : "unknown";
}

enum run_rule run_reason_rule(enum run_reason r)
{
	return r < RUN_REASON__COUNT ? reasons[r].rule : RUN_UNJUDGED;
}

/* Copies a value cut to the field: the service chooses these strings. */
static void set(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/* Keys come from the traffic: keyed, so nobody can choose keys that share a bucket. */
static size_t conn_bucket(const char *conn)
{
	return (size_t)(keyhash_table(conn, strlen(conn)) % CONN_BUCKETS);
}

static size_t run_bucket(const struct rconn *c, const char *key)
{
	return (size_t)(keyhash_table2(keyhash_table(c->id, strlen(c->id)),
				       keyhash_table(key, strlen(key))) %
			RUN_BUCKETS);
}

struct runs *runs_new(const struct policy *p, size_t max_runs, runs_report_fn fn, void *ctx)
{
	struct runs *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->policy = p;
	r->max_runs = max_runs ? max_runs : RUNS_MAX_DEFAULT;
	r->report = fn;
	r->ctx = ctx;
	return r;
}

static void run_drop(struct runs *r, struct run *run);

void runs_set_policy(struct runs *r, const struct policy *p)
{
	r->policy = p;
	while (!p->runs.on && r->oldest)
		run_drop(r, r->oldest);
}

const struct runs_stats *runs_stats(const struct runs *r)
{
	return &r->stats;
}

static struct rconn *conn_find(struct runs *r, const char *whole_id)
{
	struct rconn *c;
	char id[sizeof(c->id)];

	set(id, sizeof(id), whole_id); /* as kept */
	for (c = r->conns[conn_bucket(id)]; c; c = c->next) {
		if (!strcmp(c->id, id))
			return c;
	}
	return NULL;
}

static void conn_free(struct runs *r, struct rconn *c)
{
	struct rconn **pp = &r->conns[conn_bucket(c->id)];

	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	free(c);
}

static struct run *run_find(struct runs *r, struct rconn *c, const char *key)
{
	struct run *run;

	for (run = r->buckets[run_bucket(c, key)]; run; run = run->next) {
		if (run->conn == c && !strcmp(run->key, key))
			return run;
	}
	return NULL;
}

/* Whether runs.required[i] was seen; types past 64 are not followed (the list holds 64). */
static bool required_seen(const struct run *run, size_t i)
{
	return i < 64 && (run->required >> i & 1);
}

static void emit(struct runs *r, struct run *run, enum run_reason why, uint64_t ts_ns,
		 const char *event)
{
	const struct policy_runs *pr = &r->policy->runs;
	struct run_report rep = {
		.rule = reasons[why].rule,
		.reason = why,
		.conn = run->conn->id,
		.peer = run->conn->peer,
		.comm = run->conn->comm,
		.pid = run->conn->pid,
		.user = run->conn->user[0] ? run->conn->user : NULL,
		.key = run->key,
		.last_type = run->last_type,
		.function = run->function[0] ? run->function : NULL,
		.file = run->file[0] ? run->file : NULL,
		.line = run->line,
		.event = event,
		.start_seen = run->start_seen,
		.events = run->events,
		.first_ns = run->first_ns,
		.last_ns = run->last_ns,
		.ts_ns = ts_ns,
	};

	if (why == RUN_REQUIRED_ABSENT) {
		if (!run->start_seen)
			for (size_t i = 0; i < pr->start.n && rep.nmissing < POLICY_MAX_LIST; i++)
				rep.missing[rep.nmissing++] = pr->start.v[i];
		for (size_t i = 0; i < pr->required.n && rep.nmissing < POLICY_MAX_LIST; i++)
			if (!required_seen(run, i))
				rep.missing[rep.nmissing++] = pr->required.v[i];
	}
	r->stats.reports[why]++;
	if (r->report)
		r->report(r->ctx, &rep);
}

/* What an ended run lacks: a required event, or, on a connection seen whole, its start. */
static bool run_lacks(const struct runs *r, const struct run *run)
{
	if (!run->start_seen && run->conn->whole)
		return true;
	if (!run->start_seen)
		return false; /* its start, and what came with it, may predate the trace */
	for (size_t i = 0; i < r->policy->runs.required.n; i++)
		if (!required_seen(run, i))
			return true;
	return false;
}

static void age_unlink(struct runs *r, struct run *run)
{
	if (run->older)
		run->older->newer = run->newer;
	else
		r->oldest = run->newer;
	if (run->newer)
		run->newer->older = run->older;
	else
		r->newest = run->older;
	run->older = run->newer = NULL;
}

static void age_push(struct runs *r, struct run *run)
{
	run->older = r->newest;
	if (r->newest)
		r->newest->newer = run;
	else
		r->oldest = run;
	r->newest = run;
}

/*
 * The judgement of a run that is let go (closed, timed out, evicted): one without its end is
 * incomplete; one that ended without its start on a connection seen whole misses it.
 */
static void run_settle(struct runs *r, struct run *run, enum run_reason open_why, uint64_t ts_ns)
{
	if (!run->ended && open_why == RUN_TRACE_ENDED)
		emit(r, run, RUN_TRACE_ENDED, ts_ns, NULL);
	else if (open_why == RUN_TRACE_ENDED)
		return; /* its start may still come */
	else if (!run->ended && open_why != RUN_EVICTED && run->gap)
		emit(r, run, RUN_UNREADABLE, ts_ns, NULL);
	else if (!run->ended && open_why != RUN_EVICTED && !run->start_seen && run->conn->whole)
		emit(r, run, RUN_FRAGMENT, ts_ns, NULL);
	else if (!run->ended)
		emit(r, run, open_why, ts_ns, NULL);
	else if (!run->start_seen && !run->order_reported && run_lacks(r, run))
		emit(r, run, run->gap ? RUN_UNREADABLE : RUN_REQUIRED_ABSENT, ts_ns, NULL);
}

/* Forgets a run; its connection too when it was the last. */
static void run_drop(struct runs *r, struct run *run)
{
	struct run **pp = &r->buckets[run_bucket(run->conn, run->key)];
	struct rconn *c = run->conn;

	while (*pp != run)
		pp = &(*pp)->next;
	*pp = run->next;
	for (pp = &c->runs; *pp != run; pp = &(*pp)->conn_next)
		;
	*pp = run->conn_next;
	age_unlink(r, run);
	r->stats.open--;
	if (!--c->nruns)
		conn_free(r, c);
	free(run);
}

/*
 * Room for one more run on c: past a bound the connection's oldest ended run goes first
 * (nothing is lost of it), else the oldest run there or in all, reported as evicted.
 */
static void make_room(struct runs *r, struct rconn *c, uint64_t ts_ns)
{
	struct run *victim = NULL, *ended = NULL;

	if (c->nruns >= RUNS_PER_CONN) {
		for (struct run *run = c->runs; run; run = run->conn_next) {
			if (!victim || run->last_ns <= victim->last_ns)
				victim = run;
			if (run->ended && (!ended || run->last_ns <= ended->last_ns))
				ended = run;
		}
		victim = ended ? ended : victim;
	} else if (r->stats.open >= r->max_runs) {
		victim = r->oldest;
	}
	if (!victim)
		return;
	run_settle(r, victim, RUN_EVICTED, ts_ns);
	/* c itself outlives the eviction: it is about to get the new run. */
	if (victim->conn == c && c->nruns == 1) {
		c->nruns++;
		run_drop(r, victim);
		c->nruns--;
		return;
	}
	run_drop(r, victim);
}

static void conn_gap(struct rconn *c);

/* Bytes lost since the last message: the runs open on it may have lost one. */
static void conn_lost(struct rconn *c, uint64_t lost)
{
	if (lost > c->lost)
		conn_gap(c);
	c->lost = lost;
}

static struct rconn *conn_get(struct runs *r, const struct run_msg *m)
{
	struct rconn *c = conn_find(r, m->conn);
	size_t b;

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	set(c->id, sizeof(c->id), m->conn);
	c->lost = m->lost; /* what was lost before its first run concerns none */
	b = conn_bucket(c->id);
	c->next = r->conns[b];
	r->conns[b] = c;
	return c;
}

static struct run *run_add(struct runs *r, struct rconn *c, const struct run_msg *m)
{
	struct run *run;
	size_t b;

	make_room(r, c, m->ts_ns);
	run = calloc(1, sizeof(*run));
	if (!run)
		return NULL;
	run->conn = c;
	set(run->key, sizeof(run->key), m->key);
	run->first_ns = m->ts_ns;
	b = run_bucket(c, run->key);
	run->next = r->buckets[b];
	r->buckets[b] = run;
	run->conn_next = c->runs;
	c->runs = run;
	c->nruns++;
	age_push(r, run);
	r->stats.open++;
	return run;
}

static void run_seen(struct runs *r, struct run *run, const struct run_msg *m)
{
	run->events++;
	run->last_ns = m->ts_ns;
	set(run->last_type, sizeof(run->last_type), m->type_shown ? m->type_shown : m->type);
	set(run->function, sizeof(run->function), m->function);
	set(run->file, sizeof(run->file), m->function ? m->file : NULL);
	run->line = m->function ? m->line : 0;
	age_unlink(r, run);
	age_push(r, run);
}

/* An event of a run that has ended: a start seen only now, or anything else it names. */
static void after_end(struct runs *r, struct run *run, enum policy_run_event kind,
		      const struct run_msg *m)
{
	if (kind == POLICY_RUN_START && !run->start_seen) {
		run->start_seen = true;
		if (!run->order_reported)
			emit(r, run, RUN_START_AFTER_END, m->ts_ns, m->type);
		run->order_reported = true;
		return;
	}
	/* A second end (agent_error, then agent_completed) says nothing about order. */
	if (kind == POLICY_RUN_END || kind == POLICY_RUN_OTHER || run->order_reported)
		return;
	run->order_reported = true;
	emit(r, run, RUN_AFTER_END, m->ts_ns, m->type);
}

void runs_message(struct runs *r, const struct run_msg *m)
{
	const struct policy_runs *pr = &r->policy->runs;
	enum policy_run_event kind;
	struct rconn *c;
	struct run *run;

	char key[RUNS_VALUE_MAX + 1];

	if (!pr->on || !m->key || !m->type || !m->conn)
		return;
	kind = policy_run_event(r->policy, m->type);
	set(key, sizeof(key), m->key); /* as kept */
	c = conn_find(r, m->conn);
	if (c)
		conn_lost(c, m->lost); /* before this message's run is added */
	run = c ? run_find(r, c, key) : NULL;
	if (!run) {
		/* Types the policy does not name only update a run that is followed. */
		if (kind == POLICY_RUN_OTHER)
			return;
		c = c ? c : conn_get(r, m);
		if (!c)
			return;
		run = run_add(r, c, m);
		if (!run) {
			if (!c->nruns)
				conn_free(r, c);
			return;
		}
	}
	set(c->peer, sizeof(c->peer), m->peer);
	set(c->comm, sizeof(c->comm), m->comm);
	c->pid = m->pid;
	c->whole = m->whole;
	if (m->user)
		set(c->user, sizeof(c->user), m->user);
	run_seen(r, run, m);
	if (run->ended) {
		after_end(r, run, kind, m);
		return;
	}
	switch (kind) {
	case POLICY_RUN_START:
		run->start_seen = true;
		break;
	case POLICY_RUN_REQUIRED:
		for (size_t i = 0; i < pr->required.n && i < 64; i++)
			if (!strcmp(pr->required.v[i], m->type))
				run->required |= 1ULL << i;
		break;
	case POLICY_RUN_END:
		run->ended = true;
		r->stats.completed++;
		/* Without its start, wait: a late start is out_of_order, none a missing event. */
		if (run->start_seen && run_lacks(r, run))
			emit(r, run, run->gap ? RUN_UNREADABLE : RUN_REQUIRED_ABSENT, m->ts_ns,
			     NULL);
		break;
	case POLICY_RUN_OTHER:
		break;
	}
}

static void conn_gap(struct rconn *c)
{
	for (struct run *run = c ? c->runs : NULL; run; run = run->conn_next) {
		if (!run->ended)
			run->gap = true;
	}
}

void runs_gap(struct runs *r, const char *conn)
{
	conn_gap(conn_find(r, conn));
}

void runs_conn_closed(struct runs *r, const char *conn, bool closed, uint64_t lost, uint64_t ts_ns)
{
	struct rconn *c = conn_find(r, conn);

	if (c)
		conn_lost(c, lost);

	while (c) {
		struct run *run = c->runs;
		bool last = c->nruns == 1;

		run_settle(r, run, closed ? RUN_CONN_CLOSED : RUN_TRACE_ENDED, ts_ns);
		run_drop(r, run);
		if (last)
			break;
	}
}

void runs_tick(struct runs *r, uint64_t now_ns)
{
	uint64_t timeout = (uint64_t)r->policy->runs.timeout_s * 1000000000ULL;

	while (r->oldest && r->oldest->last_ns + timeout <= now_ns) {
		struct run *run = r->oldest;

		run_settle(r, run, RUN_TIMEOUT, now_ns);
		run_drop(r, run);
	}
}

void runs_free(struct runs *r)
{
	if (!r)
		return;
	while (r->oldest)
		run_drop(r, r->oldest);
	free(r);
}

void runs_detail(const struct run_report *rep, unsigned int timeout_s, char *out, size_t size)
{
	size_t used = 0;

	switch (rep->reason) {
	case RUN_CONN_CLOSED:
		snprintf(out, size, "the run got no end event before its connection closed");
		break;
	case RUN_TIMEOUT:
		snprintf(out, size, "the run sent nothing for %us and no end event", timeout_s);
		break;
	case RUN_START_AFTER_END:
	case RUN_AFTER_END:
		snprintf(out, size, "%s came after the run's end", rep->event ? rep->event : "?");
		break;
	case RUN_REQUIRED_ABSENT:
		used = (size_t)snprintf(out, size, "the run ended without");
		for (size_t i = 0; i < rep->nmissing && used < size; i++)
			used += (size_t)snprintf(out + used, size - used, "%s %s", i ? "," : "",
						 rep->missing[i]);
		break;
	case RUN_EVICTED:
		snprintf(out, size, "forgotten past the bound of runs followed (%d a connection)",
			 RUNS_PER_CONN);
		break;
	case RUN_FRAGMENT:
		snprintf(out, size,
			 "the connection got events of the run but neither its start "
			 "nor its end (its events went to another connection?)");
		break;
	case RUN_TRACE_ENDED:
		snprintf(out, size, "the run was still open when the trace ended");
		break;
	case RUN_UNREADABLE:
		snprintf(out, size,
			 "a message of its connection could not be read, and may have "
			 "been its end");
		break;
	default:
		snprintf(out, size, "?");
	}
}

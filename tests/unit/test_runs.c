// SPDX-License-Identifier: GPL-2.0
/* Run completeness, judged on hand-made message sequences; the bounds under a flood. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "runs.h"

static const char POLICY[] = "bridge:\n"
			     "  functions: [\"B.*\"]\n"
			     "runs:\n"
			     "  key: run_id\n"
			     "  start: [agent_started]\n"
			     "  end: [agent_completed, agent_error]\n"
			     "  required: [agent_thinking, tool_executing, tool_completed]\n"
			     "  timeout: 300s\n";

#define S 1000000000ULL
#define MAX_REPORTS 4096

struct got {
	enum run_reason reason;
	char conn[48], user[64], key[64], last_type[64], function[64], file[64], event[64];
	int line;
	char missing[4][32];
	size_t nmissing;
};

struct fixture {
	struct policy *policy;
	struct runs *runs;
	struct got got[MAX_REPORTS];
	size_t n;
	uint64_t now;
};

static void on_report(void *ctx, const struct run_report *rep)
{
	struct fixture *fx = ctx;
	struct got *g;

	assert_int_equal(rep->rule, run_reason_rule(rep->reason));
	if (fx->n == MAX_REPORTS)
		return;
	g = &fx->got[fx->n++];
	memset(g, 0, sizeof(*g));
	g->reason = rep->reason;
	snprintf(g->conn, sizeof(g->conn), "%s", rep->conn);
	snprintf(g->user, sizeof(g->user), "%s", rep->user ? rep->user : "-");
	snprintf(g->key, sizeof(g->key), "%s", rep->key);
	snprintf(g->last_type, sizeof(g->last_type), "%s", rep->last_type);
	snprintf(g->function, sizeof(g->function), "%s", rep->function ? rep->function : "-");
	snprintf(g->file, sizeof(g->file), "%s", rep->file ? rep->file : "-");
	snprintf(g->event, sizeof(g->event), "%s", rep->event ? rep->event : "-");
	g->line = rep->line;
	for (size_t i = 0; i < rep->nmissing && i < 4; i++)
		snprintf(g->missing[i], sizeof(g->missing[i]), "%s", rep->missing[i]);
	g->nmissing = rep->nmissing;
}

static struct fixture *fixture_new(size_t max_runs)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char err[POLICY_ERR_LEN];

	assert_non_null(fx);
	fx->policy = policy_load_mem("test.yaml", POLICY, strlen(POLICY), err, sizeof(err));
	if (!fx->policy)
		fail_msg("%s", err);
	fx->runs = runs_new(fx->policy, max_runs, on_report, fx);
	assert_non_null(fx->runs);
	return fx;
}

static void fixture_free(struct fixture *fx)
{
	runs_free(fx->runs);
	policy_free(fx->policy);
	free(fx);
}

/* One message on conn, from function fn (NULL: unattributed), one second after the last. */
static void msg_on(struct fixture *fx, const char *conn, bool whole, const char *key,
		   const char *type, const char *fn)
{
	struct run_msg m = {
		.conn = conn,
		.pid = 42,
		.comm = "python3",
		.peer = "127.0.0.1:5000",
		.whole = whole,
		.user = "u#alice",
		.key = key,
		.type = type,
		.function = fn,
		.file = fn ? "/srv/agent.py" : NULL,
		.line = fn ? 7 : 0,
		.ts_ns = (fx->now += S),
	};

	runs_message(fx->runs, &m);
}

static void msg(struct fixture *fx, const char *key, const char *type, const char *fn)
{
	msg_on(fx, "c1", true, key, type, fn);
}

static void golden(struct fixture *fx, const char *key)
{
	msg(fx, key, "agent_started", "Bridge.notify_agent_started");
	msg(fx, key, "agent_thinking", "Bridge.notify_agent_thinking");
	msg(fx, key, "tool_executing", "Bridge.notify_tool_executing");
	msg(fx, key, "tool_completed", "Bridge.notify_tool_completed");
	msg(fx, key, "agent_completed", "Bridge.notify_agent_completed");
}

static void test_clean_runs(void **state)
{
	struct fixture *fx = fixture_new(0);

	for (int i = 0; i < 300; i++) {
		char key[32];

		snprintf(key, sizeof(key), "run-%d", i);
		golden(fx, key);
		/* Types the section does not name, before and after: not findings. */
		msg(fx, key, "progress_update", "Bridge.notify_progress_update");
	}
	msg(fx, "run-x", "progress_update", "Bridge.notify_progress_update");
	runs_conn_closed(fx->runs, "c1", true, 0, fx->now);
	runs_tick(fx->runs, fx->now + 3600 * S);
	assert_int_equal(fx->n, 0);
	assert_int_equal(runs_stats(fx->runs)->completed, 300);
	assert_int_equal(runs_stats(fx->runs)->open, 0);
	fixture_free(fx);
}

static void test_incomplete_at_close(void **state)
{
	struct fixture *fx = fixture_new(0);

	msg(fx, "r1", "agent_started", "Bridge.notify_agent_started");
	msg(fx, "r1", "agent_thinking", "Supervisor.think");
	golden(fx, "r2");
	runs_conn_closed(fx->runs, "c2", true, 0, fx->now); /* another connection: nothing */
	assert_int_equal(fx->n, 0);
	runs_conn_closed(fx->runs, "c1", true, 0, fx->now);
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->got[0].reason, RUN_CONN_CLOSED);
	assert_string_equal(fx->got[0].key, "r1");
	assert_string_equal(fx->got[0].conn, "c1");
	assert_string_equal(fx->got[0].user, "u#alice");
	assert_string_equal(fx->got[0].last_type, "agent_thinking");
	assert_string_equal(fx->got[0].function, "Supervisor.think");
	assert_string_equal(fx->got[0].file, "/srv/agent.py");
	assert_int_equal(fx->got[0].line, 7);
	assert_int_equal(runs_stats(fx->runs)->reports[RUN_CONN_CLOSED], 1);
	assert_int_equal(runs_stats(fx->runs)->open, 0);
	fixture_free(fx);
}

static void test_timeout(void **state)
{
	struct fixture *fx = fixture_new(0);
	uint64_t t0;

	msg(fx, "r1", "agent_started", NULL);
	t0 = fx->now;
	msg(fx, "r1", "agent_thinking", NULL);
	/* From the latest event: the run kept talking. */
	runs_tick(fx->runs, t0 + 300 * S);
	assert_int_equal(fx->n, 0);
	runs_tick(fx->runs, t0 + 301 * S);
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->got[0].reason, RUN_TIMEOUT);
	assert_string_equal(fx->got[0].function, "-"); /* unattributed: said, not made up */
	runs_conn_closed(fx->runs, "c1", true, 0, fx->now);
	assert_int_equal(fx->n, 1);
	fixture_free(fx);
}

static void test_missing_event(void **state)
{
	struct fixture *fx = fixture_new(0);

	msg(fx, "r1", "agent_started", NULL);
	msg(fx, "r1", "tool_executing", NULL);
	msg(fx, "r1", "agent_error", "Agent.fail");
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->got[0].reason, RUN_REQUIRED_ABSENT);
	assert_int_equal(fx->got[0].nmissing, 2);
	assert_string_equal(fx->got[0].missing[0], "agent_thinking");
	assert_string_equal(fx->got[0].missing[1], "tool_completed");
	assert_string_equal(fx->got[0].function, "Agent.fail");
	/* A second end says nothing more. */
	msg(fx, "r1", "agent_completed", NULL);
	runs_conn_closed(fx->runs, "c1", true, 0, fx->now);
	assert_int_equal(fx->n, 1);
	fixture_free(fx);
}

static void test_end_before_start(void **state)
{
	struct fixture *fx = fixture_new(0);

	msg(fx, "r1", "agent_thinking", NULL);
	msg(fx, "r1", "tool_executing", NULL);
	msg(fx, "r1", "tool_completed", NULL);
	msg(fx, "r1", "agent_completed", "Agent.done");
	assert_int_equal(fx->n, 0); /* its start may still come */
	msg(fx, "r1", "agent_started", "Agent.start_late");
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->got[0].reason, RUN_START_AFTER_END);
	assert_string_equal(fx->got[0].event, "agent_started");
	assert_string_equal(fx->got[0].function, "Agent.start_late");
	msg(fx, "r1", "agent_thinking", NULL); /* one finding per run */
	runs_conn_closed(fx->runs, "c1", true, 0, fx->now);
	assert_int_equal(fx->n, 1);
	fixture_free(fx);
}

static void test_start_never_seen(void **state)
{
	struct fixture *fx = fixture_new(0);

	/* Seen whole: the start is missing. */
	msg(fx, "r1", "agent_thinking", NULL);
	msg(fx, "r1", "tool_executing", NULL);
	msg(fx, "r1", "tool_completed", NULL);
	msg(fx, "r1", "agent_completed", NULL);
	/* Adopted (open before the trace): its start may predate it, nothing is said. */
	msg_on(fx, "c9", false, "r1", "agent_thinking", NULL);
	msg_on(fx, "c9", false, "r1", "agent_completed", NULL);
	runs_conn_closed(fx->runs, "c9", true, 0, fx->now);
	assert_int_equal(fx->n, 0);
	runs_conn_closed(fx->runs, "c1", true, 0, fx->now);
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->got[0].reason, RUN_REQUIRED_ABSENT);
	assert_int_equal(fx->got[0].nmissing, 1);
	assert_string_equal(fx->got[0].missing[0], "agent_started");
	fixture_free(fx);
}

static void test_after_end(void **state)
{
	struct fixture *fx = fixture_new(0);

	golden(fx, "r1");
	msg(fx, "r1", "tool_completed", "Tool.late");
	msg(fx, "r1", "agent_thinking", NULL);
	msg(fx, "r1", "agent_started", NULL);
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->got[0].reason, RUN_AFTER_END);
	assert_string_equal(fx->got[0].event, "tool_completed");
	assert_string_equal(fx->got[0].function, "Tool.late");
	/* Ended runs are forgotten after the timeout, unreported. */
	runs_tick(fx->runs, fx->now + 301 * S);
	assert_int_equal(runs_stats(fx->runs)->open, 0);
	assert_int_equal(fx->n, 1);
	fixture_free(fx);
}

static void test_unreadable(void **state)
{
	struct fixture *fx = fixture_new(0);

	msg(fx, "r1", "agent_started", NULL);
	golden(fx, "r0");
	runs_gap(fx->runs, "c1");
	runs_gap(fx->runs, "nope");
	runs_conn_closed(fx->runs, "c1", true, 0, fx->now);
	/* Its end may have been the message not read: not judged, and said so. */
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->got[0].reason, RUN_UNREADABLE);
	assert_string_equal(run_rule_name(run_reason_rule(fx->got[0].reason)), "unjudged");
	fixture_free(fx);
}

/* Bytes lost on the connection: a message may be gone, open runs are not judged. */
static void test_lost_bytes(void **state)
{
	struct fixture *fx = fixture_new(0);
	struct run_msg m = { .conn = "c1",
			     .whole = true,
			     .key = "r2",
			     .type = "agent_started",
			     .lost = 100,
			     .ts_ns = 5 * S };

	msg(fx, "r1", "agent_started", NULL);
	/* r2 starts after the loss: only r1 may have lost a message. */
	runs_message(fx->runs, &m);
	m.type = "agent_thinking";
	runs_message(fx->runs, &m);
	runs_conn_closed(fx->runs, "c1", true, 100, fx->now);
	assert_int_equal(fx->n, 2);
	assert_int_equal(fx->got[0].reason + fx->got[1].reason, RUN_UNREADABLE + RUN_CONN_CLOSED);
	/* Lost before the connection's first run: concerns none; at close: every open one. */
	m.conn = "c2";
	m.lost = 50;
	runs_message(fx->runs, &m);
	runs_conn_closed(fx->runs, "c2", true, 60, fx->now);
	assert_int_equal(fx->n, 3);
	assert_int_equal(fx->got[2].reason, RUN_UNREADABLE);
	fixture_free(fx);
}

/* On a connection seen whole, a run neither started nor ended there is not its own. */
static void test_fragment(void **state)
{
	struct fixture *fx = fixture_new(0);

	msg_on(fx, "c1", true, "r1", "tool_executing", NULL);
	msg_on(fx, "c1", true, "r1", "tool_completed", NULL);
	/* Adopted: its start may predate the trace; without an end, incomplete. */
	msg_on(fx, "c2", false, "r1", "tool_executing", NULL);
	runs_conn_closed(fx->runs, "c1", true, 0, fx->now);
	runs_conn_closed(fx->runs, "c2", true, 0, fx->now);
	assert_int_equal(fx->n, 2);
	assert_int_equal(fx->got[0].reason, RUN_FRAGMENT);
	assert_int_equal(fx->got[1].reason, RUN_CONN_CLOSED);
	assert_string_equal(run_rule_name(run_reason_rule(RUN_FRAGMENT)), "unjudged");
	fixture_free(fx);
}

/* The trace ends, the connection does not: its open runs are not judged, and said so. */
static void test_trace_ended(void **state)
{
	struct fixture *fx = fixture_new(0);

	msg(fx, "r1", "agent_started", NULL);
	golden(fx, "r2");
	msg(fx, "r3", "agent_completed", NULL); /* its start may still come: nothing */
	runs_conn_closed(fx->runs, "c1", false, 0, fx->now);
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->got[0].reason, RUN_TRACE_ENDED);
	assert_string_equal(fx->got[0].key, "r1");
	assert_int_equal(runs_stats(fx->runs)->open, 0);
	fixture_free(fx);
}

static void test_connections_apart(void **state)
{
	struct fixture *fx = fixture_new(0);

	msg_on(fx, "c1", true, "r1", "agent_started", NULL);
	msg_on(fx, "c2", true, "r1", "agent_thinking", NULL);
	msg_on(fx, "c2", true, "r1", "tool_executing", NULL);
	msg_on(fx, "c2", true, "r1", "tool_completed", NULL);
	msg_on(fx, "c2", true, "r1", "agent_completed", NULL);
	runs_conn_closed(fx->runs, "c1", true, 0, fx->now);
	runs_conn_closed(fx->runs, "c2", true, 0, fx->now);
	/* r1 never ended on c1, and never started on c2. */
	assert_int_equal(fx->n, 2);
	assert_int_equal(fx->got[0].reason, RUN_CONN_CLOSED);
	assert_string_equal(fx->got[0].conn, "c1");
	assert_int_equal(fx->got[1].reason, RUN_REQUIRED_ABSENT);
	assert_string_equal(fx->got[1].conn, "c2");
	fixture_free(fx);
}

/* A flood of run ids on one connection: RUNS_PER_CONN kept, the rest evicted and said. */
static void test_flood_one_connection(void **state)
{
	struct fixture *fx = fixture_new(0);
	char key[32];

	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "flood-%d", i);
		msg(fx, key, "agent_started", NULL);
	}
	assert_int_equal(runs_stats(fx->runs)->open, RUNS_PER_CONN);
	assert_int_equal(runs_stats(fx->runs)->reports[RUN_EVICTED], 1000 - RUNS_PER_CONN);
	assert_string_equal(fx->got[0].key, "flood-0"); /* oldest first */
	fx->n = 0;
	runs_conn_closed(fx->runs, "c1", true, 0, fx->now);
	assert_int_equal(fx->n, RUNS_PER_CONN);
	assert_int_equal(runs_stats(fx->runs)->open, 0);
	fixture_free(fx);
}

/* Ended runs make room first: nothing is lost of them. */
static void test_ended_go_first(void **state)
{
	struct fixture *fx = fixture_new(0);
	char key[32];

	msg(fx, "live", "agent_started", NULL);
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "done-%d", i);
		golden(fx, key);
	}
	assert_int_equal(fx->n, 0);
	assert_int_equal(runs_stats(fx->runs)->open, RUNS_PER_CONN);
	runs_conn_closed(fx->runs, "c1", true, 0, fx->now);
	assert_int_equal(fx->n, 1);
	assert_string_equal(fx->got[0].key, "live");
	assert_int_equal(fx->got[0].reason, RUN_CONN_CLOSED);
	fixture_free(fx);
}

/* A flood over many connections: the bound in all holds. */
static void test_flood_all(void **state)
{
	struct fixture *fx = fixture_new(100);
	char key[32], conn[32];

	for (int c = 0; c < 50; c++) {
		snprintf(conn, sizeof(conn), "c%d", c);
		for (int i = 0; i < 10; i++) {
			snprintf(key, sizeof(key), "k%d", i);
			msg_on(fx, conn, true, key, "agent_started", NULL);
		}
	}
	assert_int_equal(runs_stats(fx->runs)->open, 100);
	assert_int_equal(runs_stats(fx->runs)->reports[RUN_EVICTED], 400);
	/* A connection that lost its last run to eviction is gone with it. */
	fx->n = 0;
	runs_conn_closed(fx->runs, "c0", true, 0, fx->now);
	assert_int_equal(fx->n, 0);
	runs_conn_closed(fx->runs, "c49", true, 0, fx->now);
	assert_int_equal(fx->n, 10);
	runs_tick(fx->runs, fx->now + 400 * S);
	assert_int_equal(runs_stats(fx->runs)->open, 0);
	assert_int_equal(fx->n, 100);
	fixture_free(fx);
}

/* Values longer than kept are cut, and still tell runs apart by what is kept. */
static void test_long_values(void **state)
{
	struct fixture *fx = fixture_new(0);
	char key[2000], fn[2000];

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	memset(fn, 'f', sizeof(fn) - 1);
	fn[sizeof(fn) - 1] = '\0';
	msg_on(fx, "a-connection-id-longer-than-the-field-is-kept-whole-at", true, key,
	       "agent_started", fn);
	msg_on(fx, "a-connection-id-longer-than-the-field-is-kept-whole-at", true, key,
	       "agent_thinking", fn);
	assert_int_equal(runs_stats(fx->runs)->open, 1);
	runs_conn_closed(fx->runs, "a-connection-id-longer-than-the-field-is-kept-whole-at", true,
			 0, fx->now);
	assert_int_equal(fx->n, 1);
	fixture_free(fx);
}

static void test_reload_without_runs(void **state)
{
	struct fixture *fx = fixture_new(0);
	char err[POLICY_ERR_LEN];
	struct policy *none =
		policy_load_mem("n.yaml", "bridge:\n  functions: [a]\n", 24, err, sizeof(err));

	assert_non_null(none);
	msg(fx, "r1", "agent_started", NULL);
	runs_set_policy(fx->runs, none);
	assert_int_equal(runs_stats(fx->runs)->open, 0);
	msg(fx, "r2", "agent_started", NULL);
	runs_conn_closed(fx->runs, "c1", true, 0, fx->now);
	assert_int_equal(fx->n, 0);
	runs_set_policy(fx->runs, fx->policy);
	policy_free(none);
	fixture_free(fx);
}

static void test_names(void **state)
{
	assert_string_equal(run_rule_name(RUN_INCOMPLETE), "incomplete_run");
	assert_string_equal(run_rule_name(RUN_OUT_OF_ORDER), "out_of_order");
	assert_string_equal(run_rule_name(RUN_MISSING_EVENT), "missing_event");
	assert_string_equal(run_reason_name(RUN_CONN_CLOSED), "conn_closed");
	assert_string_equal(run_reason_name(RUN_UNREADABLE), "message_unreadable");
	assert_int_equal(run_reason_rule(RUN_START_AFTER_END), RUN_OUT_OF_ORDER);
	for (int i = 0; i < RUN_REASON__COUNT; i++)
		assert_non_null(run_reason_name(i));
	assert_string_equal(run_reason_name(RUN_REASON__COUNT), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_runs),
		cmocka_unit_test(test_incomplete_at_close),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_missing_event),
		cmocka_unit_test(test_end_before_start),
		cmocka_unit_test(test_start_never_seen),
		cmocka_unit_test(test_after_end),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_lost_bytes),
		cmocka_unit_test(test_fragment),
		cmocka_unit_test(test_trace_ended),
		cmocka_unit_test(test_connections_apart),
		cmocka_unit_test(test_flood_one_connection),
		cmocka_unit_test(test_ended_go_first),
		cmocka_unit_test(test_flood_all),
		cmocka_unit_test(test_long_values),
		cmocka_unit_test(test_reload_without_runs),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

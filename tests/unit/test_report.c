// SPDX-License-Identifier: GPL-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <unistd.h>

#include <jansson.h>

#include "report.h"
#include "stack_fixture.h"

static const char *bypass_in_test[] = {
	"Manager.send@/repo/app/ws/manager.py:10",
	"ThreadService.send@/repo/app/thread.py:17",
	"test_thread@/repo/tests/test_thread.py:30",
};
static const char *bypass_in_other_test[] = {
	"Manager.send@/repo/app/ws/manager.py:10",
	"ThreadService.send@/repo/app/thread.py:17",
	"TestRuns.test_run@/repo/tests/test_runs.py:8",
};
static const char *bypass_from_server[] = {
	"Manager.send@/repo/app/ws/manager.py:10",
	"ThreadService.send@/repo/app/thread.py:17",
	"Router.handle@/repo/app/routes.py:50",
};
static const char *other_line[] = {
	"Manager.send@/repo/app/ws/manager.py:10",
	"ThreadService.send@/repo/app/thread.py:21",
};

static const char *library_only[] = {
	"Protocol.send@/usr/lib/python3/dist-packages/websockets/protocol.py:647",
	"Plugin.notify@/usr/lib/python3/dist-packages/plugin/notify.py:12",
};

static struct rules_verdict verdict(int n, ...)
{
	struct rules_verdict v = { .via_bridge = n ? 0 : 1, .nviolations = (size_t)n };
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		v.v[i].rule = va_arg(ap, int);
		snprintf(v.v[i].detail, sizeof(v.v[i].detail), "detail %d", i);
	}
	va_end(ap);
	return v;
}

static void feed(struct report *r, const char *const *frames, size_t n, int origin,
		 struct rules_verdict v)
{
	struct attrib_stack *s = stack_of(frames, n, origin);
	char test[256];
	struct frame_view fv = {
		.stack = s,
		.verdict = &v,
		.name_tests = true,
		.test = test,
		.test_via = "stack",
	};

	fv.test_why = testname_from_stack(s, "/repo", test, sizeof(test));
	report_frame(r, &fv);
	attrib_stack_put(s);
}

static void every_rule(bool fail_on[REPORT_KINDS])
{
	for (int i = 0; i < REPORT_KINDS; i++)
		fail_on[i] = true;
}

static struct report *sample(void)
{
	struct report *r = report_new("/repo");

	feed(r, bypass_in_test, 3, 1, verdict(1, RULE_BRIDGE_BYPASS));
	feed(r, bypass_in_test, 3, 1, verdict(1, RULE_BRIDGE_BYPASS));
	feed(r, bypass_in_other_test, 3, 1, verdict(1, RULE_BRIDGE_BYPASS));
	feed(r, bypass_from_server, 3, 1, verdict(2, RULE_BRIDGE_BYPASS, RULE_ISOLATION_BREACH));
	feed(r, other_line, 2, 1, verdict(1, RULE_BRIDGE_BYPASS));
	feed(r, bypass_from_server, 3, -1, verdict(1, RULE_ISOLATION_BREACH));
	feed(r, bypass_in_test, 3, 1, verdict(0));
	return r;
}

static void test_findings_by_rule_and_origin(void **state)
{
	struct report *r = sample();
	const struct report_totals *t = report_totals(r);
	const struct report_finding *f;

	assert_int_equal(t->frames, 7);
	assert_int_equal(t->violating_frames, 6);
	assert_int_equal(t->violations[RULE_BRIDGE_BYPASS], 5);
	assert_int_equal(t->violations[RULE_ISOLATION_BREACH], 2);
	assert_int_equal(t->unattributed[UNATTR_NO_APPLICATION_FRAMES], 1);
	assert_int_equal(t->test_unknown[TEST_NOT_ON_STACK], 3);
	/* thread.py:17 bypass, its breach, thread.py:21 bypass, the unattributed breach. */
	assert_int_equal(report_nfindings(r), 4);
	f = report_finding(r, 0);
	assert_int_equal(f->rule, RULE_BRIDGE_BYPASS);
	assert_string_equal(f->origin.function, "ThreadService.send");
	assert_int_equal(f->origin.line, 17);
	assert_int_equal(f->count, 4);
	assert_int_equal(f->ntests, 2);
	assert_string_equal(f->tests[0], "tests/test_thread.py::test_thread");
	assert_string_equal(f->tests[1], "tests/test_runs.py::TestRuns::test_run");
	assert_int_equal(f->tests_unknown[TEST_NOT_ON_STACK], 1);
	assert_int_equal(f->nstack, 3);
	f = report_finding(r, 1);
	assert_int_equal(f->rule, RULE_ISOLATION_BREACH);
	assert_int_equal(f->count, 1);
	f = report_finding(r, 3);
	assert_null(f->origin.function);
	assert_string_equal(f->why, "no_application_frames");
	report_free(r);
}

/*
 * Found outside a frame: a close without a close frame, at the function that closed the
 * socket (or why none is known), and the run reports: findings by kind and origin, the runs
 * not judged counted by reason; each fails per fail_on like a rule.
 */
static void test_closes_and_runs(void **state)
{
	static const char *closer[] = {
		"socket.close@/usr/lib/python3.11/socket.py:500",
		"Streamer.stream@/repo/app/stream.py:40",
	};
	struct attrib_stack *s = stack_of(closer, 2, 1);
	struct run_report inc = {
		.rule = RUN_INCOMPLETE,
		.reason = RUN_CONN_CLOSED,
		.function = "Bridge.progress",
		.file = "/repo/app/bridge.py",
		.line = 12,
	};
	struct run_report frag = { .rule = RUN_UNJUDGED, .reason = RUN_FRAGMENT };
	struct run_report anon = { .rule = RUN_MISSING_EVENT, .reason = RUN_REQUIRED_ABSENT };
	bool all[REPORT_KINDS], runs_off[REPORT_KINDS];
	struct report *r = report_new("/repo");
	const struct report_totals *t = report_totals(r);
	const struct report_finding *f;

	(void)state;
	every_rule(all);
	every_rule(runs_off);
	for (int k = REPORT_INCOMPLETE_RUN; k < REPORT_KINDS; k++)
		runs_off[k] = false;
	report_abrupt_close(r, s, "closed by Streamer.stream", "", TEST_NONE_RUNNING, false);
	report_abrupt_close(r, s, "again", "", TEST_NONE_RUNNING, false);
	report_abrupt_close(r, NULL, "no closer", "", TEST_NONE_RUNNING, false);
	report_run(r, &inc, "no end", "tests/test_x.py::test_run", TEST_FOUND, true);
	report_run(r, &inc, "no end", "tests/test_x.py::test_other", TEST_FOUND, true);
	report_run(r, &frag, "fragment", "", TEST_UNATTRIBUTED, false);
	report_run(r, &anon, "the run ended without a", "", TEST_NONE_RUNNING, false);
	attrib_stack_put(s);

	assert_int_equal(t->violations[RULE_ABNORMAL_CLOSE], 3);
	assert_int_equal(t->abrupt_closes, 3);
	assert_int_equal(t->violations[REPORT_INCOMPLETE_RUN], 2);
	assert_int_equal(t->violations[REPORT_MISSING_EVENT], 1);
	assert_int_equal(t->runs_unjudged[RUN_FRAGMENT], 1);
	assert_int_equal(report_nfindings(r), 4);
	f = report_finding(r, 0);
	assert_int_equal(f->rule, RULE_ABNORMAL_CLOSE);
	assert_string_equal(f->origin.function, "Streamer.stream");
	assert_int_equal(f->count, 2);
	assert_int_equal(f->nstack, 2);
	assert_string_equal(f->detail, "closed by Streamer.stream");
	f = report_finding(r, 1);
	assert_null(f->origin.function);
	assert_string_equal(f->why, "not_walked");
	f = report_finding(r, 2);
	assert_string_equal(report_kind_name(f->rule), "incomplete_run");
	assert_string_equal(f->origin.file, "/repo/app/bridge.py");
	assert_int_equal(f->count, 2);
	assert_int_equal(f->ntests, 2);
	assert_int_equal(f->tests_running, 2);
	f = report_finding(r, 3);
	assert_string_equal(report_kind_name(f->rule), "missing_event");
	assert_null(f->origin.function);
	assert_int_equal(report_new_failures(r, all), 4);
	assert_int_equal(report_new_failures(r, runs_off), 2);
	report_free(r);
}

static void test_baseline_round_trip(void **state)
{
	char path[] = "/tmp/wsaudit-baseline-XXXXXX";
	bool all[REPORT_KINDS], breach_only[REPORT_KINDS] = { [RULE_ISOLATION_BREACH] = true };
	struct report *r = sample(), *again;
	char err[256];
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	every_rule(all);
	assert_int_equal(report_new_failures(r, all), 4);
	assert_int_equal(report_new_failures(r, breach_only), 2);
	assert_int_equal(report_write_baseline(r, path), 0);

	/* The same findings against their baseline: only the unattributed one is new. */
	again = report_new("/repo");
	assert_int_equal(report_load_baseline(again, path, err, sizeof(err)), 0);
	feed(again, bypass_in_test, 3, 1, verdict(1, RULE_BRIDGE_BYPASS));
	/* Lines move: the baseline names the function and file only. */
	feed(again, other_line, 2, 1, verdict(1, RULE_BRIDGE_BYPASS));
	feed(again, bypass_from_server, 3, -1, verdict(1, RULE_ISOLATION_BREACH));
	assert_true(report_finding(again, 0)->known);
	assert_true(report_finding(again, 1)->known);
	assert_false(report_finding(again, 2)->known);
	assert_int_equal(report_new_failures(again, all), 1);
	report_free(again);
	report_free(r);
	unlink(path);
}

static void test_baseline_errors(void **state)
{
	char path[] = "/tmp/wsaudit-baseline-XXXXXX";
	struct report *r = report_new("/repo");
	char err[256];
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	fputs("{\"version\":1,\"violations\":[{\"rule\":\"no_such_rule\",\"function\":\"f\","
	      "\"file\":\"a.py\"}]}",
	      f);
	fclose(f);
	assert_int_equal(report_load_baseline(r, path, err, sizeof(err)), -22);
	assert_non_null(strstr(err, "violations[0]"));
	f = fopen(path, "w");
	fputs("{\"version\":2,\"violations\":[]}", f);
	fclose(f);
	assert_int_equal(report_load_baseline(r, path, err, sizeof(err)), -22);
	assert_non_null(strstr(err, "not a wsaudit baseline"));
	f = fopen(path, "w");
	fputs("{\"version\":1,", f);
	fclose(f);
	assert_int_equal(report_load_baseline(r, path, err, sizeof(err)), -22);
	assert_int_equal(report_load_baseline(r, "/nonexistent/b.json", err, sizeof(err)), -22);
	report_free(r);
	unlink(path);
}

static void test_sarif_shape(void **state)
{
	char path[] = "/tmp/wsaudit-sarif-XXXXXX";
	bool all[REPORT_KINDS];
	struct report *r = sample();
	json_t *doc, *run, *res, *loc;
	int fd = mkstemp(path);

	close(fd);
	every_rule(all);
	/* A finding with no frame in the repository: left out of SARIF, counted. */
	feed(r, library_only, 2, 0, verdict(1, RULE_BRIDGE_BYPASS));
	assert_int_equal(report_write_sarif(r, path, all), 0);
	doc = json_load_file(path, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "version")), "2.1.0");
	run = json_array_get(json_object_get(doc, "runs"), 0);
	assert_int_equal(json_array_size(json_object_get(
				 json_object_get(json_object_get(run, "tool"), "driver"), "rules")),
			 REPORT_KINDS);
	/* Every rule has its help: ruleIndex points at the right one. */
	for (int i = 0; i < REPORT_KINDS; i++) {
		json_t *rule = json_array_get(
			json_object_get(json_object_get(json_object_get(run, "tool"), "driver"),
					"rules"),
			i);

		assert_string_equal(json_string_value(json_object_get(rule, "id")),
				    report_kind_name(i));
		assert_non_null(
			json_string_value(json_object_get(json_object_get(rule, "help"), "text")));
	}
	assert_int_equal(json_array_size(json_object_get(run, "results")), 4);
	res = json_array_get(json_object_get(run, "results"), 0);
	loc = json_object_get(json_array_get(json_object_get(res, "locations"), 0),
			      "physicalLocation");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(loc, "artifactLocation"), "uri")),
		"app/thread.py");
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(loc, "region"), "startLine")),
		17);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(res, "properties"), "count")),
		4);
	assert_int_equal(
		json_array_size(json_object_get(json_object_get(res, "properties"), "tests")), 2);
	/* The unattributed finding is shown at the innermost frame in the repository. */
	res = json_array_get(json_object_get(run, "results"), 3);
	loc = json_object_get(json_array_get(json_object_get(res, "locations"), 0),
			      "physicalLocation");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(loc, "artifactLocation"), "uri")),
		"app/ws/manager.py");
	/* The library-only finding is no result: the run counts it. */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(run, "properties"),
							    "findingsOutsideRepository")),
			 1);
	json_decref(doc);
	report_free(r);
	unlink(path);
}

static void test_junit_escapes(void **state)
{
	const char *odd[] = { "Agent.<lambda>@/repo/app/a&b\".py:3" };
	char path[] = "/tmp/wsaudit-junit-XXXXXX", buf[8192], want[64];
	bool all[REPORT_KINDS];
	struct report *r = report_new("/repo");
	int fd = mkstemp(path);
	size_t n;
	FILE *f;

	close(fd);
	every_rule(all);
	feed(r, odd, 1, 0, verdict(1, RULE_BRIDGE_BYPASS));
	assert_int_equal(report_write_junit(r, path, all), 0);
	f = fopen(path, "r");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_non_null(strstr(buf, "Agent.&lt;lambda&gt; (app/a&amp;b&quot;.py:3)"));
	/* One case per rule and one for the finding; its rule's case and its own failed. */
	snprintf(want, sizeof(want), "tests=\"%d\" failures=\"2\"", REPORT_KINDS + 1);
	assert_non_null(strstr(buf, want));
	assert_null(strstr(buf, "<lambda>"));
	report_free(r);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_findings_by_rule_and_origin),
		cmocka_unit_test(test_closes_and_runs),
		cmocka_unit_test(test_baseline_round_trip),
		cmocka_unit_test(test_baseline_errors),
		cmocka_unit_test(test_sarif_shape),
		cmocka_unit_test(test_junit_escapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Prometheus exposition: exact rendering, escaping, ordering, the cap and its "other" series,
 * refused names and values, the collector's families against the names the other modules
 * use, listen addresses, and the HTTP endpoint on loopback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "attrib.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "wsaudit/events.h"
#include "ws_frame.h"
#include "ws_message.h"

static const char *const one_label[] = { "reason" };
static const char *const two_labels[] = { "rule", "origin" };

static char *render(struct metrics *m)
{
	size_t len;
	char *s = metrics_render(m, &len);

	assert_non_null(s);
	assert_int_equal(strlen(s), len);
	return s;
}

static void test_golden(void **state)
{
	struct metrics *m = metrics_new("t");
	struct metrics_family *c, *g, *plain, *empty;
	char *out;

	assert_non_null(m);
	c = metrics_family_add(m, "t_frames_total", METRICS_COUNTER, "Frames, by reason.",
			       one_label, 1, 0, NULL);
	g = metrics_family_add(m, "t_ratio", METRICS_GAUGE, "A ratio.", NULL, 0, 0, NULL);
	empty = metrics_family_add(m, "t_unused_total", METRICS_COUNTER, "Never updated.",
				   one_label, 1, 0, NULL);
	plain = metrics_family_add(m, "t_bytes_total", METRICS_COUNTER, "Bytes.", NULL, 0, 0, NULL);
	assert_non_null(c);
	assert_non_null(g);
	assert_non_null(empty);
	assert_non_null(plain);
	assert_int_equal(metrics_add1(c, "b", 2), 0);
	assert_int_equal(metrics_add1(c, "a", 1), 0);
	assert_int_equal(metrics_add1(c, "b", 40), 0);
	assert_int_equal(metrics_gauge_set(g, NULL, 0.1), 0);
	assert_int_equal(metrics_add(plain, NULL, UINT64_MAX), 0);

	out = render(m);
	assert_string_equal(out, "# HELP t_frames_total Frames, by reason.\n"
				 "# TYPE t_frames_total counter\n"
				 "t_frames_total{reason=\"a\"} 1\n"
				 "t_frames_total{reason=\"b\"} 42\n"
				 "# HELP t_ratio A ratio.\n"
				 "# TYPE t_ratio gauge\n"
				 "t_ratio 0.1\n"
				 "# HELP t_bytes_total Bytes.\n"
				 "# TYPE t_bytes_total counter\n"
				 "t_bytes_total 18446744073709551615\n");
	free(out);
	metrics_free(m);
}

static void test_gauge_values(void **state)
{
	static const struct {
		double v;
		const char *text;
	} cases[] = {
		{ 0, "0" },
		{ -3, "-3" },
		{ 1e21, "1e+21" },
		{ 0.30000000000000004, "0.30000000000000004" },
		{ 1.0 / 3, "0.3333333333333333" },
		{ NAN, "NaN" },
		{ INFINITY, "+Inf" },
		{ -INFINITY, "-Inf" },
	};
	struct metrics *m = metrics_new("t");
	struct metrics_family *g =
		metrics_family_add(m, "t_g", METRICS_GAUGE, "G.", NULL, 0, 0, NULL);
	char want[64], *out;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(metrics_gauge_set(g, NULL, cases[i].v), 0);
		out = render(m);
		snprintf(want, sizeof(want), "t_g %s\n", cases[i].text);
		assert_non_null(strstr(out, want));
		free(out);
	}
	assert_int_equal(metrics_gauge_set(g, NULL, 10), 0);
	assert_int_equal(metrics_gauge_add(g, NULL, -2.5), 0);
	assert_int_equal(metrics_counter_set(g, NULL, 1), -EINVAL);
	out = render(m);
	assert_non_null(strstr(out, "t_g 7.5\n"));
	free(out);
	metrics_free(m);
}

/* A counter kept in microseconds, shown in seconds; it still never goes down. */
static void test_counter_unit(void **state)
{
	struct metrics *m = metrics_new("t");
	struct metrics_family *c = metrics_family_add(m, "t_cpu_seconds_total", METRICS_COUNTER,
						      "C.", NULL, 0, 0, NULL);
	char *out;

	metrics_counter_unit(c, 1e6);
	assert_int_equal(metrics_counter_set(c, NULL, 1500000), 0);
	out = render(m);
	assert_non_null(strstr(out, "t_cpu_seconds_total 1.5\n"));
	free(out);
	assert_int_equal(metrics_counter_set(c, NULL, 1000000), -ERANGE);
	assert_int_equal(metrics_counter_set(c, NULL, 2250000), 0);
	out = render(m);
	assert_non_null(strstr(out, "t_cpu_seconds_total 2.25\n"));
	free(out);
	metrics_free(m);
}

static void test_escaping(void **state)
{
	struct metrics *m = metrics_new("t");
	struct metrics_family *c;
	char *out;

	c = metrics_family_add(m, "t_x_total", METRICS_COUNTER, "Back\\slash and\nnew \"line\".",
			       one_label, 1, 0, NULL);
	assert_non_null(c);
	assert_int_equal(metrics_add1(c, "q\"b\\n\nend", 1), 0);
	assert_int_equal(metrics_add1(c, "caf\xc3\xa9 \xf0\x9f\x98\x80", 1), 0);
	out = render(m);
	/* HELP escapes backslash and line feed only; label values also the double quote. */
	assert_string_equal(out, "# HELP t_x_total Back\\\\slash and\\nnew \"line\".\n"
				 "# TYPE t_x_total counter\n"
				 "t_x_total{reason=\"caf\xc3\xa9 \xf0\x9f\x98\x80\"} 1\n"
				 "t_x_total{reason=\"q\\\"b\\\\n\\nend\"} 1\n");
	free(out);
	metrics_free(m);
}

static void test_ordering(void **state)
{
	struct metrics *m = metrics_new("t");
	struct metrics_family *z, *a;
	const char *v[][2] = { { "b", "y" }, { "a", "z" }, { "b", "x" }, { "a", "a" } };
	char *out;
	size_t i;

	/* Families in registration order, not by name. */
	z = metrics_family_add(m, "t_z_total", METRICS_COUNTER, "Z.", two_labels, 2, 0, NULL);
	a = metrics_family_add(m, "t_a", METRICS_GAUGE, "A.", NULL, 0, 0, NULL);
	assert_non_null(z);
	assert_non_null(a);
	for (i = 0; i < 4; i++)
		assert_int_equal(metrics_add(z, v[i], i + 1), 0);
	out = render(m);
	assert_string_equal(out, "# HELP t_z_total Z.\n"
				 "# TYPE t_z_total counter\n"
				 "t_z_total{rule=\"a\",origin=\"a\"} 4\n"
				 "t_z_total{rule=\"a\",origin=\"z\"} 2\n"
				 "t_z_total{rule=\"b\",origin=\"x\"} 3\n"
				 "t_z_total{rule=\"b\",origin=\"y\"} 1\n"
				 "# HELP t_a A.\n"
				 "# TYPE t_a gauge\n"
				 "t_a 0\n");
	free(out);
	metrics_free(m);
}

static void test_cap_and_other(void **state)
{
	struct metrics *m = metrics_new("t");
	struct metrics_family *f;
	const char *v[2];
	double x;
	char *out;

	f = metrics_family_add(m, "t_v_total", METRICS_COUNTER, "V.", two_labels, 2, 3, "origin");
	assert_non_null(f);
	v[0] = "r1";
	v[1] = "f1";
	assert_int_equal(metrics_add(f, v, 5), 0);
	v[1] = "f2";
	assert_int_equal(metrics_add(f, v, 1), 0);
	v[0] = "r2";
	v[1] = "f1";
	assert_int_equal(metrics_add(f, v, 1), 0);
	/* The cap is reached: new sets keep their rule and lose their origin. */
	v[1] = "f3";
	assert_int_equal(metrics_add(f, v, 2), 0);
	v[1] = "f4";
	assert_int_equal(metrics_add(f, v, 3), 0);
	v[0] = "r1";
	v[1] = "f9";
	assert_int_equal(metrics_add(f, v, 7), 0);
	/* A set seen before the cap keeps counting in its own series. */
	v[1] = "f1";
	assert_int_equal(metrics_add(f, v, 1), 0);
	assert_int_equal(metrics_overflow(f), 3);

	v[0] = "r2";
	v[1] = "f4";
	assert_int_equal(metrics_get(f, v, &x), 0);
	assert_true(x == 5);
	v[1] = "other";
	assert_int_equal(metrics_get(f, v, &x), 0);
	assert_true(x == 5);

	out = render(m);
	assert_string_equal(
		out,
		"# HELP t_v_total V.\n"
		"# TYPE t_v_total counter\n"
		"t_v_total{rule=\"r1\",origin=\"f1\"} 6\n"
		"t_v_total{rule=\"r1\",origin=\"f2\"} 1\n"
		"t_v_total{rule=\"r1\",origin=\"other\"} 7\n"
		"t_v_total{rule=\"r2\",origin=\"f1\"} 1\n"
		"t_v_total{rule=\"r2\",origin=\"other\"} 5\n"
		"# HELP t_metrics_overflow_total Updates of a capped family counted in its \"other\" "
		"series because it reached its cap of label sets.\n"
		"# TYPE t_metrics_overflow_total counter\n"
		"t_metrics_overflow_total{family=\"t_v_total\"} 3\n");
	free(out);
	metrics_free(m);
}

static void test_cap_counts_sets_not_other(void **state)
{
	struct metrics *m = metrics_new("t");
	struct metrics_family *f;
	char name[16];
	double x;
	int i;

	f = metrics_family_add(m, "t_o_total", METRICS_COUNTER, "O.", one_label, 1, 50, "reason");
	assert_non_null(f);
	/* Updates to "other" itself do not use up the cap. */
	assert_int_equal(metrics_add1(f, "other", 1), 0);
	for (i = 0; i < 60; i++) {
		snprintf(name, sizeof(name), "fn%02d", i);
		assert_int_equal(metrics_add1(f, name, 1), 0);
	}
	assert_int_equal(metrics_get(f, (const char *const[]){ "fn49" }, &x), 0);
	assert_true(x == 1);
	assert_int_equal(metrics_get(f, (const char *const[]){ "other" }, &x), 0);
	assert_true(x == 11);
	assert_int_equal(metrics_overflow(f), 10);
	metrics_free(m);
}

static void test_refused_names(void **state)
{
	static const char *const bad_labels[] = { "pid", "user_id",  "connection_id", "namespace",
						  "pod", "instance", "job",	      "le",
						  "__x", "1a",	     "a-b",	      "" };
	struct metrics *m = metrics_new("t");
	size_t i;

	assert_null(metrics_new("bad-prefix"));
	assert_int_equal(errno, EINVAL);
	assert_null(metrics_family_add(m, "t_frames", METRICS_COUNTER, "x", NULL, 0, 0, NULL));
	assert_int_equal(errno, EINVAL);
	assert_null(metrics_family_add(m, "t_open_total", METRICS_GAUGE, "x", NULL, 0, 0, NULL));
	assert_int_equal(errno, EINVAL);
	assert_null(metrics_family_add(m, "t-x_total", METRICS_COUNTER, "x", NULL, 0, 0, NULL));
	assert_null(metrics_family_add(m, "0t_total", METRICS_COUNTER, "x", NULL, 0, 0, NULL));
	assert_null(metrics_family_add(m, "", METRICS_GAUGE, "x", NULL, 0, 0, NULL));
	assert_null(metrics_family_add(m, "t_g", METRICS_GAUGE, NULL, NULL, 0, 0, NULL));
	for (i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++) {
		assert_null(metrics_family_add(m, "t_l_total", METRICS_COUNTER, "x", &bad_labels[i],
					       1, 0, NULL));
		assert_int_equal(errno, EINVAL);
	}
	/* The same label twice, a cap without a label, a capped label that is not one. */
	assert_null(metrics_family_add(m, "t_l_total", METRICS_COUNTER, "x",
				       (const char *const[]){ "a", "a" }, 2, 0, NULL));
	assert_null(metrics_family_add(m, "t_l_total", METRICS_COUNTER, "x", NULL, 0, 5, NULL));
	assert_null(metrics_family_add(m, "t_l_total", METRICS_COUNTER, "x", one_label, 1, 5,
				       "origin"));
	assert_null(
		metrics_family_add(m, "t_l_total", METRICS_COUNTER, "x", one_label, 1, 5, NULL));
	assert_non_null(
		metrics_family_add(m, "t_l_total", METRICS_COUNTER, "x", one_label, 1, 0, NULL));
	assert_null(metrics_family_add(m, "t_l_total", METRICS_COUNTER, "y", NULL, 0, 0, NULL));
	assert_int_equal(errno, EEXIST);
	metrics_free(m);
}

static void test_refused_values(void **state)
{
	static const char *const bad_utf8[] = {
		"\xc0\xaf", /* overlong '/' */
		"\xe0\x80\xaf", /* overlong '/' */
		"\xed\xa0\x80", /* a surrogate */
		"\xf4\x90\x80\x80", /* past U+10FFFF */
		"\xff",
		"ab\xc3", /* cut short */
		"\x80",
	};
	struct metrics *m = metrics_new("t");
	struct metrics_family *c, *g;
	char longv[METRICS_MAX_VALUE + 2];
	char *out;
	size_t i;

	c = metrics_family_add(m, "t_c_total", METRICS_COUNTER, "C.", one_label, 1, 0, NULL);
	g = metrics_family_add(m, "t_g", METRICS_GAUGE, "G.", NULL, 0, 0, NULL);
	for (i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++)
		assert_int_equal(metrics_add1(c, bad_utf8[i], 1), -EILSEQ);
	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	assert_int_equal(metrics_add1(c, longv, 1), -ENAMETOOLONG);
	longv[METRICS_MAX_VALUE] = '\0';
	assert_int_equal(metrics_add1(c, longv, 1), 0);
	assert_int_equal(metrics_add(c, NULL, 1), -EINVAL);
	assert_int_equal(metrics_add1(c, NULL, 1), -EINVAL);
	/* Counters only go up: no set, no add of a double. */
	assert_int_equal(metrics_gauge_set1(c, "x", 1), -EINVAL);
	assert_int_equal(metrics_gauge_add1(c, "x", 1), -EINVAL);
	assert_int_equal(metrics_add(g, NULL, 1), -EINVAL);
	assert_int_equal(metrics_get(c, (const char *const[]){ "nope" }, &(double){ 0 }), -ENOENT);

	/* Nothing refused reached the exposition. */
	out = render(m);
	assert_int_equal(strlen(out), strlen("# HELP t_c_total C.\n# TYPE t_c_total counter\n"
					     "t_c_total{reason=\"\"} 1\n"
					     "# HELP t_g G.\n# TYPE t_g gauge\nt_g 0\n") +
					      METRICS_MAX_VALUE);
	free(out);
	metrics_free(m);
}

static bool listed(const char *const *list, const char *name)
{
	for (; *list; list++)
		if (!strcmp(*list, name))
			return true;
	return false;
}

static size_t count(const char *const *list)
{
	size_t n = 0;

	while (list[n])
		n++;
	return n;
}

/* The label values created at 0 are the names the modules that count use. */
static void test_collector_label_sets(void **state)
{
	static const unsigned int opcodes[] = { 0, 1, 2, 3, 8, 9, 10, 15 };
	unsigned int i;

	for (i = 0; i < DROP_MAX; i++)
		assert_true(listed(metrics_drop_reasons, (const char *[]){ DROP_NAMES }[i]));
	assert_int_equal(count(metrics_drop_reasons), DROP_MAX);
	for (i = UNATTR_NONE + 1; i < UNATTR__COUNT; i++)
		assert_true(listed(metrics_unattributed_reasons, unattributed_name(i)));
	assert_int_equal(count(metrics_unattributed_reasons), UNATTR__COUNT - 1);
	for (i = 0; i < WS_MSG__COUNT; i++)
		assert_true(listed(metrics_message_statuses, ws_msg_status_name(i)));
	assert_int_equal(count(metrics_message_statuses), WS_MSG__COUNT);
	for (i = 0; i < sizeof(opcodes) / sizeof(opcodes[0]); i++)
		assert_true(listed(metrics_opcodes, ws_opcode_name(opcodes[i])));
	assert_int_equal(count(metrics_opcodes), 7);
}

static void test_collector_families(void **state)
{
	static const char *const families[] = {
		"wsaudit_build_info",
		"wsaudit_events_total",
		"wsaudit_frames_total",
		"wsaudit_captured_bytes_total",
		"wsaudit_drops_total",
		"wsaudit_probes",
		"wsaudit_processes",
		"wsaudit_connections_open",
		"wsaudit_connections_total",
		"wsaudit_unattributed_frames_total",
		"wsaudit_attributed_frames_total",
		"wsaudit_messages_total",
		"wsaudit_parser_desyncs_total",
		"wsaudit_truncated_frames_total",
		"wsaudit_violations_total",
		"wsaudit_policy_reloads_total",
		"wsaudit_policy_last_reload_success",
		"wsaudit_log_write_errors_total",
		"wsaudit_metrics_overflow_total",
	};
	struct metrics_wsaudit w;
	char line[128], *out, *prev = NULL, *at;
	char name[64];
	size_t i;
	double x;
	int k;

	assert_int_equal(metrics_wsaudit_init(&w, "1.2.3", "abc\"def"), 0);
	out = render(w.reg);
	/*
	 * Every family once, in this order, each with HELP and TYPE; by origin only from the
	 * first violation (a family without series has no lines).
	 */
	for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		snprintf(line, sizeof(line), "# HELP %s ", families[i]);
		at = strstr(out, line);
		assert_non_null(at);
		assert_null(strstr(at + 1, line));
		assert_true(!prev || at > prev);
		prev = at;
	}
	assert_non_null(
		strstr(out, "wsaudit_build_info{version=\"1.2.3\",revision=\"abc\\\"def\"} 1\n"));
	assert_non_null(strstr(out, "wsaudit_drops_total{reason=\"stack_ringbuf_full\"} 0\n"));
	assert_non_null(strstr(out, "wsaudit_probes{state=\"failed\"} 0\n"));
	assert_non_null(strstr(out, "wsaudit_connections_total{kind=\"adopted\"} 0\n"));
	assert_non_null(strstr(out, "wsaudit_policy_reloads_total{result=\"error\"} 0\n"));
	assert_non_null(strstr(out, "wsaudit_violations_total{rule=\"isolation_breach\"} 0\n"));
	assert_non_null(strstr(out, "wsaudit_metrics_overflow_total{family="
				    "\"wsaudit_violations_by_origin_total\"} 0\n"));
	/* No origin series until a violation. */
	assert_null(strstr(out, "# HELP wsaudit_violations_by_origin_total"));
	assert_null(strstr(out, "\nwsaudit_violations_by_origin_total{"));
	free(out);

	assert_int_equal(metrics_wsaudit_violation(&w, "bridge_bypass", "Chat.push", "chat", "api"),
			 0);
	assert_int_equal(metrics_wsaudit_violation(&w, "isolation_breach", NULL, NULL, NULL), 0);
	assert_int_equal(metrics_wsaudit_violation(&w, "isolation_breach", "bad\xff", "none",
						   "none"),
			 -EILSEQ);
	for (k = 0; k < 60; k++) {
		snprintf(name, sizeof(name), "mod.f%02d", k);
		assert_int_equal(metrics_wsaudit_violation(&w, "bridge_bypass", name, "chat", name),
				 0);
	}
	assert_int_equal(metrics_get(w.violations, (const char *const[]){ "bridge_bypass" }, &x),
			 0);
	assert_true(x == 61);
	assert_int_equal(metrics_get(w.violations, (const char *const[]){ "isolation_breach" }, &x),
			 0);
	assert_true(x == 2);
	assert_int_equal(metrics_get(w.violations_by_origin,
				     (const char *const[]){ "isolation_breach", "unattributed" },
				     &x),
			 0);
	assert_true(x == 1);
	/* Refused as a label value, still counted. */
	assert_int_equal(metrics_get(w.violations_by_origin,
				     (const char *const[]){ "isolation_breach", "other" }, &x),
			 0);
	assert_true(x == 1);
	/* 2 sets so far ("other" does not count) + 48 functions fill the cap of 50. */
	assert_int_equal(metrics_get(w.violations_by_origin,
				     (const char *const[]){ "bridge_bypass", "other" }, &x),
			 0);
	assert_true(x == 12);
	assert_int_equal(metrics_overflow(w.violations_by_origin), 12);
	out = render(w.reg);
	at = strstr(out, "# HELP wsaudit_violations_by_origin_total ");
	assert_non_null(at);
	assert_true(at > strstr(out, "# HELP wsaudit_violations_total "));
	assert_true(at < strstr(out, "# HELP wsaudit_policy_reloads_total "));
	assert_non_null(strstr(out, "wsaudit_violations_by_origin_total{rule=\"bridge_bypass\","
				    "origin=\"other\"} 12\n"));
	assert_non_null(strstr(out, "wsaudit_metrics_overflow_total{family="
				    "\"wsaudit_violations_by_origin_total\"} 12\n"));
	/*
	 * By workload: chat/api, unknown/unknown (no labels given), none/none, then 47 of the
	 * 60 workloads fill the cap of 50; past it the namespace goes to "other" with the name.
	 */
	assert_non_null(strstr(out, "wsaudit_violations_by_workload_total{rule=\"bridge_bypass\","
				    "k8s_namespace=\"chat\",k8s_workload=\"api\"} 1\n"));
	assert_non_null(strstr(out,
			       "wsaudit_violations_by_workload_total{rule=\"isolation_breach\","
			       "k8s_namespace=\"unknown\",k8s_workload=\"unknown\"} 1\n"));
	assert_non_null(strstr(out,
			       "wsaudit_violations_by_workload_total{rule=\"isolation_breach\","
			       "k8s_namespace=\"none\",k8s_workload=\"none\"} 1\n"));
	assert_non_null(strstr(out, "wsaudit_violations_by_workload_total{rule=\"bridge_bypass\","
				    "k8s_namespace=\"chat\",k8s_workload=\"mod.f46\"} 1\n"));
	assert_null(strstr(out, "k8s_workload=\"mod.f47\""));
	assert_non_null(strstr(out, "wsaudit_violations_by_workload_total{rule=\"bridge_bypass\","
				    "k8s_namespace=\"other\",k8s_workload=\"other\"} 13\n"));
	assert_non_null(strstr(out, "wsaudit_metrics_overflow_total{family="
				    "\"wsaudit_violations_by_workload_total\"} 13\n"));
	assert_int_equal(metrics_get(w.violations_by_workload,
				     (const char *const[]){ "bridge_bypass", "chat", "mod.f59" },
				     &x),
			 0);
	assert_true(x == 13);
	free(out);
	metrics_wsaudit_fini(&w);
}

static void test_cap_also(void **state)
{
	static const char *const labels[] = { "rule", "k8s_namespace", "k8s_workload" };
	struct metrics *m = metrics_new("t");
	struct metrics_family *f, *g;

	f = metrics_family_add(m, "t_v_total", METRICS_COUNTER, "V.", labels, 3, 1, "k8s_workload");
	g = metrics_family_add(m, "t_w_total", METRICS_COUNTER, "W.", labels, 3, 0, NULL);
	assert_non_null(f);
	assert_non_null(g);
	/* Not a label, the capped one itself, a family without a cap. */
	assert_int_equal(metrics_family_cap_also(f, "pod_name"), -EINVAL);
	assert_int_equal(metrics_family_cap_also(f, "k8s_workload"), -EINVAL);
	assert_int_equal(metrics_family_cap_also(g, "k8s_namespace"), -EINVAL);
	assert_int_equal(metrics_family_cap_also(f, "k8s_namespace"), 0);
	assert_int_equal(metrics_add(f, (const char *const[]){ "r", "a", "x" }, 1), 0);
	assert_int_equal(metrics_add(f, (const char *const[]){ "r", "b", "y" }, 1), 0);
	/* Series exist: too late. */
	assert_int_equal(metrics_family_cap_also(f, "rule"), -EINVAL);
	assert_int_equal(metrics_overflow(f), 1);
	{
		double x;

		assert_int_equal(metrics_get(f, (const char *const[]){ "r", "other", "other" }, &x),
				 0);
		assert_true(x == 1);
		/* Asked by its own values, an overflowed set reads "other". */
		assert_int_equal(metrics_get(f, (const char *const[]){ "r", "b", "y" }, &x), 0);
		assert_true(x == 1);
	}
	metrics_free(m);
}

struct mirror {
	struct metrics_family *f;
	uint64_t total; /* kept elsewhere, as the BPF drop array keeps its counts */
	int calls;
};

static void mirror_collect(void *arg)
{
	struct mirror *mi = arg;

	mi->calls++;
	assert_int_equal(
		metrics_counter_set(mi->f, (const char *const[]){ "ringbuf_full" }, mi->total), 0);
}

static void test_counter_set_and_render_hook(void **state)
{
	struct metrics *m = metrics_new("t");
	struct mirror mi = { .total = 5 };
	double x;
	char *out;

	mi.f = metrics_family_add(m, "t_drops_total", METRICS_COUNTER, "D.", one_label, 1, 0, NULL);
	assert_non_null(mi.f);
	assert_int_equal(metrics_counter_set(mi.f, (const char *const[]){ "map_full" }, 7), 0);
	assert_int_equal(metrics_counter_set(mi.f, (const char *const[]){ "map_full" }, 7), 0);
	/* A counter does not go down: refused, value kept. */
	assert_int_equal(metrics_counter_set(mi.f, (const char *const[]){ "map_full" }, 6),
			 -ERANGE);
	assert_int_equal(metrics_get(mi.f, (const char *const[]){ "map_full" }, &x), 0);
	assert_true(x == 7);

	metrics_on_render(m, mirror_collect, &mi);
	out = render(m);
	assert_non_null(strstr(out, "t_drops_total{reason=\"ringbuf_full\"} 5\n"));
	free(out);
	mi.total = 12;
	out = render(m);
	assert_non_null(strstr(out, "t_drops_total{reason=\"ringbuf_full\"} 12\n"));
	free(out);
	assert_int_equal(mi.calls, 2);
	metrics_on_render(m, NULL, NULL);
	mi.total = 20;
	free(render(m));
	assert_int_equal(mi.calls, 2);
	metrics_free(m);
}

struct hammer {
	struct metrics_family *f;
	int n;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	int i;

	for (i = 0; i < h->n; i++)
		metrics_add1(h->f, i % 2 ? "odd" : "even", 1);
	return NULL;
}

static void test_concurrent_render(void **state)
{
	struct metrics *m = metrics_new("t");
	struct hammer h = { .n = 20000 };
	pthread_t t;
	double odd, even;
	int i;

	h.f = metrics_family_add(m, "t_h_total", METRICS_COUNTER, "H.", one_label, 1, 0, NULL);
	assert_int_equal(pthread_create(&t, NULL, hammer_run, &h), 0);
	for (i = 0; i < 200; i++)
		free(render(m));
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(metrics_get(h.f, (const char *const[]){ "odd" }, &odd), 0);
	assert_int_equal(metrics_get(h.f, (const char *const[]){ "even" }, &even), 0);
	assert_true(odd == 10000 && even == 10000);
	metrics_free(m);
}

static void test_listen_good(void **state)
{
	static const struct {
		const char *s;
		int family;
		const char *host;
		uint16_t port;
	} cases[] = {
		{ "127.0.0.1:9464", AF_INET, "127.0.0.1", 9464 },
		{ "0.0.0.0:1", AF_INET, "0.0.0.0", 1 },
		{ "10.1.2.3:65535", AF_INET, "10.1.2.3", 65535 },
		{ "127.0.0.1:0", AF_INET, "127.0.0.1", 0 },
		{ "[::1]:9464", AF_INET6, "::1", 9464 },
		{ "[::]:80", AF_INET6, "::", 80 },
		{ "[fd00::1:2]:8080", AF_INET6, "fd00::1:2", 8080 },
		{ "[::ffff:127.0.0.1]:9", AF_INET6, "::ffff:127.0.0.1", 9 },
		{ ":9464", AF_INET, "0.0.0.0", 9464 },
		{ "localhost:9464", AF_INET, "127.0.0.1", 9464 },
	};
	struct sockaddr_storage ss;
	char host[INET6_ADDRSTRLEN], err[256];
	socklen_t len;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		assert_int_equal(metrics_http_parse_listen(cases[i].s, &ss, &len, err, sizeof(err)),
				 0);
		assert_string_equal(err, "");
		assert_int_equal(ss.ss_family, cases[i].family);
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

			assert_int_equal(len, sizeof(*sin));
			inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
			assert_int_equal(ntohs(sin->sin_port), cases[i].port);
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

			assert_int_equal(len, sizeof(*sin6));
			inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
			assert_int_equal(ntohs(sin6->sin6_port), cases[i].port);
		}
		assert_string_equal(host, cases[i].host);
	}
	assert_int_equal(metrics_http_parse_listen(METRICS_HTTP_DEFAULT_LISTEN, &ss, &len, NULL, 0),
			 0);
}

static void test_listen_bad(void **state)
{
	static const struct {
		const char *s;
		const char *why;
	} cases[] = {
		{ "", "expected HOST:PORT" },
		{ "9464", "expected HOST:PORT" },
		{ "localhost.localdomain:9464", "not a name" },
		{ ":", "port" },
		{ "example.com:80", "not a name" },
		{ "1.2.3:80", "numeric IPv4" },
		{ "256.1.1.1:80", "numeric IPv4" },
		{ "::1:9464", "between brackets" },
		{ "::1", "between brackets" },
		{ "[::1]9464", "expected ':PORT' after ']'" },
		{ "[::1]", "expected ':PORT' after ']'" },
		{ "[::1:9464", "missing ']'" },
		{ "[]:80", "not an IPv6 address" },
		{ "[127.0.0.1]:80", "numeric IPv6" },
		{ "[fe80::1%eth0]:80", "no zone ids" },
		{ "127.0.0.1:", "port" },
		{ "127.0.0.1:65536", "port" },
		{ "127.0.0.1:123456", "port" },
		{ "127.0.0.1:+80", "port" },
		{ "127.0.0.1:-1", "port" },
		{ "127.0.0.1:80x", "port" },
		{ "127.0.0.1: 80", "port" },
		{ "[::1]:", "port" },
		{ "[::1]:0x50", "port" },
	};
	struct sockaddr_storage ss;
	char err[256], want[128];
	socklen_t len;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		assert_int_equal(metrics_http_parse_listen(cases[i].s, &ss, &len, err, sizeof(err)),
				 -EINVAL);
		snprintf(want, sizeof(want), "invalid listen address \"%s\": ", cases[i].s);
		if (strncmp(err, want, strlen(want)) || !strstr(err, cases[i].why))
			fail_msg("\"%s\": got \"%s\", want \"%s...%s\"", cases[i].s, err, want,
				 cases[i].why);
	}
	assert_int_equal(metrics_http_parse_listen(NULL, &ss, &len, err, sizeof(err)), -EINVAL);
}

/* One request over a fresh connection; the whole reply (the server closes after it). */
static char *http_get(uint16_t port, const char *request)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	size_t len = 0, alloc = 1 << 16;
	char *buf = malloc(alloc);
	ssize_t n;
	int fd;

	assert_non_null(buf);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	while ((n = read(fd, buf + len, alloc - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return buf;
}

static void test_http(void **state)
{
	struct metrics_wsaudit w;
	struct metrics_http *h, *h2;
	char err[256], addr[64], *reply, *body, *expo;
	uint16_t port;

	assert_int_equal(metrics_wsaudit_init(&w, "1.0", "r"), 0);
	assert_int_equal(metrics_add1(w.frames, "text", 3), 0);
	h = metrics_http_start(w.reg, "127.0.0.1:0", err, sizeof(err));
	assert_non_null(h);
	port = metrics_http_port(h);
	assert_true(port > 0);

	reply = http_get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_true(!strncmp(reply, "HTTP/1.1 200 OK\r\n", 17));
	assert_non_null(
		strstr(reply, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	body = strstr(reply, "\r\n\r\n");
	assert_non_null(body);
	expo = metrics_render(w.reg, NULL);
	assert_string_equal(body + 4, expo);
	assert_non_null(strstr(expo, "wsaudit_frames_total{opcode=\"text\"} 3\n"));
	free(expo);
	free(reply);

	reply = http_get(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
	assert_true(!strncmp(reply, "HTTP/1.1 200 OK\r\n", 17));
	free(reply);
	reply = http_get(port, "GET /healthz HTTP/1.0\r\n\r\n");
	assert_true(!strncmp(reply, "HTTP/1.1 200 OK\r\n", 17));
	assert_non_null(strstr(reply, "\r\n\r\nok\n"));
	free(reply);
	reply = http_get(port, "GET /metricsx HTTP/1.0\r\n\r\n");
	assert_true(!strncmp(reply, "HTTP/1.1 404 ", 13));
	free(reply);
	reply = http_get(port, "GET / HTTP/1.0\r\n\r\n");
	assert_true(!strncmp(reply, "HTTP/1.1 404 ", 13));
	free(reply);
	reply = http_get(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
	assert_true(!strncmp(reply, "HTTP/1.1 405 ", 13));
	assert_non_null(strstr(reply, "\r\nAllow: GET, HEAD\r\n"));
	free(reply);

	/* The same port twice: a clear error, not a silent second server. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	err[0] = '\0';
	log_max_level = LOG_ERR; /* libmicrohttpd's own warning about it */
	h2 = metrics_http_start(w.reg, addr, err, sizeof(err));
	log_max_level = LOG_WARN;
	assert_null(h2);
	assert_non_null(strstr(err, "failed to listen on 127.0.0.1:"));
	metrics_http_stop(h);

	h2 = metrics_http_start(w.reg, "metrics.example:9464", err, sizeof(err));
	assert_null(h2);
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "invalid listen address \"metrics.example:9464\""));
	metrics_http_stop(NULL);
	metrics_wsaudit_fini(&w);
}

/* "[::1]:0": an IPv6-only socket, which IPv4 clients do not reach. */
static void test_http_ipv6(void **state)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	const char *req = "GET /healthz HTTP/1.0\r\n\r\n";
	struct metrics *m = metrics_new("t");
	struct metrics_http *h;
	char err[256], reply[256];
	ssize_t n;
	int fd;

	fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin6, sizeof(sin6))) {
		if (fd >= 0)
			close(fd);
		metrics_free(m);
		skip(); /* no IPv6 loopback here */
	}
	close(fd);
	h = metrics_http_start(m, "[::1]:0", err, sizeof(err));
	assert_non_null(h);
	sin6.sin6_port = htons(metrics_http_port(h));
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin6, sizeof(sin6)), 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	n = read(fd, reply, sizeof(reply) - 1);
	assert_true(n > 12);
	reply[n] = '\0';
	assert_true(!strncmp(reply, "HTTP/1.1 200 ", 13));
	close(fd);
	metrics_http_stop(h);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_gauge_values),
		cmocka_unit_test(test_counter_unit),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_ordering),
		cmocka_unit_test(test_cap_and_other),
		cmocka_unit_test(test_cap_counts_sets_not_other),
		cmocka_unit_test(test_refused_names),
		cmocka_unit_test(test_refused_values),
		cmocka_unit_test(test_collector_label_sets),
		cmocka_unit_test(test_collector_families),
		cmocka_unit_test(test_cap_also),
		cmocka_unit_test(test_counter_set_and_render_hook),
		cmocka_unit_test(test_concurrent_render),
		cmocka_unit_test(test_listen_good),
		cmocka_unit_test(test_listen_bad),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_http_ipv6),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

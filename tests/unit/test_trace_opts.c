// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "trace_opts.h"

static int parse(struct trace_opts *o, char *err, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = (char *)"trace";
	va_start(ap, err);
	while ((argv[argc] = (char *)va_arg(ap, const char *)))
		argc++;
	va_end(ap);
	return trace_parse_args(argc, argv, o, err, 256);
}

static void test_pids_and_defaults(void **state)
{
	struct trace_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "-p", "12", "--pid", "34", NULL), 0);
	assert_int_equal(o.npids, 2);
	assert_int_equal(o.pids[0], 12);
	assert_int_equal(o.pids[1], 34);
	assert_int_equal(o.format, OUTPUT_TEXT);
	assert_false(o.payload);
	assert_true(o.duration_s == 0);
}

static void test_json_duration_exe(void **state)
{
	struct trace_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "--exe", "*/python3*", "-o", "json", "-d", "2.5",
			       "--payload", "--write-cap", "4096", NULL),
			 0);
	assert_int_equal(o.nglobs, 1);
	assert_string_equal(o.exe_globs[0], "*/python3*");
	assert_int_equal(o.format, OUTPUT_JSON);
	assert_true(o.duration_s == 2.5);
	assert_true(o.payload);
	assert_int_equal(o.write_cap, 4096);
}

static void test_identity_key_and_user(void **state)
{
	struct trace_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "-p", "1", NULL), 0);
	assert_null(o.identity_key);
	assert_null(o.user);
	assert_int_equal(parse(&o, err, "-p", "1", "--identity-key", "/etc/k", "--user",
			       "u#0123456789ab", NULL),
			 0);
	assert_string_equal(o.identity_key, "/etc/k");
	assert_string_equal(o.user, "u#0123456789ab");
	assert_int_equal(parse(&o, err, "-p", "1", "--user", "", NULL), -EINVAL);
	assert_non_null(strstr(err, "--user"));
}

static void test_errors_named(void **state)
{
	struct trace_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, NULL), -22);
	assert_non_null(strstr(err, "nothing to trace"));
	assert_int_equal(parse(&o, err, "-p", "abc", NULL), -22);
	assert_non_null(strstr(err, "invalid PID 'abc'"));
	assert_int_equal(parse(&o, err, "-p", "0", NULL), -22);
	assert_int_equal(parse(&o, err, "-p", "-5", NULL), -22);
	assert_int_equal(parse(&o, err, "-p", "1", "-o", "xml", NULL), -22);
	assert_non_null(strstr(err, "unknown output format 'xml'"));
	assert_int_equal(parse(&o, err, "-p", "1", "-d", "0", NULL), -22);
	assert_non_null(strstr(err, "invalid duration"));
	assert_int_equal(parse(&o, err, "-p", "1", "--ringbuf-size", "5000", NULL), -22);
	assert_non_null(strstr(err, "power of two"));
	assert_int_equal(parse(&o, err, "-p", "1", "--write-cap", "99999999", NULL), -22);
	assert_int_equal(parse(&o, err, "-p", "1", "--bogus", NULL), -22);
	assert_non_null(strstr(err, "unknown option '--bogus'"));
	assert_int_equal(parse(&o, err, "-p", NULL), -22);
	assert_non_null(strstr(err, "needs a value"));
	assert_int_equal(parse(&o, err, "-p", "1", "stray", NULL), -22);
	assert_non_null(strstr(err, "unexpected argument 'stray'"));
}

static void test_pod_selectors(void **state)
{
	struct trace_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "--pod", "netra/chat-api-0", "--container", "web", NULL),
			 0);
	assert_true(o.by_pod);
	assert_string_equal(o.pods.namespace, "netra");
	assert_string_equal(o.pods.pod, "chat-api-0");
	assert_string_equal(o.pods.container, "web");
	assert_null(o.pods.container_id);
	assert_null(o.bundle_root);

	assert_int_equal(
		parse(&o, err, "--container-id",
		      "containerd://9F74A40F7292936833BBD4041DBF0A86EB9D13DD6F9B9D72422A457ADA983E46",
		      "--bundle-root", "/run/k3s/containerd/io.containerd.runtime.v2.task", NULL),
		0);
	assert_string_equal(o.pods.container_id,
			    "9f74a40f7292936833bbd4041dbf0a86eb9d13dd6f9b9d72422a457ada983e46");
	assert_null(o.pods.pod);
	assert_string_equal(o.bundle_root, "/run/k3s/containerd/io.containerd.runtime.v2.task");

	assert_int_equal(parse(&o, err, "--namespace", "netra", "-p", "7", NULL), 0);
	assert_string_equal(o.pods.namespace, "netra");
	assert_null(o.pods.pod);
	assert_int_equal(o.npids, 1);

	/* Malformed names, and choices that contradict each other. */
	assert_int_equal(parse(&o, err, "--pod", "netra", NULL), -EINVAL);
	assert_non_null(strstr(err, "NAMESPACE/NAME"));
	assert_int_equal(parse(&o, err, "--pod", "/x", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--pod", "Netra/x", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--pod", "n/x/y", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--pod", "n/a", "--pod", "n/b", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--container", "web", "-p", "1", NULL), -EINVAL);
	assert_non_null(strstr(err, "--pod"));
	assert_int_equal(parse(&o, err, "--container-id", "9f74a40f729", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--container-id", "9f74a40f729g", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--namespace", "a_b", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "--pod", "n/a", "--namespace", "n", NULL), -EINVAL);
	assert_non_null(strstr(err, "give one"));
	assert_int_equal(parse(&o, err, "--pod", "n/a", "--container-id", "9f74a40f7292", NULL),
			 -EINVAL);
	assert_int_equal(parse(&o, err, "--pod", "n/a", "--bundle-root", "", NULL), -EINVAL);
}

static void test_durations(void **state)
{
	static const struct {
		const char *s;
		double want; /* < 0: refused */
	} cases[] = {
		{ "90", 90 },	   { "2.5", 2.5 },    { "90s", 90 },   { "5m", 300 },
		{ "1h30m", 5400 }, { "1500ms", 1.5 }, { "1m30s", 90 }, { "0.5h", 1800 },
		{ "2h", 7200 },	   { "", -1 },	      { "5x", -1 },    { "m", -1 },
		{ "5 m", -1 },	   { "-5s", -1 },     { "1e3s", -1 },  { "infs", -1 },
		{ "nan", -1 },	   { "0x10s", -1 },   { "5m3", -1 },   { "s5", -1 },
	};
	double v;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = parse_duration(cases[i].s, &v);

		if (cases[i].want < 0) {
			if (r != -EINVAL)
				fail_msg("'%s' accepted as %g", cases[i].s, v);
		} else if (r || v != cases[i].want) {
			fail_msg("'%s': %d, %g (want %g)", cases[i].s, r, v, cases[i].want);
		}
	}
}

static void test_duration_options(void **state)
{
	struct trace_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "-p", "1", "-d", "5m", "--stats-interval", "30s", NULL), 0);
	assert_true(o.duration_s == 300);
	assert_true(o.stats_interval_s == 30);
	assert_int_equal(parse(&o, err, "-p", "1", "-d", "0s", NULL), -EINVAL);
	assert_non_null(strstr(err, "invalid duration '0s'"));
	assert_int_equal(parse(&o, err, "-p", "1", "-d", "5 minutes", NULL), -EINVAL);
}

static void test_filters(void **state)
{
	struct trace_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "-p", "1", NULL), 0);
	assert_null(o.filter.msg_type);
	assert_null(o.filter.function);
	assert_null(o.filter.peer);
	assert_int_equal(o.filter.max_frames, 0);
	assert_int_equal(parse(&o, err, "-p", "1", "--type", "chat.delta", "--function", "Bridge.*",
			       "--peer", "10.0.0.7:51234", "-n", "25", "--user", "alice", NULL),
			 0);
	assert_string_equal(o.filter.msg_type, "chat.delta");
	assert_string_equal(o.filter.function, "Bridge.*");
	assert_string_equal(o.filter.peer, "10.0.0.7:51234");
	assert_int_equal(o.filter.max_frames, 25);
	assert_string_equal(o.user, "alice");
	assert_int_equal(parse(&o, err, "-p", "1", "--count", "3", NULL), 0);
	assert_int_equal(o.filter.max_frames, 3);

	assert_int_equal(parse(&o, err, "-p", "1", "-n", "0", NULL), -EINVAL);
	assert_non_null(strstr(err, "invalid count '0'"));
	assert_int_equal(parse(&o, err, "-p", "1", "-n", "x", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "-p", "1", "-n", "-3", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "-p", "1", "--type", "", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "-p", "1", "--function", "", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "-p", "1", "--peer", "example.com", NULL), -EINVAL);
	assert_non_null(strstr(err, "invalid --peer 'example.com'"));
}

static void test_peer_forms(void **state)
{
	static const char *const good[] = { "10.0.0.7",	  "10.0.0.7:51234", ":51234",
					    "[::1]:8080", "[fd00::1]",	    "::1",
					    "fd00::1:2" };
	static const char *const bad[] = {
		"",	"10.0.0",    "10.0.0.7:", "10.0.0.7:0", "10.0.0.7:65536", ":x",
		"[::1", "[::1]8080", "::1:8080:", "host:80",	"[10.0.0.7]:80",  ":"
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (filter_parse_peer(good[i]))
			fail_msg("'%s' refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!filter_parse_peer(bad[i]))
			fail_msg("'%s' accepted", bad[i]);

	assert_true(filter_peer_matches("10.0.0.7", "10.0.0.7:51234"));
	assert_true(filter_peer_matches("10.0.0.7:51234", "10.0.0.7:51234"));
	assert_false(filter_peer_matches("10.0.0.7:51235", "10.0.0.7:51234"));
	assert_false(filter_peer_matches("10.0.0.70", "10.0.0.7:51234"));
	assert_true(filter_peer_matches(":51234", "10.0.0.7:51234"));
	assert_true(filter_peer_matches(":51234", "[fd00::1]:51234"));
	assert_true(filter_peer_matches("0::1", "[::1]:80"));
	assert_true(filter_peer_matches("[::1]:80", "[::1]:80"));
	/* An IPv4 client of an IPv6 socket. */
	assert_true(filter_peer_matches("10.0.0.7", "[::ffff:10.0.0.7]:51234"));
	assert_false(filter_peer_matches("10.0.0.7", "unknown"));
	assert_false(filter_peer_matches(":80", "unknown"));

	assert_true(filter_function_matches("Bridge.*", "Bridge.send"));
	assert_false(filter_function_matches("Bridge.*", "Other.send"));
	assert_false(filter_function_matches("*", NULL));
}

/* --write keeps payloads: only with --payload; its bounds only with it. */
static void test_write(void **state)
{
	struct trace_opts o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, "-p", "1", "--write", "/tmp/w", NULL), -EINVAL);
	assert_non_null(strstr(err, "give --payload to consent"));
	assert_int_equal(parse(&o, err, "-p", "1", "--write", "/tmp/w", "--payload",
			       "--write-conn-max", "1M", "--write-run-max", "2G", NULL),
			 0);
	assert_string_equal(o.write_dir, "/tmp/w");
	assert_int_equal(o.write_conn_max, 1 << 20);
	assert_int_equal(o.write_run_max, 2ULL << 30);
	assert_int_equal(parse(&o, err, "-p", "1", "--payload", "--write-conn-max", "1M", NULL),
			 -EINVAL);
	assert_non_null(strstr(err, "bound --write DIR"));
	assert_int_equal(parse(&o, err, "-p", "1", "--payload", "--write", "/tmp/w",
			       "--write-conn-max", "1000", NULL),
			 -EINVAL);
	assert_int_equal(parse(&o, err, "-p", "1", "--payload", "--write", "", NULL), -EINVAL);
	assert_int_equal(parse(&o, err, "-p", "1", "--payload", "--write", "/a", "--write", "/b",
			       NULL),
			 -EINVAL);
}

static void test_help(void **state)
{
	struct trace_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "--help", NULL), 0);
	assert_true(o.help);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pids_and_defaults),
		cmocka_unit_test(test_json_duration_exe),
		cmocka_unit_test(test_errors_named),
		cmocka_unit_test(test_identity_key_and_user),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_pod_selectors),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_duration_options),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_peer_forms),
		cmocka_unit_test(test_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

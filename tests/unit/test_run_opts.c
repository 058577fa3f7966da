// SPDX-License-Identifier: GPL-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "run_opts.h"

static char *argv_buf[32];

static int parse(struct run_opts *o, char *err, ...)
{
	int argc = 0;
	va_list ap;

	argv_buf[argc++] = (char *)"run";
	va_start(ap, err);
	while ((argv_buf[argc] = (char *)va_arg(ap, const char *)))
		argc++;
	va_end(ap);
	return run_parse_args(argc, argv_buf, o, err, 256);
}

static void test_command_after_dashes(void **state)
{
	struct run_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "-c", "p.yaml", "--sarif", "out.sarif", "--junit",
			       "out.xml", "--baseline", "b.json", "--source-root", "/src", "-o",
			       "json", "--output-file", "out.jsonl", "--", "pytest", "-x",
			       "--sarif", "tests", NULL),
			 0);
	assert_string_equal(o.policy_path, "p.yaml");
	assert_string_equal(o.sarif_path, "out.sarif");
	assert_string_equal(o.junit_path, "out.xml");
	assert_string_equal(o.baseline_path, "b.json");
	assert_string_equal(o.source_root, "/src");
	assert_int_equal(o.format, OUTPUT_JSON);
	assert_string_equal(o.output_path, "out.jsonl");
	/* Everything after "--" is the command's, its own options included. */
	assert_int_equal(o.ncommand, 4);
	assert_string_equal(o.command[0], "pytest");
	assert_string_equal(o.command[1], "-x");
	assert_string_equal(o.command[2], "--sarif");
	assert_null(o.command[4]);
}

static void test_defaults_and_bare_command(void **state)
{
	struct run_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "pytest", "-q", NULL), 0);
	assert_int_equal(o.ncommand, 2);
	assert_string_equal(o.command[1], "-q");
	assert_int_equal(o.format, OUTPUT_TEXT);
	assert_null(o.policy_path);
	assert_null(o.sarif_path);
	/* Every rule fails the run by default. */
	for (int i = 0; i < REPORT_KINDS; i++)
		assert_true(o.fail_on[i]);
}

static void test_fail_on(void **state)
{
	struct run_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "--fail-on", "isolation_breach", "--", "true", NULL), 0);
	assert_false(o.fail_on[RULE_BRIDGE_BYPASS]);
	assert_true(o.fail_on[RULE_ISOLATION_BREACH]);
	assert_int_equal(parse(&o, err, "--fail-on", "bridge_bypass,isolation_breach", "--", "true",
			       NULL),
			 0);
	assert_true(o.fail_on[RULE_BRIDGE_BYPASS] && o.fail_on[RULE_ISOLATION_BREACH]);
	assert_int_equal(parse(&o, err, "--fail-on", "", "--", "true", NULL), 0);
	assert_false(o.fail_on[RULE_BRIDGE_BYPASS] || o.fail_on[RULE_ISOLATION_BREACH]);
	assert_int_equal(parse(&o, err, "--fail-on", "bridge_bypas", "--", "true", NULL), -22);
	assert_non_null(strstr(err, "unknown rule 'bridge_bypas'"));
	assert_int_equal(parse(&o, err, "--fail-on", "bridge_bypass,bogus", "--", "true", NULL),
			 -22);
	assert_non_null(strstr(err, "'bogus'"));
	/* Run findings and delivery rules are named like any rule. */
	assert_int_equal(parse(&o, err, "--fail-on", "incomplete_run,delivery_failed", "--", "true",
			       NULL),
			 0);
	assert_true(o.fail_on[REPORT_INCOMPLETE_RUN] && o.fail_on[RULE_DELIVERY_FAILED]);
	assert_false(o.fail_on[REPORT_MISSING_EVENT] || o.fail_on[RULE_BRIDGE_BYPASS]);
}

static void test_errors_named(void **state)
{
	struct run_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, NULL), -22);
	assert_non_null(strstr(err, "no command to run"));
	assert_int_equal(parse(&o, err, "--sarif", "x", "--", NULL), -22);
	assert_non_null(strstr(err, "no command to run"));
	assert_int_equal(parse(&o, err, "-o", "xml", "--", "true", NULL), -22);
	assert_non_null(strstr(err, "unknown output format 'xml'"));
	assert_int_equal(parse(&o, err, "--bogus", "--", "true", NULL), -22);
	assert_non_null(strstr(err, "unknown option '--bogus'"));
	assert_int_equal(parse(&o, err, "--sarif", NULL), -22);
	assert_non_null(strstr(err, "needs a value"));
	assert_int_equal(parse(&o, err, "--source-root", "", "--", "true", NULL), -22);
	assert_int_equal(parse(&o, err, "--", "", NULL), -22);
	assert_non_null(strstr(err, "empty command"));
}

static void test_help(void **state)
{
	struct run_opts o;
	char err[256];

	assert_int_equal(parse(&o, err, "--help", NULL), 0);
	assert_true(o.help);
	assert_int_equal(parse(&o, err, "-h", "--", "true", NULL), 0);
	assert_true(o.help);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_after_dashes),
		cmocka_unit_test(test_defaults_and_bare_command),
		cmocka_unit_test(test_fail_on),
		cmocka_unit_test(test_errors_named),
		cmocka_unit_test(test_help),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

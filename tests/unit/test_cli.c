// SPDX-License-Identifier: GPL-2.0
/* The argument parsers of agent, decode and the small commands, and what they share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "agent_opts.h"
#include "cli.h"
#include "decode_opts.h"

#define MAX_ARGS 32

static char *argv_buf[MAX_ARGS];
static char err[256];

/* argv from a NULL-ended list, argv[0] the command's name. */
static int collect(const char *cmd, va_list ap)
{
	int argc = 0;

	argv_buf[argc++] = (char *)cmd;
	while ((argv_buf[argc] = (char *)va_arg(ap, const char *)))
		argc++;
	return argc;
}

static int simple(unsigned int accepts, struct cli_simple_opts *o, ...)
{
	va_list ap;
	int argc;

	va_start(ap, o);
	argc = collect("cmd", ap);
	va_end(ap);
	return cli_parse_simple(argc, argv_buf, accepts, "POLICY", o, err, sizeof(err));
}

static int agent(struct agent_opts *o, ...)
{
	va_list ap;
	int argc;

	va_start(ap, o);
	argc = collect("agent", ap);
	va_end(ap);
	return agent_parse_args(argc, argv_buf, o, err, sizeof(err));
}

static int decode(struct decode_opts *o, ...)
{
	va_list ap;
	int argc;

	va_start(ap, o);
	argc = collect("decode", ap);
	va_end(ap);
	return decode_parse_args(argc, argv_buf, o, err, sizeof(err));
}

static void test_bytes(void **state)
{
	uint64_t v;

	assert_int_equal(cli_parse_bytes("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(cli_parse_bytes("100M", &v), 0);
	assert_int_equal(v, 100ULL << 20);
	assert_int_equal(cli_parse_bytes("3k", &v), 0);
	assert_int_equal(v, 3072);
	assert_int_equal(cli_parse_bytes("2G", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(cli_parse_bytes("", &v), -EINVAL);
	assert_int_equal(cli_parse_bytes("-1", &v), -EINVAL);
	assert_int_equal(cli_parse_bytes("1T", &v), -EINVAL);
	assert_int_equal(cli_parse_bytes("1MB", &v), -EINVAL);
	assert_int_equal(cli_parse_bytes("17179869184G", &v), -EINVAL); /* 2^64 */
	assert_int_equal(cli_parse_bytes("99999999999999999999", &v), -EINVAL);
}

static void test_simple(void **state)
{
	struct cli_simple_opts o;

	/* check-system: nothing but --help */
	assert_int_equal(simple(0, &o, NULL), 0);
	assert_false(o.help);
	assert_int_equal(simple(0, &o, "-h", NULL), 0);
	assert_true(o.help);
	assert_int_equal(simple(0, &o, "x", NULL), -EINVAL);
	assert_string_equal(err, "unexpected argument 'x'");
	/* version: --json, and --help exits 0 like every command's */
	assert_int_equal(simple(CLI_JSON, &o, "--json", NULL), 0);
	assert_true(o.json);
	assert_int_equal(simple(CLI_JSON, &o, "--help", NULL), 0);
	assert_true(o.help);
	assert_int_equal(simple(0, &o, "--json", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '--json'");
	/* check-policy, hash-user: exactly one operand, not empty */
	assert_int_equal(simple(CLI_OPERAND, &o, "p.yaml", NULL), 0);
	assert_string_equal(o.operand, "p.yaml");
	assert_int_equal(simple(CLI_OPERAND, &o, NULL), -EINVAL);
	assert_string_equal(err, "missing POLICY");
	assert_int_equal(simple(CLI_OPERAND, &o, "", NULL), -EINVAL);
	assert_string_equal(err, "empty POLICY");
	assert_int_equal(simple(CLI_OPERAND, &o, "a", "b", NULL), -EINVAL);
	assert_string_equal(err, "unexpected argument 'b'");
	assert_int_equal(
		simple(CLI_OPERAND | CLI_IDENTITY_KEY, &o, "--identity-key", "k", "u1", NULL), 0);
	assert_string_equal(o.identity_key, "k");
	assert_string_equal(o.operand, "u1");
	assert_int_equal(simple(CLI_OPERAND | CLI_IDENTITY_KEY, &o, "u1", "--identity-key", NULL),
			 -EINVAL);
	assert_string_equal(err, "option '--identity-key' needs a value");
	assert_int_equal(simple(CLI_OPERAND, &o, "--identity-key", "k", "u1", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '--identity-key'");
	/* "--" ends the options: an operand may start with '-' */
	assert_int_equal(simple(CLI_OPERAND, &o, "--", "-p.yaml", NULL), 0);
	assert_string_equal(o.operand, "-p.yaml");
}

/* An unknown short option inside a cluster is named, not the word before it. */
static void test_unknown_short_in_cluster(void **state)
{
	struct decode_opts o;

	assert_int_equal(decode(&o, "-xp", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '-x'");
	assert_int_equal(decode(&o, "-px", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '-x'");
	assert_int_equal(decode(&o, "--bogus", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '--bogus'");
	/* A parse that stopped inside a cluster does not leak into the next one. */
	assert_int_equal(decode(&o, "-hp", NULL), 0);
	assert_true(o.help);
	assert_int_equal(decode(&o, "in.bin", NULL), 0);
	assert_false(o.payload);
	assert_string_equal(o.path, "in.bin");
}

static void test_agent(void **state)
{
	struct agent_opts o;

	assert_int_equal(agent(&o, NULL), 0);
	assert_null(o.policy_path);
	assert_string_equal(o.metrics_addr, AGENT_DEFAULT_METRICS_ADDR);
	assert_string_equal(o.socket_path, TRACE_AGENT_SOCKET);
	assert_int_equal(o.log.max_size, VLOG_DEFAULT_MAX_SIZE);
	assert_int_equal(o.log.max_files, VLOG_DEFAULT_MAX_FILES);
	assert_int_equal(o.log.queue_max, VLOG_DEFAULT_QUEUE);
	assert_true(o.stats_interval_s == 60);

	assert_int_equal(agent(&o, "-c", "p.yaml", "--metrics-addr", "none", "--log", "/l",
			       "--log-max-size", "1M", "--log-max-files", "3", "--log-queue", "64K",
			       "--stats-interval", "0.5", "--socket", "none", "--identity-key",
			       "/k", "-vv", NULL),
			 0);
	assert_string_equal(o.policy_path, "p.yaml");
	assert_string_equal(o.metrics_addr, "none");
	assert_string_equal(o.log.path, "/l");
	assert_int_equal(o.log.max_size, 1 << 20);
	assert_int_equal(o.log.max_files, 3);
	assert_int_equal(o.log.queue_max, 64 << 10);
	assert_true(o.stats_interval_s == 0.5);
	assert_string_equal(o.socket_path, "none");
	assert_string_equal(o.identity_key, "/k");
	assert_int_equal(o.verbose, 2);

	assert_int_equal(agent(&o, "--help", NULL), 0);
	assert_true(o.help);
	assert_int_equal(agent(&o, "--log-max-size", "1X", NULL), -EINVAL);
	assert_string_equal(err, "invalid --log-max-size '1X'");
	assert_int_equal(agent(&o, "--log-max-files", "0", NULL), -EINVAL);
	assert_string_equal(err, "invalid --log-max-files '0' (1 to 1000)");
	assert_int_equal(agent(&o, "--log-max-files", "1001", NULL), -EINVAL);
	assert_int_equal(agent(&o, "--log-queue", "2G", NULL), -EINVAL);
	assert_string_equal(err, "invalid --log-queue '2G' (up to 1G)");
	assert_int_equal(agent(&o, "--stats-interval", "-1", NULL), -EINVAL);
	assert_string_equal(err, "invalid stats interval '-1'");
	assert_int_equal(agent(&o, "--stats-interval", "", NULL), -EINVAL);
	assert_int_equal(agent(&o, "--stats-interval", "nan", NULL), -EINVAL);
	assert_int_equal(agent(&o, "--log", NULL), -EINVAL);
	assert_string_equal(err, "option '--log' needs a value");
	assert_int_equal(agent(&o, "stray", NULL), -EINVAL);
	assert_string_equal(err, "unexpected argument 'stray'");
}

static void test_decode(void **state)
{
	struct decode_opts o;

	assert_int_equal(decode(&o, NULL), 0);
	assert_string_equal(o.path, "-");
	assert_null(o.extensions);
	assert_int_equal(o.max_message, 0);
	assert_false(o.payload);

	assert_int_equal(decode(&o, "-e", "permessage-deflate", "-p", "-m", "4096",
				"--show-identities", "--identity-key", "/k", "in.bin", NULL),
			 0);
	assert_string_equal(o.extensions, "permessage-deflate");
	assert_true(o.payload);
	assert_int_equal(o.max_message, 4096);
	assert_true(o.show_identities);
	assert_string_equal(o.identity_key, "/k");
	assert_string_equal(o.path, "in.bin");

	assert_int_equal(decode(&o, "--max-message", "0", NULL), -EINVAL);
	assert_string_equal(err, "invalid --max-message '0'");
	assert_int_equal(decode(&o, "--max-message", "-5", NULL), -EINVAL);
	assert_int_equal(decode(&o, "--max-message", "", NULL), -EINVAL);
	assert_int_equal(decode(&o, "--max-message", "12k", NULL), -EINVAL);
	assert_int_equal(decode(&o, "a", "b", NULL), -EINVAL);
	assert_string_equal(err, "unexpected argument 'b'");
	assert_int_equal(decode(&o, "", NULL), -EINVAL);
	assert_string_equal(err, "empty FILE");
	assert_int_equal(decode(&o, "-e", NULL), -EINVAL);
	assert_string_equal(err, "option '-e' needs a value");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_unknown_short_in_cluster),
		cmocka_unit_test(test_agent),
		cmocka_unit_test(test_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

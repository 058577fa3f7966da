// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "run_opts.h"

enum {
	OPT_SARIF = 0x100,
	OPT_JUNIT,
	OPT_BASELINE,
	OPT_WRITE_BASELINE,
	OPT_SOURCE_ROOT,
	OPT_FAIL_ON,
	OPT_OUTPUT_FILE,
};

static const struct option long_opts[] = {
	{ "policy", required_argument, NULL, 'c' },
	{ "sarif", required_argument, NULL, OPT_SARIF },
	{ "junit", required_argument, NULL, OPT_JUNIT },
	{ "baseline", required_argument, NULL, OPT_BASELINE },
	{ "write-baseline", required_argument, NULL, OPT_WRITE_BASELINE },
	{ "source-root", required_argument, NULL, OPT_SOURCE_ROOT },
	{ "output", required_argument, NULL, 'o' },
	{ "fail-on", required_argument, NULL, OPT_FAIL_ON },
	{ "output-file", required_argument, NULL, OPT_OUTPUT_FILE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{},
};

void run_usage(FILE *out)
{
	fprintf(out,
		"usage: wsaudit run [-c POLICY] [--sarif FILE] [--junit FILE] [--baseline FILE]\n"
		"                   [--write-baseline FILE] [--source-root DIR] [-o text|json]\n"
		"                   [--output-file FILE] [--fail-on RULES] -- COMMAND [ARGS...]\n"
		"\n"
		"Runs COMMAND (a test suite), traces it and every process it starts, and exits with\n"
		"COMMAND's own failure if it failed, else 1 if a frame broke a rule of --fail-on,\n"
		"else 0.  Violating frames are printed as they come, a summary at the end.\n"
		"  -c, --policy FILE        the policy (bridge, transport, identity); default built in\n"
		"      --sarif FILE         write the violations as SARIF 2.1.0 (code scanning)\n"
		"      --junit FILE         write one JUnit test case per rule and origin\n"
		"      --baseline FILE      known violations (rule, function, file): only new ones fail\n"
		"      --write-baseline FILE  write every violation seen as a baseline\n"
		"      --source-root DIR    paths in reports relative to DIR (default: current dir)\n"
		"  -o, --output FORMAT      text (default) or json: one JSON object per line\n"
		"      --output-file FILE   records and summary to FILE, not to stdout (which\n"
		"                           COMMAND writes to as well)\n"
		"      --fail-on RULES      comma-separated findings that fail the run (default:\n"
		"                           every one whose policy severity is error)\n"
		"  -v, --verbose            more diagnostics on stderr (twice: libbpf too)\n");
}

int run_parse_rules(const char *list, bool fail_on[REPORT_KINDS], char *err, size_t errlen)
{
	const char *p = list, *end;
	size_t len;
	int r;

	for (r = 0; r < REPORT_KINDS; r++)
		fail_on[r] = false;
	while (*p) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		for (r = 0; r < REPORT_KINDS; r++) {
			if (strlen(report_kind_name(r)) == len &&
			    !strncmp(p, report_kind_name(r), len))
				break;
		}
		if (r == REPORT_KINDS) {
			size_t n = (size_t)snprintf(
				err, errlen, "unknown rule '%.*s' in --fail-on (", (int)len, p);

			for (r = 0; r < REPORT_KINDS && n < errlen; r++)
				n += (size_t)snprintf(err + n, errlen - n, "%s%s", r ? ", " : "",
						      report_kind_name(r));
			if (n < errlen)
				snprintf(err + n, errlen - n, ")");
			return -EINVAL;
		}
		fail_on[r] = true;
		p += len + (end ? 1 : 0);
	}
	return 0;
}

int run_parse_args(int argc, char **argv, struct run_opts *o, char *err, size_t errlen)
{
	int c;

	memset(o, 0, sizeof(*o));
	o->format = OUTPUT_TEXT;
	for (int r = 0; r < REPORT_KINDS; r++)
		o->fail_on[r] = true;
	err[0] = '\0';
	optind = 0; /* getopt starts afresh: a cluster ("-hv") left half read is forgotten */
	opterr = 0;
	/* "+": stop at the first non-option, so COMMAND's own options are left alone. */
	while ((c = getopt_long(argc, argv, "+:c:o:vh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->policy_path = optarg;
			break;
		case OPT_SARIF:
			o->sarif_path = optarg;
			break;
		case OPT_JUNIT:
			o->junit_path = optarg;
			break;
		case OPT_BASELINE:
			o->baseline_path = optarg;
			break;
		case OPT_WRITE_BASELINE:
			o->write_baseline_path = optarg;
			break;
		case OPT_SOURCE_ROOT:
			if (!optarg[0])
				CLI_FAIL("empty --source-root");
			o->source_root = optarg;
			break;
		case 'o':
			if (!strcmp(optarg, "json"))
				o->format = OUTPUT_JSON;
			else if (!strcmp(optarg, "text"))
				o->format = OUTPUT_TEXT;
			else
				CLI_FAIL("unknown output format '%s' (text or json)", optarg);
			break;
		case OPT_OUTPUT_FILE:
			if (!optarg[0])
				CLI_FAIL("empty --output-file");
			o->output_path = optarg;
			break;
		case OPT_FAIL_ON:
			if (run_parse_rules(optarg, o->fail_on, err, errlen))
				return -EINVAL;
			o->fail_on_given = true;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			o->help = true;
			return 0;
		default:
			return cli_option_error(c, argv, err, errlen);
		}
	}
	/* getopt_long consumed a "--" that ended the options; a bare COMMAND is taken too. */
	if (optind >= argc)
		CLI_FAIL("no command to run: wsaudit run [OPTIONS] -- COMMAND [ARGS...]");
	if (!argv[optind][0])
		CLI_FAIL("empty command");
	o->command = argv + optind;
	o->ncommand = argc - optind;
	return 0;
}

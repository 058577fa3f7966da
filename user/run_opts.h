/* SPDX-License-Identifier: GPL-2.0 */
/* The options of `wsaudit run`, parsed without side effects so tests can drive it. */
#ifndef WSAUDIT_RUN_OPTS_H
#define WSAUDIT_RUN_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "output_format.h"
#include "report.h"

struct run_opts {
	const char *policy_path; /* NULL: the built-in policy */
	const char *sarif_path;
	const char *junit_path;
	const char *baseline_path; /* known violations: only new ones fail */
	const char *write_baseline_path; /* write every violation seen as a baseline */
	const char *source_root; /* NULL: the current directory */
	const char *output_path; /* records and summary; NULL: stdout (shared with COMMAND) */
	enum output_format format;
	bool fail_on[REPORT_KINDS]; /* kinds of finding (rules, run findings) that fail the run */
	bool fail_on_given; /* --fail-on was given: the policy's severities do not change it */
	bool help;
	int verbose;
	/* COMMAND and its arguments: argv after "--" (NULL-terminated, as execvp wants). */
	char **command;
	int ncommand;
};

/*
 * Fills opts from argv (argv[0] is "run").  Returns 0, or -EINVAL with a message for the
 * user in err.  Does not print or exit.
 */
int run_parse_args(int argc, char **argv, struct run_opts *opts, char *err, size_t errlen);
/*
 * A comma-separated list of finding names (rules and run findings) into fail_on (every other
 * off).  0, or -EINVAL with the unknown name in err.
 */
int run_parse_rules(const char *list, bool fail_on[REPORT_KINDS], char *err, size_t errlen);
void run_usage(FILE *out);

#endif /* WSAUDIT_RUN_OPTS_H */

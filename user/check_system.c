// SPDX-License-Identifier: GPL-2.0
/*
 * wsaudit check-system: every check trace and agent depend on, one line each with pass, warn
 * or FAIL, what was found and the fix.  For a node before deploying, and for the on-call
 * engineer when the agent does not start.
 */
#include <stdio.h>

#include "cli.h"
#include "commands.h"
#include "sysreq.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wsaudit check-system\n"
		"\n"
		"Checks the kernel and the process's privileges for what trace and agent need:\n"
		"kernel version against the oldest proven (%d.%d), capabilities, lockdown, BTF,\n"
		"tracefs, syscall tracepoints, uprobes, and the BPF program types, maps and helpers\n"
		"the programs use (probed, not inferred from the version).  One line per check:\n"
		"STATUS NAME: what was found [fix: what to do].\n"
		"\n"
		"  -h, --help  this text\n"
		"\n"
		"Exit status: 0 every required check passes, 1 one fails, 2 usage error.\n",
		SYSREQ_MIN_MAJOR, SYSREQ_MIN_MINOR);
}

int cmd_check_system(int argc, char **argv)
{
	int parsed;
	struct sysreq_check c[SYSREQ_MAX];
	struct cli_simple_opts o;
	int n, failed = 0;
	char err[128];

	parsed = cli_parsed(cli_parse_simple(argc, argv, 0, NULL, &o, err, sizeof(err)), &o.help,
			    "check-system", err, usage);
	if (parsed != CLI_GO_ON)
		return parsed;
	n = sysreq_run(c, SYSREQ_MAX);
	for (int i = 0; i < n; i++) {
		printf("%-4s %-26s %s", sysreq_status_name(c[i].status), c[i].name, c[i].detail);
		if (c[i].fix)
			printf(" [fix: %s]", c[i].fix);
		printf("\n");
		if (c[i].status == SYSREQ_FAIL && c[i].required)
			failed++;
	}
	printf("%s: %d check(s), %d required failing\n", failed ? "FAIL" : "ok", n, failed);
	return failed ? EXIT_RUNTIME : EXIT_OK;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * wsaudit: attributes every outbound WebSocket frame of a Python service to the Python
 * function that emitted it and to the user it belongs to.  main() only dispatches.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static const struct command commands[] = {
	{ "trace", cmd_trace,
	  "trace   [-p PID]... [--exe GLOB]... [--pod NS/NAME] [-o text|json] [-d DURATION]" },
	{ "agent", cmd_agent, "agent   [-c POLICY] [--metrics-addr HOST:PORT] [--log FILE]" },
	{ "run", cmd_run,
	  "run     [-c POLICY] [--sarif FILE] [--junit FILE] [--baseline FILE] -- COMMAND..." },
	{ "decode", cmd_decode,
	  "decode  [--extensions 'permessage-deflate; ...'] [--payload] [FILE|-]" },
	{ "version", cmd_version, "version [--json]" },
	{ "check-policy", cmd_check_policy, "check-policy POLICY" },
	{ "check-system", cmd_check_system, "check-system" },
	{ "hash-user", cmd_hash_user, "hash-user [--identity-key FILE] ID" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: wsaudit COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  wsaudit %s\n", commands[i].usage);
	fprintf(out, "\n'wsaudit COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "wsaudit: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}

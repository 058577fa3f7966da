// SPDX-License-Identifier: GPL-2.0
/* `wsaudit version`: the build, and with --json the same as one JSON object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>
#include <jansson.h>

#include "cli.h"
#include "commands.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wsaudit version [--json]\n"
		"\n"
		"Prints wsaudit's version, the revision it was built from and libbpf's version.\n"
		"      --json  the same as one JSON object\n"
		"  -h, --help  this text\n");
}

int cmd_version(int argc, char **argv)
{
	int parsed;
	struct cli_simple_opts o;
	char err[128];
	json_t *obj;
	char *text;

	parsed = cli_parsed(cli_parse_simple(argc, argv, CLI_JSON, NULL, &o, err, sizeof(err)),
			    &o.help, "version", err, usage);
	if (parsed != CLI_GO_ON)
		return parsed;
	if (!o.json) {
		printf("wsaudit %s (%s), libbpf %s\n", WSAUDIT_VERSION, WSAUDIT_GIT_REV,
		       libbpf_version_string());
		return EXIT_OK;
	}
	obj = json_pack("{s:s, s:s, s:s}", "version", WSAUDIT_VERSION, "revision", WSAUDIT_GIT_REV,
			"libbpf", libbpf_version_string());
	if (!obj)
		return EXIT_RUNTIME;
	text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!text)
		return EXIT_RUNTIME;
	puts(text);
	free(text);
	return EXIT_OK;
}

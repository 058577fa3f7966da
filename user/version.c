// SPDX-License-Identifier: GPL-2.0
/* `wsaudit version`: the build, and with --json the same as one JSON object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>
#include <jansson.h>

#include "commands.h"

int cmd_version(int argc, char **argv)
{
	json_t *obj;
	char *text;

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--json"))) {
		fprintf(stderr, "usage: wsaudit version [--json]\n");
		return EXIT_USAGE;
	}
	if (argc == 1) {
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

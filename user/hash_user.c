// SPDX-License-Identifier: GPL-2.0
/*
 * `wsaudit hash-user ID`: the u# display of a user id under the deployment's identity
 * key, the one the agents and `trace` print, so an SRE can find a user of a ticket in the
 * output (or pass the id to `trace --user`).  Without a key file the display of a run
 * cannot be reproduced, so one is required here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "keyhash.h"

static void hash_user_usage(FILE *out)
{
	fprintf(out, "usage: wsaudit hash-user [--identity-key FILE] ID\n"
		     "\n"
		     "Prints the u# hash that wsaudit shows for user ID: keyed BLAKE2b under the\n"
		     "deployment's identity key, so it matches the agents' output.\n"
		     "      --identity-key FILE  the key (default: $" KEYHASH_ENV ")\n"
		     "  -h, --help               this text\n");
}

int cmd_hash_user(int argc, char **argv)
{
	int parsed;
	char err[512], shown[KEYHASH_DISPLAY_LEN];
	struct cli_simple_opts o;
	const char *key;

	parsed = cli_parsed(cli_parse_simple(argc, argv, CLI_IDENTITY_KEY | CLI_OPERAND, "ID", &o,
					     err, sizeof(err)),
			    &o.help, "hash-user", err, hash_user_usage);
	if (parsed != CLI_GO_ON)
		return parsed;
	key = o.identity_key;
	if (!key && !(getenv(KEYHASH_ENV) && *getenv(KEYHASH_ENV))) {
		fprintf(stderr,
			"wsaudit hash-user: no identity key: give --identity-key FILE or set "
			"%s (a run without one used a key of its own, which no one can reproduce)\n",
			KEYHASH_ENV);
		return EXIT_USAGE;
	}
	if (keyhash_identity_setup(key, err, sizeof(err))) {
		fprintf(stderr, "wsaudit hash-user: %s\n", err);
		return EXIT_USAGE;
	}
	keyhash_identity_display(o.operand, shown);
	printf("%s\n", shown);
	return EXIT_OK;
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every command's argument parser shares: the error style (a message for the user in
 * err, -EINVAL, nothing printed; the command prints "wsaudit COMMAND: err" and its usage and
 * exits 2), the values options take, and the parser of the commands that take no more than
 * --help, --json, --identity-key and one operand.  The larger commands have their own pure
 * parsers (trace_opts.c, run_opts.c, agent_opts.c, decode_opts.c).
 */
#ifndef WSAUDIT_CLI_H
#define WSAUDIT_CLI_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* In a parser with err and errlen in scope: the message, and -EINVAL. */
#define CLI_FAIL(...)                               \
	do {                                        \
		snprintf(err, errlen, __VA_ARGS__); \
		return -EINVAL;                     \
	} while (0)

/*
 * The message for what getopt_long returned instead of an option ('?' unknown, ':' missing
 * value; the option string starts with ':').  Always -EINVAL.  Parsers set optind to 0
 * before their getopt_long loop, so that each parse starts afresh.
 */
int cli_option_error(int c, char **argv, char *err, size_t errlen);

/*
 * What a command does with the result of its parser (help points into the options it
 * filled, read after the parse): on an error, "wsaudit CMD: err" and the
 * usage on stderr, EXIT_USAGE; on --help, the usage on stdout, EXIT_OK; otherwise CLI_GO_ON,
 * and the command runs.
 */
#define CLI_GO_ON (-1)
int cli_parsed(int parse_err, const bool *help, const char *cmd, const char *err,
	       void (*usage)(FILE *out));

/* A byte count with an optional K, M or G (powers of 1024).  0, or -EINVAL. */
int cli_parse_bytes(const char *s, uint64_t *out);

/* What a small command accepts (cli_parse_simple). */
enum {
	CLI_JSON = 1 << 0, /* --json */
	CLI_IDENTITY_KEY = 1 << 1, /* --identity-key FILE */
	CLI_OPERAND = 1 << 2, /* exactly one operand, not empty */
};

struct cli_simple_opts {
	const char *operand;
	const char *identity_key;
	bool json;
	bool help;
};

/*
 * Fills o from argv (argv[0] is the command) for a command that accepts --help and what
 * accepts says; operand names the operand in messages ("POLICY").  Returns 0 (o->help set
 * when --help was given), or -EINVAL with a message for the user in err.
 */
int cli_parse_simple(int argc, char **argv, unsigned int accepts, const char *operand,
		     struct cli_simple_opts *o, char *err, size_t errlen);

#endif /* WSAUDIT_CLI_H */

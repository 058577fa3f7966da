// SPDX-License-Identifier: GPL-2.0
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

int cli_option_error(int c, char **argv, char *err, size_t errlen)
{
	/* A value can only be missing at the end of argv, so the option is the last word. */
	if (c == ':')
		CLI_FAIL("option '%s' needs a value", argv[optind - 1]);
	/*
	 * An unknown short option may stand inside a cluster ("-px") that getopt has not
	 * stepped past yet; an unknown long one sets no optopt and has been stepped past.
	 */
	if (optopt > 0 && optopt < 0x100)
		CLI_FAIL("unknown option '-%c'", optopt);
	CLI_FAIL("unknown option '%s'", argv[optind - 1]);
}

int cli_parsed(int parse_err, const bool *help, const char *cmd, const char *err,
	       void (*usage)(FILE *out))
{
	if (parse_err) {
		fprintf(stderr, "wsaudit %s: %s\n", cmd, err);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (*help) {
		usage(stdout);
		return EXIT_OK;
	}
	return CLI_GO_ON;
}

int cli_parse_bytes(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift)
		end++;
	if (*end || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

enum {
	OPT_JSON = 0x100,
	OPT_IDENTITY_KEY,
};

int cli_parse_simple(int argc, char **argv, unsigned int accepts, const char *operand,
		     struct cli_simple_opts *o, char *err, size_t errlen)
{
	static const struct option long_opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "identity-key", required_argument, NULL, OPT_IDENTITY_KEY },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c, idx = 0;

	memset(o, 0, sizeof(*o));
	err[0] = '\0';
	optind = 0; /* getopt starts afresh: a cluster ("-hp") left half read is forgotten */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", long_opts, &idx)) != -1) {
		switch (c) {
		case OPT_JSON:
			if (!(accepts & CLI_JSON))
				CLI_FAIL("unknown option '--%s'", long_opts[idx].name);
			o->json = true;
			break;
		case OPT_IDENTITY_KEY:
			if (!(accepts & CLI_IDENTITY_KEY))
				CLI_FAIL("unknown option '--%s'", long_opts[idx].name);
			o->identity_key = optarg;
			break;
		case 'h':
			o->help = true;
			return 0;
		default:
			return cli_option_error(c, argv, err, errlen);
		}
	}
	if (!(accepts & CLI_OPERAND)) {
		if (optind < argc)
			CLI_FAIL("unexpected argument '%s'", argv[optind]);
		return 0;
	}
	if (optind >= argc)
		CLI_FAIL("missing %s", operand);
	if (optind + 1 < argc)
		CLI_FAIL("unexpected argument '%s'", argv[optind + 1]);
	if (!argv[optind][0])
		CLI_FAIL("empty %s", operand);
	o->operand = argv[optind];
	return 0;
}

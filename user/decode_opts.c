// SPDX-License-Identifier: GPL-2.0
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "decode_opts.h"
#include "keyhash.h"
#include "ws_message.h"

void decode_usage(FILE *f)
{
	fprintf(f,
		"usage: wsaudit decode [--extensions 'permessage-deflate; ...'] [--payload]\n"
		"                      [--max-message BYTES] [--show-identities]\n"
		"                      [--identity-key FILE] [FILE|-]\n"
		"\n"
		"Prints the frames of a raw server-to-client WebSocket byte stream as JSON lines,\n"
		"then a stats record.  When the input starts with an HTTP response (\"HTTP/1.1 101\n"
		"...\"), its head is parsed and its Sec-WebSocket-Extensions used.\n"
		"\n"
		"  -e, --extensions VALUE  negotiated Sec-WebSocket-Extensions (overrides the\n"
		"                          response's)\n"
		"  -p, --payload           add decoded message text and close reasons (user data)\n"
		"  -m, --max-message N     decoded bytes kept per message (default %u)\n"
		"      --show-identities   message types as they are (default: keyed hashes,\n"
		"                          t#..., unless --payload shows the messages anyway)\n"
		"      --identity-key FILE key of those hashes (default: $" KEYHASH_ENV ",\n"
		"                          else a key for this run)\n"
		"  -h, --help              this text\n"
		"\n"
		"Exit status: 0 decoded, 1 input could not be read or is not a WebSocket stream,\n"
		"2 usage error.\n",
		WS_STREAM_DEFAULT_MAX_MESSAGE);
}

enum {
	OPT_SHOW_IDENTITIES = 0x100,
	OPT_IDENTITY_KEY,
};

int decode_parse_args(int argc, char **argv, struct decode_opts *o, char *err, size_t errlen)
{
	static const struct option long_opts[] = {
		{ "extensions", required_argument, NULL, 'e' },
		{ "payload", no_argument, NULL, 'p' },
		{ "max-message", required_argument, NULL, 'm' },
		{ "show-identities", no_argument, NULL, OPT_SHOW_IDENTITIES },
		{ "identity-key", required_argument, NULL, OPT_IDENTITY_KEY },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	unsigned long long v;
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->path = "-";
	err[0] = '\0';
	optind = 0; /* getopt starts afresh: a cluster ("-hp") left half read is forgotten */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":e:pm:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			o->extensions = optarg;
			break;
		case 'p':
			o->payload = true;
			break;
		case OPT_SHOW_IDENTITIES:
			o->show_identities = true;
			break;
		case OPT_IDENTITY_KEY:
			o->identity_key = optarg;
			break;
		case 'm':
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || !v || optarg[0] == '-' ||
			    v > SIZE_MAX)
				CLI_FAIL("invalid --max-message '%s'", optarg);
			o->max_message = (size_t)v;
			break;
		case 'h':
			o->help = true;
			return 0;
		default:
			return cli_option_error(c, argv, err, errlen);
		}
	}
	if (optind + 1 < argc)
		CLI_FAIL("unexpected argument '%s'", argv[optind + 1]);
	if (optind < argc) {
		if (!argv[optind][0])
			CLI_FAIL("empty FILE");
		o->path = argv[optind];
	}
	return 0;
}

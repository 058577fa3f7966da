// SPDX-License-Identifier: GPL-2.0
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "agent_opts.h"
#include "cli.h"
#include "keyhash.h"
#include "podinfo.h"

void agent_usage(FILE *out)
{
	fprintf(out,
		"usage: wsaudit agent [-c POLICY] [--metrics-addr HOST:PORT] [--log FILE|-]\n"
		"                     [--log-max-size BYTES] [--log-max-files N] [--log-queue BYTES]\n"
		"                     [--stats-interval S] [--identity-key FILE] [--socket PATH|none]\n"
		"                     [--bundle-root DIR] [-v]\n"
		"\n"
		"Follows every process whose executable matches the policy's targets.exe, now and\n"
		"later, and writes the frames that break a rule to the violation log (JSON lines).\n"
		"  -c, --policy FILE        the policy (default: built in)\n"
		"      --metrics-addr ADDR  Prometheus /metrics on HOST:PORT, :PORT (every IPv4\n"
		"                           address) or localhost:PORT (default %s;\n"
		"                           \"none\" to serve no metrics)\n"
		"      --log FILE|-         the violation log (default and \"-\": standard output)\n"
		"      --log-max-size BYTES rotate FILE past this size (K, M, G; default 100M;\n"
		"                           0: never)\n"
		"      --log-max-files N    rotated files kept, FILE.1 to FILE.N (default %d)\n"
		"      --log-queue BYTES    records held while the log cannot be written\n"
		"                           (default 16M); past it they are counted as dropped\n"
		"      --stats-interval S   a stats record in the log every S seconds (default 60)\n"
		"      --identity-key FILE  key of the u# user id hashes, the same on every node\n"
		"                           (default: $" KEYHASH_ENV ", else a key for this run)\n"
		"      --socket PATH        serve `wsaudit trace` on this UNIX socket, root only\n"
		"                           (default %s; \"none\": not served)\n"
		"      --bundle-root DIR    containerd's task state, where the pods of the\n"
		"                           violations' k8s_namespace and k8s_workload are read\n"
		"                           (default %s)\n"
		"  -v, --verbose            more diagnostics on stderr\n"
		"SIGHUP reopens the log and reloads the policy; SIGTERM detaches.\n",
		AGENT_DEFAULT_METRICS_ADDR, VLOG_DEFAULT_MAX_FILES, TRACE_AGENT_SOCKET,
		PODINFO_BUNDLE_ROOT);
}

int agent_parse_args(int argc, char **argv, struct agent_opts *o, char *err, size_t errlen)
{
	static const struct option longopts[] = {
		{ "policy", required_argument, NULL, 'c' },
		{ "metrics-addr", required_argument, NULL, 'm' },
		{ "log", required_argument, NULL, 'l' },
		{ "log-max-size", required_argument, NULL, 'S' },
		{ "log-max-files", required_argument, NULL, 'F' },
		{ "log-queue", required_argument, NULL, 'Q' },
		{ "stats-interval", required_argument, NULL, 's' },
		{ "socket", required_argument, NULL, 'U' },
		{ "identity-key", required_argument, NULL, 'k' },
		{ "bundle-root", required_argument, NULL, 'B' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	uint64_t v;
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->log.max_size = VLOG_DEFAULT_MAX_SIZE;
	o->log.max_files = VLOG_DEFAULT_MAX_FILES;
	o->log.queue_max = VLOG_DEFAULT_QUEUE;
	o->metrics_addr = AGENT_DEFAULT_METRICS_ADDR;
	o->socket_path = TRACE_AGENT_SOCKET;
	o->stats_interval_s = 60;
	err[0] = '\0';
	optind = 0; /* getopt starts afresh: a cluster ("-hp") left half read is forgotten */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->policy_path = optarg;
			break;
		case 'm':
			o->metrics_addr = optarg;
			break;
		case 'U':
			o->socket_path = optarg;
			break;
		case 'l':
			o->log.path = optarg;
			break;
		case 'S':
			if (cli_parse_bytes(optarg, &o->log.max_size))
				CLI_FAIL("invalid --log-max-size '%s'", optarg);
			break;
		case 'F':
			if (cli_parse_bytes(optarg, &v) || !v || v > 1000)
				CLI_FAIL("invalid --log-max-files '%s' (1 to 1000)", optarg);
			o->log.max_files = (unsigned int)v;
			break;
		case 'Q':
			if (cli_parse_bytes(optarg, &v) || v > (1ULL << 30))
				CLI_FAIL("invalid --log-queue '%s' (up to 1G)", optarg);
			o->log.queue_max = (size_t)v;
			break;
		case 's':
			o->stats_interval_s = strtod(optarg, &end);
			if (end == optarg || *end || !(o->stats_interval_s >= 0))
				CLI_FAIL("invalid stats interval '%s'", optarg);
			break;
		case 'k':
			o->identity_key = optarg;
			break;
		case 'B':
			if (!*optarg)
				CLI_FAIL("empty --bundle-root");
			o->bundle_root = optarg;
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
	if (optind < argc)
		CLI_FAIL("unexpected argument '%s'", argv[optind]);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "trace_opts.h"
#include "wsaudit/limits.h"

enum {
	OPT_EXE = 0x100,
	OPT_PAYLOAD,
	OPT_RINGBUF_SIZE,
	OPT_WRITE_CAP,
	OPT_STATS_INTERVAL,
	OPT_STACK,
	OPT_CAPTURE_ONLY,
	OPT_VIOLATIONS_ONLY,
	OPT_SHOW_IDENTITIES,
	OPT_IDENTITY_KEY,
	OPT_USER,
	OPT_STANDALONE,
	OPT_AGENT_SOCKET,
	OPT_POD,
	OPT_CONTAINER,
	OPT_CONTAINER_ID,
	OPT_NAMESPACE,
	OPT_BUNDLE_ROOT,
	OPT_TYPE,
	OPT_FUNCTION,
	OPT_PEER,
	OPT_WIDE,
	OPT_WRITE,
	OPT_WRITE_CONN_MAX,
	OPT_WRITE_RUN_MAX,
};

static const struct option long_opts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "exe", required_argument, NULL, OPT_EXE },
	{ "pod", required_argument, NULL, OPT_POD },
	{ "container", required_argument, NULL, OPT_CONTAINER },
	{ "container-id", required_argument, NULL, OPT_CONTAINER_ID },
	{ "namespace", required_argument, NULL, OPT_NAMESPACE },
	{ "bundle-root", required_argument, NULL, OPT_BUNDLE_ROOT },
	{ "output", required_argument, NULL, 'o' },
	{ "wide", no_argument, NULL, OPT_WIDE },
	{ "duration", required_argument, NULL, 'd' },
	{ "payload", no_argument, NULL, OPT_PAYLOAD },
	{ "stack", no_argument, NULL, OPT_STACK },
	{ "capture-only", no_argument, NULL, OPT_CAPTURE_ONLY },
	{ "policy", required_argument, NULL, 'c' },
	{ "violations-only", no_argument, NULL, OPT_VIOLATIONS_ONLY },
	{ "show-identities", no_argument, NULL, OPT_SHOW_IDENTITIES },
	{ "identity-key", required_argument, NULL, OPT_IDENTITY_KEY },
	{ "user", required_argument, NULL, OPT_USER },
	{ "type", required_argument, NULL, OPT_TYPE },
	{ "function", required_argument, NULL, OPT_FUNCTION },
	{ "peer", required_argument, NULL, OPT_PEER },
	{ "count", required_argument, NULL, 'n' },
	{ "ringbuf-size", required_argument, NULL, OPT_RINGBUF_SIZE },
	{ "write-cap", required_argument, NULL, OPT_WRITE_CAP },
	{ "write", required_argument, NULL, OPT_WRITE },
	{ "write-conn-max", required_argument, NULL, OPT_WRITE_CONN_MAX },
	{ "write-run-max", required_argument, NULL, OPT_WRITE_RUN_MAX },
	{ "stats-interval", required_argument, NULL, OPT_STATS_INTERVAL },
	{ "standalone", no_argument, NULL, OPT_STANDALONE },
	{ "agent-socket", required_argument, NULL, OPT_AGENT_SOCKET },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{},
};

void trace_usage(FILE *out)
{
	fprintf(out,
		"usage: wsaudit trace [-p PID]... [--exe GLOB]... [-c POLICY] [-o text|json] [--wide]\n"
		"                     [-d DURATION] [--pod NS/NAME [--container NAME] | --container-id ID |\n"
		"                     --namespace NS]\n"
		"                     [--violations-only] [--user ID] [--type TYPE] [--function GLOB]\n"
		"                     [--peer ADDR] [-n COUNT] [--show-identities] [--identity-key FILE]\n"
		"                     [--stack] [--capture-only] [--payload] [--ringbuf-size BYTES] [--write-cap BYTES]\n"
		"                     [--write DIR --payload [--write-conn-max BYTES] [--write-run-max BYTES]]\n"
		"                     [--standalone] [--agent-socket PATH]\n"
		"\n"
		"Follows the outbound WebSocket frames of the given processes until Ctrl-C or -d.\n"
		"  -p, --pid PID          trace this process, its descendants and the children they\n"
		"                         fork later (repeatable)\n"
		"      --exe GLOB         trace every process whose executable path matches GLOB,\n"
		"                         including ones started later (repeatable)\n"
		"      --pod NS/NAME      trace the processes of this pod on this node, and those its\n"
		"                         containers start later (names from containerd's state)\n"
		"      --container NAME   with --pod: only this container of the pod\n"
		"      --container-id ID  the processes of this container (an id or a prefix of at\n"
		"                         least 12 hex digits; containerd://ID as kubectl shows it)\n"
		"      --namespace NS     the processes of every pod of this namespace on this node\n"
		"      --bundle-root DIR  containerd's task state (default %s)\n"
		"  -o, --output FORMAT    text (default) or json: one JSON object per line\n"
		"      --wide             text with every field whole (full times, absolute paths,\n"
		"                         thread and command), not fitted to 120 columns\n"
		"  -d, --duration D       stop after D: seconds, or with units (90s, 5m, 1h30m, 500ms)\n"
		"  -c, --policy FILE      the policy (bridge, transport, identity); default built in\n"
		"      --violations-only  print only frames that break a rule\n"
		"      --show-identities  print user ids, tokens and message types as they are\n"
		"                         (default: keyed hashes, u#... and t#...)\n"
		"      --identity-key FILE key of those hashes, as on the agents (default:\n"
		"                         $WSAUDIT_IDENTITY_KEY, else a key for this run)\n"
		"      --user ID          only this user's connections and messages (an id, or\n"
		"                         its u# hash as printed; `wsaudit hash-user ID` gives it)\n"
		"      --type TYPE        only frames of messages of this type (a name, or its t#\n"
		"                         display as printed)\n"
		"      --function GLOB    only frames whose originating function matches GLOB\n"
		"                         (e.g. 'Bridge.*', '*send_json')\n"
		"      --peer ADDR        only the connections of this client: IP, IP:PORT,\n"
		"                         [IPv6]:PORT or :PORT\n"
		"  -n, --count COUNT      stop after COUNT frames printed\n"
		"      --stack            include the writer's whole Python stack\n"
		"      --capture-only     do not walk Python stacks (frames are unattributed)\n"
		"      --payload          include payload bytes in the output (user data!)\n"
		"      --write DIR        keep each connection's bytes in DIR (made 0700; files 0600):\n"
		"                         ID.pcapng (its upgrade and server-to-client stream, for\n"
		"                         Wireshark; each frame's origin and verdict a packet comment)\n"
		"                         and ID.ws (the raw stream, for `wsaudit decode`); user data:\n"
		"                         only with --payload.  --peer chooses the connections too\n"
		"      --write-conn-max N bytes of files per connection (K, M, G; default 64M)\n"
		"      --write-run-max N  bytes of files for the whole trace (default 1G)\n"
		"      --ringbuf-size N   ring buffer bytes, a power of two (default %d)\n"
		"      --write-cap N      bytes captured per syscall (default %d, max %d)\n"
		"      --stats-interval S a stats record every S seconds (default 10, 0: only at exit)\n"
		"      --standalone       load programs of its own even when the node's agent runs\n"
		"      --agent-socket P   the agent's socket (default %s)\n"
		"  -v, --verbose          more diagnostics on stderr (twice: libbpf too)\n"
		"With -p only (no -c, --exe, --pod, --container-id, --namespace, --capture-only,\n"
		"--show-identities, --identity-key, --user, --type, --function, --peer, -n,\n"
		"--ringbuf-size, --write-cap or --write), the records come from the node's running\n"
		"agent, if any.\n",
		PODINFO_BUNDLE_ROOT, RINGBUF_DEFAULT, WRITE_CAP_DEFAULT, WRITE_CAP_MAX,
		TRACE_AGENT_SOCKET);
}

/* The least bound --write takes: a connection's header, handshake and last packet fit. */
#define WRITE_MAX_MIN (64 << 10)

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0)
		return -EINVAL;
	*out = v;
	return 0;
}

int parse_duration(const char *s, double *seconds)
{
	static const struct {
		const char *unit;
		double scale;
	} units[] = { { "ms", 1e-3 }, { "s", 1 }, { "m", 60 }, { "h", 3600 } };
	double total = 0, v;
	char *end;

	if (!parse_seconds(s, seconds))
		return 0;
	if (!*s)
		return -EINVAL;
	while (*s) {
		size_t i;

		/* Digits and a dot only: no sign, exponent, hex, inf or nan from strtod. */
		if (!((*s >= '0' && *s <= '9') || *s == '.'))
			return -EINVAL;
		errno = 0;
		v = strtod(s, &end);
		if (errno || end == s)
			return -EINVAL;
		for (const char *c = s; c < end; c++)
			if (!((*c >= '0' && *c <= '9') || *c == '.'))
				return -EINVAL;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].unit);

			/* "m" is minutes unless "ms" follows. */
			if (!strncmp(end, units[i].unit, n) &&
			    !(n == 1 && end[0] == 'm' && end[1] == 's'))
				break;
		}
		if (i == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		total += v * units[i].scale;
		s = end + strlen(units[i].unit);
	}
	if (!isfinite(total))
		return -EINVAL;
	*seconds = total;
	return 0;
}

/* A DNS-1123 label or subdomain, as Kubernetes names pods and namespaces. */
static bool k8s_name(const char *s, size_t max, bool dots)
{
	size_t n = strlen(s);

	if (!n || n > max || s[0] == '-' || s[0] == '.' || s[n - 1] == '-' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		      (dots && c == '.')))
			return false;
	}
	return true;
}

/* NS/NAME into o->pods. */
static int parse_pod(const char *arg, struct trace_opts *o)
{
	const char *slash = strchr(arg, '/');
	size_t ns;

	if (!slash || strlen(arg) >= sizeof(o->pod_buf))
		return -EINVAL;
	ns = (size_t)(slash - arg);
	memcpy(o->pod_buf, arg, strlen(arg) + 1);
	o->pod_buf[ns] = '\0';
	if (!k8s_name(o->pod_buf, PODINFO_NAMESPACE_MAX, false) ||
	    !k8s_name(o->pod_buf + ns + 1, PODINFO_POD_NAME_MAX, true))
		return -EINVAL;
	o->pods.namespace = o->pod_buf;
	o->pods.pod = o->pod_buf + ns + 1;
	return 0;
}

/* A container id or a prefix of one: "containerd://<hex>" as in a pod's status too. */
static int parse_container_id(const char *arg, struct trace_opts *o)
{
	const char *scheme = strstr(arg, "://");
	size_t n;

	if (scheme)
		arg = scheme + 3;
	n = strlen(arg);
	if (n < 12 || n > PODINFO_ID_LEN)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = arg[i];

		if (c >= 'A' && c <= 'F')
			c |= 0x20;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -EINVAL;
		o->id_buf[i] = c;
	}
	o->id_buf[n] = '\0';
	o->pods.container_id = o->id_buf;
	return 0;
}

int trace_parse_args(int argc, char **argv, struct trace_opts *o, char *err, size_t errlen)
{
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->format = OUTPUT_TEXT;
	o->stats_interval_s = 10;
	o->agent_socket = TRACE_AGENT_SOCKET;
	err[0] = '\0';
	optind = 0; /* getopt starts afresh: a cluster ("-hv") left half read is forgotten */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:o:d:c:n:vh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_u64(optarg, &v) || v == 0 || v > INT_MAX)
				CLI_FAIL("invalid PID '%s'", optarg);
			if (o->npids == TRACE_MAX_PIDS)
				CLI_FAIL("at most %d PIDs", TRACE_MAX_PIDS);
			o->pids[o->npids++] = (pid_t)v;
			break;
		case OPT_EXE:
			if (!optarg[0])
				CLI_FAIL("empty --exe glob");
			if (o->nglobs == TRACE_MAX_GLOBS)
				CLI_FAIL("at most %d --exe globs", TRACE_MAX_GLOBS);
			o->exe_globs[o->nglobs++] = optarg;
			break;
		case OPT_POD:
			if (o->pods.pod || parse_pod(optarg, o))
				CLI_FAIL("invalid --pod '%s' (NAMESPACE/NAME, once)", optarg);
			break;
		case OPT_CONTAINER:
			if (o->pods.container ||
			    !k8s_name(optarg, PODINFO_CONTAINER_NAME_MAX, false))
				CLI_FAIL("invalid --container '%s' (a container name, once)",
					 optarg);
			o->pods.container = optarg;
			break;
		case OPT_CONTAINER_ID:
			if (o->pods.container_id || parse_container_id(optarg, o))
				CLI_FAIL("invalid --container-id '%s' (12 to 64 hex digits, once)",
					 optarg);
			break;
		case OPT_NAMESPACE:
			if (o->ns_given || !k8s_name(optarg, PODINFO_NAMESPACE_MAX, false))
				CLI_FAIL("invalid --namespace '%s' (a namespace name, once)",
					 optarg);
			o->ns_given = true;
			o->pods.namespace = optarg;
			break;
		case OPT_BUNDLE_ROOT:
			if (!optarg[0])
				CLI_FAIL("empty --bundle-root");
			o->bundle_root = optarg;
			break;
		case 'o':
			if (!strcmp(optarg, "json"))
				o->format = OUTPUT_JSON;
			else if (!strcmp(optarg, "text"))
				o->format = OUTPUT_TEXT;
			else
				CLI_FAIL("unknown output format '%s' (text or json)", optarg);
			break;
		case 'd':
			if (parse_duration(optarg, &o->duration_s) || o->duration_s == 0)
				CLI_FAIL(
					"invalid duration '%s' (seconds > 0, or e.g. 90s, 5m, 1h30m)",
					optarg);
			break;
		case OPT_STATS_INTERVAL:
			if (parse_duration(optarg, &o->stats_interval_s))
				CLI_FAIL("invalid stats interval '%s'", optarg);
			break;
		case OPT_PAYLOAD:
			o->payload = true;
			break;
		case OPT_STACK:
			o->stack = true;
			break;
		case OPT_CAPTURE_ONLY:
			o->capture_only = true;
			break;
		case 'c':
			o->policy_path = optarg;
			break;
		case OPT_VIOLATIONS_ONLY:
			o->violations_only = true;
			break;
		case OPT_SHOW_IDENTITIES:
			o->show_identities = true;
			break;
		case OPT_IDENTITY_KEY:
			o->identity_key = optarg;
			break;
		case OPT_USER:
			if (!optarg[0])
				CLI_FAIL("empty --user");
			o->user = optarg;
			break;
		case OPT_WIDE:
			o->wide = true;
			break;
		case OPT_TYPE:
			if (!optarg[0])
				CLI_FAIL("empty --type");
			o->filter.msg_type = optarg;
			break;
		case OPT_FUNCTION:
			if (!optarg[0])
				CLI_FAIL("empty --function");
			o->filter.function = optarg;
			break;
		case OPT_PEER:
			if (filter_parse_peer(optarg))
				CLI_FAIL("invalid --peer '%s' (IP, IP:PORT, [IPv6]:PORT or :PORT)",
					 optarg);
			o->filter.peer = optarg;
			break;
		case 'n':
			if (parse_u64(optarg, &v) || v == 0)
				CLI_FAIL("invalid count '%s' (frames, at least 1)", optarg);
			o->filter.max_frames = v;
			break;
		case OPT_RINGBUF_SIZE:
			/* The kernel wants a power-of-two multiple of the page size. */
			if (parse_u64(optarg, &v) || v < 4096 || v > (1ULL << 30) || (v & (v - 1)))
				CLI_FAIL(
					"invalid ring buffer size '%s' (a power of two, 4096..2^30)",
					optarg);
			o->ringbuf_size = v;
			break;
		case OPT_WRITE_CAP:
			if (parse_u64(optarg, &v) || v == 0 || v > WRITE_CAP_MAX)
				CLI_FAIL("invalid write cap '%s' (1..%d)", optarg, WRITE_CAP_MAX);
			o->write_cap = v;
			break;
		case OPT_WRITE:
			if (!optarg[0] || o->write_dir)
				CLI_FAIL("invalid --write '%s' (a directory, once)", optarg);
			o->write_dir = optarg;
			break;
		case OPT_WRITE_CONN_MAX:
			if (cli_parse_bytes(optarg, &o->write_conn_max) ||
			    o->write_conn_max < WRITE_MAX_MIN)
				CLI_FAIL("invalid --write-conn-max '%s' (bytes, at least 64K)",
					 optarg);
			break;
		case OPT_WRITE_RUN_MAX:
			if (cli_parse_bytes(optarg, &o->write_run_max) ||
			    o->write_run_max < WRITE_MAX_MIN)
				CLI_FAIL("invalid --write-run-max '%s' (bytes, at least 64K)",
					 optarg);
			break;
		case OPT_STANDALONE:
			o->standalone = true;
			break;
		case OPT_AGENT_SOCKET:
			o->agent_socket = optarg;
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
	if ((o->pods.pod != NULL) + o->ns_given + (o->pods.container_id != NULL) > 1)
		CLI_FAIL("--pod, --container-id and --namespace choose the containers: give one");
	if (o->pods.container && !o->pods.pod)
		CLI_FAIL("--container names a container of the pod given with --pod");
	o->by_pod = o->pods.pod || o->ns_given || o->pods.container_id;
	/* The files hold what --payload prints: the messages, and the request's credentials. */
	if (o->write_dir && !o->payload)
		CLI_FAIL(
			"--write keeps the connections' bytes (messages, and the upgrade request's "
			"credentials): give --payload to consent");
	if ((o->write_conn_max || o->write_run_max) && !o->write_dir)
		CLI_FAIL("--write-conn-max and --write-run-max bound --write DIR");
	if (!o->npids && !o->nglobs && !o->by_pod)
		CLI_FAIL("nothing to trace: give -p PID, --exe GLOB, --pod, --container-id or "
			 "--namespace");
	return 0;
}

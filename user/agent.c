// SPDX-License-Identifier: GPL-2.0
/*
 * `wsaudit agent`: the DaemonSet mode.  Follows every process on the node whose executable
 * matches the policy's targets (those running now and those started later), and writes the
 * frames that break a rule as JSON lines to the violation log.  SIGHUP reopens the log (for
 * rotation) and reloads the policy, keeping the old one when the new one is invalid; SIGTERM
 * and SIGINT detach cleanly.  The pipeline is user/session.c.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_metrics.h"
#include "commands.h"
#include "log.h"
#include "policy.h"
#include "session.h"

#define POLL_MS 100
/* The self-check's period and how long it waits for its probe's write (user/selfcheck.h). */
#define SELFCHECK_EVERY_NS (30ULL * 1000000000ULL)
#define SELFCHECK_TIMEOUT_MS 2000
#define DEFAULT_METRICS_ADDR "127.0.0.1:9464"

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	reload_requested = 1;
}

struct agent_opts {
	const char *policy_path;
	const char *log_path; /* NULL or "-": stdout */
	const char *metrics_addr;
	double stats_interval_s;
	int verbose;
	bool help;
};

static void agent_usage(FILE *out)
{
	fprintf(out,
		"usage: wsaudit agent [-c POLICY] [--metrics-addr HOST:PORT] [--log FILE] [-v]\n"
		"\n"
		"Follows every process whose executable matches the policy's targets.exe, now and\n"
		"later, and writes the frames that break a rule to the violation log (JSON lines).\n"
		"  -c, --policy FILE        the policy (default: built in)\n"
		"      --metrics-addr ADDR  Prometheus /metrics on HOST:PORT (default %s;\n"
		"                           \"none\" to serve no metrics)\n"
		"      --log FILE           the violation log (default: standard output)\n"
		"      --stats-interval S   a stats record in the log every S seconds (default 60)\n"
		"  -v, --verbose            more diagnostics on stderr\n"
		"SIGHUP reopens the log and reloads the policy; SIGTERM detaches.\n",
		DEFAULT_METRICS_ADDR);
}

static int agent_parse(int argc, char **argv, struct agent_opts *o)
{
	static const struct option longopts[] = {
		{ "policy", required_argument, NULL, 'c' },
		{ "metrics-addr", required_argument, NULL, 'm' },
		{ "log", required_argument, NULL, 'l' },
		{ "stats-interval", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->metrics_addr = DEFAULT_METRICS_ADDR;
	o->stats_interval_s = 60;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->policy_path = optarg;
			break;
		case 'm':
			o->metrics_addr = optarg;
			break;
		case 'l':
			o->log_path = optarg;
			break;
		case 's':
			o->stats_interval_s = strtod(optarg, &end);
			if (*end || o->stats_interval_s < 0) {
				fprintf(stderr, "wsaudit agent: invalid stats interval '%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			o->help = true;
			return 0;
		case ':':
			fprintf(stderr, "wsaudit agent: option '%s' needs a value\n",
				argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(stderr, "wsaudit agent: unknown option '%s'\n", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wsaudit agent: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static struct policy *agent_load_policy(const char *path)
{
	char err[POLICY_ERR_LEN];
	struct policy *p = path ? policy_load(path, err, sizeof(err)) : policy_default();

	if (!p)
		log_err("%s", path ? err : "failed to load the built-in policy");
	return p;
}

static FILE *open_log(const char *path)
{
	FILE *f;

	if (!path || !strcmp(path, "-"))
		return stdout;
	f = fopen(path, "ae");
	if (!f)
		log_err("failed to open the violation log %s: %s", path, strerror(errno));
	else
		setvbuf(f, NULL, _IOLBF, 0);
	return f;
}

/* SIGHUP: a new log file (the old one was rotated away), and the policy again. */
static void agent_reload(struct session *s, const struct agent_opts *o, FILE **log,
			 struct agent_metrics *m)
{
	struct policy *p;
	FILE *f;

	if (o->log_path && strcmp(o->log_path, "-")) {
		f = open_log(o->log_path);
		if (f) {
			session_set_output(s, f);
			fclose(*log);
			*log = f;
		}
	}
	if (!o->policy_path)
		return;
	p = agent_load_policy(o->policy_path);
	agent_metrics_policy_reload(m, p != NULL);
	if (!p) {
		log_err("keeping the policy in force");
		return;
	}
	session_set_policy(s, p);
	/* Processes that match the new targets and run already. */
	session_scan_exe(s);
	log_info("policy %s reloaded", o->policy_path);
}

/*
 * The capture path checked end to end (session_selfcheck); the result is in the metrics and,
 * through session_selfcheck_ok(), in the health endpoint.  Failures are said on stderr.
 */
static int selfcheck(struct session *s)
{
	int err = session_selfcheck(s, SELFCHECK_TIMEOUT_MS, false);

	if (err)
		log_err("self-check failed: %s", session_selfcheck_state(s)->why);
	return err;
}

int cmd_agent(int argc, char **argv)
{
	struct sigaction stop = { .sa_handler = on_stop }, hup = { .sa_handler = on_hup };
	struct session_opts so = {
		.format = OUTPUT_JSON,
		.violations_only = true,
		.quiet_processes = true,
		.targets_from_policy = true,
	};
	struct agent_metrics *metrics = NULL;
	struct session *s = NULL;
	struct agent_opts o;
	uint64_t last_stats = 0, last_check, now;
	struct timespec ts;
	struct policy *p;
	FILE *log;
	int rc = EXIT_RUNTIME, found;

	if (agent_parse(argc, argv, &o)) {
		agent_usage(stderr);
		return EXIT_USAGE;
	}
	if (o.help) {
		agent_usage(stdout);
		return EXIT_OK;
	}
	log_max_level = o.verbose >= 2 ? LOG_DEBUG : o.verbose ? LOG_INFO : LOG_WARN;
	p = agent_load_policy(o.policy_path);
	if (!p)
		return o.policy_path ? EXIT_USAGE : EXIT_RUNTIME;
	if (!p->exe.n)
		log_warn("the policy names no targets.exe: only processes started later that "
			 "match nothing will be followed, i.e. none");
	log = open_log(o.log_path);
	if (!log) {
		policy_free(p);
		return EXIT_RUNTIME;
	}
	if (strcmp(o.metrics_addr, "none")) {
		metrics = agent_metrics_start(o.metrics_addr);
		if (!metrics) {
			policy_free(p);
			rc = EXIT_USAGE;
			goto out_close_log;
		}
	}
	s = session_open(&so, p, log);
	if (!s)
		goto out_stop_metrics;
	agent_metrics_attach(metrics, s);
	found = session_scan_exe(s);
	sigaction(SIGINT, &stop, NULL);
	sigaction(SIGTERM, &stop, NULL);
	sigaction(SIGHUP, &hup, NULL);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * A blind agent keeps running (it may be transient) but says so: on stderr, in
	 * wsaudit_selfcheck_ok and on the health endpoint; the check is repeated every period.
	 */
	selfcheck(s);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	last_check = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	fprintf(stderr, "wsaudit: agent following %d process(es) and matching execs\n",
		found < 0 ? 0 : found);

	rc = EXIT_OK;
	while (!stop_requested) {
		if (session_poll(s, POLL_MS)) {
			rc = EXIT_RUNTIME;
			break;
		}
		if (reload_requested) {
			reload_requested = 0;
			agent_reload(s, &o, &log, metrics);
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
		if (now - last_check >= SELFCHECK_EVERY_NS) {
			selfcheck(s);
			last_check = now;
		}
		agent_metrics_update(metrics, s);
		if (o.stats_interval_s && now - last_stats >= o.stats_interval_s * 1e9) {
			session_report(s, false);
			last_stats = now;
		}
	}
	session_poll(s, 0);
	session_end_connections(s, "agent_stop");
	session_report(s, true);
	agent_metrics_detach(metrics);
	session_close(s, "agent_stop");
out_stop_metrics:
	agent_metrics_stop(metrics);
out_close_log:
	if (log != stdout)
		fclose(log);
	return rc;
}

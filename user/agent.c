// SPDX-License-Identifier: GPL-2.0
/*
 * `wsaudit agent`: the DaemonSet mode.  Follows every process on the node whose executable
 * matches the policy's targets (those running now and those started later), and writes the
 * frames that break a rule as JSON lines to the violation log (user/vlog.c).  SIGHUP reopens
 * the log (after an outside rotation) and reloads the policy, keeping the old one when the
 * new one is invalid; SIGTERM and SIGINT detach cleanly.  The pipeline is user/session.c.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_metrics.h"
#include "agent_opts.h"
#include "agent_socket.h"
#include "clock.h"
#include "cli.h"
#include "commands.h"
#include "keyhash.h"
#include "log.h"
#include "policy.h"
#include "session.h"
#include "vlog.h"

#define POLL_MS 100
/* The self-check's period and how long it waits for its probe's write (user/selfcheck.h). */
#define SELFCHECK_EVERY_NS (30ULL * 1000000000ULL)
#define SELFCHECK_TIMEOUT_MS 2000
/* A check without a verdict (the collector was behind) is tried again this soon. */
#define SELFCHECK_RETRY_NS (5ULL * 1000000000ULL)

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

static struct policy *agent_load_policy(const char *path)
{
	char err[POLICY_ERR_LEN];
	struct policy *p = policy_open(path, err, sizeof(err));

	if (!p)
		log_err("%s", err);
	return p;
}

static void log_record(void *ctx, const char *line, size_t len)
{
	vlog_write(ctx, line, len);
}

static double ms_since(uint64_t t0)
{
	return (double)(mono_ns() - t0) / 1e6;
}

/*
 * SIGHUP: a new log file (the old one was rotated away), and the policy again.  It runs in
 * the loop, so what it costs is said: the policy's size and shape are bounded before the
 * parse (user/policy.c) to keep it to milliseconds.
 */
static void agent_reload(struct session *s, const struct agent_opts *o, struct vlog *log,
			 struct agent_metrics *m)
{
	uint64_t t0 = mono_ns();
	struct policy *p;

	vlog_reopen(log);
	if (!o->policy_path)
		return;
	p = agent_load_policy(o->policy_path);
	agent_metrics_policy_reload(m, p != NULL);
	if (!p) {
		log_err("keeping the policy in force (the reload took %.1f ms)", ms_since(t0));
		return;
	}
	session_set_policy(s, p);
	/* Processes that match the new targets and run already. */
	session_scan_exe(s);
	log_info("policy %s reloaded in %.1f ms", o->policy_path, ms_since(t0));
}

/*
 * The capture path checked end to end (session_selfcheck); the result is in the metrics and,
 * through session_selfcheck_ok(), in the health endpoint.  Failures are said on stderr.
 */
static int selfcheck(struct session *s)
{
	int err = session_selfcheck(s, SELFCHECK_TIMEOUT_MS, false);
	uint64_t n = session_selfcheck_state(s)->deferred;

	if (err == -EAGAIN) {
		if (!(n & (n - 1)))
			log_warn("self-check deferred: its probe was not back within %d ms while "
				 "the ring buffer was still being drained (%llu so far)",
				 SELFCHECK_TIMEOUT_MS, (unsigned long long)n);
	} else if (err) {
		log_err("self-check failed: %s", session_selfcheck_state(s)->why);
	}
	return err;
}

/*
 * Waits up to timeout_ms for kernel records or a trace client, then handles both.  0 or
 * -errno (the ring buffer failed).
 */
static int agent_wait(struct session *s, struct agent_socket *a, int timeout_ms)
{
	struct pollfd fds[32];
	int n;

	fds[0] = (struct pollfd){ .fd = session_fd(s), .events = POLLIN };
	n = 1 + agent_socket_pollfds(a, fds + 1, (int)(sizeof(fds) / sizeof(fds[0])) - 1);
	if (poll(fds, (nfds_t)n, timeout_ms) < 0 && errno != EINTR)
		log_warn("poll: %s", strerror(errno));
	if (session_poll(s, 0))
		return -EIO;
	agent_socket_service(a);
	return 0;
}

int cmd_agent(int argc, char **argv)
{
	int parsed;
	struct sigaction stop = { .sa_handler = on_stop }, hup = { .sa_handler = on_hup };
	struct session_opts so = {
		.format = OUTPUT_JSON,
		.violations_only = true,
		.quiet_processes = true,
		.targets_from_policy = true,
	};
	struct agent_metrics *metrics = NULL;
	struct agent_socket *sock = NULL;
	struct session *s = NULL;
	struct agent_opts o;
	uint64_t last_stats = 0, last_check, now;
	struct vlog_stats ls;
	struct agent_socket_stats ss;
	struct policy *p;
	struct vlog *log;
	char err[512];
	int rc = EXIT_RUNTIME, found;

	parsed = cli_parsed(agent_parse_args(argc, argv, &o, err, sizeof(err)), &o.help, "agent",
			    err, agent_usage);
	if (parsed != CLI_GO_ON)
		return parsed;
	log_max_level = o.verbose >= 2 ? LOG_DEBUG : o.verbose ? LOG_INFO : LOG_WARN;
	/* A key that cannot be used is a usage error, found before anything is loaded. */
	if (keyhash_identity_setup(o.identity_key, err, sizeof(err))) {
		log_err("%s", err);
		return EXIT_USAGE;
	}
	so.identity_key = o.identity_key;
	so.bundle_root = o.bundle_root;
	p = agent_load_policy(o.policy_path);
	if (!p)
		return o.policy_path ? EXIT_USAGE : EXIT_RUNTIME;
	if (!p->exe.n)
		log_warn("the policy names no targets.exe: only processes started later that "
			 "match nothing will be followed, i.e. none");
	log = vlog_open(&o.log, err, sizeof(err));
	if (!log) {
		log_err("%s", err);
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
	s = session_open(&so, p, stdout);
	if (!s)
		goto out_stop_metrics;
	session_set_sink(s, log_record, log);
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
	last_check = mono_ns();
	if (strcmp(o.socket_path, "none")) {
		sock = agent_socket_open(o.socket_path, s);
		if (!sock)
			log_err("`wsaudit trace` on this node will load programs of its own");
	}
	fprintf(stderr, "wsaudit: agent following %d process(es) and matching execs\n",
		found < 0 ? 0 : found);

	rc = EXIT_OK;
	while (!stop_requested) {
		if (agent_wait(s, sock, POLL_MS)) {
			rc = EXIT_RUNTIME;
			break;
		}
		if (reload_requested) {
			reload_requested = 0;
			agent_reload(s, &o, log, metrics);
		}
		vlog_flush(log);
		now = mono_ns();
		if (now - last_check >= SELFCHECK_EVERY_NS) {
			last_check = now;
			if (selfcheck(s) == -EAGAIN)
				last_check = now - SELFCHECK_EVERY_NS + SELFCHECK_RETRY_NS;
		}
		vlog_stats(log, &ls);
		agent_metrics_update(metrics, s, &ls);
		agent_socket_stats(sock, &ss);
		agent_metrics_trace_clients(metrics, &ss);
		if (o.stats_interval_s && now - last_stats >= o.stats_interval_s * 1e9) {
			session_report(s, false);
			last_stats = now;
		}
	}
	session_drain(s);
	session_end_connections(s, "agent_stop");
	/* Clients get the connections' ends above, then their final stats. */
	agent_socket_close(sock);
	session_report(s, true);
	agent_metrics_detach(metrics);
	session_close(s, "agent_stop");
out_stop_metrics:
	agent_metrics_stop(metrics);
out_close_log:
	vlog_close(log);
	return rc;
}

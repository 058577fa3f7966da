// SPDX-License-Identifier: GPL-2.0
/*
 * `wsaudit trace`: follow given processes (and executables matching globs) from a shell,
 * printing every outbound WebSocket frame until Ctrl-C or the duration ends.  The pipeline
 * is user/session.c; this file reads the options, picks the targets and runs the loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "log.h"
#include "policy.h"
#include "session.h"
#include "targets.h"
#include "trace_opts.h"

/* How long the collector sleeps when the kernel has not woken it. */
#define POLL_MS 50

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* The valid targets among -p, and those matching --exe now.  Returns how many. */
static unsigned int add_initial_targets(struct session *s, const struct trace_opts *o)
{
	unsigned int n = 0;
	int err;

	for (size_t i = 0; i < o->npids; i++) {
		err = target_check_pid(o->pids[i]);
		if (err) {
			log_err("pid %d: %s", o->pids[i],
				err == -ESRCH ? "no such process" : strerror(-err));
			continue;
		}
		if (!session_add_pid(s, o->pids[i], ""))
			n++;
	}
	err = session_scan_exe(s);
	if (err < 0)
		log_warn("failed to scan /proc for --exe matches: %s", strerror(-err));
	else
		n += err;
	return n;
}

/* Records are flushed after each poll: a large buffer spares a write(2) per record. */
static char stdout_buf[1 << 20];

static int run(struct session *s, const struct trace_opts *o)
{
	uint64_t start = now_mono_ns(), last_stats = start, now;
	uint64_t duration_ns = (uint64_t)(o->duration_s * 1e9);
	uint64_t interval_ns = (uint64_t)(o->stats_interval_s * 1e9);

	while (!stop_requested) {
		if (session_poll(s, POLL_MS))
			return EXIT_RUNTIME;
		now = now_mono_ns();
		if (duration_ns && now - start >= duration_ns)
			break;
		if (interval_ns && now - last_stats >= interval_ns) {
			session_report(s, false);
			last_stats = now;
		}
		fflush(stdout);
	}
	/* Records already queued belong to the trace: drain them before the totals. */
	session_poll(s, 0);
	return EXIT_OK;
}

static struct policy *load_policy(const char *path)
{
	char err[POLICY_ERR_LEN];
	struct policy *p;

	if (!path) {
		p = policy_default();
		if (!p)
			log_err("failed to load the built-in policy");
		return p;
	}
	p = policy_load(path, err, sizeof(err));
	if (!p)
		fprintf(stderr, "wsaudit trace: %s\n", err);
	return p;
}

int cmd_trace(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct session_opts so = {};
	struct trace_opts o;
	struct session *s;
	struct policy *p;
	unsigned int targets;
	char err[256];
	int rc;

	/* Before anything is written to stdout, as setvbuf requires. */
	setvbuf(stdout, stdout_buf, _IOFBF, sizeof(stdout_buf));
	if (trace_parse_args(argc, argv, &o, err, sizeof(err))) {
		fprintf(stderr, "wsaudit trace: %s\n", err);
		trace_usage(stderr);
		return EXIT_USAGE;
	}
	if (o.help) {
		trace_usage(stdout);
		return EXIT_OK;
	}
	log_max_level = o.verbose >= 2 ? LOG_DEBUG : o.verbose ? LOG_INFO : LOG_WARN;
	p = load_policy(o.policy_path);
	if (!p)
		return o.policy_path ? EXIT_USAGE : EXIT_RUNTIME;

	so.format = o.format;
	so.payload = o.payload;
	so.stack = o.stack;
	so.capture_only = o.capture_only;
	so.violations_only = o.violations_only;
	so.show_identities = o.show_identities;
	so.ringbuf_size = o.ringbuf_size;
	so.write_cap = o.write_cap;
	so.exe_globs = (const char *const *)o.exe_globs;
	so.nglobs = o.nglobs;
	s = session_open(&so, p, stdout);
	if (!s)
		return EXIT_RUNTIME;
	targets = add_initial_targets(s, &o);
	if (!targets && !o.nglobs) {
		log_err("no process to trace");
		session_close(s, "trace_end");
		return EXIT_USAGE;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "wsaudit: tracing %u process(es)%s; Ctrl-C to stop\n", targets,
		o.nglobs ? " and matching execs" : "");

	rc = run(s, &o);
	/* Connections still open end now, so frames they cut short are in the totals. */
	session_end_connections(s, "trace_end");
	session_report(s, true);
	session_close(s, "trace_end");
	return rc;
}

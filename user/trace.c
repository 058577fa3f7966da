// SPDX-License-Identifier: GPL-2.0
/*
 * `wsaudit trace`: follow given processes (and executables matching globs) from a shell,
 * printing every outbound WebSocket frame until Ctrl-C or the duration ends.  The pipeline
 * is user/session.c; this file reads the options, picks the targets and runs the loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "keyhash.h"
#include "log.h"
#include "policy.h"
#include "session.h"
#include "targets.h"
#include "trace_agent.h"
#include "trace_opts.h"

/* How long the collector sleeps when the kernel has not woken it. */
#define POLL_MS 50
/* How long the self-check waits for its probe's write to come back. */
#define SELFCHECK_TIMEOUT_MS 2000

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

/* A process followed from the start, for the banner. */
struct followed {
	pid_t pid;
	pid_t parent; /* 0: named with -p or matched by --exe */
	char comm[16];
};

/* Processes named in the banner; more are counted only. */
#define BANNER_MAX 64
/* Descendants of one -p process picked up at start. */
#define DESCENDANTS_MAX 1024

struct start_targets {
	struct followed list[BANNER_MAX];
	unsigned int n; /* processes followed */
	int conns; /* established TCP connections they held at start */
};

static void follow(struct session *s, struct start_targets *t, pid_t pid, pid_t parent)
{
	char how[48] = "";
	struct followed *f;
	int n;

	if (parent)
		snprintf(how, sizeof(how), " (descendant of %d)", parent);
	if (session_add_pid(s, pid, how))
		return;
	if (t->n < BANNER_MAX) {
		f = &t->list[t->n];
		f->pid = pid;
		f->parent = parent;
		target_comm(pid, f->comm, sizeof(f->comm));
	}
	t->n++;
	n = target_count_tcp(pid);
	if (n > 0)
		t->conns += n;
}

/*
 * The valid targets among -p with their descendants (uvicorn's and gunicorn's workers,
 * forked before the trace), and those matching --exe now.  A -p process is traced before its
 * descendants are looked for: a child it forks meanwhile is followed by the fork hook.
 */
static void add_initial_targets(struct session *s, const struct trace_opts *o,
				struct start_targets *t)
{
	pid_t kids[DESCENDANTS_MAX];
	int err, n;

	for (size_t i = 0; i < o->npids; i++) {
		err = target_check_pid(o->pids[i]);
		if (err) {
			log_err("pid %d: %s", o->pids[i],
				err == -ESRCH ? "no such process" : strerror(-err));
			continue;
		}
		follow(s, t, o->pids[i], 0);
		n = target_descendants(o->pids[i], kids, DESCENDANTS_MAX);
		if (n < 0)
			log_warn("pid %d: failed to list its descendants: %s", o->pids[i],
				 strerror(-n));
		else if (n == DESCENDANTS_MAX)
			log_warn("pid %d: more than %d descendants: only the first are followed",
				 o->pids[i], DESCENDANTS_MAX);
		for (int k = 0; k < n; k++)
			follow(s, t, kids[k], o->pids[i]);
	}
	err = session_scan_exe(s);
	if (err < 0)
		log_warn("failed to scan /proc for --exe matches: %s", strerror(-err));
	else
		t->n += err;
}

/* What is followed, how long the start took and what it found, before the `tracing` line. */
static void banner(const struct start_targets *t, const struct capture_startup *cs,
		   const struct session_selfcheck *sc, uint64_t took_ns, bool globs,
		   const char *why_standalone)
{
	unsigned int shown = t->n < BANNER_MAX ? t->n : BANNER_MAX;

	if (shown) {
		fprintf(stderr, "wsaudit: following");
		for (unsigned int i = 0; i < shown; i++)
			fprintf(stderr, "%s %d %s", i ? "," : "", t->list[i].pid, t->list[i].comm);
		if (t->n > shown)
			fprintf(stderr, " and %u more", t->n - shown);
		fputc('\n', stderr);
	}
	fprintf(stderr,
		"wsaudit: started in %.0f ms (standalone, %s: %u BPF programs, %llu instructions, "
		"loaded and verified in %.0f ms, attached in %.0f ms; self-check passed in %.1f "
		"ms)\n",
		took_ns / 1e6, why_standalone, cs->programs, (unsigned long long)cs->insns,
		cs->load_ns / 1e6, cs->attach_ns / 1e6, sc->last_ns / 1e6);
	if (t->conns)
		fprintf(stderr,
			"wsaudit: %d TCP connection(s) were open before the trace: adopted as they "
			"write\n",
			t->conns);
	fprintf(stderr, "wsaudit: tracing %u process(es)%s; Ctrl-C to stop\n", t->n,
		globs ? " and matching execs" : "");
}

/* Why this trace loads programs of its own; NULL when the agent can serve it. */
static const char *needs_standalone(const struct trace_opts *o)
{
	if (o->standalone)
		return "--standalone";
	if (o->policy_path)
		return "-c: a policy of its own";
	if (o->nglobs)
		return "--exe";
	if (o->capture_only)
		return "--capture-only";
	if (o->show_identities)
		return "--show-identities";
	if (o->identity_key)
		return "--identity-key: user hashes of its own";
	if (o->user)
		return "--user";
	if (o->ringbuf_size || o->write_cap)
		return "a ring buffer or write cap of its own";
	return NULL;
}

/*
 * The trace served by the node's agent: nothing loaded here.  An exit code, or -1 with
 * *why set when the agent cannot serve it (then the trace goes standalone).
 */
static int trace_through_agent(const struct trace_opts *o, uint64_t t_start, const char **why)
{
	static char reason[320];
	struct trace_agent_hello h;
	pid_t pids[TRACE_MAX_PIDS];
	struct output *out;
	size_t n = 0;
	int fd, err;

	fd = trace_agent_connect(o->agent_socket);
	if (fd == -ENOENT || fd == -ECONNREFUSED) {
		*why = "no agent on this node";
		return -1;
	}
	if (fd < 0) {
		snprintf(reason, sizeof(reason), "the agent's socket %s: %s", o->agent_socket,
			 strerror(-fd));
		*why = reason;
		return -1;
	}
	for (size_t i = 0; i < o->npids; i++) {
		err = target_check_pid(o->pids[i]);
		if (err)
			log_err("pid %d: %s", o->pids[i],
				err == -ESRCH ? "no such process" : strerror(-err));
		else
			pids[n++] = o->pids[i];
	}
	if (!n) {
		close(fd);
		log_err("no process to trace");
		return EXIT_USAGE;
	}
	err = trace_agent_start(fd, o, pids, n, &h);
	if (err) {
		close(fd);
		snprintf(reason, sizeof(reason), "%s", h.why);
		*why = reason;
		return -1;
	}
	/* The agent's check covers this trace's path: its programs are this trace's. */
	out = output_new(stdout, o->format, false, false);
	if (out)
		output_selfcheck(out, now_mono_ns(), h.selfcheck_ok, h.selfcheck_ok ? NULL : h.why,
				 (uint64_t)(h.selfcheck_ms * 1e6));
	output_free(out);
	fflush(stdout);
	if (!h.selfcheck_ok) {
		log_err("self-check failed in the agent (pid %d): %s", h.agent_pid, h.why);
		close(fd);
		return EXIT_RUNTIME;
	}
	fprintf(stderr, "wsaudit: following%s (%u added to the agent for this trace)\n", h.followed,
		h.nadded);
	fprintf(stderr,
		"wsaudit: started in %.0f ms (through the agent, pid %d: nothing loaded; its "
		"self-check passed in %.1f ms)\n",
		(now_mono_ns() - t_start) / 1e6, h.agent_pid, h.selfcheck_ms);
	if (h.conns_open)
		fprintf(stderr,
			"wsaudit: %u WebSocket connection(s) already open, with the agent's state "
			"of them\n",
			h.conns_open);
	fprintf(stderr, "wsaudit: tracing %u process(es) through the agent; Ctrl-C to stop\n",
		h.nfollowed);
	err = trace_agent_stream(fd, stdout, o->duration_s, &stop_requested);
	close(fd);
	if (err) {
		log_err("the agent ended the stream: %s", strerror(-err));
		return EXIT_RUNTIME;
	}
	return EXIT_OK;
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
	session_drain(s);
	return EXIT_OK;
}

static struct policy *load_policy(const char *path)
{
	char err[POLICY_ERR_LEN];
	struct policy *p = policy_open(path, err, sizeof(err));

	if (!p && path)
		fprintf(stderr, "wsaudit trace: %s\n", err);
	else if (!p)
		log_err("%s", err);
	return p;
}

int cmd_trace(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t t_start = now_mono_ns();
	struct start_targets *targets;
	struct capture_startup cs;
	struct session_opts so = {};
	struct trace_opts o;
	struct session *s;
	struct policy *p;
	const char *why;
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
	/* A key that cannot be used is a usage error, found before anything is loaded. */
	if (keyhash_identity_setup(o.identity_key, err, sizeof(err))) {
		fprintf(stderr, "wsaudit trace: %s\n", err);
		return EXIT_USAGE;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	why = needs_standalone(&o);
	if (!why) {
		rc = trace_through_agent(&o, t_start, &why);
		if (rc >= 0)
			return rc;
	}
	p = load_policy(o.policy_path);
	if (!p)
		return o.policy_path ? EXIT_USAGE : EXIT_RUNTIME;

	so.format = o.format;
	so.payload = o.payload;
	so.stack = o.stack;
	so.capture_only = o.capture_only;
	so.violations_only = o.violations_only;
	so.show_identities = o.show_identities;
	so.identity_key = o.identity_key;
	so.user_filter = o.user;
	so.ringbuf_size = o.ringbuf_size;
	so.write_cap = o.write_cap;
	so.exe_globs = (const char *const *)o.exe_globs;
	so.nglobs = o.nglobs;
	s = session_open(&so, p, stdout);
	if (!s)
		return EXIT_RUNTIME;
	targets = calloc(1, sizeof(*targets));
	if (!targets) {
		log_err("out of memory");
		session_close(s, "trace_end");
		return EXIT_RUNTIME;
	}
	add_initial_targets(s, &o, targets);
	if (!targets->n && !o.nglobs) {
		log_err("no process to trace");
		free(targets);
		session_close(s, "trace_end");
		return EXIT_USAGE;
	}
	/* Blind is an error: the instance sees a write of its own before it says it traces. */
	if (session_selfcheck(s, SELFCHECK_TIMEOUT_MS, true)) {
		log_err("self-check failed: %s", session_selfcheck_state(s)->why);
		free(targets);
		fflush(stdout);
		session_close(s, "selfcheck_failed");
		return EXIT_RUNTIME;
	}
	session_startup(s, &cs);
	banner(targets, &cs, session_selfcheck_state(s), now_mono_ns() - t_start, o.nglobs, why);
	free(targets);

	rc = run(s, &o);
	/* Connections still open end now, so frames they cut short are in the totals. */
	session_end_connections(s, "trace_end");
	session_report(s, true);
	session_close(s, "trace_end");
	return rc;
}

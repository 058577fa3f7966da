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

#include "clock.h"
#include "cli.h"
#include "commands.h"
#include "keyhash.h"
#include "log.h"
#include "podinfo.h"
#include "policy.h"
#include "session.h"
#include "streamwrite.h"
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

/* A process followed from the start, for the banner. */
struct followed {
	pid_t pid;
	pid_t parent; /* 0: named with -p, in a chosen container, or matched by --exe */
	char comm[16];
	char where[128]; /* its pod and container, or "host" (podinfo_label()) */
};

/* Processes named in the banner; more are counted only. */
#define BANNER_MAX 64
/* Descendants of one -p process picked up at start. */
#define DESCENDANTS_MAX 1024
/* Processes of the chosen containers picked up at start. */
#define POD_PIDS_MAX 4096
/* Processes of other PID namespaces said to share a -p pid. */
#define ALIASES_MAX 4

struct start_targets {
	/* Checked before anything is loaded: the -p processes that exist, the containers'. */
	pid_t pids[TRACE_MAX_PIDS];
	size_t npids;
	pid_t pod_pids[POD_PIDS_MAX];
	size_t npod;
	struct podinfo_cache *pods; /* for the labels */
	const char *bundle_root;
	struct followed list[BANNER_MAX];
	unsigned int n; /* processes followed */
	int conns; /* established TCP connections they held at start */
};

static void label(struct start_targets *t, pid_t pid, char *buf, size_t size)
{
	struct podinfo pi;

	podinfo_lookup(t->pods, NULL, t->bundle_root, pid, &pi);
	podinfo_label(&pi, buf, size);
}

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
		label(t, pid, f->where, sizeof(f->where));
	}
	t->n++;
	n = target_count_tcp(pid);
	if (n > 0)
		t->conns += n;
}

static void selector_str(const struct trace_opts *o, char *buf, size_t size)
{
	const struct pod_selector *p = &o->pods;

	if (p->container_id)
		snprintf(buf, size, "container %s", p->container_id);
	else if (p->pod)
		snprintf(buf, size, "pod %s/%s%s%s", p->namespace, p->pod,
			 p->container ? ", container " : "", p->container ? p->container : "");
	else
		snprintf(buf, size, "namespace %s", p->namespace);
}

static void collect_pod_pid(void *ctx, pid_t pid, const struct podinfo *pi)
{
	struct start_targets *t = ctx;

	if (t->npod < POD_PIDS_MAX)
		t->pod_pids[t->npod] = pid;
	t->npod++;
}

/*
 * A -p pid that is also a pid inside another PID namespace (copied from `ps` in a
 * container): which process is traced is said, and how to trace the other.
 */
static void say_aliases(struct start_targets *t, pid_t pid)
{
	char comm[16], ocomm[16], where[128], owhere[128];
	pid_t alias[ALIASES_MAX];
	int n = target_nspid_aliases(pid, alias, ALIASES_MAX);

	if (n <= 0)
		return;
	target_comm(pid, comm, sizeof(comm));
	label(t, pid, where, sizeof(where));
	for (int i = 0; i < n && i < ALIASES_MAX; i++) {
		target_comm(alias[i], ocomm, sizeof(ocomm));
		label(t, alias[i], owhere, sizeof(owhere));
		log_warn("pid %d is traced as the host's pid %d (%s, %s); pid %d is also host pid "
			 "%d (%s, %s) inside its PID namespace: to trace that one, -p %d%s%s",
			 pid, pid, comm, where, pid, alias[i], ocomm, owhere, alias[i],
			 strchr(owhere, '/') ? " or --pod " : "",
			 strchr(owhere, '/') ? owhere : "");
	}
	if (n > ALIASES_MAX)
		log_warn("pid %d: %d more processes of other PID namespaces are pid %d there", pid,
			 n - ALIASES_MAX, pid);
}

/*
 * What the options name, checked before anything is loaded: the -p processes that exist
 * and the processes of the chosen containers.  0, or an exit code.
 */
static int resolve_targets(const struct trace_opts *o, struct start_targets *t)
{
	unsigned int unresolved[PODINFO__COUNT] = {};
	char what[PODINFO_POD_NAME_MAX + 128];
	int err, n;

	for (size_t i = 0; i < o->npids; i++) {
		err = target_check_pid(o->pids[i]);
		if (err) {
			log_err("pid %d: %s", o->pids[i],
				err == -ESRCH ? "no such process" : strerror(-err));
			continue;
		}
		t->pids[t->npids++] = o->pids[i];
		say_aliases(t, o->pids[i]);
	}
	if (o->by_pod) {
		selector_str(o, what, sizeof(what));
		n = target_scan_pods(t->pods, o->bundle_root, &o->pods, collect_pod_pid, t,
				     unresolved);
		if (n < 0) {
			log_err("failed to scan /proc for the processes of %s: %s", what,
				strerror(-n));
			return EXIT_RUNTIME;
		}
		for (int r = 0; r < PODINFO__COUNT; r++) {
			if (unresolved[r])
				log_warn(
					"%u process(es) in pod containers whose names could not be "
					"read (%s, under %s): they cannot match %s",
					unresolved[r], podinfo_reason_name(r),
					o->bundle_root ? o->bundle_root : PODINFO_BUNDLE_ROOT,
					what);
		}
		if (t->npod > POD_PIDS_MAX)
			log_warn("%s: %zu processes, only the first %d are followed", what, t->npod,
				 POD_PIDS_MAX);
		if (!n)
			log_err("no process of %s on this node", what);
	}
	if (!t->npids && !t->npod && !o->nglobs) {
		log_err("no process to trace");
		return EXIT_USAGE;
	}
	return 0;
}

/* A process of a chosen container found by the second scan, not followed yet. */
static void rescan_pod_pid(void *ctx, pid_t pid, const struct podinfo *pi)
{
	void **args = ctx;
	struct session *s = args[0];

	if (!session_follows(s, pid))
		follow(s, args[1], pid, 0);
}

/*
 * The checked -p processes with their descendants (uvicorn's and gunicorn's workers,
 * forked before the trace), the chosen containers' processes (again: one forked since the
 * check is found now, while the exec hook covers those started from here on), and those
 * matching --exe now.  A -p process is traced before its descendants are looked for: a
 * child it forks meanwhile is followed by the fork hook.
 */
static void add_initial_targets(struct session *s, const struct trace_opts *o,
				struct start_targets *t)
{
	pid_t kids[DESCENDANTS_MAX];
	void *args[2] = { s, t };
	int err, n;

	for (size_t i = 0; i < t->npids; i++) {
		follow(s, t, t->pids[i], 0);
		n = target_descendants(t->pids[i], kids, DESCENDANTS_MAX);
		if (n < 0)
			log_warn("pid %d: failed to list its descendants: %s", t->pids[i],
				 strerror(-n));
		else if (n == DESCENDANTS_MAX)
			log_warn("pid %d: more than %d descendants: only the first are followed",
				 t->pids[i], DESCENDANTS_MAX);
		for (int k = 0; k < n; k++)
			follow(s, t, kids[k], t->pids[i]);
	}
	for (size_t i = 0; i < t->npod && i < POD_PIDS_MAX; i++) {
		if (!session_follows(s, t->pod_pids[i]))
			follow(s, t, t->pod_pids[i], 0);
	}
	if (o->by_pod &&
	    target_scan_pods(t->pods, o->bundle_root, &o->pods, rescan_pod_pid, args, NULL) < 0)
		log_warn("failed to scan /proc again for the chosen containers' processes");
	err = session_scan_exe(s);
	if (err < 0)
		log_warn("failed to scan /proc for --exe matches: %s", strerror(-err));
	else
		t->n += err;
}

/* What is followed, how long the start took and what it found, before the `tracing` line. */
static void banner(const struct start_targets *t, const struct capture_startup *cs,
		   const struct session_selfcheck *sc, uint64_t took_ns, bool globs, bool pods,
		   const char *why_standalone)
{
	unsigned int shown = t->n < BANNER_MAX ? t->n : BANNER_MAX;

	if (shown) {
		fprintf(stderr, "wsaudit: following (pid comm pod/container):\n");
		for (unsigned int i = 0; i < shown; i++) {
			fprintf(stderr, "wsaudit:   %d %s %s", t->list[i].pid, t->list[i].comm,
				t->list[i].where);
			if (t->list[i].parent)
				fprintf(stderr, " (descendant of %d)", t->list[i].parent);
			fputc('\n', stderr);
		}
		if (t->n > shown)
			fprintf(stderr, "wsaudit:   and %u more\n", t->n - shown);
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
	fprintf(stderr, "wsaudit: tracing %u process(es)%s%s; Ctrl-C to stop\n", t->n,
		globs ? " and matching execs" : "",
		pods ? " and the processes the chosen containers start" : "");
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
	if (o->by_pod)
		return "--pod, --container-id or --namespace: the containers' new processes";
	if (o->wide && o->format == OUTPUT_TEXT)
		return "--wide";
	if (o->capture_only)
		return "--capture-only";
	if (o->show_identities)
		return "--show-identities";
	if (o->identity_key)
		return "--identity-key: user hashes of its own";
	if (o->user)
		return "--user";
	if (o->filter.msg_type || o->filter.function || o->filter.peer || o->filter.max_frames)
		return "--type, --function, --peer or -n";
	if (o->ringbuf_size || o->write_cap)
		return "a ring buffer or write cap of its own";
	if (o->write_dir)
		return "--write";
	return NULL;
}

/*
 * The trace served by the node's agent: nothing loaded here.  An exit code, or -1 with
 * *why set when the agent cannot serve it (then the trace goes standalone).
 */
static int trace_through_agent(const struct trace_opts *o, const struct start_targets *t,
			       uint64_t t_start, const char **why)
{
	static char reason[320];
	struct trace_agent_hello h;
	struct output *out;
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
	err = trace_agent_start(fd, o, t->pids, t->npids, &h);
	if (err) {
		close(fd);
		snprintf(reason, sizeof(reason), "%s", h.why);
		*why = reason;
		return -1;
	}
	/* The agent's check covers this trace's path: its programs are this trace's. */
	out = output_new(stdout, o->format, false, false);
	if (out)
		output_selfcheck(out, mono_ns(), h.selfcheck_ok, h.selfcheck_ok ? NULL : h.why,
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
		(mono_ns() - t_start) / 1e6, h.agent_pid, h.selfcheck_ms);
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
	/* The records are copied as they come: a failed write of them is said here, once. */
	if (ferror(stdout)) {
		log_err("the output could not be written: records were lost");
		return EXIT_RUNTIME;
	}
	return EXIT_OK;
}

/* Records are flushed after each poll: a large buffer spares a write(2) per record. */
static char stdout_buf[1 << 20];

static int run(struct session *s, const struct trace_opts *o)
{
	uint64_t start = mono_ns(), last_stats = start, now;
	uint64_t duration_ns = (uint64_t)(o->duration_s * 1e9);
	uint64_t interval_ns = (uint64_t)(o->stats_interval_s * 1e9);

	while (!stop_requested) {
		if (session_poll(s, POLL_MS))
			return EXIT_RUNTIME;
		if (session_count_reached(s))
			break;
		now = mono_ns();
		if (duration_ns && now - start >= duration_ns)
			break;
		if (interval_ns && now - last_stats >= interval_ns) {
			session_report(s, false);
			last_stats = now;
		}
		session_flush(s);
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

/* What --write wrote, and what it did not, on stderr at the end. */
static void write_summary(const struct streamwrite *w)
{
	const struct streamwrite_stats *st = streamwrite_stats(w);

	fprintf(stderr,
		"wsaudit: wrote %llu connection(s) to %s (%llu bytes, %llu packets, %llu frames "
		"described, %llu holes of %llu bytes said, %llu raw streams cut at a hole, %llu "
		"write errors)",
		(unsigned long long)st->conns, streamwrite_dir(w), (unsigned long long)st->bytes,
		(unsigned long long)st->packets, (unsigned long long)st->frames,
		(unsigned long long)st->holes, (unsigned long long)st->hole_bytes,
		(unsigned long long)st->raw_cut, (unsigned long long)st->write_errors);
	for (int i = 0; i < SW_SKIP__COUNT; i++)
		if (st->skipped[i])
			fprintf(stderr, "; %llu connection(s) not written whole: %s",
				(unsigned long long)st->skipped[i], streamwrite_skip_name(i));
	fputc('\n', stderr);
}

static void targets_free(struct start_targets *t)
{
	if (t)
		podinfo_cache_free(t->pods);
	free(t);
}

/* The trace; *wp is set to the --write files' writer, closed by the caller. */
static int trace_cmd(int argc, char **argv, struct streamwrite **wp)
{
	int parsed;
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t t_start = mono_ns();
	struct start_targets *targets;
	struct capture_startup cs;
	struct session_totals t;
	struct session_opts so = {};
	struct trace_opts o;
	struct streamwrite *w = NULL;
	struct session *s;
	struct policy *p;
	const char *why;
	char err[4400];
	int rc;

	/* Before anything is written to stdout, as setvbuf requires. */
	setvbuf(stdout, stdout_buf, _IOFBF, sizeof(stdout_buf));
	parsed = cli_parsed(trace_parse_args(argc, argv, &o, err, sizeof(err)), &o.help, "trace",
			    err, trace_usage);
	if (parsed != CLI_GO_ON)
		return parsed;
	log_max_level = o.verbose >= 2 ? LOG_DEBUG : o.verbose ? LOG_INFO : LOG_WARN;
	/* A key that cannot be used is a usage error, found before anything is loaded. */
	if (keyhash_identity_setup(o.identity_key, err, sizeof(err))) {
		fprintf(stderr, "wsaudit trace: %s\n", err);
		return EXIT_USAGE;
	}
	/* So is a directory --write cannot write in. */
	if (o.write_dir) {
		struct streamwrite_opts wo = {
			.dir = o.write_dir,
			.conn_max = o.write_conn_max,
			.run_max = o.write_run_max,
		};

		*wp = w = streamwrite_open(&wo, err, sizeof(err));
		if (!w) {
			fprintf(stderr, "wsaudit trace: %s\n", err);
			return EXIT_USAGE;
		}
	}
	targets = calloc(1, sizeof(*targets));
	if (targets)
		targets->pods = podinfo_cache_new(0);
	if (!targets || !targets->pods) {
		log_err("out of memory");
		targets_free(targets);
		return EXIT_RUNTIME;
	}
	targets->bundle_root = o.bundle_root;
	/* A target that does not exist is said before any program is loaded. */
	rc = resolve_targets(&o, targets);
	if (rc) {
		targets_free(targets);
		return rc;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	why = needs_standalone(&o);
	if (!why) {
		rc = trace_through_agent(&o, targets, t_start, &why);
		if (rc >= 0) {
			targets_free(targets);
			return rc;
		}
	}
	p = load_policy(o.policy_path);
	if (!p) {
		targets_free(targets);
		return o.policy_path ? EXIT_USAGE : EXIT_RUNTIME;
	}

	so.format = o.format;
	so.wide = o.wide;
	so.payload = o.payload;
	so.stack = o.stack;
	so.walk_to_verdict = !o.stack;
	so.capture_only = o.capture_only;
	so.violations_only = o.violations_only;
	so.show_identities = o.show_identities;
	so.identity_key = o.identity_key;
	so.user_filter = o.user;
	so.filter = &o.filter;
	so.ringbuf_size = o.ringbuf_size;
	so.write_cap = o.write_cap;
	so.exe_globs = (const char *const *)o.exe_globs;
	so.nglobs = o.nglobs;
	so.pods = o.by_pod ? &o.pods : NULL;
	so.bundle_root = o.bundle_root;
	so.write = w;
	s = session_open(&so, p, stdout);
	if (!s) {
		targets_free(targets);
		return EXIT_RUNTIME;
	}
	add_initial_targets(s, &o, targets);
	if (!targets->n && !o.nglobs) {
		log_err("no process to trace");
		targets_free(targets);
		session_close(s, "trace_end");
		return EXIT_USAGE;
	}
	/* Blind is an error: the instance sees a write of its own before it says it traces. */
	if (session_selfcheck(s, SELFCHECK_TIMEOUT_MS, true)) {
		log_err("self-check failed: %s", session_selfcheck_state(s)->why);
		targets_free(targets);
		fflush(stdout);
		session_close(s, "selfcheck_failed");
		return EXIT_RUNTIME;
	}
	session_startup(s, &cs);
	banner(targets, &cs, session_selfcheck_state(s), mono_ns() - t_start, o.nglobs, o.by_pod,
	       why);
	targets_free(targets);

	rc = run(s, &o);
	/* Connections still open end now, so frames they cut short are in the totals. */
	session_end_connections(s, "trace_end");
	session_report(s, true);
	/* Records the output did not take are lost to whoever reads it: the trace failed. */
	session_totals(s, &t);
	if (t.output_errors) {
		log_err("the output lost records (%llu write or build errors): see above",
			(unsigned long long)t.output_errors);
		rc = EXIT_RUNTIME;
	}
	session_close(s, "trace_end");
	return rc;
}

int cmd_trace(int argc, char **argv)
{
	struct streamwrite *w = NULL;
	int rc = trace_cmd(argc, argv, &w);

	/* After the session: its connections' files end with it. */
	if (w) {
		write_summary(w);
		streamwrite_close(w);
	}
	return rc;
}

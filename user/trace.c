// SPDX-License-Identifier: GPL-2.0
/*
 * `wsaudit trace`: follow given processes (and executables matching globs) from a shell,
 * printing every outbound WebSocket frame until Ctrl-C or the duration ends.  This file only
 * wires the modules: capture (kernel) -> conntrack (connections, frames) -> output.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attrib.h"
#include "capture.h"
#include "http1.h"
#include "identity.h"
#include "policy.h"
#include "rules.h"
#include "commands.h"
#include "conntrack.h"
#include "log.h"
#include "output.h"
#include "targets.h"
#include "trace_opts.h"
#include "uvhook.h"

/* How long the collector sleeps when the kernel has not woken it. */
#define POLL_MS 50
/* A transport hand-over whose bytes were not sent within this long never will be. */
#define TOKEN_MAX_AGE_NS (30ULL * 1000000000ULL)

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct tracer {
	struct trace_opts opts;
	struct capture *cap;
	struct conntrack *ct;
	struct output *out;
	struct attrib *attrib;
	struct policy *policy;
	struct rules *rules;
	uint64_t records;
	uint64_t processes;
};

static uint64_t now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* The user the upgrade request names, by the policy's identity.connection rules. */
static void conn_identify(struct tracer *t, struct ct_conn *c)
{
	struct http1_parser *p;
	const struct http1_message *m;
	struct identity_conn id;
	size_t used;

	if (!c->request_head)
		return;
	p = http1_parser_new(HTTP1_REQUEST);
	if (!p)
		return;
	if (http1_parser_feed(p, c->request_head, strlen(c->request_head), &m, &used) ==
		    HTTP1_DONE &&
	    !identity_from_request(t->policy, m, &id) && id.reason == IDENTITY_OK) {
		snprintf(c->user, sizeof(c->user), "%s", id.user);
		rules_redact(t->rules, c->user, c->user_shown, sizeof(c->user_shown));
		c->has_user = true;
	}
	http1_parser_free(p);
}

static void sink_conn_open(void *ctx, struct ct_conn *c, uint64_t ts_ns)
{
	struct tracer *t = ctx;

	conn_identify(t, c);
	output_conn_open(t->out, c, ts_ns);
}

static void sink_conn_close(void *ctx, const struct ct_conn *c, uint64_t ts_ns, const char *why)
{
	output_conn_close(((struct tracer *)ctx)->out, c, ts_ns, why);
}

static void judge_and_print(struct tracer *t, const struct ct_frame *f,
			    const struct attrib_stack *s)
{
	struct identity_message im;
	struct rules_verdict verdict;
	char user_shown[IDENTITY_MAX_VALUE + 1];
	struct frame_view fv = { .frame = f, .stack = s, .verdict = &verdict };
	struct rules_input in = {
		.opcode = f->frame->opcode,
		.conn_user = f->conn->has_user ? f->conn->user : NULL,
		.stack = s,
	};
	const struct ws_message *m = f->message;

	/* Only whole, decoded messages are read for their fields. */
	if (m && m->status == WS_MSG_OK &&
	    !identity_from_message(t->policy, m->opcode, m->data, m->len, &im) &&
	    im.reason == IDENTITY_OK) {
		in.msg = &im;
		if (im.type.reason == IDENTITY_OK)
			fv.msg_type = im.type.value;
		if (im.user.reason == IDENTITY_OK) {
			rules_redact(t->rules, im.user.value, user_shown, sizeof(user_shown));
			fv.msg_user = user_shown;
		}
	}
	rules_judge(t->rules, &in, &verdict);
	if (t->opts.violations_only && !verdict.nviolations)
		return;
	output_frame(t->out, &fv);
}

static void sink_frame(void *ctx, const struct ct_frame *f)
{
	struct tracer *t = ctx;
	struct attrib_stack *own = NULL;
	const struct attrib_stack *s = f->stack;

	/*
	 * An object handed to a transport that sent it later carries the stack of the hand-over:
	 * exact where the syscall's own stack only shows the event loop.
	 */
	if (f->user_addr)
		s = own = attrib_token_take(t->attrib, f->pid, f->user_addr);
	if (!s)
		s = f->stack;
	if (!s)
		s = own = attrib_missing(t->attrib, f->pid);
	if (!s)
		return;
	attrib_count(t->attrib, s);
	judge_and_print(t, f, s);
	attrib_stack_put(own);
}

static struct attrib_stack *sink_stack(void *ctx, const struct evt_stack *e)
{
	return attrib_resolve(((struct tracer *)ctx)->attrib, e);
}

static void uvloop_site(void *ctx, const char *path, dev_t dev, ino_t ino,
			unsigned long long offset)
{
	struct tracer *t = ctx;
	int err = capture_attach_transport_write(t->cap, path, dev, ino, offset);

	if (err)
		log_warn("failed to attach to uvloop's transport write at %s+0x%llx: %s", path,
			 offset, strerror(-err));
}

/* Finds the process's interpreter and enables the stack walk for it. */
static void python_attach(struct tracer *t, pid_t pid)
{
	struct py_offsets off;
	int err;

	err = attrib_add_process(t->attrib, pid, &off);
	if (err || t->opts.capture_only)
		return;
	err = capture_set_pyoffsets(t->cap, pid, &off);
	if (err)
		log_warn("failed to enable the stack walk for pid %d: %s", pid, strerror(-err));
	/* uvloop sends later what it is given: its write methods take the stack instead. */
	err = uvhook_find_in_process(pid, uvloop_site, t);
	if (err > 0)
		log_info("pid %d: uvloop transport writes hooked at %d site(s)", pid, err);
}

static int sink_verdict(void *ctx, const struct conn_id *id, enum conn_state state)
{
	struct tracer *t = ctx;
	int err = capture_set_verdict(t->cap, id, state);

	if (err)
		log_warn("failed to pass a connection verdict to the kernel: %s", strerror(-err));
	return err;
}

static void trace_add(struct tracer *t, pid_t pid, const char *how)
{
	char comm[32];
	int err;

	target_comm(pid, comm, sizeof(comm));
	err = capture_trace_pid(t->cap, pid);
	if (err) {
		log_err("failed to trace pid %d (%s): %s", pid, comm, strerror(-err));
		return;
	}
	t->processes++;
	log_info("tracing pid %d (%s)%s", pid, comm, how);
	/* A process caught at exec has not loaded its interpreter yet: see on_record. */
	if (!target_maps_python(pid)) {
		if (!*how)
			log_warn("pid %d (%s) runs no CPython interpreter: its frames are "
				 "captured, without Python attribution",
				 pid, comm);
		return;
	}
	python_attach(t, pid);
}

static void scan_cb(void *ctx, pid_t pid)
{
	trace_add(ctx, pid, " (matched --exe)");
}

static void handle_proc(struct tracer *t, const struct evt_proc *e)
{
	char comm[sizeof(e->comm) + 1], exe[4096];

	memcpy(comm, e->comm, sizeof(e->comm));
	comm[sizeof(e->comm)] = '\0';
	switch (e->hdr.type) {
	case EVT_PROC_EXEC:
		/* The path as exec'd, or the resolved one (for relative or symlinked paths). */
		if (target_exe_matches(e->filename, t->opts.exe_globs, t->opts.nglobs) ||
		    (!target_exe_path(e->pid, exe, sizeof(exe)) &&
		     target_exe_matches(exe, t->opts.exe_globs, t->opts.nglobs))) {
			trace_add(t, e->pid, " (exec matched --exe)");
			output_process(t->out, "process_start", e->hdr.ts_ns, e->pid, comm, 0);
		}
		break;
	case EVT_PROC_FORK:
		t->processes++;
		attrib_fork_process(t->attrib, e->ppid, e->pid);
		log_info("tracing pid %u, forked by traced pid %u", e->pid, e->ppid);
		output_process(t->out, "process_fork", e->hdr.ts_ns, e->pid, comm, 0);
		break;
	case EVT_PROC_EXIT:
		if (t->processes)
			t->processes--;
		conntrack_forget_tgid(t->ct, e->pid, e->hdr.ts_ns);
		capture_forget_tgid(t->cap, e->pid);
		attrib_forget_process(t->attrib, e->pid);
		output_process(t->out, "process_exit", e->hdr.ts_ns, e->pid, comm, e->exit_code);
		break;
	}
}

static int on_record(void *ctx, const void *data, size_t size)
{
	struct tracer *t = ctx;
	const struct evt_hdr *h = data;

	t->records++;
	if (size >= sizeof(struct evt_proc) && h->version == EVT_VERSION &&
	    (h->type == EVT_PROC_EXEC || h->type == EVT_PROC_FORK || h->type == EVT_PROC_EXIT)) {
		handle_proc(t, data);
		return 0;
	}
	if (size >= sizeof(struct evt_stack) && h->type == EVT_STACK &&
	    ((const struct evt_stack *)data)->site == STACK_AT_TRANSPORT_WRITE) {
		const struct evt_stack *e = data;
		struct attrib_stack *s = attrib_resolve(t->attrib, e);

		if (s)
			attrib_token_put(t->attrib, e->tgid, e->token, e->hdr.ts_ns, s);
		return 0;
	}
	/* Processes matched at exec are inspected once they talk: the interpreter is loaded. */
	if (size >= sizeof(struct evt_conn) && h->type == EVT_CONN_NEW &&
	    !attrib_known(t->attrib, ((const struct evt_conn *)data)->tgid))
		python_attach(t, ((const struct evt_conn *)data)->tgid);
	conntrack_record(t->ct, data, size);
	return 0;
}

static void report_stats(struct tracer *t, const struct ct_stats *ct, bool final)
{
	struct capture_counters k = {};
	struct trace_totals totals = {
		.records = t->records,
		.processes = t->processes,
		.kernel = &k,
		.attrib = attrib_stats(t->attrib),
		.rules = rules_stats(t->rules),
	};

	if (capture_read_counters(t->cap, &k))
		log_warn("failed to read the kernel counters");
	totals.ct = ct;
	output_stats(t->out, &totals, final);
}

/* The valid targets among -p, and those matching --exe now. */
static int add_initial_targets(struct tracer *t)
{
	int err;

	for (size_t i = 0; i < t->opts.npids; i++) {
		err = target_check_pid(t->opts.pids[i]);
		if (err) {
			log_err("pid %d: %s", t->opts.pids[i],
				err == -ESRCH ? "no such process" : strerror(-err));
			continue;
		}
		trace_add(t, t->opts.pids[i], "");
	}
	if (t->opts.nglobs) {
		err = target_scan_exe(t->opts.exe_globs, t->opts.nglobs, scan_cb, t);
		if (err < 0)
			log_warn("failed to scan /proc for --exe matches: %s", strerror(-err));
	}
	return 0;
}

static int run(struct tracer *t)
{
	uint64_t start = now_mono_ns(), last_stats = start, now;
	uint64_t duration_ns = (uint64_t)(t->opts.duration_s * 1e9);
	uint64_t interval_ns = (uint64_t)(t->opts.stats_interval_s * 1e9);
	int n;

	while (!stop_requested) {
		n = capture_poll(t->cap, POLL_MS);
		if (n < 0 && n != -EINTR) {
			log_err("failed to read the ring buffer: %s", strerror(-n));
			return EXIT_RUNTIME;
		}
		now = now_mono_ns();
		if (duration_ns && now - start >= duration_ns)
			break;
		attrib_token_expire(t->attrib, now, TOKEN_MAX_AGE_NS);
		if (interval_ns && now - last_stats >= interval_ns) {
			report_stats(t, conntrack_stats(t->ct), false);
			last_stats = now;
		}
		fflush(stdout);
	}
	/* Records already queued belong to the trace: drain them before the totals. */
	capture_poll(t->cap, 0);
	return EXIT_OK;
}

int cmd_trace(int argc, char **argv)
{
	struct tracer t = {};
	struct capture_opts copts = {};
	struct ct_sink sink = {
		.conn_open = sink_conn_open,
		.conn_close = sink_conn_close,
		.frame = sink_frame,
		.stack = sink_stack,
		.verdict = sink_verdict,
		.ctx = &t,
	};
	struct sigaction sa = { .sa_handler = on_signal };
	struct ct_stats snapshot;
	char err[POLICY_ERR_LEN];
	int rc;

	if (trace_parse_args(argc, argv, &t.opts, err, sizeof(err))) {
		fprintf(stderr, "wsaudit trace: %s\n", err);
		trace_usage(stderr);
		return EXIT_USAGE;
	}
	if (t.opts.help) {
		trace_usage(stdout);
		return EXIT_OK;
	}
	log_max_level = t.opts.verbose >= 2 ? LOG_DEBUG : t.opts.verbose ? LOG_INFO : LOG_WARN;
	if (geteuid() != 0)
		log_warn("not running as root: loading BPF programs needs CAP_BPF and CAP_PERFMON");

	if (t.opts.policy_path) {
		t.policy = policy_load(t.opts.policy_path, err, sizeof(err));
		if (!t.policy) {
			fprintf(stderr, "wsaudit trace: %s\n", err);
			return EXIT_USAGE;
		}
	} else {
		t.policy = policy_default();
		if (!t.policy) {
			log_err("failed to load the built-in policy");
			return EXIT_RUNTIME;
		}
	}
	t.out = output_new(stdout, t.opts.format, t.opts.payload, t.opts.stack);
	t.ct = conntrack_new(&sink, 0);
	t.attrib = attrib_new((const char *const *)t.policy->transport_files.v,
			      t.policy->transport_files.n);
	t.rules = rules_new(t.policy, t.opts.show_identities, 0);
	if (!t.out || !t.ct || !t.attrib || !t.rules) {
		log_err("out of memory");
		rc = EXIT_RUNTIME;
		goto out_free;
	}
	if (t.opts.capture_only)
		attrib_disable(t.attrib);
	copts.ringbuf_size = t.opts.ringbuf_size;
	copts.write_cap = t.opts.write_cap;
	copts.follow_exec = t.opts.nglobs > 0;
	t.cap = capture_open(&copts, on_record, &t);
	if (!t.cap) {
		rc = EXIT_RUNTIME;
		goto out_free;
	}
	add_initial_targets(&t);
	if (!t.processes && !t.opts.nglobs) {
		log_err("no process to trace");
		rc = EXIT_USAGE;
		goto out_free;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "wsaudit: tracing %llu process(es)%s; Ctrl-C to stop\n",
		(unsigned long long)t.processes, t.opts.nglobs ? " and matching execs" : "");

	rc = run(&t);
	/* Totals first, then the connections still open end: the totals stay the last line. */
	snapshot = *conntrack_stats(t.ct);
	conntrack_free(t.ct, "trace_end");
	t.ct = NULL;
	report_stats(&t, &snapshot, true);

out_free:
	conntrack_free(t.ct, "trace_end");
	capture_close(t.cap);
	attrib_free(t.attrib);
	rules_free(t.rules);
	policy_free(t.policy);
	output_free(t.out);
	return rc;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * `wsaudit run`: CI mode.  Starts COMMAND (a test suite) traced from its first instruction,
 * follows it and every process it starts, waits for it, and fails the job on a violation.
 * The pipeline is user/session.c; the findings and their reports are user/report.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "commands.h"
#include "delivery.h"
#include "log.h"
#include "policy.h"
#include "report.h"
#include "run_opts.h"
#include "session.h"
#include "testrun.h"

/*
 * How long the collector sleeps when the kernel has not woken it: short, because the
 * running test of the pytest processes is read after each poll (user/testrun.c), and a
 * test is named for a frame only when it was seen running before the frame was written.
 */
#define POLL_MS 10

struct run_ctx {
	struct report *report;
	struct testrun *tests;
	unsigned int runs_timeout_s; /* the policy's, for run details */
	const char *root;
};

static volatile sig_atomic_t pending_signal;

static void on_signal(int sig)
{
	pending_signal = sig;
}

static void observe_frame(void *ctx, const struct frame_view *fv)
{
	struct run_ctx *rc = ctx;

	/* A process that writes frames may be (or be run by) pytest: its tests are followed. */
	testrun_watch(rc->tests, fv->frame->pid);
	report_frame(rc->report, fv);
}

static enum test_unknown running_test(void *ctx, pid_t writer, uint64_t ts_ns, char *out,
				      size_t size)
{
	return testrun_at(ctx, writer, ts_ns, out, size);
}

/*
 * The test that caused what is found outside a frame: the one on stack (may be NULL), else
 * the one pid's pytest process was running at ts_ns (*running set).
 */
static enum test_unknown test_of(struct run_ctx *rc, const struct attrib_stack *stack, pid_t pid,
				 uint64_t ts_ns, char *out, size_t size, bool *running)
{
	enum test_unknown why = TEST_UNATTRIBUTED;

	*running = false;
	out[0] = '\0';
	if (stack && (why = testname_from_stack(stack, rc->root, out, size)) == TEST_FOUND)
		return why;
	why = testrun_at(rc->tests, pid, ts_ns, out, size);
	*running = why == TEST_FOUND;
	return why;
}

/* A connection closed without a close frame: abnormal_close, at the function that closed it. */
static void observe_abrupt_close(void *ctx, const struct ct_conn *c, uint64_t ts_ns,
				 const char *why)
{
	struct run_ctx *rc = ctx;
	char detail[1400], test[1024];
	enum test_unknown tw;
	bool running;

	(void)why;
	delivery_abrupt_detail(c, detail, sizeof(detail));
	tw = test_of(rc, c->closer, (pid_t)c->tgid, ts_ns, test, sizeof(test), &running);
	report_abrupt_close(rc->report, c->closer, detail, test, tw, running);
}

/* A write its transport still held at the close: delivery_failed, at the function that wrote it. */
static void observe_queued(void *ctx, const struct queued_view *qv)
{
	struct run_ctx *rc = ctx;
	const struct attrib_stack *s = qv->write->stack;
	const struct attrib_frame *o = causal_origin(s, qv->link, &(enum causal_via){ VIA_NONE });
	char detail[1400], test[1024];
	enum test_unknown tw;
	bool running;

	output_queued_detail(qv, detail, sizeof(detail));
	tw = test_of(rc, s, (pid_t)qv->conn->tgid, qv->write->ts_ns, test, sizeof(test), &running);
	report_queued(rc->report, s, o, detail, test, tw, running);
}

/* A run finding, named after the test running when its last event was sent. */
static void observe_run(void *ctx, const struct run_report *rep)
{
	struct run_ctx *rc = ctx;
	char detail[RUNS_VALUE_MAX * 2], test[1024];
	enum test_unknown tw = TEST_UNATTRIBUTED;
	bool running = false;

	runs_detail(rep, rc->runs_timeout_s, detail, sizeof(detail));
	if (rep->rule != RUN_UNJUDGED)
		tw = test_of(rc, NULL, (pid_t)rep->pid, rep->last_ns, test, sizeof(test), &running);
	report_run(rc->report, rep, detail, test, tw, running);
}

/* --fail-on not given: what fails is what the policy says is an error. */
static void fail_on_from_policy(bool fail_on[REPORT_KINDS], const struct policy *p)
{
	if (p->unjudged_severity != POLICY_SEVERITY_ERROR)
		fail_on[RULE_UNJUDGED] = false;
	for (int k = RULE_DELIVERY_FAILED; k <= RULE_AFTER_CLOSE; k++)
		fail_on[k] = p->delivery_severity == POLICY_SEVERITY_ERROR;
	for (int k = REPORT_INCOMPLETE_RUN; k <= REPORT_MISSING_EVENT; k++)
		fail_on[k] = p->runs.severity == POLICY_SEVERITY_ERROR;
}

static struct policy *load_policy(const char *path)
{
	char err[POLICY_ERR_LEN];
	struct policy *p = policy_open(path, err, sizeof(err));

	if (!p && path)
		fprintf(stderr, "wsaudit run: %s\n", err);
	else if (!p)
		log_err("%s", err);
	return p;
}

/*
 * Forks COMMAND held on a pipe: it runs (execvp) only once the parent has put it in the
 * traced set, so nothing it or its children write is missed.  The child's pid, or -errno.
 */
static pid_t start_command(struct session *s, char **command)
{
	int fds[2], err;
	pid_t pid;
	char go;

	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(fds[0]);
		close(fds[1]);
		return err;
	}
	if (pid == 0) {
		close(fds[1]);
		/* EOF: the parent gave up (it could not trace us); run nothing untraced. */
		if (read(fds[0], &go, 1) != 1)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execvp(command[0], command);
		fprintf(stderr, "wsaudit run: cannot run '%s': %s\n", command[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(fds[0]);
	err = session_add_pid(s, pid, " (the command)");
	if (err) {
		close(fds[1]);
		waitpid(pid, NULL, 0);
		return err;
	}
	if (write(fds[1], "g", 1) != 1) {
		err = -errno;
		close(fds[1]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return err;
	}
	close(fds[1]);
	return pid;
}

/* Polls until the command exits; its wait status, or -errno when tracing failed. */
static int follow(struct session *s, struct testrun *tests, pid_t pid, int *status)
{
	int forwarded = 0;
	pid_t r;

	for (;;) {
		if (session_poll(s, POLL_MS)) {
			kill(pid, SIGTERM);
			waitpid(pid, status, 0);
			return -EIO;
		}
		/* A CI runner stops the job with SIGTERM: the command gets it too, once. */
		if (pending_signal && pending_signal != forwarded) {
			forwarded = pending_signal;
			kill(pid, forwarded);
		}
		testrun_sample(tests);
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -errno;
		/* Records are flushed after each poll (stdout or --output-file). */
		fflush(NULL);
	}
	/* What it wrote last is still queued: drained before the totals. */
	session_drain(s);
	return 0;
}

static int command_exit(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_RUNTIME;
}

/* The reports asked for; 0 or -1 when one could not be written (said). */
static int write_reports(const struct report *r, const struct run_opts *o)
{
	int err, failed = 0;

	if (o->sarif_path && (err = report_write_sarif(r, o->sarif_path, o->fail_on))) {
		log_err("cannot write SARIF to %s: %s", o->sarif_path, strerror(-err));
		failed = -1;
	}
	if (o->junit_path && (err = report_write_junit(r, o->junit_path, o->fail_on))) {
		log_err("cannot write JUnit to %s: %s", o->junit_path, strerror(-err));
		failed = -1;
	}
	if (o->write_baseline_path && (err = report_write_baseline(r, o->write_baseline_path))) {
		log_err("cannot write the baseline to %s: %s", o->write_baseline_path,
			strerror(-err));
		failed = -1;
	}
	return failed;
}

int cmd_run(int argc, char **argv)
{
	int parsed;
	struct sigaction sa = { .sa_handler = on_signal };
	struct session_opts so = {};
	struct session_observer obs = {
		.frame_view = observe_frame,
		.conn_close = observe_abrupt_close,
		.queued = observe_queued,
		.run = observe_run,
	};
	struct run_ctx ctx = {};
	struct report_run run = {};
	struct session_totals t;
	char err[512], root[PATH_MAX];
	struct run_opts o;
	struct report *r;
	struct session *s;
	struct policy *p;
	FILE *out = stdout;
	int status = 0, rc;
	pid_t pid;

	parsed = cli_parsed(run_parse_args(argc, argv, &o, err, sizeof(err)), &o.help, "run", err,
			    run_usage);
	if (parsed != CLI_GO_ON)
		return parsed;
	log_max_level = o.verbose >= 2 ? LOG_DEBUG : o.verbose ? LOG_INFO : LOG_WARN;
	if (!realpath(o.source_root ? o.source_root : ".", root)) {
		fprintf(stderr, "wsaudit run: source root %s: %s\n", o.source_root ?: ".",
			strerror(errno));
		return EXIT_USAGE;
	}
	r = report_new(root);
	ctx.tests = testrun_new();
	if (!r || !ctx.tests) {
		report_free(r);
		testrun_free(ctx.tests);
		return EXIT_RUNTIME;
	}
	ctx.report = r;
	if (o.baseline_path && report_load_baseline(r, o.baseline_path, err, sizeof(err))) {
		fprintf(stderr, "wsaudit run: baseline: %s\n", err);
		report_free(r);
		testrun_free(ctx.tests);
		return EXIT_USAGE;
	}
	p = load_policy(o.policy_path);
	if (!p) {
		report_free(r);
		testrun_free(ctx.tests);
		return o.policy_path ? EXIT_USAGE : EXIT_RUNTIME;
	}
	if (!o.fail_on_given)
		fail_on_from_policy(o.fail_on, p);
	ctx.runs_timeout_s = p->runs.timeout_s;
	ctx.root = root;
	if (geteuid() != 0)
		log_warn("not running as root: loading BPF programs needs CAP_BPF and CAP_PERFMON");

	so.format = o.format;
	so.violations_only = true;
	so.quiet_processes = true;
	so.name_tests = true;
	so.test_root = root;
	if (o.output_path) {
		out = fopen(o.output_path, "we");
		if (!out) {
			fprintf(stderr, "wsaudit run: %s: %s\n", o.output_path, strerror(errno));
			report_free(r);
			testrun_free(ctx.tests);
			policy_free(p);
			return EXIT_USAGE;
		}
	}
	so.running_test = running_test;
	so.running_test_ctx = ctx.tests;
	s = session_open(&so, p, out);
	if (!s) {
		if (out != stdout)
			fclose(out);
		report_free(r);
		testrun_free(ctx.tests);
		return EXIT_RUNTIME;
	}
	obs.ctx = &ctx;
	session_set_observer(s, &obs);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	pid = start_command(s, o.command);
	if (pid < 0) {
		log_err("cannot start '%s': %s", o.command[0], strerror(-pid));
		session_close(s, "run_end");
		if (out != stdout)
			fclose(out);
		report_free(r);
		testrun_free(ctx.tests);
		return EXIT_RUNTIME;
	}
	testrun_set_root(ctx.tests, pid);
	rc = follow(s, ctx.tests, pid, &status);
	/* Connections still open end now, so frames they cut short are in the totals. */
	session_end_connections(s, "run_end");
	session_totals(s, &t);

	run.websocket_conns = t.ct.conns_websocket;
	run.unjudged = t.rules.bridge_unjudged;
	run.runs_completed = t.runs.completed;
	run.drops = t.kernel.drops;
	run.command_status = command_exit(status);
	run.fail_on = o.fail_on;
	/* COMMAND's own failure first, then wsaudit's, then the findings. */
	if (run.command_status)
		run.exit_code = run.command_status;
	else if (rc || write_reports(r, &o))
		run.exit_code = EXIT_RUNTIME;
	else
		run.exit_code = report_new_failures(r, o.fail_on) ? 1 : EXIT_OK;
	if (run.command_status)
		write_reports(r, &o);
	if (rc)
		log_err("tracing failed before the command ended: the report is incomplete");
	fflush(out);
	report_summary(r, out, o.format, &run);
	if (!run.websocket_conns)
		fprintf(stderr,
			"wsaudit run: '%s' started no WebSocket connection: nothing was "
			"audited\n",
			o.command[0]);
	session_close(s, "run_end");
	if (out != stdout && fclose(out)) {
		log_err("cannot write %s: %s", o.output_path, strerror(errno));
		if (!run.exit_code)
			run.exit_code = EXIT_RUNTIME;
	}
	fflush(stdout);
	report_free(r);
	testrun_free(ctx.tests);
	return run.exit_code;
}

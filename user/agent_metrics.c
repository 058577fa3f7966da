// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "agent_metrics.h"
#include "agent_socket.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "session.h"
#include "vlog.h"

/* Reading the kernel's per-CPU counters costs two syscalls: once a second is plenty. */
#define UPDATE_EVERY_NS 1000000000ULL

struct agent_metrics {
	struct metrics_wsaudit w;
	struct metrics_process proc;
	struct metrics_http *http;
	struct session *session;
	uint64_t last_update;
	/* Read by the HTTP thread's probes. */
	_Atomic uint64_t heartbeat_ns; /* the loop's last turn */
	atomic_bool attached; /* the BPF programs, at the last update */
	atomic_bool ready; /* attached once */
	atomic_bool blind; /* the last self-check did not see its own write come back */
};

static bool health(void *ctx, enum metrics_http_probe probe, char *why, size_t len)
{
	struct agent_metrics *m = ctx;
	uint64_t beat = atomic_load(&m->heartbeat_ns), now = mono_ns();

	if (!atomic_load(&m->ready)) {
		snprintf(why, len, "starting: the BPF programs are not attached yet");
		return false;
	}
	if (probe == METRICS_HTTP_READY)
		return true;
	if (now > beat && now - beat > AGENT_STALL_S * 1000000000ULL) {
		snprintf(why, len, "the collector loop has not turned for %.1f s",
			 (double)(now - beat) / 1e9);
		return false;
	}
	if (!atomic_load(&m->attached)) {
		snprintf(why, len, "the BPF programs are not attached");
		return false;
	}
	if (atomic_load(&m->blind)) {
		snprintf(why, len,
			 "the self-check did not see its own write come back through the "
			 "BPF programs (wsaudit_selfcheck_ok 0; the reason is on stderr)");
		return false;
	}
	return true;
}

static void on_frame(void *ctx, const struct ct_frame *f, const struct attrib_stack *s,
		     const struct causal_link *link, const struct rules_verdict *v)
{
	struct agent_metrics *m = ctx;
	const struct attrib_frame *o = causal_origin(s, link, &(enum causal_via){ VIA_NONE });
	const char *ns = NULL, *workload = NULL;

	metrics_add1(m->w.frames, ws_opcode_name(f->frame->opcode), 1);
	if (o)
		metrics_add(m->w.attributed, NULL, 1);
	if (v->nviolations)
		session_k8s_labels(m->session, (pid_t)f->pid, &ns, &workload);
	for (size_t i = 0; i < v->nviolations; i++)
		metrics_wsaudit_violation(&m->w, rule_name(v->v[i].rule), o ? o->function : NULL,
					  ns, workload);
}

/* Delivery: frames that never left, and closes with 1011, by origin (docs/delivery.md). */
static void on_frame_view(void *ctx, const struct frame_view *fv)
{
	struct agent_metrics *m = ctx;
	const struct attrib_stack *s = fv->stack;
	const struct attrib_frame *o = causal_origin(s, fv->link, &(enum causal_via){ VIA_NONE });
	const char *origin = o ? o->function : NULL;

	if (fv->frame->lost)
		metrics_wsaudit_lost(&m->w, origin, fv->msg_type);
	else if (fv->frame->frame->opcode == WS_OP_CLOSE && fv->frame->frame->close_code == 1011)
		metrics_wsaudit_abnormal_close(&m->w, 1011, origin);
}

/* A socket closed without a close frame: by the function that closed it, when known. */
/* A write its transport still held when the connection ended: by the function that wrote it. */
static void on_queued(void *ctx, const struct queued_view *qv)
{
	struct agent_metrics *m = ctx;
	const struct attrib_frame *o =
		causal_origin(qv->write->stack, qv->link, &(enum causal_via){ VIA_NONE });
	const char *origin = o ? o->function : NULL;
	const char *ns, *workload;

	session_k8s_labels(m->session, (pid_t)qv->conn->tgid, &ns, &workload);
	metrics_wsaudit_queued(&m->w, origin, qv->write->len);
	metrics_wsaudit_violation(&m->w, "delivery_failed", origin, ns, workload);
}

static void on_abrupt_close(void *ctx, const struct ct_conn *c, uint64_t ts_ns, const char *why)
{
	struct agent_metrics *m = ctx;
	const struct attrib_stack *s = c->closer;
	const char *origin = s && s->origin >= 0 ? s->frames[s->origin].function : NULL;
	const char *ns, *workload;

	(void)ts_ns;
	(void)why;
	session_k8s_labels(m->session, (pid_t)c->tgid, &ns, &workload);
	metrics_wsaudit_abnormal_close(&m->w, 0, origin);
	metrics_wsaudit_violation(&m->w, rule_name(RULE_ABNORMAL_CLOSE), origin, ns, workload);
}

/* The boot time in unix seconds (btime of /proc/stat), for the start time; 0 if unknown. */
static long long boot_time(void)
{
	char line[256];
	long long bt = 0;
	FILE *f = fopen("/proc/stat", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lld", &bt) == 1)
			break;
	if (f)
		fclose(f);
	return bt;
}

/* Read from /proc/self as the update runs; a file that cannot be read leaves its series. */
static void process_update(struct metrics_process *p)
{
	static long long btime = -1;
	unsigned long long utime, stime, start, vsize;
	long long rss, ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	char buf[1024], *at;
	struct rlimit rl;
	struct dirent *d;
	size_t n = 0;
	long fds = 0;
	DIR *dir;
	FILE *f;

	if (btime < 0)
		btime = boot_time();
	f = fopen("/proc/self/stat", "re");
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	/* After the command name (which may hold spaces or ')'): fields 3 on. */
	at = strrchr(buf, ')');
	if (at && ticks > 0 &&
	    sscanf(at + 1,
		   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
		   "%llu %llu %lld",
		   &utime, &stime, &start, &vsize, &rss) == 5) {
		metrics_counter_set(
			p->cpu, NULL,
			(uint64_t)((utime + stime) * 1000000ULL / (unsigned long long)ticks));
		metrics_gauge_set(p->rss, NULL, (double)rss * (double)page);
		metrics_gauge_set(p->vsize, NULL, (double)vsize);
		if (btime > 0)
			metrics_gauge_set(p->start, NULL, (double)btime + (double)start / ticks);
	}
	dir = opendir("/proc/self/fd");
	if (dir) {
		while ((d = readdir(dir)))
			fds += d->d_name[0] != '.';
		closedir(dir);
		/* Less the one opendir held. */
		metrics_gauge_set(p->fds, NULL, (double)(fds - 1));
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl))
		metrics_gauge_set(p->max_fds, NULL,
				  rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
}

struct agent_metrics *agent_metrics_start(const char *listen)
{
	struct agent_metrics *m = calloc(1, sizeof(*m));
	char err[256];

	if (!m)
		return NULL;
	if (metrics_wsaudit_init(&m->w, WSAUDIT_VERSION, WSAUDIT_GIT_REV)) {
		free(m);
		return NULL;
	}
	if (metrics_process_init(m->w.reg, &m->proc)) {
		metrics_wsaudit_fini(&m->w);
		free(m);
		return NULL;
	}
	process_update(&m->proc);
	m->http = metrics_http_start(m->w.reg, listen, err, sizeof(err));
	if (!m->http) {
		fprintf(stderr, "wsaudit agent: --metrics-addr %s: %s\n", listen, err);
		metrics_wsaudit_fini(&m->w);
		free(m);
		return NULL;
	}
	metrics_http_set_health(m->http, health, m);
	/* The agent runs only with a policy that loaded. */
	metrics_gauge_set(m->w.policy_last_reload_success, NULL, 1);
	log_info("serving metrics on %s", listen);
	return m;
}

void agent_metrics_stop(struct agent_metrics *m)
{
	if (!m)
		return;
	metrics_http_stop(m->http);
	metrics_wsaudit_fini(&m->w);
	free(m);
}

void agent_metrics_attach(struct agent_metrics *m, struct session *s)
{
	struct session_observer obs = {
		.frame = on_frame,
		.frame_view = on_frame_view,
		.conn_close = on_abrupt_close,
		.queued = on_queued,
		.ctx = m,
	};

	if (!m)
		return;
	m->session = s;
	session_set_observer(s, &obs);
	agent_metrics_update(m, s, NULL);
	atomic_store(&m->ready, true);
}

void agent_metrics_detach(struct agent_metrics *m)
{
	struct session_observer none = {};

	if (!m || !m->session)
		return;
	session_set_observer(m->session, &none);
	m->session = NULL;
	atomic_store(&m->attached, false);
}

void agent_metrics_trace_clients(struct agent_metrics *m, const struct agent_socket_stats *st)
{
	if (!m)
		return;
	metrics_gauge_set(m->w.trace_clients, NULL, (double)st->clients);
	metrics_counter_set(m->w.trace_client_drops, NULL, st->records_dropped);
}

void agent_metrics_policy_reload(struct agent_metrics *m, bool ok)
{
	if (!m)
		return;
	metrics_add1(m->w.policy_reloads, ok ? "ok" : "error", 1);
	/* Stays 0 while the refused policy is the one on disk: the alert holds until fixed. */
	metrics_gauge_set(m->w.policy_last_reload_success, NULL, ok ? 1 : 0);
}

/* The runs' reports, one family per rule (user/runs.h). */
static void runs_to_metrics(struct metrics_wsaudit *w, const struct runs_stats *r)
{
	struct metrics_family *f;

	metrics_counter_set(w->runs_completed, NULL, r->completed);
	metrics_gauge_set(w->runs_open, NULL, (double)r->open);
	for (int i = 0; i < RUN_REASON__COUNT; i++) {
		switch (run_reason_rule(i)) {
		case RUN_INCOMPLETE:
			f = w->runs_incomplete;
			break;
		case RUN_OUT_OF_ORDER:
			f = w->runs_out_of_order;
			break;
		case RUN_MISSING_EVENT:
			metrics_counter_set(w->runs_missing_event, NULL, r->reports[i]);
			continue;
		default:
			f = w->runs_unjudged;
		}
		metrics_counter_set(f, (const char *const[]){ run_reason_name(i) }, r->reports[i]);
	}
}

void agent_metrics_update(struct agent_metrics *m, struct session *s, const struct vlog_stats *log)
{
	struct metrics_http_stats hs;
	const struct session_selfcheck *sc;
	struct session_totals t;
	uint64_t now;

	if (!m)
		return;
	now = mono_ns();
	atomic_store(&m->heartbeat_ns, now);
	if (m->last_update && now - m->last_update < UPDATE_EVERY_NS)
		return;
	m->last_update = now;
	process_update(&m->proc);
	if (log) {
		metrics_counter_set(m->w.log_write_errors, NULL, log->write_errors);
		metrics_counter_set(m->w.log_dropped, NULL, log->dropped);
		metrics_gauge_set(m->w.log_queued, NULL, (double)log->queued);
	}
	metrics_http_stats(m->http, &hs);
	metrics_gauge_set(m->w.http_connections, NULL, (double)hs.open);
	metrics_counter_set(m->w.http_refused, (const char *const[]){ "limit" }, hs.refused_limit);
	metrics_counter_set(m->w.http_refused, (const char *const[]){ "per_ip" },
			    hs.refused_per_ip);
	metrics_counter_set(m->w.http_expired, NULL, hs.expired);
	session_totals(s, &t);
	atomic_store(&m->attached, t.probes_attached > 0);
	metrics_counter_set(m->w.events, NULL, t.records);
	metrics_counter_set(m->w.captured_bytes, NULL, t.kernel.stats[STAT_BYTES]);
	for (int i = 0; i < DROP_MAX; i++)
		metrics_counter_set(m->w.drops, (const char *const[]){ capture_drop_name(i) },
				    t.kernel.drops[i]);
	metrics_counter_set(m->w.dropped_bytes, (const char *const[]){ "cap_exceeded" },
			    t.kernel.stats[STAT_CAP_BYTES]);
	metrics_counter_set(m->w.dropped_bytes, (const char *const[]){ "lost" },
			    t.kernel.stats[STAT_LOST_BYTES]);
	for (int i = 1; i < UNATTR__COUNT; i++)
		metrics_counter_set(m->w.unattributed,
				    (const char *const[]){ unattributed_name(i) },
				    t.attrib.unattributed[i]);
	for (int i = 1; i < UNATTR__COUNT; i++)
		metrics_counter_set(m->w.unjudged, (const char *const[]){ unattributed_name(i) },
				    t.rules.unjudged[i]);
	metrics_counter_set(m->w.causal_links, (const char *const[]){ "linked" }, t.causal.linked);
	metrics_counter_set(m->w.causal_links, (const char *const[]){ "no_link" },
			    t.causal.no_link);
	metrics_counter_set(m->w.causal_links, (const char *const[]){ "no_context" },
			    t.causal.no_context);
	metrics_counter_set(m->w.causal_creations, NULL, t.causal.put);
	metrics_counter_set(m->w.code_names, (const char *const[]){ "taken" },
			    t.attrib.names_records);
	metrics_counter_set(m->w.code_names, (const char *const[]){ "rejected" },
			    t.attrib.names_rejected);
	metrics_counter_set(m->w.code_names, (const char *const[]){ "unknown_process" },
			    t.attrib.names_unknown);
	metrics_counter_set(m->w.causal_evicted, NULL, t.causal.evicted);
	metrics_counter_set(m->w.causal_skipped, NULL, t.kernel.stats[STAT_COPIES_SKIPPED]);
	for (int i = 0; i < WS_MSG__COUNT; i++)
		metrics_counter_set(m->w.messages, (const char *const[]){ ws_msg_status_name(i) },
				    t.ct.messages[i]);
	metrics_counter_set(m->w.parser_desyncs, NULL, t.ct.desyncs);
	metrics_counter_set(m->w.buffered_unseen, NULL, t.handed.unseen_conns);
	metrics_counter_set(m->w.truncated_frames, NULL, t.ct.truncated_frames);
	metrics_counter_set(m->w.connections_total, (const char *const[]){ "handshake" },
			    t.ct.conns_websocket - t.ct.conns_adopted);
	metrics_counter_set(m->w.connections_total, (const char *const[]){ "adopted" },
			    t.ct.conns_adopted);
	for (int i = CT_SKIP_NONE + 1; i < CT_SKIP__COUNT; i++)
		metrics_counter_set(m->w.conns_skipped, (const char *const[]){ ct_skip_name(i) },
				    t.ct.conns_skipped[i]);
	metrics_counter_set(m->w.conns_skipped, (const char *const[]){ "fd_passed" },
			    t.ct.conns_fd_passed);
	metrics_counter_set(m->w.tls_connections, (const char *const[]){ "linked" },
			    t.ct.tls_linked);
	metrics_counter_set(m->w.tls_connections, (const char *const[]){ "unlinked" },
			    t.ct.tls_unlinked);
	metrics_counter_set(m->w.conn_users, (const char *const[]){ "ambiguous" },
			    t.ct.users_ambiguous);
	metrics_counter_set(m->w.conn_users, (const char *const[]){ "unknown" },
			    t.ct.users_unknown);
	metrics_counter_set(m->w.adopted, (const char *const[]){ "history_recovered" },
			    t.ct.adopted_history_recovered);
	metrics_counter_set(m->w.adopted, (const char *const[]){ "history_unknown" },
			    t.ct.adopted_history_unknown);
	metrics_counter_set(m->w.adopted, (const char *const[]){ "user_unknown" },
			    t.ct.adopted_user_unknown);
	metrics_counter_set(m->w.adopted, (const char *const[]){ "user_recovered" },
			    t.ct.adopted_user_recovered);
	runs_to_metrics(&m->w, &t.runs);
	metrics_gauge_set(m->w.connections, NULL, (double)t.ct.conns_open);
	metrics_gauge_set(m->w.processes, NULL, (double)t.processes);
	metrics_gauge_set1(m->w.probes, "attached", t.probes_attached);
	metrics_gauge_set1(m->w.probes, "failed", t.probes_failed);
	sc = session_selfcheck_state(s);
	metrics_gauge_set(m->w.selfcheck_ok, NULL, session_selfcheck_ok(s));
	metrics_gauge_set(m->w.selfcheck_last_success, NULL, (double)sc->last_ok_unix);
	metrics_counter_set(m->w.selfcheck_failures, NULL, sc->failures);
	metrics_counter_set(m->w.selfcheck_deferred, NULL, sc->deferred);
	/* Before the first check, nothing is known: the loop and the attach decide alone. */
	atomic_store(&m->blind, sc->runs && !sc->ok);
}

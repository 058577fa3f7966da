// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adopt.h"
#include "capture.h"
#include "causal.h"
#include "clock.h"
#include "delivery.h"
#include "http1.h"
#include "identity.h"
#include "keyhash.h"
#include "log.h"
#include "filter.h"
#include "handed.h"
#include "procs.h"
#include "records.h"
#include "pyscope.h"
#include "runs.h"
#include "selfcheck.h"
#include "session.h"
#include "targets.h"
#include "testname.h"

/* A transport hand-over whose bytes were not sent within this long never will be. */
#define TOKEN_MAX_AGE_NS (30ULL * 1000000000ULL)

/* Message ends handed over with an object to a transport, by object (see zflush_handover). */
#define ZFLUSH_TOKENS 4096

struct zflush_token {
	uint32_t tgid;
	uint64_t token; /* 0: free */
	uint64_t strm, total_out;
};

/* Processes whose scans for connection requests are counted (user/pyscope.c). */
#define SCOPE_PIDS 64

struct session {
	struct session_opts opts;
	char user_filter[KEYHASH_DISPLAY_LEN]; /* trace --user, as a display; "" for all */
	uint64_t frames_printed; /* for trace -n */
	struct capture *cap;
	struct procs *procs;
	struct conntrack *ct;
	struct adopt *adopt;
	/* The latest scan for adopted connections' requests (user/pyscope.c), of scope_pid. */
	struct pyscope_scan *scope;
	pid_t scope_pid;
	/* Scans made per process (latest processes kept), so that each is scanned a bounded
	 * number of times even when adopted connections of several processes alternate. */
	struct scope_count {
		pid_t pid;
		unsigned int scans;
		uint64_t last_ns; /* when its last scan began */
	} scope_counts[SCOPE_PIDS];
	unsigned int nscope_counts;
	struct pyscope_totals scope_totals;
	struct zflush_token zflush_tokens[ZFLUSH_TOKENS];
	struct output *out;
	struct attrib *attrib;
	struct causal *causal;
	struct handed *handed; /* writes handed to a transport, until they leave */
	struct policy *policy;
	struct rules *rules;
	struct runs *runs;
	struct session_observer obs;
	uint64_t records;
	/* Where each kind of record goes (route_records()), and the table's own two. */
	struct records routes, probe_routes;
	struct record_route ct_stack, ct_conn_new;
	/* The self-check in progress (probe.pid != 0) and what it has seen of its probe. */
	struct selfcheck_probe probe;
	bool probe_conn, probe_data, probe_exit;
	struct session_selfcheck check;
	struct session_tap *taps;
};

/*
 * The user the upgrade request names, by the policy's identity.connection rules; a request
 * that names several is marked ambiguous, never resolved to one of them.
 */
static void conn_identify_request(struct session *s, struct ct_conn *c,
				  const struct http1_message *m)
{
	struct identity_conn id;

	if (identity_from_request(s->policy, m, &id)) {
		c->user_unknown = "no_memory";
	} else if (id.reason == IDENTITY_AMBIGUOUS) {
		c->user_ambiguous = id.ambiguous;
		log_info("connection %s: request names several users (%s)", c->id_str,
			 id.ambiguous);
	} else if (id.reason == IDENTITY_OK) {
		snprintf(c->user, sizeof(c->user), "%s", id.user);
		rules_redact(s->rules, c->user, c->user_shown, sizeof(c->user_shown));
		c->has_user = true;
	}
}

static void conn_identify(struct session *s, struct ct_conn *c)
{
	const struct http1_message *m;
	struct http1_parser *p;
	size_t used;

	if (!c->request_head || c->user_unknown || c->user_ambiguous)
		return;
	p = http1_parser_new(HTTP1_REQUEST);
	if (!p) {
		c->user_unknown = "no_memory";
		return;
	}
	c->identity_from = "handshake";
	if (http1_parser_feed(p, c->request_head, strlen(c->request_head), &m, &used) != HTTP1_DONE)
		c->user_unknown = "head_unparsable";
	else
		conn_identify_request(s, c, m);
	http1_parser_free(p);
}

/* A new scan of pid's memory for connection scopes; the reason it could not be made, or NULL. */
static const char *scope_rescan(struct session *s, pid_t pid)
{
	struct pyscope_totals *t = &s->scope_totals;
	const struct pyscope_stats *st;
	struct pyscope_layout l;
	struct pyproc_info *info;
	int err;

	s->scope_pid = pid;
	pyscope_scan_free(s->scope);
	s->scope = NULL;
	info = calloc(1, sizeof(*info));
	if (!info)
		return "no_memory";
	err = pyproc_inspect(pid, info);
	if (err || pyscope_layout_from(info, &l)) {
		free(info);
		t->scan_errors++;
		return "adopted_not_python";
	}
	free(info);
	s->scope = pyscope_scan_new(&l, NULL, NULL);
	if (!s->scope)
		return "no_memory";
	t->scans++;
	err = pyscope_scan_process(s->scope, pid);
	st = pyscope_scan_stats(s->scope);
	t->scan_bytes += st->bytes_read;
	t->scopes += st->scopes;
	t->bad_scopes += st->bad_scopes;
	t->objects += st->objects;
	t->bad_objects += st->bad_objects;
	if (st->limited || st->types_limited)
		t->scans_limited++;
	if (err) {
		t->scan_errors++;
		log_info("pid %d: its memory could not be read for connection requests: %s", pid,
			 strerror(-err));
		return "adopted_memory_unreadable";
	}
	log_debug("pid %d: %llu connection scopes, %llu connection objects (%llu unreadable) of "
		  "%llu classes in %llu bytes",
		  pid, (unsigned long long)st->scopes, (unsigned long long)st->objects,
		  (unsigned long long)st->bad_objects, (unsigned long long)st->conn_types,
		  (unsigned long long)st->bytes_read);
	return NULL;
}

/*
 * An adopted connection's request, read back from the server's connection object
 * (docs/adoption.md): one scan per process serves all its connections adopted then; a peer
 * not in it (adopted later, or its scope was not built yet) scans again, a bounded number of
 * times.  Where it cannot be read, user_unknown says why.
 */
#define SCOPE_SCANS_MAX 4

/*
 * Whether pid may be scanned once more for a connection first seen at seen_ns; counts the
 * scan.  Not when the scan at hand is pid's and began after that connection was seen: its
 * objects were in memory then, so another scan would not find them either (and a process of
 * a hundred connections none of which is found would be scanned for each).
 */
static bool scope_may_scan(struct session *s, pid_t pid, uint64_t seen_ns)
{
	struct scope_count *c = NULL;

	for (unsigned int i = 0; i < SCOPE_PIDS && i < s->nscope_counts; i++) {
		if (s->scope_counts[i].pid == pid)
			c = &s->scope_counts[i];
	}
	if (!c) {
		c = &s->scope_counts[s->nscope_counts++ % SCOPE_PIDS];
		c->pid = pid;
		c->scans = 0;
	}
	if (c->scans >= SCOPE_SCANS_MAX ||
	    (c->scans && s->scope && s->scope_pid == pid && seen_ns < c->last_ns))
		return false;
	c->scans++;
	c->last_ns = mono_ns();
	return true;
}

static void conn_identify_adopted(struct session *s, struct ct_conn *c, uint64_t seen_ns)
{
	struct pyscope_totals *t = &s->scope_totals;
	const struct http1_message *m = NULL;
	const char *why = NULL;
	char ip[PYSCOPE_IP_MAX + 1];
	pid_t pid = (pid_t)c->tgid;
	uint16_t port;
	int err = -ENOENT;

	if (pyscope_parse_peer(c->peer, ip, &port)) {
		c->user_unknown = "adopted_peer_unknown";
		return;
	}
	if (s->scope && s->scope_pid == pid)
		m = pyscope_lookup(s->scope, ip, port, &err);
	if (!m && err == -ENOENT && scope_may_scan(s, pid, seen_ns)) {
		why = scope_rescan(s, pid);
		if (!why)
			m = pyscope_lookup(s->scope, ip, port, &err);
	}
	if (m) {
		t->recovered++;
		c->identity_from = "process_memory";
		conn_identify_request(s, c, m);
		return;
	}
	if (why) {
		c->user_unknown = why;
	} else if (err == -EEXIST) {
		t->conflicts++;
		c->user_unknown = "adopted_scope_conflict";
	} else {
		const struct pyscope_stats *st =
			s->scope && s->scope_pid == pid ? pyscope_scan_stats(s->scope) : NULL;

		t->not_found++;
		if (st && (st->limited || st->types_limited))
			c->user_unknown = "adopted_scan_limited";
		else if (st && st->objects_unsupported)
			c->user_unknown = "adopted_layout_unsupported";
		else
			c->user_unknown = "adopted_scope_not_found";
	}
}

/* trace --user: the user's display, compared with the displays of a connection's users. */
static bool user_selected(const struct session *s, const char *user)
{
	char shown[KEYHASH_DISPLAY_LEN];

	if (!s->user_filter[0])
		return true;
	if (!user)
		return false;
	keyhash_identity_display(user, shown);
	return !strcmp(shown, s->user_filter);
}

static bool peer_selected(const struct session *s, const struct ct_conn *c)
{
	return !s->opts.filter || !s->opts.filter->peer ||
	       filter_peer_matches(s->opts.filter->peer, c->peer);
}

static bool conn_selected(const struct session *s, const struct ct_conn *c)
{
	return peer_selected(s, c) && user_selected(s, c->has_user ? c->user : NULL);
}

/* trace --type, --function, -n (--peer and --user are the connection's). */
static bool frame_selected(struct session *s, const struct frame_view *fv)
{
	const struct frame_filter *f = s->opts.filter;
	const struct attrib_stack *st = fv->stack;
	char shown[IDENTITY_MAX_VALUE + 1];

	if (!f)
		return true;
	if (f->max_frames && s->frames_printed >= f->max_frames)
		return false;
	if (f->function &&
	    !filter_function_matches(f->function,
				     st->origin >= 0 ? st->frames[st->origin].function : NULL))
		return false;
	if (f->msg_type) {
		/* Compared as shown: a type outside known_types is its keyed t# hash. */
		if (!fv->msg_type)
			return false;
		if (strcmp(f->msg_type, fv->msg_type)) {
			rules_redact_type(s->rules, f->msg_type, shown, sizeof(shown));
			if (strcmp(shown, fv->msg_type))
				return false;
		}
	}
	return true;
}

bool session_count_reached(const struct session *s)
{
	return s->opts.filter && s->opts.filter->max_frames &&
	       s->frames_printed >= s->opts.filter->max_frames;
}

/* The connection's subprotocol as shown (its identity redacted), or NULL. */
static const char *conn_proto(struct session *s, const struct ct_conn *c, char *buf, size_t size)
{
	if (!c->subprotocol)
		return NULL;
	rules_redact_subprotocol(s->rules, c->subprotocol, buf, size);
	return buf;
}

static void sink_conn_open(void *ctx, struct ct_conn *c, uint64_t ts_ns)
{
	struct session *s = ctx;
	const char *shown;
	char proto[1024];

	if (c->adopted)
		procs_probe_zlib(s->procs, (pid_t)c->tgid, true);

	/* Its announcement was lost (full ring buffer): the kernel still lists the socket. */
	if (!strcmp(c->local, "unknown") && !c->tls)
		target_sock_addrs(c->tgid, c->id.ino, c->local, sizeof(c->local), c->peer,
				  sizeof(c->peer));
	conn_identify(s, c);
	if (c->adopted && !c->has_user && !c->user_unknown && !c->user_ambiguous)
		conn_identify_adopted(s, c, ts_ns);
	shown = conn_proto(s, c, proto, sizeof(proto));
	for (struct session_tap *t = s->taps; t; t = t->next) {
		if (!t->violations_only && t->wants(t->ctx, c->tgid)) {
			output_conn_open(t->out, c, shown, ts_ns);
			t->commit(t->ctx);
		}
	}
	if (!s->opts.violations_only && conn_selected(s, c))
		output_conn_open(s->out, c, shown, ts_ns);
	if (s->opts.write && peer_selected(s, c))
		streamwrite_conn_open(s->opts.write, c, ts_ns);
}

static void sink_bytes(void *ctx, const struct ct_conn *c, uint64_t pos, const uint8_t *data,
		       size_t len, uint64_t ts_ns)
{
	struct session *s = ctx;

	streamwrite_bytes(s->opts.write, c, pos, data, len, ts_ns);
}

struct queued_ctx {
	struct session *s;
	const struct ct_conn *c;
	uint64_t ts_ns;
};

/*
 * A write handed to the connection's transport that never reached its socket: a finding
 * (delivery_failed) on a record of its own, with the stack of the hand-over.
 */
static void report_queued(void *ctx, const struct handed_write *w)
{
	const struct queued_ctx *q = ctx;
	struct session *s = q->s;
	struct causal_link link;
	struct queued_view qv = {
		.conn = q->c,
		.write = w,
		.link = &link,
		.close_ts_ns = q->ts_ns ? q->ts_ns : mono_ns(),
	};

	attrib_stack_check(s->attrib, w->stack);
	causal_link(s->causal, q->c->tgid, w->stack, &link);
	rules_count(s->rules, RULE_DELIVERY_FAILED);
	if (s->obs.queued)
		s->obs.queued(s->obs.ctx, &qv);
	for (struct session_tap *t = s->taps; t; t = t->next) {
		if (t->wants(t->ctx, q->c->tgid)) {
			output_queued(t->out, &qv);
			t->commit(t->ctx);
		}
	}
	if (conn_selected(s, q->c))
		output_queued(s->out, &qv);
}

static void sink_conn_close(void *ctx, const struct ct_conn *c, uint64_t ts_ns, const char *why)
{
	struct session *s = ctx;
	/* Closed without a close frame: a finding, shown where violations are. */
	bool abrupt = delivery_abrupt_close(c, why);
	bool ended = !strcmp(why, "closed") || !strcmp(why, "process_exit"), linked, unseen;
	uint64_t queued;

	/*
	 * Its runs' findings first: the close is what ended them, when the socket closed or its
	 * process exited ("replaced": its fd was closed and reused); when only the trace ends,
	 * they are not judged.
	 */
	if (s->runs)
		runs_conn_closed(s->runs, c->id_str,
				 !strcmp(why, "closed") || !strcmp(why, "process_exit") ||
					 !strcmp(why, "replaced"),
				 c->gap_bytes, ts_ns ? ts_ns : mono_ns());

	if (c->adopted)
		adopt_conn_closed(s->adopt, (pid_t)c->tgid, &c->id);
	/*
	 * Writes its transport still held never reached the socket; when only the trace ends,
	 * or the fd was reused, they may still have gone: forgotten, not judged.
	 */
	queued = handed_close(s->handed, c->tgid, &c->id, ended ? conntrack_tx_end(c) : UINT64_MAX,
			      report_queued, &(struct queued_ctx){ .s = s, .c = c, .ts_ns = ts_ns },
			      &linked);
	/* Lost frames and no transport followed: later writes may have been buffered unseen. */
	unseen = ended && c->lost_frames && !linked;
	if (unseen)
		handed_count_unseen(s->handed);
	if (abrupt) {
		rules_count(s->rules, RULE_ABNORMAL_CLOSE);
		if (s->obs.conn_close)
			s->obs.conn_close(s->obs.ctx, c, ts_ns ? ts_ns : mono_ns(), why);
	}
	for (struct session_tap *t = s->taps; t; t = t->next) {
		if ((!t->violations_only || abrupt) && t->wants(t->ctx, c->tgid)) {
			output_conn_close(t->out, c, ts_ns, why, queued, unseen);
			t->commit(t->ctx);
		}
	}
	if ((!s->opts.violations_only || abrupt) && conn_selected(s, c))
		output_conn_close(s->out, c, ts_ns, why, queued, unseen);
	if (s->opts.write)
		streamwrite_conn_close(s->opts.write, c, ts_ns, why);
}

/*
 * A message end (EVT_ZFLUSH) followed on its thread by a hand-over to a transport that writes
 * later (uvloop): the message end belongs to the object handed over.
 */
static void zflush_handover(struct session *s, const struct evt_stack *e)
{
	struct zflush_token *t = &s->zflush_tokens[(e->token >> 4) % ZFLUSH_TOKENS];

	procs_note_handover(s->procs, e->tgid);

	/*
	 * Always overwritten: an object at this address may have been freed and its address
	 * reused for this one, whose hand-over came without a message end.
	 */
	t->tgid = e->tgid;
	t->token = e->token;
	if (!conntrack_zflush_take(s->ct, e->tid, &t->strm, &t->total_out))
		t->strm = t->total_out = 0;
}

static int sink_history(void *ctx, const struct ct_conn *c, uint64_t strm, uint64_t total_out,
			uint64_t user_addr, uint8_t opcode, const uint8_t *wire, size_t len,
			const uint8_t **dict, size_t *dict_len)
{
	struct session *s = ctx;
	uint64_t token = user_addr ? attrib_token_of(s->attrib, c->tgid, user_addr) : 0;
	struct zflush_token *t = &s->zflush_tokens[(token >> 4) % ZFLUSH_TOKENS];

	/*
	 * A transport that queues (uvloop) sends later, from the event loop, whatever was
	 * queued: the write after a message end on the thread may be another connection's.
	 * There the message end comes only with the hand-over of the object sent.
	 */
	if (procs_queues_writes(s->procs, c->tgid))
		strm = total_out = 0;
	if (token && t->token == token && t->tgid == c->tgid) {
		strm = t->strm;
		total_out = t->total_out;
		t->token = 0;
	}

	return adopt_history(s->adopt, (pid_t)c->tgid, &c->id, strm, total_out, opcode, wire, len,
			     dict, dict_len);
}

void session_k8s_labels(struct session *s, pid_t pid, const char **k8s_namespace,
			const char **k8s_workload)
{
	procs_k8s_labels(s->procs, pid, k8s_namespace, k8s_workload);
}

/*
 * The test that caused a frame: the outermost test function on the writer's stack, else on
 * the stack that created the task, callback or thread that wrote it (nearest first: a test
 * that fires a send off in a task of its own), else, for a frame that breaks a rule (only
 * those are worth reading the process for), the test its pytest process was running when
 * it was written.
 */
static void name_test(struct session *s, const struct ct_frame *f, struct frame_view *fv,
		      char *test, size_t size)
{
	enum test_unknown why;

	fv->name_tests = true;
	fv->test = test;
	fv->test_via = "stack";
	fv->test_why = testname_from_stack(fv->stack, s->opts.test_root, test, size);
	for (size_t i = 0; fv->test_why != TEST_FOUND && fv->link && i < fv->link->n; i++) {
		why = testname_from_stack(fv->link->creators[i], s->opts.test_root, test, size);
		if (why == TEST_FOUND) {
			fv->test_why = why;
			fv->test_via = "creator";
		}
	}
	if (fv->test_why == TEST_FOUND || !s->opts.running_test)
		return;
	if (!fv->verdict->nviolations)
		return;
	fv->test_why = s->opts.running_test(s->opts.running_test_ctx, f->pid, f->ts_ns, test, size);
	fv->test_via = "running";
}

/* Whether a run report is about the user `trace --user` asked for (all when none). */
static bool run_selected(const struct session *s, const struct run_report *rep)
{
	char shown[KEYHASH_DISPLAY_LEN];

	if (!s->user_filter[0])
		return true;
	if (!rep->user)
		return false;
	if (!s->opts.show_identities)
		return !strcmp(rep->user, s->user_filter);
	keyhash_identity_display(rep->user, shown);
	return !strcmp(shown, s->user_filter);
}

static void sink_run(void *ctx, const struct run_report *rep)
{
	struct session *s = ctx;

	for (struct session_tap *t = s->taps; t; t = t->next) {
		if (t->wants(t->ctx, rep->pid)) {
			output_run(t->out, rep, s->policy->runs.timeout_s);
			t->commit(t->ctx);
		}
	}
	/* Findings, and runs that could not be judged: shown even with --violations-only. */
	if (run_selected(s, rep))
		output_run(s->out, rep, s->policy->runs.timeout_s);
	if (s->obs.run)
		s->obs.run(s->obs.ctx, rep);
}

/*
 * A message to the runs it may belong to (docs/runs.md): its type and run key when it was
 * read, or, when a text message could not be read, a gap in its connection's runs.
 */
static void follow_run(struct session *s, const struct ct_frame *f,
		       const struct attrib_stack *stack, const struct ws_message *m,
		       const struct identity_message *im, const struct frame_view *fv)
{
	char key_shown[IDENTITY_MAX_VALUE + 1];
	const struct attrib_frame *o;
	struct run_msg rm = {
		.conn = f->conn->id_str,
		.pid = f->pid,
		.comm = f->conn->comm,
		.peer = f->conn->peer,
		.whole = !f->conn->adopted,
		.user = f->conn->has_user ? f->conn->user_shown : fv->msg_user,
		.type_shown = fv->msg_type,
		.lost = f->conn->gap_bytes,
		.ts_ns = f->ts_ns,
	};

	/* Written after the close frame, it never reaches the client (after_close): not sent. */
	if (!s->policy->runs.on || !m || m->opcode != WS_OP_TEXT || f->after_close)
		return;
	if (m->status != WS_MSG_OK || !im ||
	    (im->reason != IDENTITY_OK && im->reason != IDENTITY_NOT_OBJECT)) {
		runs_gap(s->runs, f->conn->id_str);
		return;
	}
	if (im->reason != IDENTITY_OK || im->run.reason != IDENTITY_OK ||
	    im->type.reason != IDENTITY_OK)
		return;
	/* Run ids are the traffic's: shown as keyed hashes unless identities are shown. */
	if (s->opts.show_identities)
		snprintf(key_shown, sizeof(key_shown), "%s", im->run.value);
	else
		keyhash_identity_display_as("r", im->run.value, key_shown, sizeof(key_shown));
	rm.key = key_shown;
	rm.type = im->type.value;
	if (stack && stack->origin >= 0) {
		o = &stack->frames[stack->origin];
		rm.function = o->function;
		rm.file = o->file;
		rm.line = o->line;
	}
	runs_message(s->runs, &rm);
}

/* The stack whose bridge call names the user (identity.context): the send's, or a creator's. */
static const struct attrib_stack *context_stack(const struct attrib_stack *stack,
						const struct causal_link *link)
{
	if (stack->ctx_status != CTX_NONE)
		return stack;
	for (size_t i = 0; link && i < link->n; i++) {
		if (link->creators[i]->ctx_status != CTX_NONE)
			return link->creators[i];
	}
	return stack;
}

static void judge_and_print(struct session *s, const struct ct_frame *f,
			    const struct attrib_stack *stack, const struct causal_link *link)
{
	const struct attrib_stack *cs = context_stack(stack, link);
	char user_shown[IDENTITY_MAX_VALUE + 1], ctx_shown[IDENTITY_MAX_VALUE + 1], test[1024];
	char type_shown[IDENTITY_MAX_VALUE + 1];
	const struct ws_message *m = f->message;
	struct identity_message im;
	struct rules_verdict verdict;
	struct frame_view fv = {
		.frame = f,
		.stack = stack,
		.link = link,
		.verdict = &verdict,
		.container = procs_container(s->procs, f->pid),
	};
	struct rules_input in = {
		.opcode = f->frame->opcode,
		.conn_user = f->conn->has_user ? f->conn->user : NULL,
		.conn_user_ambiguous = f->conn->user_ambiguous,
		.conn_user_unknown = f->conn->user_unknown,
		.stack = stack,
		.link = link,
		.ctx_user = cs->ctx_status == CTX_OK ? cs->ctx_user : NULL,
		.ctx_function = cs->ctx_function,
		.lost = f->lost,
		.lost_err = f->lost_err,
		.after_close = f->after_close,
		.close_code = f->frame->opcode == WS_OP_CLOSE ? f->frame->close_code : 0,
	};

	/* Only whole, decoded messages are read for their fields. */
	if (m && m->status == WS_MSG_OK &&
	    !identity_from_message(s->policy, m->opcode, m->data, m->len, &im) &&
	    im.reason != IDENTITY_OK && im.reason != IDENTITY_BINARY &&
	    im.reason != IDENTITY_CONTROL && im.reason != IDENTITY_NOT_OBJECT &&
	    identity_message_names_user(s->policy, m->data, m->len))
		in.msg_unreadable = identity_reason_name(im.reason);
	else if (m && m->status == WS_MSG_OK && im.reason == IDENTITY_OK) {
		in.msg = &im;
		if (im.type.reason == IDENTITY_OK) {
			rules_redact_type(s->rules, im.type.value, type_shown, sizeof(type_shown));
			fv.msg_type = type_shown;
		}
		if (im.user.reason == IDENTITY_OK) {
			rules_redact(s->rules, im.user.value, user_shown, sizeof(user_shown));
			fv.msg_user = user_shown;
		}
	}
	follow_run(s, f, stack, m, m ? &im : NULL, &fv);
	if (in.ctx_user) {
		rules_redact(s->rules, in.ctx_user, ctx_shown, sizeof(ctx_shown));
		fv.ctx_user_shown = ctx_shown;
	}
	rules_judge(s->rules, &in, &verdict);
	if (s->opts.name_tests)
		name_test(s, f, &fv, test, sizeof(test));
	if (s->obs.frame)
		s->obs.frame(s->obs.ctx, f, stack, link, &verdict);
	for (struct session_tap *t = s->taps; t; t = t->next) {
		if ((!t->violations_only || verdict.nviolations) && t->wants(t->ctx, f->pid)) {
			output_frame(t->out, &fv);
			t->commit(t->ctx);
		}
	}
	if (s->obs.frame_view)
		s->obs.frame_view(s->obs.ctx, &fv);
	if (s->opts.write)
		streamwrite_frame(s->opts.write, &fv);
	if (s->opts.violations_only && !verdict.nviolations)
		return;
	if (s->user_filter[0] && !user_selected(s, f->conn->has_user ? f->conn->user : NULL) &&
	    !user_selected(s, in.msg && im.user.reason == IDENTITY_OK ? im.user.value : NULL))
		return;
	if (!peer_selected(s, f->conn) || !frame_selected(s, &fv))
		return;
	s->frames_printed++;
	output_frame(s->out, &fv);
}

static void sink_frame(void *ctx, const struct ct_frame *f)
{
	struct session *s = ctx;
	struct attrib_stack *own = NULL;
	const struct attrib_stack *stack = NULL;
	struct causal_link link;

	/*
	 * An object handed to a transport that sent it later carries the stack of the hand-over:
	 * exact where the syscall's own stack only shows the event loop.
	 */
	if (f->user_addr) {
		uint64_t token = attrib_token_of(s->attrib, f->pid, f->user_addr);
		struct zflush_token *t = &s->zflush_tokens[(token >> 4) % ZFLUSH_TOKENS];
		struct token_frame tf = {
			.tgid = f->pid,
			.tid = f->tid,
			.write_ts = f->ts_ns,
			.user_addr = f->user_addr,
			.len = f->frame->header_len + f->frame->payload_len,
		};
		uint64_t transport = 0;

		/* Sent: its message end is no one else's, should the address be reused. */
		if (token && t->token == token && t->tgid == f->pid)
			t->token = 0;
		stack = own = attrib_token_take(s->attrib, &tf, &transport);
		/* Its transport is that connection's, and the object started there. */
		if (own && transport)
			handed_sent(s->handed, f->pid, transport, token, &f->conn->id,
				    f->stream_pos);
	}
	if (!stack)
		stack = f->stack;
	if (!stack && f->handed_over)
		stack = own = attrib_handed_over(s->attrib, f->pid);
	if (!stack)
		stack = own = attrib_missing(s->attrib, f->pid);
	if (!stack)
		return;
	causal_link(s->causal, f->pid, stack, &link);
	attrib_count_linked(s->attrib, stack, link.origin_level >= 0);
	judge_and_print(s, f, stack, &link);
	attrib_stack_put(own);
}

static struct attrib_stack *sink_stack(void *ctx, const struct evt_stack *e)
{
	struct session *s = ctx;
	struct attrib_stack *stack = attrib_resolve(s->attrib, e);

	procs_mark(s->procs, e, stack);
	return stack;
}

static int sink_verdict(void *ctx, const struct conn_id *id, enum conn_state state)
{
	struct session *s = ctx;
	int err = capture_set_verdict(s->cap, id, state);

	if (err)
		log_warn("failed to pass a connection verdict to the kernel: %s", strerror(-err));
	return err;
}

int session_add_pid(struct session *s, pid_t pid, const char *how)
{
	return procs_add(s->procs, pid, how);
}

int session_scan_exe(struct session *s)
{
	return procs_scan_exe(s->procs);
}

/* A process record to the taps that follow the process (a fork: its parent). */
static void taps_process(struct session *s, const struct evt_proc *e, const char *what,
			 const char *comm)
{
	for (struct session_tap *t = s->taps; t; t = t->next) {
		if (e->hdr.type == EVT_PROC_FORK) {
			if (!t->wants(t->ctx, e->ppid))
				continue;
			t->fork(t->ctx, e->ppid, e->pid);
		} else if (!t->wants(t->ctx, e->pid)) {
			continue;
		}
		if (!t->violations_only) {
			output_process(t->out, what, e->hdr.ts_ns, e->pid, comm,
				       e->hdr.type == EVT_PROC_EXIT ? e->exit_code : 0);
			t->commit(t->ctx);
		}
		if (e->hdr.type == EVT_PROC_EXIT)
			t->exit(t->ctx, e->pid);
	}
}

/* A process record to the taps; whether it is shown in the output if its process is followed. */
static bool proc_seen(struct session *s, const struct evt_proc *e, const char *what,
		      char comm[sizeof(e->comm) + 1])
{
	memcpy(comm, e->comm, sizeof(e->comm));
	comm[sizeof(e->comm)] = '\0';
	if (s->taps)
		taps_process(s, e, what, comm);
	return !s->opts.quiet_processes && !s->opts.violations_only;
}

static int on_proc_exec(void *ctx, const void *rec, size_t size)
{
	const struct evt_proc *e = rec;
	struct session *s = ctx;
	char comm[sizeof(e->comm) + 1];
	bool show = proc_seen(s, e, "process_start", comm);

	if (procs_exec(s->procs, e) && show)
		output_process(s->out, "process_start", e->hdr.ts_ns, e->pid, comm, 0);
	return 0;
}

static int on_proc_fork(void *ctx, const void *rec, size_t size)
{
	const struct evt_proc *e = rec;
	struct session *s = ctx;
	char comm[sizeof(e->comm) + 1];
	bool show = proc_seen(s, e, "process_fork", comm);

	procs_fork(s->procs, e->ppid, e->pid);
	if (show)
		output_process(s->out, "process_fork", e->hdr.ts_ns, e->pid, comm, 0);
	return 0;
}

static int on_proc_exit(void *ctx, const void *rec, size_t size)
{
	const struct evt_proc *e = rec;
	struct session *s = ctx;
	char comm[sizeof(e->comm) + 1];
	bool show = proc_seen(s, e, "process_exit", comm);

	procs_exit(s->procs, e->pid, e->hdr.ts_ns);
	if (show)
		output_process(s->out, "process_exit", e->hdr.ts_ns, e->pid, comm, e->exit_code);
	return 0;
}

/*
 * A stack taken at a hand-over to a transport that writes later, or at a context copy, is
 * kept by the object it names; one taken at a syscall or a close is the connection's.
 */
static int on_stack(void *ctx, const void *rec, size_t size)
{
	const struct evt_stack *e = rec;
	struct session *s = ctx;
	struct attrib_stack *stack;

	if (e->site != STACK_AT_TRANSPORT_WRITE && e->site != STACK_AT_CONTEXT_COPY)
		return s->ct_stack.fn(s->ct_stack.ctx, rec, size);
	stack = attrib_resolve(s->attrib, e);
	if (e->site == STACK_AT_TRANSPORT_WRITE) {
		procs_mark(s->procs, e, stack);
		zflush_handover(s, e);
		if (!stack)
			return 0;
		handed_put(s->handed, e->tgid, e->tid, e->handed.transport, e->token,
			   attrib_bytes_len(s->attrib, e->tgid, e->handed.obj_type,
					    e->handed.obj_size),
			   e->hdr.ts_ns, stack);
		attrib_token_put(s->attrib, e->tgid, e->token, e->handed.transport, e->hdr.ts_ns,
				 stack);
		return 0;
	}
	procs_mark(s->procs, e, stack);
	if (stack)
		causal_put(s->causal, e->tgid, e->token, e->py_context, e->hdr.ts_ns, stack);
	return 0;
}

/* Processes matched at exec are inspected once they talk: the interpreter is loaded. */
static int on_conn_new(void *ctx, const void *rec, size_t size)
{
	const struct evt_conn *e = rec;
	struct session *s = ctx;

	if (!attrib_known(s->attrib, e->tgid))
		procs_attach(s->procs, e->tgid);
	return s->ct_conn_new.fn(s->ct_conn_new.ctx, rec, size);
}

/* The names of a code object a walk met: the symbolizer's. */
static int on_code_names(void *ctx, const void *rec, size_t size)
{
	struct session *s = ctx;

	attrib_code_names(s->attrib, rec);
	return 0;
}

/* The self-check's probe's records: what they prove of the capture path, never output. */
static int probe_conn(void *ctx, const void *rec, size_t size)
{
	struct session *s = ctx;

	s->probe_conn = true;
	return 0;
}

static int probe_data(void *ctx, const void *rec, size_t size)
{
	const struct evt_data *d = rec;
	struct session *s = ctx;

	if (d->dir == DIR_TX && selfcheck_marker_in(&s->probe, d + 1, d->len))
		s->probe_data = true;
	return 0;
}

static int probe_exit(void *ctx, const void *rec, size_t size)
{
	struct session *s = ctx;

	s->probe_exit = true;
	return 0;
}

static int on_record(void *ctx, const void *data, size_t size)
{
	struct session *s = ctx;

	if (s->probe.pid && records_tgid(data, size) == s->probe.pid) {
		records_dispatch(&s->probe_routes, data, size);
		return 0;
	}
	s->records++;
	records_dispatch(&s->routes, data, size);
	return 0;
}

/*
 * The records' routes: the connection table's, but for process records, stacks kept by the
 * objects they name and new connections of processes not inspected yet.
 */
static void route_records(struct session *s)
{
	s->routes = *conntrack_routes(s->ct);
	s->ct_stack = s->routes.on[EVT_STACK];
	s->ct_conn_new = s->routes.on[EVT_CONN_NEW];
	s->routes.on[EVT_STACK] = (struct record_route){ on_stack, s };
	s->routes.on[EVT_CONN_NEW] = (struct record_route){ on_conn_new, s };
	s->routes.on[EVT_CODE_NAMES] = (struct record_route){ on_code_names, s };
	s->routes.on[EVT_PROC_EXEC] = (struct record_route){ on_proc_exec, s };
	s->routes.on[EVT_PROC_FORK] = (struct record_route){ on_proc_fork, s };
	s->routes.on[EVT_PROC_EXIT] = (struct record_route){ on_proc_exit, s };
	s->probe_routes.on[EVT_CONN_NEW] = (struct record_route){ probe_conn, s };
	s->probe_routes.on[EVT_DATA] = (struct record_route){ probe_data, s };
	s->probe_routes.on[EVT_PROC_EXIT] = (struct record_route){ probe_exit, s };
}

/*
 * A followed socket sent to another process.  A traced receiver's writes are followed on the
 * same connection; an untraced one's are not seen at all, and that is said.
 */
static void sink_conn_passed(void *ctx, const struct ct_conn *c, const struct evt_conn *e)
{
	struct session *s = ctx;

	if (e->peer_pid && capture_is_traced(s->cap, (pid_t)e->peer_pid)) {
		log_info("pid %u passed connection %s to traced pid %u", e->tgid,
			 c ? c->id_str : "?", e->peer_pid);
		return;
	}
	log_warn("pid %u passed connection %s to pid %u, which is not traced: its writes on it "
		 "are not seen",
		 e->tgid, c ? c->id_str : "?", e->peer_pid);
	output_conn_skipped(s->out, c, e, "fd_passed");
}

/*
 * The policy's queues name hand-off functions whose producers should name the frames their
 * consumers send; until the collector links a queued object to its send, say what those
 * frames get instead of leaving it to be found out.
 */
static void say_queues_unlinked(const struct policy *p)
{
	if (p->nqueues)
		log_warn("policy %s: its %zu queues hand-off(s) are not linked yet: a frame sent "
			 "with a queue's consumer on its stack is unjudged (queue_not_linked), "
			 "and one whose queue names no consumer is attributed to its own stack",
			 p->source, p->nqueues);
}

/*
 * A socket of pid carries TLS.  Its plaintext is followed when the process's libssl is
 * probed; otherwise the connection is skipped, and why.
 */
static enum ct_skip_reason sink_tls_seen(void *ctx, const struct ct_conn *c)
{
	struct session *s = ctx;

	if (procs_tls_probed(s->procs, (pid_t)c->tgid))
		return CT_SKIP_NONE;
	if (procs_tls_static(s->procs, (pid_t)c->tgid))
		return CT_SKIP_STATIC_SSL;
	return CT_SKIP_TLS;
}

/* What a skip reason means to whoever reads the warning. */
static const char *tls_skip_why(enum ct_skip_reason why)
{
	switch (why) {
	case CT_SKIP_TLS:
		return "it carries TLS, and its process's TLS library is not probed (no libssl "
		       "mapped, or the probes failed): its frames are not seen";
	case CT_SKIP_STATIC_SSL:
		return "it carries TLS by an OpenSSL linked into the program itself, which is not "
		       "probed: its frames are not seen (docs/tls.md)";
	case CT_SKIP_TLS_UNLINKED:
		return "it carried TLS, and no plaintext read through libssl was linked to it";
	case CT_SKIP_NOT_WEBSOCKET:
		return "its writes are neither an HTTP upgrade nor WebSocket frames";
	case CT_SKIP_BAD_RESPONSE:
		return "its HTTP response does not parse";
	case CT_SKIP_NOT_HTTP:
		return "a request on it was answered other than by HTTP";
	case CT_SKIP_OVER_LIMIT:
		return "the connection table is full";
	default:
		return ct_skip_name(why);
	}
}

/*
 * A connection not followed: said on stderr with its process and peer, and as a record.  An
 * HTTP exchange answered other than 101 is known not to be WebSocket: its record is enough.
 */
static void sink_conn_skipped(void *ctx, const struct ct_conn *c, enum ct_skip_reason why,
			      uint64_t ts_ns)
{
	struct session *s = ctx;
	const char *name = ct_skip_name(why);

	if (why == CT_SKIP_NOT_UPGRADED)
		log_info("pid %u (%s): connection %s from %s is not WebSocket (%s)", c->tgid,
			 c->comm, c->id_str, c->peer, name);
	else
		log_warn("pid %u (%s): connection %s %s -> %s is not followed: %s", c->tgid,
			 c->comm, c->id_str, c->local, c->peer, tls_skip_why(why));
	for (struct session_tap *t = s->taps; t; t = t->next) {
		if (!t->violations_only && t->wants(t->ctx, c->tgid)) {
			output_conn_skipped(t->out, c, NULL, name);
			t->commit(t->ctx);
		}
	}
	if (!s->opts.violations_only)
		output_conn_skipped(s->out, c, NULL, name);
}

/* The per-process tables of the pipeline's modules, forgotten through procs_forget(). */
static void forget_conns(void *ctx, pid_t pid, enum procs_forget what, uint64_t ts_ns)
{
	conntrack_forget_tgid(ctx, pid, ts_ns);
}

static void forget_adopted(void *ctx, pid_t pid, enum procs_forget what, uint64_t ts_ns)
{
	adopt_forget_pid(ctx, pid);
}

static void forget_scope(void *ctx, pid_t pid, enum procs_forget what, uint64_t ts_ns)
{
	struct session *s = ctx;

	if (s->scope_pid == pid) {
		pyscope_scan_free(s->scope);
		s->scope = NULL;
		s->scope_pid = 0;
	}
}

/* Its marks and uprobes; at its exit, its connections' kernel state too. */
static void forget_kernel(void *ctx, pid_t pid, enum procs_forget what, uint64_t ts_ns)
{
	if (what == PROCS_FORGET_EXIT)
		capture_forget_tgid(ctx, pid);
	else if (what == PROCS_FORGET_MARKS)
		capture_forget_image(ctx, pid);
	else
		capture_exec_image(ctx, pid, what == PROCS_FORGET_EXEC_LEADER);
}

static void forget_creations(void *ctx, pid_t pid, enum procs_forget what, uint64_t ts_ns)
{
	causal_forget_process(ctx, pid);
}

static void forget_handed(void *ctx, pid_t pid, enum procs_forget what, uint64_t ts_ns)
{
	handed_forget_process(ctx, pid);
}

static void forget_interpreter(void *ctx, pid_t pid, enum procs_forget what, uint64_t ts_ns)
{
	attrib_forget_process(ctx, pid);
}

struct session *session_open(const struct session_opts *opts, struct policy *policy, FILE *out)
{
	struct capture_opts copts = {
		.ringbuf_size = opts->ringbuf_size,
		.write_cap = opts->write_cap,
		.follow_exec = opts->nglobs > 0 || opts->targets_from_policy || opts->pods,
		.stack_walk = !opts->capture_only,
	};
	struct procs_opts popts = {
		.capture_only = opts->capture_only,
		.walk_to_verdict = opts->walk_to_verdict,
		.exe_globs = opts->exe_globs,
		.nglobs = opts->nglobs,
		.targets_from_policy = opts->targets_from_policy,
		.pods = opts->pods,
		.bundle_root = opts->bundle_root,
	};
	struct session *s = calloc(1, sizeof(*s));
	struct ct_sink sink = {
		.conn_open = sink_conn_open,
		.conn_close = sink_conn_close,
		.conn_passed = sink_conn_passed,
		.conn_skipped = sink_conn_skipped,
		.tls_seen = sink_tls_seen,
		.frame = sink_frame,
		.stack = sink_stack,
		.stack_get = attrib_stack_get,
		.stack_put = attrib_stack_put,
		.verdict = sink_verdict,
		.history = sink_history,
		.bytes = opts->write ? sink_bytes : NULL,
		.ctx = s,
	};

	char err[512];

	if (!s) {
		policy_free(policy);
		return NULL;
	}
	s->opts = *opts;
	s->policy = policy;
	say_queues_unlinked(policy);
	if (keyhash_identity_setup(opts->identity_key, err, sizeof(err))) {
		log_err("%s", err);
		goto err_free;
	}
	if (opts->user_filter && session_user_display(opts->user_filter, s->user_filter)) {
		log_err("--user: an id, or a display u# and 12 hex digits");
		goto err_free;
	}
	if (!opts->show_identities)
		fprintf(stderr,
			"wsaudit: user ids shown as keyed hashes (key %s, fingerprint %s)\n",
			keyhash_identity_source(), keyhash_identity_fingerprint());
	s->out = output_new(out, opts->format, opts->payload, opts->stack);
	if (s->out)
		output_set_wide(s->out, opts->wide);
	s->ct = conntrack_new(&sink, 0);
	s->adopt = adopt_new();
	s->attrib = attrib_new((const char *const *)policy->transport_files.v,
			       policy->transport_files.n);
	s->causal = causal_new(s->attrib);
	s->handed = handed_new();
	s->rules = rules_new(policy, opts->show_identities, 0);
	s->runs = runs_new(policy, 0, sink_run, s);
	if (s->attrib)
		attrib_set_queues(s->attrib, policy->queues, policy->nqueues);
	if (!s->out || !s->ct || !s->adopt || !s->attrib || !s->causal || !s->handed || !s->rules ||
	    !s->runs) {
		log_err("out of memory");
		goto err_close;
	}
	route_records(s);
	if (opts->capture_only)
		attrib_disable(s->attrib);
	s->cap = capture_open(&copts, on_record, s);
	if (!s->cap)
		goto err_close;
	s->procs = procs_new(&popts, s->cap, s->attrib, s->adopt);
	if (!s->procs) {
		log_err("out of memory");
		goto err_close;
	}
	procs_set_policy(s->procs, s->policy, s->rules);
	/* The modules' per-process tables, connections first (their ends name the process). */
	procs_on_forget(s->procs, PROCS_FORGET_EXIT, forget_conns, s->ct);
	procs_on_forget(s->procs, PROCS_FORGET_EXIT, forget_adopted, s->adopt);
	procs_on_forget(s->procs, PROCS_FORGET_EXIT, forget_scope, s);
	procs_on_forget(s->procs, PROCS_FORGET_MARKS, forget_kernel, s->cap);
	procs_on_forget(s->procs, PROCS_FORGET_EXEC, forget_creations, s->causal);
	procs_on_forget(s->procs, PROCS_FORGET_EXEC, forget_handed, s->handed);
	procs_on_forget(s->procs, PROCS_FORGET_EXEC, forget_interpreter, s->attrib);
	return s;

err_close:
	session_close(s, "error");
	return NULL;

err_free:
	policy_free(policy);
	free(s);
	return NULL;
}

int session_user_display(const char *id, char out[KEYHASH_DISPLAY_LEN])
{
	size_t n = strlen(id);

	if (!n)
		return -EINVAL;
	/* A display copied from the output is taken as it is. */
	if (n == KEYHASH_DISPLAY_LEN - 1 && !strncmp(id, "u#", 2) &&
	    strspn(id + 2, "0123456789abcdef") == n - 2) {
		memcpy(out, id, KEYHASH_DISPLAY_LEN);
		return 0;
	}
	keyhash_identity_display(id, out);
	return 0;
}

/* The final drain's bound (in budgets): the traced processes may still be writing. */
#define DRAIN_MAX_BUDGETS 1200

int session_drain(struct session *s)
{
	int err = session_poll(s, 0);

	for (int i = 0; !err && capture_pending(s->cap) && i < DRAIN_MAX_BUDGETS; i++)
		err = session_poll(s, 0);
	return err;
}

void session_end_connections(struct session *s, const char *why)
{
	conntrack_end_all(s->ct, why, mono_ns());
}

void session_close(struct session *s, const char *why)
{
	if (!s)
		return;
	conntrack_free(s->ct, why);
	runs_free(s->runs);
	adopt_free(s->adopt);
	pyscope_scan_free(s->scope);
	procs_free(s->procs);
	capture_close(s->cap);
	causal_free(s->causal);
	handed_free(s->handed);
	attrib_free(s->attrib);
	rules_free(s->rules);
	policy_free(s->policy);
	output_free(s->out);
	free(s);
}

int session_poll(struct session *s, int timeout_ms)
{
	int n = capture_poll(s->cap, timeout_ms);

	if (n < 0 && n != -EINTR) {
		log_err("failed to read the ring buffer: %s", strerror(-n));
		return n;
	}
	attrib_token_expire(s->attrib, mono_ns(), TOKEN_MAX_AGE_NS);
	handed_expire(s->handed, mono_ns(), TOKEN_MAX_AGE_NS);
	if (s->runs)
		runs_tick(s->runs, mono_ns());
	procs_poll(s->procs, mono_ns());
	return 0;
}

/* What the probe's records said, as the reason of a failed self-check. */
static const char *probe_missing(const struct session *s)
{
	if (!s->probe_conn && !s->probe_data)
		return "nothing of the probe's write came back through the programs and the ring "
		       "buffer";
	if (!s->probe_data)
		return "the probe's connection was seen, but not the bytes it wrote";
	return NULL;
}

int session_selfcheck(struct session *s, int timeout_ms, bool record)
{
	uint64_t start = mono_ns(), deadline = start + (uint64_t)timeout_ms * 1000000ULL;
	struct session_selfcheck *c = &s->check;
	const char *why = NULL;
	bool deferred = false;
	struct timespec real;
	int err;

	s->probe_conn = s->probe_data = s->probe_exit = false;
	err = selfcheck_probe_start(&s->probe);
	if (err) {
		snprintf(c->why, sizeof(c->why), "could not start the probe process: %s",
			 strerror(-err));
		goto out;
	}
	err = capture_trace_pid(s->cap, s->probe.pid);
	if (!err)
		err = selfcheck_probe_go(&s->probe);
	if (err) {
		snprintf(c->why, sizeof(c->why), "could not trace the probe process: %s",
			 strerror(-err));
		goto out_end;
	}
	/* Until its bytes and its exit are back: nothing of it may outlive the check. */
	while ((!s->probe_data || !s->probe_exit) && mono_ns() < deadline) {
		err = session_poll(s, 10);
		if (err)
			break;
	}
	why = probe_missing(s);
	deferred = why && !err && !record && capture_pending(s->cap);
	if (why && !deferred)
		snprintf(c->why, sizeof(c->why), "%s within %d ms", why, timeout_ms);
out_end:
	capture_untrace_pid(s->cap, s->probe.pid);
	capture_forget_tgid(s->cap, s->probe.pid);
	selfcheck_probe_end(&s->probe);
out:
	if (deferred) {
		c->deferred++;
		c->last_ns = mono_ns() - start;
		return -EAGAIN;
	}
	/* ok and runs are read by the health endpoint's thread (session_selfcheck_ok). */
	__atomic_store_n(&c->ok, !err && !why, __ATOMIC_RELAXED);
	__atomic_store_n(&c->runs, c->runs + 1, __ATOMIC_RELEASE);
	c->last_ns = mono_ns() - start;
	if (c->ok) {
		clock_gettime(CLOCK_REALTIME, &real);
		c->last_ok_unix = real.tv_sec;
		c->why[0] = '\0';
	} else {
		c->failures++;
	}
	if (record)
		output_selfcheck(s->out, start, c->ok, c->ok ? NULL : c->why, c->last_ns);
	return c->ok ? 0 : -EIO;
}

/* A stats record of the session's totals to out. */
static void stats_to(struct session *s, struct output *o, bool final)
{
	struct session_totals t;
	struct trace_totals out = {};

	session_totals(s, &t);
	out.records = t.records;
	out.processes = t.processes;
	out.kernel = &t.kernel;
	out.ct = &t.ct;
	out.attrib = &t.attrib;
	out.causal = &t.causal;
	out.handed = &t.handed;
	out.rules = &t.rules;
	out.runs = &t.runs;
	out.adopt = &t.adopt;
	out.scope = &t.scope;
	out.write = t.writing ? &t.write : NULL;
	output_stats(o, &out, final);
}

void session_add_tap(struct session *s, struct session_tap *t)
{
	t->next = s->taps;
	s->taps = t;
}

void session_remove_tap(struct session *s, struct session_tap *t)
{
	for (struct session_tap **pp = &s->taps; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			return;
		}
	}
}

struct tap_replay {
	struct session *s;
	struct session_tap *t;
	uint64_t ts_ns;
	unsigned int n;
};

static void replay_conn(void *ctx, const struct ct_conn *c)
{
	struct tap_replay *r = ctx;
	char proto[1024];

	if (c->state != CT_WEBSOCKET || !r->t->wants(r->t->ctx, c->tgid))
		return;
	r->n++;
	if (r->t->violations_only)
		return;
	output_conn_open(r->t->out, c, conn_proto(r->s, c, proto, sizeof(proto)), r->ts_ns);
	r->t->commit(r->t->ctx);
}

unsigned int session_tap_open_conns(struct session *s, struct session_tap *t)
{
	struct tap_replay r = { .s = s, .t = t, .ts_ns = mono_ns() };

	conntrack_foreach(s->ct, replay_conn, &r);
	return r.n;
}

void session_tap_stats(struct session *s, struct session_tap *t)
{
	stats_to(s, t->out, true);
	t->commit(t->ctx);
}

bool session_follows(struct session *s, pid_t pid)
{
	return capture_is_traced(s->cap, pid);
}

int session_fd(const struct session *s)
{
	return capture_fd(s->cap);
}

void session_startup(const struct session *s, struct capture_startup *out)
{
	capture_startup(s->cap, out);
}

const struct session_selfcheck *session_selfcheck_state(const struct session *s)
{
	return &s->check;
}

bool session_selfcheck_ok(const struct session *s)
{
	return __atomic_load_n(&s->check.runs, __ATOMIC_ACQUIRE) &&
	       __atomic_load_n(&s->check.ok, __ATOMIC_RELAXED);
}

void session_totals(struct session *s, struct session_totals *t)
{
	memset(t, 0, sizeof(*t));
	t->records = s->records;
	t->processes = s->procs ? procs_count(s->procs) : 0;
	t->output_errors = output_errors(s->out);
	if (capture_read_counters(s->cap, &t->kernel))
		log_warn("failed to read the kernel counters");
	t->ct = *conntrack_stats(s->ct);
	t->attrib = *attrib_stats(s->attrib);
	t->causal = *causal_stats(s->causal);
	t->handed = *handed_stats(s->handed);
	t->rules = *rules_stats(s->rules);
	t->runs = *runs_stats(s->runs);
	t->adopt = *adopt_stats(s->adopt);
	t->scope = s->scope_totals;
	capture_probe_counts(s->cap, &t->probes_attached, &t->probes_failed);
	if (s->opts.write) {
		t->writing = true;
		t->write = *streamwrite_stats(s->opts.write);
	}
}

void session_report(struct session *s, bool final)
{
	stats_to(s, s->out, final);
}

void session_flush(struct session *s)
{
	output_flush(s->out);
}

void session_set_policy(struct session *s, struct policy *policy)
{
	struct rules *r = rules_new(policy, s->opts.show_identities, 0);

	if (!r) {
		log_err("out of memory: keeping the old policy");
		policy_free(policy);
		return;
	}
	/* Ownership learned under the old policy is not carried over: keys may differ. */
	rules_free(s->rules);
	s->rules = r;
	attrib_set_transport(s->attrib, (const char *const *)policy->transport_files.v,
			     policy->transport_files.n);
	attrib_set_queues(s->attrib, policy->queues, policy->nqueues);
	runs_set_policy(s->runs, policy);
	policy_free(s->policy);
	s->policy = policy;
	procs_set_policy(s->procs, policy, r);
	say_queues_unlinked(policy);
}

void session_set_output(struct session *s, FILE *out)
{
	output_set_stream(s->out, out);
}

void session_set_sink(struct session *s, output_line_fn fn, void *ctx)
{
	output_set_sink(s->out, fn, ctx);
}

void session_set_observer(struct session *s, const struct session_observer *obs)
{
	s->obs = *obs;
}

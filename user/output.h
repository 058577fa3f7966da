/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The sinks of `trace`: JSON lines (the contract of DESIGN.md) or one readable line per
 * record.  Payload bytes are written only when the user asked for them.
 */
#ifndef WSAUDIT_OUTPUT_H
#define WSAUDIT_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "attrib.h"
#include "capture.h"
#include "conntrack.h"
#include "output_format.h"
#include "rules.h"
#include "testname.h"

/*
 * The version of the JSON record contract (docs/records.md, docs/schemas/), the "v" member
 * that every record starts with.  Fields may be added within a version; one renamed or
 * removed, or a meaning changed, makes the next.
 */
#define OUTPUT_RECORD_VERSION 1
#define OUTPUT_RECORD_VERSION_STR "1"

struct output;

struct output *output_new(FILE *out, enum output_format format, bool payload, bool stack);
void output_free(struct output *o);
void output_set_stream(struct output *o, FILE *out);
/* Records that could not be built, and failed writes of the stream (stats "output.errors"). */
uint64_t output_errors(const struct output *o);
/* fflush, and a failed write said and counted. */
void output_flush(struct output *o);
/*
 * Text for a terminal (the default): a header, HH:MM:SS.mmm, a user column (always the
 * keyed hash), files relative to each process's code root, lines fitted to 120 columns.
 * Wide: every field whole (RFC 3339 times, absolute paths, thread and command), unwrapped.
 */
void output_set_wide(struct output *o, bool wide);
/*
 * JSON records go to fn instead of the stream, one call per record (the line and its '\n'):
 * the agent's violation log (user/vlog.c).  NULL: the stream again.
 */
typedef void (*output_line_fn)(void *ctx, const char *line, size_t len);
void output_set_sink(struct output *o, output_line_fn fn, void *ctx);

/* subprotocol: the connection's, as it may be shown (rules_redact_subprotocol()), or NULL. */
void output_conn_open(struct output *o, const struct ct_conn *c, const char *subprotocol,
		      uint64_t ts_ns);
/*
 * queued: writes its transport still held, reported as `queued` records before it; unseen:
 * it lost frames and no transport of it was followed (handed_count_unseen()).
 */
void output_conn_close(struct output *o, const struct ct_conn *c, uint64_t ts_ns, const char *why,
		       uint64_t queued, bool unseen);
/*
 * A connection wsaudit does not follow, or not through all its writers: conn_skipped with the
 * reason (ct_skip_name(), or "fd_passed").  e: the hand-over of a socket to another process
 * (the process that gave it away and the one that received it, peer_pid); NULL for a
 * connection the table does not follow (c, not NULL then, names its process and peer).
 */
void output_conn_skipped(struct output *o, const struct ct_conn *c, const struct evt_conn *e,
			 const char *why);
/* A frame and what was learned about it. */
struct frame_view {
	const struct ct_frame *frame;
	const struct attrib_stack *stack; /* never NULL: a stack without frames says why */
	const struct causal_link *link; /* the creation stacks it was linked to, or NULL */
	const struct rules_verdict *verdict; /* NULL: not judged */
	const char *msg_type; /* NULL when unknown */
	const char *msg_user; /* redacted unless identities are shown; NULL when none */
	const char *ctx_user_shown; /* the bridge call's user argument, redacted likewise */
	const json_t *container; /* the writer's container and pod, null on the host; NULL: unknown */
	/* `run`: the test that caused the frame, or why none is named */
	bool name_tests;
	const char *test;
	const char *test_via; /* "stack" or "running" (user/testrun.c) */
	enum test_unknown test_why;
};

void output_frame(struct output *o, const struct frame_view *fv);

struct handed_write;
/* A write handed to a connection's transport that never reached its socket (user/handed.h). */
struct queued_view {
	const struct ct_conn *conn;
	const struct handed_write *write;
	const struct causal_link *link; /* the hand-over stack's creators */
	uint64_t close_ts_ns; /* when the connection ended */
};

/* A `queued` record with its delivery_failed finding (docs/delivery.md). */
void output_queued(struct output *o, const struct queued_view *qv);
/* Its finding's detail, as in the record. */
void output_queued_detail(const struct queued_view *qv, char *buf, size_t size);

struct run_report;
/* A run that did not reach its user whole, or could not be judged (user/runs.h). */
void output_run(struct output *o, const struct run_report *rep, unsigned int timeout_s);
void output_process(struct output *o, const char *what, uint64_t ts_ns, uint32_t pid,
		    const char *comm, int exit_code);

struct adopt_stats;
struct streamwrite_stats;

struct trace_totals {
	uint64_t records; /* ring buffer records received */
	uint64_t processes; /* processes being traced */
	const struct capture_counters *kernel;
	const struct ct_stats *ct;
	const struct attrib_stats *attrib;
	const struct causal_stats *causal; /* NULL: not counted */
	const struct handed_stats *handed; /* NULL: not counted */
	const struct rules_stats *rules;
	const struct runs_stats *runs; /* NULL: not counted */
	const struct adopt_stats *adopt; /* NULL: not counted */
	const struct pyscope_totals *scope; /* NULL: not counted */
	const struct streamwrite_stats *write; /* trace --write; NULL: not writing */
};

/* The result of a self-check (session_selfcheck); why is NULL when it passed. */
void output_selfcheck(struct output *o, uint64_t ts_ns, bool ok, const char *why, uint64_t took_ns);
void output_stats(struct output *o, const struct trace_totals *t, bool final);

/* RFC 3339 UTC with nanoseconds, from a CLOCK_MONOTONIC time. */
void output_format_time(char *buf, size_t size, uint64_t mono_ns);

#endif /* WSAUDIT_OUTPUT_H */

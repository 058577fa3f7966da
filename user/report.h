/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The report of `wsaudit run`: every finding folded into one per (kind, origin function,
 * file, line), with its count, the tests that caused it and the stack of its first
 * occurrence.  Findings are the rules a frame broke, connections closed without a close
 * frame (abnormal_close) and runs that did not reach their user whole (docs/runs.md); the
 * frames that could not be attributed, the runs that could not be judged and the tests that
 * could not be named are counted by reason.  Also a baseline of known findings, and the
 * writers of what CI reads (SARIF 2.1.0, JUnit XML, the summary).  Pure but for the files
 * it is asked to read and write.
 */
#ifndef WSAUDIT_REPORT_H
#define WSAUDIT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "attrib.h"
#include "output.h"
#include "rules.h"
#include "runs.h"
#include "testname.h"

/*
 * What a finding is: a rule (enum rule_kind), or one of the run findings, numbered after the
 * rules.  --fail-on, the SARIF rules and the JUnit cases take them all alike.
 */
enum report_run_kind {
	REPORT_INCOMPLETE_RUN = RULE__COUNT,
	REPORT_OUT_OF_ORDER,
	REPORT_MISSING_EVENT,
	REPORT_KINDS,
};

/* rule_name(), or run_rule_name() of a run finding. */
const char *report_kind_name(int kind);
/* The kind of a run finding; -1 for a run that was not judged (RUN_UNJUDGED). */
int report_run_kind(enum run_rule rule);

/* Distinct findings kept; past it, violating frames are counted in findings_dropped. */
#define REPORT_MAX_FINDINGS 4096
/* Distinct tests named per finding; past it, counted in tests_more. */
#define REPORT_MAX_TESTS 32
/* Frames of a finding's stack kept for its code flow. */
#define REPORT_MAX_STACK 64

struct report_loc {
	char *function;
	char *file; /* as the interpreter has it (usually absolute) */
	int line;
};

struct report_finding {
	int rule; /* enum rule_kind, or enum report_run_kind */
	struct report_loc origin; /* function NULL: none could be named (why says why) */
	const char *why; /* an unattributed reason, "not_walked" (a close); "" with an origin */
	uint64_t count;
	char *tests[REPORT_MAX_TESTS];
	size_t ntests;
	uint64_t tests_more;
	uint64_t tests_unknown[TEST__COUNT];
	uint64_t tests_running; /* frames whose test is the one running, not on the stack */
	struct report_loc stack[REPORT_MAX_STACK]; /* of its first frame, innermost first */
	size_t nstack;
	char *detail; /* of its first frame */
	bool known; /* in the baseline */
};

struct report_totals {
	uint64_t frames;
	uint64_t violating_frames;
	/* frames by rule; abnormal_close also counts closes without a close frame; runs */
	uint64_t violations[REPORT_KINDS];
	uint64_t abrupt_closes; /* connections closed without a close frame */
	uint64_t runs_unjudged[RUN_REASON__COUNT]; /* runs not judged, by reason */
	uint64_t unattributed[UNATTR__COUNT];
	/* violating frames that name no test, by reason */
	uint64_t test_unknown[TEST__COUNT];
	/* violating frames whose test is the one their pytest process was running */
	uint64_t test_running;
	uint64_t findings_dropped;
};

struct report;

/* root: paths in reports are relative to it (NULL: as they are). */
struct report *report_new(const char *root);
void report_free(struct report *r);

/* A judged frame, with the test it names (fv->name_tests) or why none. */
void report_frame(struct report *r, const struct frame_view *fv);

/*
 * What is found outside a frame, with the test that caused it (test_why TEST_FOUND) or why
 * none, and whether that test is the one running (not on a stack):
 * a connection closed without a close frame (abnormal_close; closer: the stack of the
 * thread that closed it, NULL when none came), and a run report (docs/runs.md).
 */
void report_abrupt_close(struct report *r, const struct attrib_stack *closer, const char *detail,
			 const char *test, enum test_unknown test_why, bool running);
/*
 * A write still queued in its transport when its connection ended (delivery_failed), at the
 * function that wrote it (o, NULL when not known; s: the hand-over's stack).
 */
void report_queued(struct report *r, const struct attrib_stack *s, const struct attrib_frame *o,
		   const char *detail, const char *test, enum test_unknown test_why, bool running);
void report_run(struct report *r, const struct run_report *rep, const char *detail,
		const char *test, enum test_unknown test_why, bool running);

/*
 * Baseline: {"version":1,"violations":[{"rule","function","file"}, ...]}, file relative to
 * the root.  load: 0, or -errno with the reason in err (the file is left unused).
 */
int report_load_baseline(struct report *r, const char *path, char *err, size_t errlen);
int report_write_baseline(const struct report *r, const char *path);

/* Findings not in the baseline whose kind is in fail_on. */
size_t report_new_failures(const struct report *r, const bool fail_on[REPORT_KINDS]);

const struct report_totals *report_totals(const struct report *r);
size_t report_nfindings(const struct report *r);
const struct report_finding *report_finding(const struct report *r, size_t i);

/* SARIF 2.1.0 and JUnit XML.  0 or -errno. */
int report_write_sarif(const struct report *r, const char *path, const bool fail_on[REPORT_KINDS]);
int report_write_junit(const struct report *r, const char *path, const bool fail_on[REPORT_KINDS]);

/* What the run saw, for the end of the job's log. */
struct report_run {
	uint64_t websocket_conns;
	uint64_t unjudged; /* data frames the bridge rule could not judge */
	uint64_t runs_completed; /* runs that ended (whatever else was found of them) */
	const uint64_t *drops; /* records the kernel could not deliver, by reason (DROP_MAX) */
	int command_status; /* exit code of COMMAND (128+N: killed by signal N) */
	int exit_code; /* of wsaudit run */
	const bool *fail_on;
};

void report_summary(const struct report *r, FILE *out, enum output_format format,
		    const struct report_run *run);

#endif /* WSAUDIT_REPORT_H */

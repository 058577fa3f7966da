/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The report of `wsaudit run`: every violating frame folded into one finding per (rule,
 * origin function, file, line), with its count, the tests that caused it and the stack of
 * its first frame; the frames that could not be attributed and the tests that could not be
 * named, by reason; a baseline of known findings; and the writers of what CI reads (SARIF
 * 2.1.0, JUnit XML, the summary).  Pure but for the files it is asked to read and write.
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
#include "testname.h"

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
	enum rule_kind rule;
	struct report_loc origin; /* function NULL: unattributed (why says why) */
	enum unattributed why;
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
	uint64_t violations[RULE__COUNT];
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
 * Baseline: {"version":1,"violations":[{"rule","function","file"}, ...]}, file relative to
 * the root.  load: 0, or -errno with the reason in err (the file is left unused).
 */
int report_load_baseline(struct report *r, const char *path, char *err, size_t errlen);
int report_write_baseline(const struct report *r, const char *path);

/* Findings not in the baseline whose rule is in fail_on. */
size_t report_new_failures(const struct report *r, const bool fail_on[RULE__COUNT]);

const struct report_totals *report_totals(const struct report *r);
size_t report_nfindings(const struct report *r);
const struct report_finding *report_finding(const struct report *r, size_t i);

/* SARIF 2.1.0 and JUnit XML.  0 or -errno. */
int report_write_sarif(const struct report *r, const char *path, const bool fail_on[RULE__COUNT]);
int report_write_junit(const struct report *r, const char *path, const bool fail_on[RULE__COUNT]);

/* What the run saw, for the end of the job's log. */
struct report_run {
	uint64_t websocket_conns;
	uint64_t unjudged; /* data frames the bridge rule could not judge */
	int command_status; /* exit code of COMMAND (128+N: killed by signal N) */
	int exit_code; /* of wsaudit run */
	const bool *fail_on;
};

void report_summary(const struct report *r, FILE *out, enum output_format format,
		    const struct report_run *run);

#endif /* WSAUDIT_REPORT_H */

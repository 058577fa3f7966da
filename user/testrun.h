/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The test a pytest process is running, read from the process: pytest keeps the running
 * test's node id in the environment variable PYTEST_CURRENT_TEST ("FILE::NAME (call)"),
 * which a write of the process's own environment (setenv) updates in its memory, not in
 * /proc/PID/environ.  It is read through the process's `environ` pointer.
 *
 * For a frame whose writer's stack holds no test (a server task answering a client), this
 * names the test that was running in the writer's pytest process when the frame was
 * written, and only when that is certain: the same test was seen running by a read that
 * ended before the write and by a read that began after it (a test, once over, never runs
 * again, so it ran throughout).  Otherwise the frame names no test and says why.
 */
#ifndef WSAUDIT_TESTRUN_H
#define WSAUDIT_TESTRUN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "testname.h"

/* Processes whose running test is followed. */
#define TESTRUN_MAX_PROCS 64
/* How far up from a writer its pytest process is looked for. */
#define TESTRUN_MAX_DEPTH 16

struct testrun;

struct testrun *testrun_new(void);
void testrun_free(struct testrun *t);

/* Follows pid (and, on frames, the ancestors of writers) as a possible pytest process. */
void testrun_watch(struct testrun *t, pid_t pid);
/* The command: writers' ancestors are looked at up to it (it is followed from now). */
void testrun_set_root(struct testrun *t, pid_t root);
/* Reads the running test of every followed process now (call it often: each poll). */
void testrun_sample(struct testrun *t);

/*
 * The test running in the pytest process of writer (the writer itself or its nearest
 * ancestor that sets PYTEST_CURRENT_TEST) at ts_ns (CLOCK_MONOTONIC): TEST_FOUND and its
 * node id in out, or why not (TEST_NOT_ON_STACK: no pytest process found, or none running;
 * TEST_CHANGED: the running test changed around the write).
 */
enum test_unknown testrun_at(struct testrun *t, pid_t writer, uint64_t ts_ns, char *out,
			     size_t size);

/* Pure, for tests: the node id of a PYTEST_CURRENT_TEST value, without its " (phase)". */
size_t testrun_node_id(const char *value, char *out, size_t size);

#endif /* WSAUDIT_TESTRUN_H */

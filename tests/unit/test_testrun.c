// SPDX-License-Identifier: GPL-2.0
/*
 * The running test read from a live process: a Python child that sets PYTEST_CURRENT_TEST as
 * pytest does (os.environ, i.e. setenv in its memory), changes it, and one that only inherits
 * it.  Reading another process's mapped files needs CAP_SYS_ADMIN: skipped without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testrun.h"

#define PY "/usr/bin/python3"

/*
 * Each line read on stdin sets PYTEST_CURRENT_TEST to it ("-" unsets it), then "ok" is
 * written back.
 */
static const char script[] = "import os, sys\n"
			     "for line in sys.stdin:\n"
			     "    v = line.strip()\n"
			     "    if v == '-':\n"
			     "        os.environ.pop('PYTEST_CURRENT_TEST', None)\n"
			     "    else:\n"
			     "        os.environ['PYTEST_CURRENT_TEST'] = v\n"
			     "    print('ok', flush=True)\n";

struct child {
	pid_t pid;
	FILE *in, *out;
};

static uint64_t mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int start(struct child *c, const char *inherited)
{
	int in[2], out[2];

	if (access(PY, X_OK) || pipe(in) || pipe(out))
		return -1;
	c->pid = fork();
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		if (inherited)
			setenv("PYTEST_CURRENT_TEST", inherited, 1);
		else
			unsetenv("PYTEST_CURRENT_TEST");
		execl(PY, PY, "-c", script, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->in = fdopen(in[1], "w");
	c->out = fdopen(out[0], "r");
	return 0;
}

static void set(struct child *c, const char *value)
{
	char line[64];

	fprintf(c->in, "%s\n", value);
	fflush(c->in);
	assert_non_null(fgets(line, sizeof(line), c->out));
	assert_string_equal(line, "ok\n");
}

static void stop(struct child *c)
{
	fclose(c->in);
	fclose(c->out);
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
}

static bool can_read_mapped_files(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/map_files", pid);
	return access(path, R_OK | X_OK) == 0 && geteuid() == 0;
}

static void test_running_test_read_from_memory(void **state)
{
	struct testrun *t = testrun_new();
	struct child c;
	char out[256];
	uint64_t before, after;

	if (start(&c, NULL))
		skip();
	set(&c, "-");
	if (!can_read_mapped_files(c.pid)) {
		stop(&c);
		testrun_free(t);
		skip(); /* needs CAP_SYS_ADMIN for /proc/PID/map_files */
	}
	testrun_watch(t, c.pid);
	testrun_sample(t);
	assert_int_equal(testrun_at(t, c.pid, mono(), out, sizeof(out)), TEST_NONE_RUNNING);

	before = mono();
	set(&c, "tests/test_a.py::test_one (setup)");
	testrun_sample(t);
	after = mono();
	/* Written after it was seen running: that test.  Before: not certain. */
	assert_int_equal(testrun_at(t, c.pid, after, out, sizeof(out)), TEST_FOUND);
	assert_string_equal(out, "tests/test_a.py::test_one");
	assert_int_equal(testrun_at(t, c.pid, before, out, sizeof(out)), TEST_CHANGED);
	assert_string_equal(out, "");

	/* The next phase is the same test: still certain from its setup on. */
	set(&c, "tests/test_a.py::test_one (call)");
	assert_int_equal(testrun_at(t, c.pid, after, out, sizeof(out)), TEST_FOUND);

	/* The next test, not seen by a read before the write: not named. */
	set(&c, "tests/test_a.py::test_two (call)");
	assert_int_equal(testrun_at(t, c.pid, after, out, sizeof(out)), TEST_CHANGED);
	assert_int_equal(testrun_at(t, c.pid, mono(), out, sizeof(out)), TEST_FOUND);
	assert_string_equal(out, "tests/test_a.py::test_two");

	set(&c, "-");
	assert_int_equal(testrun_at(t, c.pid, mono(), out, sizeof(out)), TEST_NONE_RUNNING);
	stop(&c);
	testrun_free(t);
}

static void test_inherited_value_is_not_its_own(void **state)
{
	struct testrun *t = testrun_new();
	struct child c;
	char out[256];

	/* A server its pytest parent started: the value it was started with is stale. */
	if (start(&c, "tests/test_a.py::test_fixture (setup)"))
		skip();
	set(&c, "tests/test_a.py::test_fixture (setup)");
	if (!can_read_mapped_files(c.pid)) {
		stop(&c);
		testrun_free(t);
		skip();
	}
	testrun_sample(t);
	assert_int_equal(testrun_at(t, c.pid, mono(), out, sizeof(out)), TEST_NONE_RUNNING);
	stop(&c);
	testrun_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_running_test_read_from_memory),
		cmocka_unit_test(test_inherited_value_is_not_its_own),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

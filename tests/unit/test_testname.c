// SPDX-License-Identifier: GPL-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stack_fixture.h"
#include "testname.h"
#include "testrun.h"

static void check(const char *const *frames, size_t n, const char *root, enum test_unknown want,
		  const char *name)
{
	struct attrib_stack *s = stack_of(frames, n, 0);
	char out[256];

	assert_int_equal(testname_from_stack(s, root, out, sizeof(out)), want);
	assert_string_equal(out, name);
	attrib_stack_put(s);
}

static void test_function_on_stack(void **state)
{
	const char *f[] = {
		"Manager.send_to_user@/repo/app/ws/manager.py:10",
		"ThreadService.send@/repo/app/services/thread.py:17",
		"test_started_event@/repo/tests/test_thread.py:30",
		"pytest_pyfunc_call@/usr/lib/python3/dist-packages/_pytest/python.py:195",
	};

	check(f, 4, "/repo", TEST_FOUND, "tests/test_thread.py::test_started_event");
	/* Outside the root, or no root: the path as the interpreter has it. */
	check(f, 4, "/elsewhere", TEST_FOUND, "/repo/tests/test_thread.py::test_started_event");
	check(f, 4, NULL, TEST_FOUND, "/repo/tests/test_thread.py::test_started_event");
	check(f, 4, "/repo/", TEST_FOUND, "tests/test_thread.py::test_started_event");
}

static void test_class_method_and_nested(void **state)
{
	const char *cls[] = {
		"Agent.emit@/repo/app/agent.py:5",
		"TestAgent.test_emit@/repo/tests/agent_test.py:12",
	};
	const char *nested[] = {
		"Agent.emit@/repo/app/agent.py:5",
		"test_run.<locals>.helper@/repo/tests/test_run.py:8",
		"test_run@/repo/tests/test_run.py:11",
	};
	/* The outermost test wins: a test calling another test-named function. */
	const char *outer[] = {
		"test_helper@/repo/tests/test_a.py:3",
		"test_outer@/repo/tests/test_b.py:9",
		"main@/repo/tests/conftest.py:1",
	};

	check(cls, 2, "/repo", TEST_FOUND, "tests/agent_test.py::TestAgent::test_emit");
	check(nested, 3, "/repo", TEST_FOUND, "tests/test_run.py::test_run");
	check(outer, 3, "/repo", TEST_FOUND, "tests/test_b.py::test_outer");
}

static void test_not_a_test(void **state)
{
	/* A test-named function outside a test file, and a non-test function in one. */
	const char *f[] = {
		"test_connection@/repo/app/health.py:3",
		"helper@/repo/tests/test_x.py:4",
		"Server.serve@/usr/lib/python3/dist-packages/uvicorn/server.py:60",
	};
	struct attrib_stack *empty = stack_of(NULL, 0, -1);
	char out[64];

	check(f, 3, "/repo", TEST_NOT_ON_STACK, "");
	assert_int_equal(testname_from_stack(empty, "/repo", out, sizeof(out)), TEST_UNATTRIBUTED);
	assert_int_equal(testname_from_stack(NULL, "/repo", out, sizeof(out)), TEST_UNATTRIBUTED);
	attrib_stack_put(empty);
	assert_true(testname_is_test_file("tests/test_x.py"));
	assert_true(testname_is_test_file("x_test.py"));
	assert_false(testname_is_test_file("/repo/tests/conftest.py"));
	assert_false(testname_is_test_file("/repo/test_x.pyc"));
}

static void test_cut_to_fit(void **state)
{
	const char *f[] = { "TestLong.test_a_very_long_name@/repo/tests/test_long.py:1" };
	struct attrib_stack *s = stack_of(f, 1, 0);
	char out[24];

	for (size_t size = 1; size <= sizeof(out); size++) {
		assert_int_equal(testname_from_stack(s, "/repo", out, size), TEST_FOUND);
		assert_true(strlen(out) < size);
	}
	attrib_stack_put(s);
}

static void test_running_node_id(void **state)
{
	char out[64];

	/* PYTEST_CURRENT_TEST names the phase after the node id: it is not the test's name. */
	assert_int_equal(testrun_node_id("tests/test_x.py::test_a (call)", out, sizeof(out)), 23);
	assert_string_equal(out, "tests/test_x.py::test_a");
	testrun_node_id("tests/test_x.py::TestC::test_b[p (1)] (setup)", out, sizeof(out));
	assert_string_equal(out, "tests/test_x.py::TestC::test_b[p (1)]");
	testrun_node_id("tests/test_x.py::test_c", out, sizeof(out));
	assert_string_equal(out, "tests/test_x.py::test_c");
	testrun_node_id("(call)", out, sizeof(out));
	assert_string_equal(out, "(call)");
	testrun_node_id("tests/test_x.py::test_a (call)", out, 8);
	assert_string_equal(out, "tests/t");
	assert_int_equal(testrun_node_id("", out, sizeof(out)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_function_on_stack),
		cmocka_unit_test(test_class_method_and_nested),
		cmocka_unit_test(test_not_a_test),
		cmocka_unit_test(test_cut_to_fit),
		cmocka_unit_test(test_running_node_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The test that caused a frame, named as pytest names it ("tests/test_x.py::test_name",
 * "tests/test_x.py::Class::test_method"): the outermost test function on the writer's
 * stack.  Pure, for tests.
 */
#ifndef WSAUDIT_TESTNAME_H
#define WSAUDIT_TESTNAME_H

#include <stdbool.h>
#include <stddef.h>

#include "attrib.h"

/* Why a frame names no test; the strings are the JSON "test_unknown" values. */
enum test_unknown {
	TEST_FOUND = 0,
	TEST_NOT_ON_STACK, /* no test function on the writer's stack (e.g. a server task) */
	TEST_UNATTRIBUTED, /* the writer's stack is unknown */
	TEST_CHANGED, /* not on the stack, and the running test changed around the write */
	TEST_NONE_RUNNING, /* not on the stack, and the writer's pytest process ran no test */
	TEST__COUNT,
};

const char *test_unknown_name(enum test_unknown why);

/* True for a file pytest collects by default (test_*.py, *_test.py). */
bool testname_is_test_file(const char *path);

/*
 * The outermost frame (frames are innermost first) that is a test function in a test file:
 * a function or method named test*, or a unittest method (Class.test*), written to out as
 * "FILE::Class::name" with FILE relative to root (as is when it lies outside it; root NULL:
 * as is).  Nested functions (test_x.<locals>.inner) name their test.  Returns TEST_FOUND,
 * or the reason out stays empty.
 */
enum test_unknown testname_from_stack(const struct attrib_stack *s, const char *root, char *out,
				      size_t size);

/* path relative to root when it lies under it, else path itself. */
const char *testname_relative(const char *path, const char *root);

#endif /* WSAUDIT_TESTNAME_H */

// SPDX-License-Identifier: GPL-2.0
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "testname.h"

const char *test_unknown_name(enum test_unknown why)
{
	static const char *const names[] = {
		[TEST_FOUND] = "found",
		[TEST_NOT_ON_STACK] = "not_on_stack",
		[TEST_UNATTRIBUTED] = "unattributed",
		[TEST_CHANGED] = "test_changed",
		[TEST_NONE_RUNNING] = "no_running_test",
	};

	return why < TEST__COUNT ? names[why] : "unknown";
}

bool testname_is_test_file(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !fnmatch("test_*.py", base, 0) || !fnmatch("*_test.py", base, 0);
}

const char *testname_relative(const char *path, const char *root)
{
	size_t n;

	if (!root || !*root)
		return path;
	n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		n--;
	if (!strncmp(path, root, n) && path[n] == '/')
		return path + n + 1;
	return path;
}

/*
 * The part of a qualname that names the test: "test_x", "Class.test_m", or the test that
 * encloses a nested function ("test_x.<locals>.inner" -> "test_x").  Its length, 0 if none.
 */
static size_t test_part(const char *qualname)
{
	const char *locals = strstr(qualname, ".<locals>");
	size_t len = locals ? (size_t)(locals - qualname) : strlen(qualname);
	const char *name = qualname + len;

	/* The last component before any <locals>. */
	while (name > qualname && name[-1] != '.')
		name--;
	if (strncmp(name, "test", 4))
		return 0;
	/* Class.test_m: pytest collects Test* classes, unittest any TestCase subclass. */
	return len;
}

enum test_unknown testname_from_stack(const struct attrib_stack *s, const char *root, char *out,
				      size_t size)
{
	const struct attrib_frame *f;
	const char *p;
	size_t len, n;

	out[0] = '\0';
	if (!s || !s->nframes)
		return TEST_UNATTRIBUTED;
	for (size_t i = s->nframes; i-- > 0;) {
		f = &s->frames[i];
		if (!f->function || !f->file || !testname_is_test_file(f->file))
			continue;
		len = test_part(f->function);
		if (!len)
			continue;
		n = (size_t)snprintf(out, size, "%s::", testname_relative(f->file, root));
		if (n >= size)
			return TEST_FOUND; /* cut to fit by snprintf */
		/* Class.method as pytest writes it: Class::method. */
		for (p = f->function; p < f->function + len && n + 1 < size; p++) {
			if (*p == '.') {
				if (n + 2 >= size)
					break;
				out[n++] = ':';
				out[n++] = ':';
			} else {
				out[n++] = *p;
			}
		}
		out[n] = '\0';
		return TEST_FOUND;
	}
	return TEST_NOT_ON_STACK;
}

// SPDX-License-Identifier: GPL-2.0
/* The one reader of /proc/PID/maps lines, on lines as the kernel writes them and on its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "procmaps.h"

static void test_parse(void **state)
{
	char file[] = "7f1c2a400000-7f1c2a5b0000 r-xp 00028000 fd:01 1573201    "
		      "/usr/lib/x86_64-linux-gnu/libc.so.6\n";
	char spaced[] = "55d0c0000000-55d0c0001000 r--p 00000000 08:02 42 /srv/my app/lib x.so "
			"(deleted)\n";
	char anon[] = "7ffd1a2c0000-7ffd1a2e1000 rw-p 00000000 00:00 0 \n";
	char bare[] = "7ffd1a2c0000-7ffd1a2e1000 rw-p 00000000 00:00 0";
	char heap[] = "55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          "
		      "[heap]\n";
	char bad[] = "not a maps line\n", shortl[] = "1000-2000 r-xp 0 fd:01\n";
	struct procmaps_entry e;

	assert_true(procmaps_parse(file, &e));
	assert_int_equal(e.start, 0x7f1c2a400000ULL);
	assert_int_equal(e.end, 0x7f1c2a5b0000ULL);
	assert_int_equal(e.offset, 0x28000);
	assert_int_equal(e.inode, 1573201);
	assert_true(e.dev == makedev(0xfd, 1));
	assert_string_equal(e.perms, "r-xp");
	assert_string_equal(e.name, "/usr/lib/x86_64-linux-gnu/libc.so.6");

	/* The name is the rest of the line, spaces and all. */
	assert_true(procmaps_parse(spaced, &e));
	assert_string_equal(e.name, "/srv/my app/lib x.so (deleted)");
	assert_true(procmaps_parse(anon, &e));
	assert_string_equal(e.name, "");
	assert_int_equal(e.inode, 0);
	assert_true(procmaps_parse(bare, &e));
	assert_string_equal(e.name, "");
	assert_true(procmaps_parse(heap, &e));
	assert_string_equal(e.name, "[heap]");
	assert_false(procmaps_parse(bad, &e));
	assert_false(procmaps_parse(shortl, &e));
}

/* This process's own maps: the reader finds the executable's text. */
static void test_self(void **state)
{
	struct procmaps_entry e;
	struct procmaps m;
	int n = 0, exec = 0;

	assert_int_equal(procmaps_open(&m, getpid()), 0);
	while (procmaps_next(&m, &e)) {
		n++;
		exec += e.perms[2] == 'x' && e.inode && strstr(e.name, "test_procmaps");
	}
	procmaps_close(&m);
	assert_true(n > 5);
	assert_true(exec >= 1);
	assert_true(procmaps_open(&m, 0x7ffffff0) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_self),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

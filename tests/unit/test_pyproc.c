// SPDX-License-Identifier: GPL-2.0
/*
 * Process registry: version from file names, the 3.9-3.12 table, and the _Py_DebugOffsets
 * parser fed with the bytes of real interpreters (tests/data/pyvectors/debug-3.X.txt, written
 * by gen.py).  Expected values: gdb on the DWARF of the same builds.  The walker runs on a
 * runtime -> interpreter -> thread states -> frames -> code objects chain built in this
 * process's memory with the 3.12 layout and read back through process_vm_readv.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pyproc.h"
#include "pywalk.h"

static size_t load_debug(const char *version, unsigned char *buf, size_t max)
{
	const char *dir = getenv("PYVECTORS_DIR");
	char path[512], *line = NULL;
	size_t cap = 0, n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/debug-%s.txt", dir ? dir : "tests/data/pyvectors",
		 version);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s: %s (run from the repository root)", path,
			 strerror(errno));
	while (getline(&line, &cap, f) > 0) {
		const char *p;

		if (strncmp(line, "debug ", 6))
			continue;
		for (p = line + 6; p[0] && p[1] && p[0] != '\n' && n < max; p += 2) {
			unsigned int b;

			if (sscanf(p, "%2x", &b) != 1)
				break;
			buf[n++] = (unsigned char)b;
		}
	}
	fclose(f);
	free(line);
	return n;
}

static void test_version_from_name(void **state)
{
	int maj = 0, min = 0;
	bool ft = true;

	assert_int_equal(pyproc_version_from_name("/usr/lib/libpython3.10.so.1.0", &maj, &min, &ft),
			 0);
	assert_int_equal(maj, 3);
	assert_int_equal(min, 10);
	assert_false(ft);
	assert_int_equal(pyproc_version_from_name("/usr/bin/python3.13t", &maj, &min, &ft), 0);
	assert_int_equal(min, 13);
	assert_true(ft);
	assert_int_equal(pyproc_version_from_name("python3.9", &maj, &min, &ft), 0);
	assert_int_equal(min, 9);
	assert_int_equal(pyproc_version_from_name("/usr/bin/python3", &maj, &min, &ft), -ENOENT);
	assert_int_equal(pyproc_version_from_name("/usr/bin/python2.7", &maj, &min, &ft), 0);
	assert_int_equal(maj, 2);
	assert_int_equal(pyproc_version_from_name("libpython3.7m.so.1.0", &maj, &min, &ft), 0);
	assert_int_equal(min, 7);
	assert_false(ft);
	assert_int_equal(pyproc_version_from_name("/usr/bin/python1.5", &maj, &min, &ft), -ENOENT);
	assert_int_equal(pyproc_version_from_name("/usr/bin/uwsgi", &maj, &min, &ft), -ENOENT);
}

static void test_table(void **state)
{
	struct pyproc_info *i = calloc(1, sizeof(*i));

	assert_non_null(i);
	assert_int_equal(pyproc_offsets_from_table(3, 8, i), -ENOTSUP);
	assert_int_equal(pyproc_offsets_from_table(3, 13, i), -ENOTSUP);

	assert_int_equal(pyproc_offsets_from_table(3, 9, i), 0);
	assert_int_equal(i->off.frame_kind, PY_FRAME_OBJECT);
	assert_int_equal(i->off.lasti_kind, PY_LASTI_BYTES);
	assert_int_equal(i->off.runtime_interp_head, 32);
	assert_int_equal(i->off.tstate_thread_id, 176);
	assert_int_equal(i->off.frame_lasti, 104);
	assert_int_equal(i->off.frame_localsplus, 360);
	assert_int_equal(i->off.frame_read_size, 112);
	assert_int_equal(i->off.tstate_read_size, 184);
	assert_int_equal(i->layout.lines, PY_LINES_LNOTAB);
	assert_int_equal(i->layout.unicode_ascii_data, 48);

	assert_int_equal(pyproc_offsets_from_table(3, 10, i), 0);
	assert_int_equal(i->off.lasti_kind, PY_LASTI_UNITS);
	assert_int_equal(i->off.frame_lasti, 96);
	assert_int_equal(i->layout.lines, PY_LINES_PEP626);

	assert_int_equal(pyproc_offsets_from_table(3, 11, i), 0);
	assert_int_equal(i->off.frame_kind, PY_FRAME_CFRAME);
	assert_int_equal(i->off.interp_threads_head, 16);
	assert_int_equal(i->off.cframe_current_frame, 8);
	assert_int_equal(i->off.frame_previous, 48);
	assert_int_equal(i->off.frame_code, 32);
	assert_int_equal(i->off.owner_skip_min, 0);
	assert_int_equal(i->off.code_adaptive, 184);

	assert_int_equal(pyproc_offsets_from_table(3, 12, i), 0);
	assert_int_equal(i->off.interp_threads_head, 72);
	assert_int_equal(i->off.tstate_thread_id, 136);
	assert_int_equal(i->off.frame_owner, 70);
	assert_int_equal(i->off.owner_skip_min, 3);
	assert_int_equal(i->off.code_adaptive, 192);
	assert_int_equal(i->layout.unicode_ascii_data, 40);
	assert_int_equal(i->layout.unicode_compact_data, 56);
	free(i);
}

static void test_debug_313(void **state)
{
	unsigned char buf[1024];
	struct pyproc_info *i = calloc(1, sizeof(*i));
	size_t n = load_debug("3.13", buf, sizeof(buf));

	assert_non_null(i);
	assert_int_equal(n, 584);
	assert_int_equal(pyproc_offsets_from_debug(buf, n, i), 0);
	assert_int_equal(i->minor, 13);
	assert_int_equal(i->off.frame_kind, PY_FRAME_DIRECT);
	assert_int_equal(i->off.runtime_interp_head, 632);
	assert_int_equal(i->off.interp_next, 7264);
	assert_int_equal(i->off.interp_threads_head, 7344);
	assert_int_equal(i->off.tstate_next, 8);
	assert_int_equal(i->off.tstate_frame, 72);
	assert_int_equal(i->off.tstate_thread_id, 152);
	assert_int_equal(i->off.tstate_native_thread_id, 160);
	assert_int_equal(i->off.frame_previous, 8);
	assert_int_equal(i->off.frame_code, 0);
	assert_int_equal(i->off.frame_lasti, 56);
	assert_int_equal(i->off.frame_owner, 70);
	assert_int_equal(i->off.frame_localsplus, 72);
	assert_int_equal(i->off.code_adaptive, 200);
	assert_int_equal(i->off.frame_read_size, 78);
	assert_int_equal(i->off.tstate_read_size, 168);
	assert_int_equal(i->off.object_type, 8);
	assert_true(i->off.code_tag_mask == ~0ULL);
	assert_int_equal(i->layout.code_filename, 112);
	assert_int_equal(i->layout.code_qualname, 128);
	assert_int_equal(i->layout.code_linetable, 136);
	assert_int_equal(i->layout.code_firstlineno, 68);
	assert_int_equal(i->layout.unicode_ascii_data, 40);
	assert_int_equal(i->layout.unicode_compact_data, 56);
	assert_int_equal(i->layout.bytes_data, 32);
	assert_int_equal(i->layout.tuple_item, 24);

	/* Short, wrong cookie, or garbage where an offset should be: refused. */
	assert_int_equal(pyproc_offsets_from_debug(buf, 200, i), -EINVAL);
	buf[0] ^= 1;
	assert_int_equal(pyproc_offsets_from_debug(buf, n, i), -EINVAL);
	buf[0] ^= 1;
	memset(buf + 40, 0xff, 8);
	assert_int_equal(pyproc_offsets_from_debug(buf, n, i), -EINVAL);
	/* A version whose layout is unknown. */
	buf[10] = 15;
	assert_int_equal(pyproc_offsets_from_debug(buf, n, i), -ENOTSUP);
	free(i);
}

static void test_debug_314(void **state)
{
	unsigned char buf[1024];
	struct pyproc_info *i = calloc(1, sizeof(*i));
	size_t n = load_debug("3.14", buf, sizeof(buf));

	assert_non_null(i);
	assert_int_equal(n, 760);
	assert_int_equal(pyproc_offsets_from_debug(buf, n, i), 0);
	assert_int_equal(i->minor, 14);
	assert_int_equal(i->off.runtime_interp_head, 808);
	assert_int_equal(i->off.interp_next, 7272);
	assert_int_equal(i->off.interp_threads_head, 7344);
	assert_int_equal(i->off.tstate_frame, 72);
	assert_int_equal(i->off.tstate_thread_id, 152);
	assert_int_equal(i->off.frame_owner, 74);
	assert_int_equal(i->off.frame_localsplus, 80);
	assert_int_equal(i->off.owner_skip_min, 3);
	assert_int_equal(i->off.code_adaptive, 208);
	assert_true(i->off.code_tag_mask == ~3ULL);
	assert_true(i->off.flags & PY_OFF_F_TAGGED_CODE);
	assert_false(i->off.flags & PY_OFF_F_FREE_THREADED);
	assert_int_equal(i->layout.tuple_item, 32);
	assert_int_equal(i->layout.stackref_mask_bits, 3);
	free(i);
}

static void test_inspect_not_python(void **state)
{
	struct pyproc_info *i = calloc(1, sizeof(*i));

	assert_non_null(i);
	/* This test binary maps no interpreter: a clear "no" with the reason, not an error. */
	assert_int_equal(pyproc_inspect(getpid(), i), 0);
	assert_false(i->is_python);
	assert_string_equal(i->reason, "no mapped file defines _PyRuntime");
	assert_true(pyproc_inspect(-1, i) < 0);
	assert_false(i->is_python);
	free(i);
}

/* --- the walker, on a 3.12-shaped runtime in our own memory ------------------------------- */

struct fake_rt {
	struct pyproc_info info;
	unsigned char runtime[64], interp[128], ts1[192], ts2[192], cframe[16];
	unsigned char fr_a[80], fr_shim[80], fr_b[80];
	unsigned char code_type[16], code_a[256], code_b[256];
};

#define TID1 0x7f0000001000ULL
#define TID2 0x7f0000002000ULL

static void put64(unsigned char *b, unsigned int off, const void *p)
{
	unsigned long long v = (uintptr_t)p;

	memcpy(b + off, &v, sizeof(v));
}

static void putv(unsigned char *b, unsigned int off, unsigned long long v)
{
	memcpy(b + off, &v, sizeof(v));
}

static int rt_setup(void **state)
{
	struct fake_rt *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(pyproc_offsets_from_table(3, 12, &f->info), 0);
	f->info.off.runtime_addr = (uintptr_t)f->runtime;
	f->info.off.code_type_addr = (uintptr_t)f->code_type;
	put64(f->runtime, 40, f->interp);
	put64(f->interp, 72, f->ts1);
	put64(f->ts1, 8, f->ts2);
	putv(f->ts1, 136, TID1);
	putv(f->ts1, 144, 11);
	put64(f->ts1, 56, f->cframe);
	put64(f->cframe, 0, f->fr_a);
	putv(f->ts2, 136, TID2);
	/* fr_a: executing the instruction at byte 6; then a shim frame; then fr_b, not started. */
	put64(f->fr_a, 0, f->code_a);
	put64(f->fr_a, 8, f->fr_shim);
	put64(f->fr_a, 56, f->code_a + 192 + 6);
	put64(f->fr_shim, 0, f->code_type);
	put64(f->fr_shim, 8, f->fr_b);
	f->fr_shim[70] = 3;
	put64(f->fr_b, 0, f->code_b);
	put64(f->fr_b, 56, f->code_b + 192 - 2);
	put64(f->code_a, 8, f->code_type);
	put64(f->code_b, 8, f->code_type);
	*state = f;
	return 0;
}

static int rt_teardown(void **state)
{
	free(*state);
	return 0;
}

static void test_walk(void **state)
{
	struct fake_rt *f = *state;
	const struct py_offsets *off = &f->info.off;
	struct pywalk_thread th[4];
	struct pywalk_frame fr[8];
	struct pywalk_stats st;
	char why[256];
	pid_t me = getpid();

	assert_int_equal(pywalk_threads(me, off, th, 4), 2);
	assert_true(th[0].thread_id == TID1);
	assert_true(th[0].native_id == 11);
	assert_true(th[0].frame == (uintptr_t)f->fr_a);
	assert_true(th[1].thread_id == TID2);
	assert_true(th[1].frame == 0);

	assert_int_equal(pywalk_stack(me, off, TID1, fr, 8, &st), 2);
	assert_true(fr[0].code == (uintptr_t)f->code_a);
	assert_int_equal(fr[0].lasti, 6);
	assert_true(fr[1].code == (uintptr_t)f->code_b);
	assert_int_equal(fr[1].lasti, -1);
	assert_int_equal(st.skipped, 1);
	assert_int_equal(st.truncated, 0);
	assert_int_equal(pywalk_stack(me, off, TID1, fr, 1, &st), 1);
	assert_int_equal(st.truncated, 1);
	assert_int_equal(pywalk_stack(me, off, TID2, fr, 8, &st), 0);
	assert_int_equal(pywalk_stack(me, off, 0x1234, fr, 8, &st), -ESRCH);
	assert_int_equal(pywalk_validate(me, off, why, sizeof(why)), 0);

	/* A frame whose code is not a code object: the offsets are wrong for this process. */
	put64(f->code_b, 8, f->fr_b);
	assert_int_equal(pywalk_stack(me, off, TID1, fr, 8, &st), -EPROTO);
	assert_int_equal(pywalk_validate(me, off, why, sizeof(why)), -EPROTO);
	assert_non_null(strstr(why, "code object"));
	put64(f->code_b, 8, f->code_type);

	/* A thread id that cannot be a pthread_t. */
	putv(f->ts2, 136, 0);
	assert_int_equal(pywalk_validate(me, off, why, sizeof(why)), -EPROTO);
	assert_non_null(strstr(why, "thread_id"));

	/* Interpreter without threads yet. */
	putv(f->interp, 72, 0);
	assert_int_equal(pywalk_validate(me, off, why, sizeof(why)), -EAGAIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_from_name),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_debug_313),
		cmocka_unit_test(test_debug_314),
		cmocka_unit_test(test_inspect_not_python),
		cmocka_unit_test_setup_teardown(test_walk, rt_setup, rt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

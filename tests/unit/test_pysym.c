// SPDX-License-Identifier: GPL-2.0
/*
 * Line-table and string decoders against vectors produced by real interpreters
 * (tests/data/pyvectors/gen.py), and the symbol cache against code objects laid out in this
 * process's own memory, read back through process_vm_readv like a traced process.
 */
#include <errno.h>
#include <limits.h>
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
#include "pysym.h"
#include "wsaudit/events.h"

#define VEC_DIR_DEFAULT "tests/data/pyvectors"

static const char *vec_dir(void)
{
	const char *d = getenv("PYVECTORS_DIR");

	return d ? d : VEC_DIR_DEFAULT;
}

static size_t unhex(const char *s, unsigned char *out, size_t max)
{
	size_t n = 0;

	if (!strcmp(s, "-"))
		return 0;
	while (s[0] && s[1] && n < max) {
		unsigned int b;

		if (sscanf(s, "%2x", &b) != 1)
			break;
		out[n++] = (unsigned char)b;
		s += 2;
	}
	return n;
}

typedef int (*line_fn)(const unsigned char *, size_t, int, int, int *);

static void check_lines(const char *version, line_fn fn)
{
	char path[512], *line = NULL, name[256];
	size_t cap = 0, tlen = 0;
	unsigned char *table = malloc(1 << 20);
	int first = 0, codes = 0, checked = 0, bad = 0;
	FILE *f;

	assert_non_null(table);
	snprintf(path, sizeof(path), "%s/lines-%s.txt", vec_dir(), version);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s: %s (run from the repository root)", path,
			 strerror(errno));
	while (getline(&line, &cap, f) > 0) {
		static char hex[2 << 20];
		char want[32];
		int off, got, err;

		if (sscanf(line, "code %d %2097151s %255s", &first, hex, name) == 3) {
			tlen = unhex(hex, table, 1 << 20);
			codes++;
			continue;
		}
		if (sscanf(line, "line %d %31s", &off, want) != 2)
			continue;
		checked++;
		err = fn(table, tlen, first, off, &got);
		if (!strcmp(want, "-")) {
			if (err != -ENOENT) {
				if (bad++ < 5)
					print_message("%s %s +%d: want no line, got %d/%d\n",
						      version, name, off, err, got);
			}
		} else if (err || got != atoi(want)) {
			if (bad++ < 5)
				print_message("%s %s +%d: want %s, got %d/%d\n", version, name, off,
					      want, err, got);
		}
	}
	fclose(f);
	free(line);
	free(table);
	print_message("lines-%s: %d code objects, %d offsets, %d mismatches\n", version, codes,
		      checked, bad);
	assert_true(codes > 10);
	assert_true(checked > 1000);
	assert_int_equal(bad, 0);
}

static void test_lnotab_39(void **state)
{
	check_lines("3.9", pysym_line_lnotab);
}

static void test_pep626_310(void **state)
{
	check_lines("3.10", pysym_line_pep626);
}

static void test_locations_311(void **state)
{
	check_lines("3.11", pysym_line_locations);
}

static void test_locations_312(void **state)
{
	check_lines("3.12", pysym_line_locations);
}

static void test_locations_313(void **state)
{
	check_lines("3.13", pysym_line_locations);
}

/*
 * A first line and a table chosen by the traced process that carry the line past an int (the
 * fuzzer's find: INT_MIN plus a delta of -1) are refused, never an overflow.
 */
static void test_lines_past_an_int(void **state)
{
	/* lnotab and PEP 626: one entry covering offsets 0-1, line delta -1 / +1. */
	const unsigned char down[] = { 2, 0xff }, up[] = { 2, 1 };
	/* locations: a "long" entry (code 14) of one unit, line delta -1, then three varints. */
	const unsigned char loc[] = { 0x80 | (14 << 3), 3, 0, 0, 0 };
	int line = 7;

	assert_int_equal(pysym_line_lnotab(up, sizeof(up), INT_MAX, 4, &line), -ERANGE);
	assert_int_equal(pysym_line_pep626(down, sizeof(down), INT_MIN, 0, &line), -ERANGE);
	assert_int_equal(pysym_line_pep626(up, sizeof(up), INT_MAX, 0, &line), -ERANGE);
	assert_int_equal(pysym_line_locations(loc, sizeof(loc), INT_MIN, 0, &line), -ERANGE);
	assert_int_equal(line, 7);
	assert_int_equal(pysym_line_pep626(down, sizeof(down), 10, 0, &line), 0);
	assert_int_equal(line, 9);
	assert_int_equal(pysym_line_locations(loc, sizeof(loc), 10, 0, &line), 0);
	assert_int_equal(line, 9);
}

static void test_locations_314(void **state)
{
	check_lines("3.14", pysym_line_locations);
}

static void test_line_errors(void **state)
{
	/* Bit 7 clear at an entry start: malformed. */
	const unsigned char bad[] = { 0x12 };
	/* One short-form entry of 1 unit, then a long-form entry cut short. */
	const unsigned char cut[] = { 0x80, 0x00, 0xf0 };
	const unsigned char pep[] = { 4, 1, 4, 0x80 };
	int line = 0;

	assert_int_equal(pysym_line_locations(bad, sizeof(bad), 1, 0, &line), -EINVAL);
	assert_int_equal(pysym_line_locations(cut, 2, 7, 0, &line), 0);
	assert_int_equal(line, 7);
	assert_int_equal(pysym_line_locations(cut, 2, 7, 2, &line), -ERANGE);
	assert_int_equal(pysym_line_locations(cut, sizeof(cut), 7, 2, &line), -EINVAL);
	assert_int_equal(pysym_line_locations(cut, 2, 7, -1, &line), 0);
	assert_int_equal(line, 7);
	assert_int_equal(pysym_line_pep626(pep, sizeof(pep), 10, 2, &line), 0);
	assert_int_equal(line, 11);
	assert_int_equal(pysym_line_pep626(pep, sizeof(pep), 10, 6, &line), -ENOENT);
	assert_int_equal(pysym_line_pep626(pep, sizeof(pep), 10, 8, &line), -ERANGE);
	assert_int_equal(pysym_line_pep626(pep, 0, 10, 0, &line), -ERANGE);
}

/* Garbage tables (a freed and reused bytes object) must give an error, never a bad read. */
static void test_line_garbage(void **state)
{
	unsigned char t[64] = { 0 }, *c;
	unsigned int seed = 12345;
	int i, j, line, ok = 0;

	for (i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand_r(&seed) % (int)sizeof(t));

		for (j = 0; j < (int)n; j++)
			t[j] = (unsigned char)rand_r(&seed);
		/* Exactly sized copies so that ASan catches any read past the end. */
		c = malloc(n ? n : 1);

		assert_non_null(c);
		memcpy(c, t, n);
		ok += !pysym_line_locations(c, n, 1, rand_r(&seed) % 256, &line);
		ok += !pysym_line_pep626(c, n, 1, rand_r(&seed) % 256, &line);
		ok += !pysym_line_lnotab(c, n, 1, rand_r(&seed) % 256, &line);
		free(c);
	}
	assert_true(ok > 0);
}

static void test_unicode_vectors(void **state)
{
	char path[512], *line = NULL;
	size_t cap = 0;
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/unicode.txt", vec_dir());
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	while (getline(&line, &cap, f) > 0) {
		char dhex[512], uhex[512], out[256];
		unsigned char data[256], want[256];
		unsigned int kind, wbad, bad = 99;
		size_t dlen, wlen;
		int r;

		if (sscanf(line, "unicode %u %511s %511s %u", &kind, dhex, uhex, &wbad) != 4)
			continue;
		dlen = unhex(dhex, data, sizeof(data));
		wlen = unhex(uhex, want, sizeof(want));
		r = pysym_ucs_to_utf8(data, dlen / kind, kind, out, sizeof(out), &bad);
		assert_int_equal(r, (int)wlen);
		assert_memory_equal(out, want, wlen);
		assert_int_equal(out[wlen], '\0');
		assert_int_equal(bad, wbad);
		n++;
	}
	fclose(f);
	free(line);
	assert_true(n >= 8);
}

static void test_unicode_limits(void **state)
{
	const uint16_t ucs2[] = { 0x9001, 0x4fe1 };
	const uint32_t big[] = { 0x110000 };
	char out[5];
	unsigned int bad;

	/* 6 bytes of UTF-8 do not fit in 5: cut after the first character. */
	assert_int_equal(pysym_ucs_to_utf8(ucs2, 2, 2, out, sizeof(out), &bad), -ENOSPC);
	assert_string_equal(out, "\xe9\x80\x81");
	assert_int_equal(pysym_ucs_to_utf8(big, 1, 4, out, sizeof(out), &bad), 3);
	assert_int_equal(bad, 1);
	assert_int_equal(pysym_ucs_to_utf8(big, 1, 3, out, sizeof(out), &bad), -EINVAL);
}

/* --- the cache, on objects in our own memory ---------------------------------------------- */

struct fake_str {
	unsigned char b[96];
};

struct fake {
	struct pyproc_info info;
	unsigned char code_type[64];
	unsigned char widget_type[64];
	unsigned char code[3][256];
	struct fake_str s[8];
	unsigned char table[64];
	unsigned char varnames[64];
	unsigned char obj[32];
	unsigned char cell_type[64];
	unsigned char cell[32];
	unsigned char frame[128];
	unsigned char longstr[40 + 1500];
};

static void put_u64(unsigned char *b, unsigned int off, unsigned long long v)
{
	memcpy(b + off, &v, sizeof(v));
}

static void put_i32(unsigned char *b, unsigned int off, int v)
{
	memcpy(b + off, &v, sizeof(v));
}

/* A compact ASCII string in the 3.12 layout. */
static unsigned long long fake_ascii(struct fake_str *s, const char *text)
{
	unsigned int state = 0x20 | 0x40 | (1 << 2);

	memset(s, 0, sizeof(*s));
	put_u64(s->b, 16, strlen(text));
	memcpy(s->b + 32, &state, sizeof(state));
	memcpy(s->b + 40, text, strlen(text));
	return (uintptr_t)s->b;
}

static void fake_code(struct fake *f, int i, unsigned long long file, unsigned long long name,
		      unsigned long long qual, int first)
{
	unsigned char *c = f->code[i];

	memset(c, 0, sizeof(f->code[i]));
	put_u64(c, 8, (uintptr_t)f->code_type);
	put_u64(c, 112, file);
	put_u64(c, 120, name);
	put_u64(c, 128, qual);
	put_u64(c, 136, (uintptr_t)f->table);
	put_i32(c, 68, first);
	put_i32(c, 52, 1);
	put_u64(c, 96, (uintptr_t)f->varnames);
}

static int fake_setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	/* Location table: one-line entries of 2 units each, lines +0, +1, +2. */
	const unsigned char loc[] = { 0xd1, 0, 0, 0xd9, 0, 0, 0xd9, 0, 0 };

	assert_non_null(f);
	assert_int_equal(pyproc_offsets_from_table(3, 12, &f->info), 0);
	f->info.off.code_type_addr = (uintptr_t)f->code_type;
	put_u64(f->table, 16, sizeof(loc));
	memcpy(f->table + 32, loc, sizeof(loc));
	fake_code(f, 0, fake_ascii(&f->s[0], "/srv/app.py"), fake_ascii(&f->s[1], "send"),
		  fake_ascii(&f->s[2], "Bridge.send"), 40);
	fake_code(f, 1, fake_ascii(&f->s[3], "/srv/other.py"), fake_ascii(&f->s[4], "run"),
		  fake_ascii(&f->s[5], "run"), 10);
	memcpy(f->code[2], f->code[1], sizeof(f->code[1]));
	/* Method class: varnames[0] is "self", localsplus[0] an object of type pkg.Widget. */
	put_u64(f->varnames, 24, fake_ascii(&f->s[6], "self"));
	put_u64(f->widget_type, 24, (uintptr_t) "pkg.Widget");
	put_u64(f->obj, 8, (uintptr_t)f->widget_type);
	put_u64(f->frame, 72, (uintptr_t)f->obj);
	*state = f;
	return 0;
}

static int fake_teardown(void **state)
{
	free(*state);
	return 0;
}

static void test_cache(void **state)
{
	struct fake *f = *state;
	struct pysym *s = pysym_new(2);
	struct pysym_stats st;
	struct pysym_loc loc;
	pid_t me = getpid();
	unsigned long long c0 = (uintptr_t)f->code[0], c1 = (uintptr_t)f->code[1];

	assert_non_null(s);
	assert_int_equal(pysym_lookup(s, me, &f->info, c0, 8, &loc), 0);
	assert_string_equal(loc.function, "Bridge.send");
	assert_string_equal(loc.name, "send");
	assert_string_equal(loc.file, "/srv/app.py");
	assert_int_equal(loc.line, 42);
	assert_int_equal(pysym_lookup(s, me, &f->info, c0, 4, &loc), 0);
	assert_int_equal(loc.line, 41);
	assert_int_equal(loc.line_err, 0);
	/* Past the table, and an offset the walk could not know: no line, and why. */
	assert_int_equal(pysym_lookup(s, me, &f->info, c0, 12, &loc), 0);
	assert_int_equal(loc.line, 0);
	assert_int_equal(loc.line_err, -ERANGE);
	assert_int_equal(pysym_lookup(s, me, &f->info, c0, PYSYM_LASTI_UNKNOWN, &loc), 0);
	assert_int_equal(loc.line_err, -ENODATA);
	assert_string_equal(loc.function, "Bridge.send");
	pysym_get_stats(s, &st);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.hits, 3);
	assert_int_equal(st.no_line, 1);
	assert_int_equal(st.unknown_offset, 1);

	/* The address is reused by another function: the old name must not come back. */
	fake_code(f, 0, fake_ascii(&f->s[0], "/srv/app.py"), fake_ascii(&f->s[7], "close"),
		  fake_ascii(&f->s[2], "Bridge.close"), 40);
	assert_int_equal(pysym_lookup(s, me, &f->info, c0, 0, &loc), 0);
	assert_string_equal(loc.function, "Bridge.close");
	pysym_get_stats(s, &st);
	assert_int_equal(st.stale, 1);

	/* Three code objects in a cache of two: one eviction. */
	assert_int_equal(pysym_lookup(s, me, &f->info, c1, 0, &loc), 0);
	assert_int_equal(pysym_lookup(s, me, &f->info, (uintptr_t)f->code[2], 0, &loc), 0);
	pysym_get_stats(s, &st);
	assert_int_equal(st.evictions, 1);

	/* Not a code object (freed memory reused for something else). */
	put_u64(f->code[1], 8, 0);
	assert_int_equal(pysym_lookup(s, me, &f->info, c1, 0, &loc), -ENOEXEC);
	put_u64(f->code[1], 8, (uintptr_t)f->code_type);

	/* After the process exits, nothing of it is served from the cache. */
	pysym_forget_pid(s, me);
	assert_int_equal(pysym_lookup(s, me, &f->info, c1, 0, &loc), 0);
	pysym_get_stats(s, &st);
	assert_int_equal(st.hits, 3);
	assert_int_equal(st.misses, 5);
	pysym_free(s);
}

/*
 * pysym_resolve hands out the cached symbol: the same one while the code object is the same,
 * kept alive by its holders after the address is reused, and never given for the new one.
 */
static void test_resolve_shared(void **state)
{
	struct fake *f = *state;
	struct pysym *s = pysym_new(4);
	unsigned long long c0 = (uintptr_t)f->code[0], c1 = (uintptr_t)f->code[1];
	unsigned long long stack[] = { c0, c1, c0, c0 };
	struct pysym_hit a, b, c;
	struct pysym_stats st;
	pid_t me = getpid();

	assert_non_null(s);
	/* A recursive stack: each code object is read once, every frame is served. */
	pysym_prefetch(s, me, &f->info, stack, 4);
	assert_int_equal(pysym_resolve(s, me, &f->info, c0, 8, &a), 0);
	assert_int_equal(pysym_resolve(s, me, &f->info, c0, 4, &b), 0);
	assert_ptr_equal(a.sym, b.sym);
	assert_string_equal(a.sym->function, "Bridge.send");
	assert_string_equal(a.sym->file, "/srv/app.py");
	assert_int_equal(a.line, 42);
	assert_int_equal(b.line, 41);
	/* The line of an offset comes from the symbol's memo the second time, the same. */
	pysym_sym_put(b.sym);
	assert_int_equal(pysym_resolve(s, me, &f->info, c0, 8, &b), 0);
	assert_int_equal(b.line, 42);
	pysym_sym_put(b.sym);
	assert_int_equal(pysym_resolve(s, me, &f->info, c1, 0, &c), 0);
	assert_true(c.sym->id != a.sym->id);
	pysym_sym_put(c.sym);

	/* The address now holds another function: a new symbol, and the old one still reads. */
	fake_code(f, 0, fake_ascii(&f->s[0], "/srv/app.py"), fake_ascii(&f->s[7], "close"),
		  fake_ascii(&f->s[2], "Bridge.close"), 40);
	pysym_prefetch(s, me, &f->info, stack, 4);
	assert_int_equal(pysym_resolve(s, me, &f->info, c0, 0, &b), 0);
	assert_ptr_not_equal(a.sym, b.sym);
	assert_true(a.sym->id != b.sym->id);
	assert_string_equal(b.sym->function, "Bridge.close");
	assert_string_equal(a.sym->function, "Bridge.send");
	pysym_get_stats(s, &st);
	assert_int_equal(st.stale, 1);
	pysym_sym_put(b.sym);
	/* Gone from the cache (process exit), alive for its holder until put. */
	pysym_forget_pid(s, me);
	assert_string_equal(a.sym->name, "send");
	pysym_free(s);
	pysym_sym_put(a.sym);
}

/*
 * Unchecked lookups serve the cache without reading; pysym_check and pysym_resolve catch a
 * reused address, and each read that finds the code object moves checked_ns forward.
 */
static void test_unchecked(void **state)
{
	struct fake *f = *state;
	struct pysym *s = pysym_new(4);
	unsigned long long c0 = (uintptr_t)f->code[0], first;
	struct pysym_hit a, b;
	struct pysym_stats st;
	pid_t me = getpid();

	assert_non_null(s);
	assert_int_equal(pysym_check(s, me, &f->info, c0), -ENOENT);
	/* Not cached: read, as a checked lookup would. */
	assert_int_equal(pysym_resolve_unchecked(s, me, &f->info, c0, 8, &a), 0);
	assert_string_equal(a.sym->function, "Bridge.send");
	first = a.sym->checked_ns;
	assert_true(first > 0);
	assert_int_equal(pysym_check(s, me, &f->info, c0), 0);
	assert_true(a.sym->checked_ns > first);
	/* The address is reused: unchecked still says the old name, a check drops it. */
	fake_code(f, 0, fake_ascii(&f->s[0], "/srv/app.py"), fake_ascii(&f->s[7], "close"),
		  fake_ascii(&f->s[2], "Bridge.close"), 40);
	assert_int_equal(pysym_resolve_unchecked(s, me, &f->info, c0, 8, &b), 0);
	assert_ptr_equal(a.sym, b.sym);
	pysym_sym_put(b.sym);
	assert_int_equal(pysym_check(s, me, &f->info, c0), -ESTALE);
	assert_int_equal(pysym_resolve_unchecked(s, me, &f->info, c0, 8, &b), 0);
	assert_string_equal(b.sym->function, "Bridge.close");
	assert_true(b.sym->checked_ns > a.sym->checked_ns);
	pysym_get_stats(s, &st);
	assert_int_equal(st.unchecked, 1);
	assert_int_equal(st.stale, 1);
	pysym_sym_put(a.sym);
	pysym_sym_put(b.sym);
	pysym_free(s);
}

/* Copies @n bytes of an object's start and @len of its data at @data_off, as the walk does. */
static void names_obj_copy(struct names_obj *o, unsigned char *dst, const unsigned char *obj,
			   size_t n, size_t data_off, size_t len)
{
	memset(o, 0, sizeof(*o));
	memcpy(o->head, obj, n);
	memcpy(dst, obj + data_off, len);
	o->len = (unsigned int)len;
	o->status = NAMES_OBJ_OK;
}

/* The names record the walk would send for f->code[0] (file, name, qualname: s[0], s[1], s[2]). */
static struct evt_code_names *names_record(struct fake *f, unsigned int qual)
{
	struct evt_code_names *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->hdr.type = EVT_CODE_NAMES;
	r->hdr.version = EVT_VERSION;
	r->hdr.size = sizeof(*r);
	r->hdr.ts_ns = 1;
	r->code = (uintptr_t)f->code[0];
	memcpy(r->code_head, f->code[0], NAMES_CODE_HEAD);
	names_obj_copy(&r->obj[NAMES_FILE], r->file, f->s[0].b, sizeof(f->s[0].b), 40,
		       strlen("/srv/app.py"));
	names_obj_copy(&r->obj[NAMES_NAME], r->name, f->s[1].b, sizeof(f->s[1].b), 40,
		       strlen("send"));
	names_obj_copy(&r->obj[NAMES_QUALNAME], r->qualname, f->s[qual].b, sizeof(f->s[qual].b), 40,
		       strlen((const char *)f->s[qual].b + 40));
	names_obj_copy(&r->obj[NAMES_TABLE], r->table, f->table, sizeof(f->table), 32, 9);
	return r;
}

/*
 * A names record names its code object for a process that is gone (no read can be made), as
 * a read would have; a frame whose walk did not send its names is read, and fails.  Records
 * are the traced process's bytes: one that is not a code object, or whose strings do not
 * hold together, is refused and names nothing.
 */
static void test_learn(void **state)
{
	struct fake *f = *state;
	struct pysym *s = pysym_new(4);
	unsigned long long c0 = (uintptr_t)f->code[0];
	struct evt_code_names *r = names_record(f, 2);
	struct pysym_stats st;
	struct pysym_hit a;
	/* No such process: as one that exited before the collector got to its stacks. */
	pid_t gone = 0x3ffffff0;

	assert_non_null(s);
	assert_int_not_equal(pysym_resolve_carried(s, gone, &f->info, c0, 8, &a), 0);
	assert_int_equal(pysym_learn(s, gone, &f->info, r), 0);
	assert_int_equal(pysym_resolve_carried(s, gone, &f->info, c0, 8, &a), 0);
	assert_true(a.sym->recorded);
	assert_string_equal(a.sym->function, "Bridge.send");
	assert_string_equal(a.sym->name, "send");
	assert_string_equal(a.sym->file, "/srv/app.py");
	assert_int_equal(a.line, 42);
	assert_false(a.sym->truncated);
	pysym_sym_put(a.sym);
	/* The walk could not send this frame's names (PYF_UNNAMED): the process must be read. */
	assert_int_not_equal(pysym_resolve(s, gone, &f->info, c0, 8, &a), 0);

	/* Another code object at the same address, named by its own record: the new name. */
	free(r);
	fake_ascii(&f->s[7], "Bridge.close");
	r = names_record(f, 7);
	put_u64(r->code_head, 128, (uintptr_t)f->s[7].b);
	assert_int_equal(pysym_learn(s, gone, &f->info, r), 0);
	assert_int_equal(pysym_resolve_carried(s, gone, &f->info, c0, 0, &a), 0);
	assert_string_equal(a.sym->function, "Bridge.close");
	pysym_sym_put(a.sym);
	pysym_get_stats(s, &st);
	assert_int_equal(st.names_learned, 2);
	assert_int_equal(st.stale, 1);
	assert_int_equal(st.recorded, 2);

	/* A name longer than what was copied: its start, flagged. */
	r->obj[NAMES_QUALNAME].len = 6;
	r->obj[NAMES_QUALNAME].status = NAMES_OBJ_CUT;
	put_u64(r->code_head, 128, (uintptr_t)f->s[6].b);
	assert_int_equal(pysym_learn(s, gone, &f->info, r), 0);
	assert_int_equal(pysym_resolve_carried(s, gone, &f->info, c0, 0, &a), 0);
	assert_string_equal(a.sym->function, "Bridge");
	assert_true(a.sym->truncated);
	pysym_sym_put(a.sym);

	/* Refused: not a code object, a str that says more was copied than the walk copies. */
	put_u64(r->code_head, 8, 0);
	assert_int_equal(pysym_learn(s, gone, &f->info, r), -ENOEXEC);
	put_u64(r->code_head, 8, (uintptr_t)f->code_type);
	put_u64(r->code_head, 128, (uintptr_t)f->s[5].b);
	r->obj[NAMES_QUALNAME].len = NAMES_NAME_MAX + 1;
	assert_int_equal(pysym_learn(s, gone, &f->info, r), -EINVAL);
	r->obj[NAMES_QUALNAME].len = 3;
	r->obj[NAMES_QUALNAME].status = NAMES_OBJ_FAULT;
	assert_int_equal(pysym_learn(s, gone, &f->info, r), -EFAULT);
	r->obj[NAMES_QUALNAME].status = NAMES_OBJ_OK;
	/* A line table shorter than the bytes it claims were copied. */
	put_u64(r->obj[NAMES_TABLE].head, 16, 4);
	assert_int_equal(pysym_learn(s, gone, &f->info, r), -EINVAL);
	pysym_get_stats(s, &st);
	assert_int_equal(st.names_rejected, 4);
	/*
	 * Nothing refused is cached, and the old name is gone too: the walk found another
	 * object at that address.  The process cannot be read: the frame is not named.
	 */
	assert_int_not_equal(pysym_resolve_carried(s, gone, &f->info, c0, 0, &a), 0);
	free(r);
	pysym_free(s);
}

static void test_truncated(void **state)
{
	struct fake *f = *state;
	struct pysym *s = pysym_new(4);
	struct pysym_stats st;
	struct pysym_loc loc;
	unsigned int ascii = 0x20 | 0x40 | (1 << 2);

	assert_non_null(s);
	/* A 1500-character file name does not fit PYSYM_FILE_MAX: cut, and said so. */
	put_u64(f->longstr, 16, 1500);
	memcpy(f->longstr + 32, &ascii, sizeof(ascii));
	memset(f->longstr + 40, 'a', 1500);
	put_u64(f->code[0], 112, (uintptr_t)f->longstr);
	assert_int_equal(pysym_lookup(s, getpid(), &f->info, (uintptr_t)f->code[0], 0, &loc), 0);
	assert_true(loc.truncated);
	assert_int_equal(strlen(loc.file), PYSYM_FILE_MAX - 1);
	assert_string_equal(loc.function, "Bridge.send");
	pysym_get_stats(s, &st);
	assert_int_equal(st.truncated, 1);
	pysym_free(s);
}

static void test_method_class(void **state)
{
	struct fake *f = *state;
	char buf[64];

	assert_int_equal(pysym_method_class(getpid(), &f->info, (uintptr_t)f->frame,
					    (uintptr_t)f->code[0], buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "Widget");
	/* 3.11+: self captured by a closure is a cell in its slot; follow it. */
	f->info.cell_type_addr = (uintptr_t)f->cell_type;
	put_u64(f->cell, 8, (uintptr_t)f->cell_type);
	put_u64(f->cell, 16, (uintptr_t)f->obj);
	put_u64(f->frame, 72, (uintptr_t)f->cell);
	buf[0] = '\0';
	assert_int_equal(pysym_method_class(getpid(), &f->info, (uintptr_t)f->frame,
					    (uintptr_t)f->code[0], buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "Widget");
	put_u64(f->cell, 16, 0);
	assert_int_equal(pysym_method_class(getpid(), &f->info, (uintptr_t)f->frame,
					    (uintptr_t)f->code[0], buf, sizeof(buf)),
			 -ENOENT);
	/* A first argument with another name is not a method receiver. */
	put_u64(f->varnames, 24, fake_ascii(&f->s[6], "sock"));
	assert_int_equal(pysym_method_class(getpid(), &f->info, (uintptr_t)f->frame,
					    (uintptr_t)f->code[0], buf, sizeof(buf)),
			 -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lnotab_39),
		cmocka_unit_test(test_pep626_310),
		cmocka_unit_test(test_locations_311),
		cmocka_unit_test(test_locations_312),
		cmocka_unit_test(test_locations_313),
		cmocka_unit_test(test_lines_past_an_int),
		cmocka_unit_test(test_locations_314),
		cmocka_unit_test(test_line_errors),
		cmocka_unit_test(test_line_garbage),
		cmocka_unit_test(test_unicode_vectors),
		cmocka_unit_test(test_unicode_limits),
		cmocka_unit_test_setup_teardown(test_cache, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_resolve_shared, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_unchecked, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_truncated, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_learn, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_method_class, fake_setup, fake_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

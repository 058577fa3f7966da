// SPDX-License-Identifier: GPL-2.0
/*
 * JSON records are written by output.c's own compact writer: each line must be exactly what
 * jansson's json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER) writes for the same tree, for
 * strings that need escapes, control characters, every UTF-8 length and bytes that are not
 * UTF-8 (shown as \xNN text).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "output.h"

static char lines[64][16384];
static size_t nlines;

static void sink(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	assert_true(nlines < sizeof(lines) / sizeof(lines[0]) && len < sizeof(lines[0]));
	memcpy(lines[nlines], line, len);
	lines[nlines++][len] = '\0';
}

/* jansson's own dump of the tree the line holds, with output.c's flags and newline. */
static void assert_as_jansson(const char *line)
{
	json_error_t err;
	json_t *root = json_loads(line, 0, &err);
	char *again;

	assert_non_null(root);
	again = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_non_null(again);
	assert_int_equal(strlen(line), strlen(again) + 1);
	assert_memory_equal(line, again, strlen(again));
	assert_int_equal(line[strlen(again)], '\n');
	assert_memory_equal(line, "{\"v\":", 5);
	free(again);
	json_decref(root);
}

static void test_records_as_jansson_writes_them(void **state)
{
	static char longs[9000];
	const char *const texts[] = {
		"python3",
		"",
		"quote \" backslash \\ slash / end",
		"\x01\x02\x1f control \x7f del",
		"\b\f\n\r\t",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		"not utf-8 \xff\xfe \xc0\xaf \xed\xa0\x80 end",
		longs,
	};
	struct output *o = output_new(stdout, OUTPUT_JSON, false, false);

	(void)state;
	for (size_t i = 0; i + 1 < sizeof(longs); i++)
		longs[i] = (char)(i % 2 ? '"' : 'a' + i % 26);
	assert_non_null(o);
	output_set_sink(o, sink, NULL);
	nlines = 0;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		output_process(o, "process_exec", 1000000000ull * i, (uint32_t)i, texts[i], 0);
		output_process(o, "process_exit", 1, 4294967295u, texts[i], -2147483647 - 1);
		output_selfcheck(o, 7, false, texts[i], 123456789);
	}
	output_selfcheck(o, 7, true, NULL, 0);
	assert_int_equal(nlines, 3 * sizeof(texts) / sizeof(texts[0]) + 1);
	for (size_t i = 0; i < nlines; i++)
		assert_as_jansson(lines[i]);
	assert_non_null(strstr(lines[9], "\"\\u0001\\u0002\\u001F control \x7f del\""));
	assert_int_equal(output_errors(o), 0);
	output_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_as_jansson_writes_them),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

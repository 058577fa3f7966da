// SPDX-License-Identifier: GPL-2.0
/* wsaudit decode: JSON lines for recorded streams, --payload, exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "commands.h"

/* argv strings are writable, as main() gets them */
#define S(x) ((char[]){ x })

struct out {
	int rc;
	json_t *lines; /* array of the objects printed */
};

/* Runs cmd_decode with stdout captured. */
static struct out run(int argc, char **argv)
{
	struct out o = { 0 };
	char path[] = "/tmp/wsaudit-test-decode-XXXXXX";
	int fd = mkstemp(path), saved;
	FILE *f;
	char *line = NULL;
	size_t cap = 0;

	assert_true(fd >= 0);
	fflush(stdout);
	saved = dup(1);
	dup2(fd, 1);
	o.rc = cmd_decode(argc, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	close(fd);
	o.lines = json_array();
	f = fopen(path, "r");
	while (getline(&line, &cap, f) > 0) {
		json_error_t err;
		json_t *j = json_loads(line, 0, &err);

		if (!j)
			fail_msg("not JSON: %s (%s)", line, err.text);
		json_array_append_new(o.lines, j);
	}
	free(line);
	fclose(f);
	unlink(path);
	return o;
}

static json_t *last(const struct out *o)
{
	return json_array_get(o->lines, json_array_size(o->lines) - 1);
}

static void test_decode_recorded_deflate(void **state)
{
	char *argv[] = { S("decode"), S("tests/data/ws_deflate_takeover.bin"), NULL };
	struct out o = run(2, argv);
	json_t *first, *frame, *stats;
	size_t frames = 0, i;

	assert_int_equal(o.rc, EXIT_OK);
	first = json_array_get(o.lines, 0);
	assert_string_equal(json_string_value(json_object_get(first, "type")), "handshake");
	assert_int_equal(json_integer_value(json_object_get(first, "status")), 101);
	json_array_foreach(o.lines, i, frame)
	{
		json_t *msg = json_object_get(frame, "message");

		if (strcmp(json_string_value(json_object_get(frame, "type")), "frame"))
			continue;
		frames++;
		/* no payload without --payload */
		assert_null(json_object_get(frame, "close_reason"));
		if (json_is_object(msg)) {
			assert_null(json_object_get(msg, "payload"));
			assert_string_equal(json_string_value(json_object_get(msg, "status")),
					    "ok");
			assert_true(json_is_true(json_object_get(msg, "compressed")));
		}
	}
	assert_int_equal(frames, 18);
	stats = last(&o);
	assert_string_equal(json_string_value(json_object_get(stats, "type")), "stats");
	assert_int_equal(json_integer_value(json_object_get(stats, "frames")), 18);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(stats, "messages"), "ok")), 13);
	assert_int_equal(json_integer_value(json_object_get(stats, "desyncs")), 0);
	json_decref(o.lines);
}

static void test_decode_payload_and_close(void **state)
{
	char *argv[] = { S("decode"), S("--payload"), S("tests/data/ws_plain.bin"), NULL };
	struct out o = run(3, argv);
	json_t *close = json_array_get(o.lines, json_array_size(o.lines) - 2);
	json_t *first = json_array_get(o.lines, 1), *msg = json_object_get(first, "message");

	assert_int_equal(o.rc, EXIT_OK);
	assert_string_equal(json_string_value(json_object_get(close, "opcode")), "close");
	assert_int_equal(json_integer_value(json_object_get(close, "close_code")), 1000);
	assert_string_equal(json_string_value(json_object_get(close, "close_reason")), "done");
	assert_string_equal(json_string_value(json_object_get(msg, "type")), "agent_update");
	assert_non_null(strstr(json_string_value(json_object_get(msg, "payload")), "run-0"));
	json_decref(o.lines);
}

/* Without --payload or --show-identities, the type the traffic chose is a keyed hash. */
static void test_decode_type_hashed(void **state)
{
	char *argv[] = { S("decode"), S("tests/data/ws_plain.bin"), NULL };
	char *shown[] = { S("decode"), S("--show-identities"), S("tests/data/ws_plain.bin"), NULL };
	struct out o = run(2, argv), p = run(3, shown);
	json_t *msg = json_object_get(json_array_get(o.lines, 1), "message");
	const char *type = json_string_value(json_object_get(msg, "type"));

	assert_int_equal(o.rc, EXIT_OK);
	assert_non_null(type);
	assert_int_equal(strncmp(type, "t#", 2), 0);
	assert_int_equal(strlen(type), 14);
	msg = json_object_get(json_array_get(p.lines, 1), "message");
	assert_string_equal(json_string_value(json_object_get(msg, "type")), "agent_update");
	json_decref(o.lines);
	json_decref(p.lines);
}

static void test_decode_extensions_option(void **state)
{
	static const uint8_t rfc[] = { 0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
	char path[] = "/tmp/wsaudit-test-frames-XXXXXX";
	int fd = mkstemp(path);
	char *argv[] = { S("decode"), S("-p"), S("--extensions"), S("permessage-deflate"),
			 path,	      NULL };
	struct out o;
	json_t *msg;

	assert_int_equal(write(fd, rfc, sizeof(rfc)), sizeof(rfc));
	close(fd);
	o = run(5, argv);
	assert_int_equal(o.rc, EXIT_OK);
	msg = json_object_get(json_array_get(o.lines, 0), "message");
	assert_string_equal(json_string_value(json_object_get(msg, "payload")), "Hello");
	assert_string_equal(json_string_value(json_object_get(msg, "status")), "ok");
	json_decref(o.lines);
	unlink(path);
}

static void test_decode_usage_errors(void **state)
{
	char *bad_ext[] = { S("decode"), S("--extensions"), S("permessage-deflate; nope"), S("x"),
			    NULL };
	char *two_files[] = { S("decode"), S("a"), S("b"), NULL };
	char *bad_opt[] = { S("decode"), S("--frobnicate"), NULL };
	struct out o;

	o = run(4, bad_ext);
	assert_int_equal(o.rc, EXIT_USAGE);
	json_decref(o.lines);
	o = run(3, two_files);
	assert_int_equal(o.rc, EXIT_USAGE);
	json_decref(o.lines);
	o = run(2, bad_opt);
	assert_int_equal(o.rc, EXIT_USAGE);
	json_decref(o.lines);
}

static void test_decode_missing_file(void **state)
{
	char *argv[] = { S("decode"), S("/nonexistent/stream.bin"), NULL };
	struct out o = run(2, argv);

	assert_int_equal(o.rc, EXIT_RUNTIME);
	assert_int_equal(json_array_size(o.lines), 0);
	json_decref(o.lines);
}

static void test_decode_help(void **state)
{
	char *argv[] = { S("decode"), S("--help"), NULL };
	int saved = dup(1), devnull = open("/dev/null", 1);

	fflush(stdout);
	dup2(devnull, 1);
	assert_int_equal(cmd_decode(2, argv), EXIT_OK);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	close(devnull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_recorded_deflate),
		cmocka_unit_test(test_decode_payload_and_close),
		cmocka_unit_test(test_decode_extensions_option),
		cmocka_unit_test(test_decode_type_hashed),
		cmocka_unit_test(test_decode_usage_errors),
		cmocka_unit_test(test_decode_missing_file),
		cmocka_unit_test(test_decode_help),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

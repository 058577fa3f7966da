// SPDX-License-Identifier: GPL-2.0
/* Writes handed to a transport and placed in its connection's stream (user/handed.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "handed.h"
#include "stack_fixture.h"

#define PID 100
#define TRANSPORT 0x7000
#define OBJ(i) (0x10000 + (i)*0x100)

static const struct conn_id CONN = { .ino = 42, .gen = 1 };

struct seen {
	size_t n;
	uint64_t ts[16];
	uint64_t len[16];
};

static void collect(void *ctx, const struct handed_write *w)
{
	struct seen *s = ctx;

	assert_non_null(w->stack);
	s->ts[s->n] = w->ts_ns;
	s->len[s->n++] = w->len;
}

/* Writes 1..n of len bytes each, handed over at ts = i. */
static struct handed *hand(size_t n, uint64_t len)
{
	static const char *const frames[] = { "produce@/srv/app.py:10" };
	struct handed *h = handed_new();
	struct attrib_stack *s = stack_of(frames, 1, 0);

	assert_non_null(h);
	for (size_t i = 1; i <= n; i++)
		handed_put(h, PID, PID, TRANSPORT, OBJ(i), len, i, s);
	attrib_stack_put(s);
	return h;
}

/* Write 2 left at 1000: 3 starts at 1100, 4 at 1200, 5 at 1300; the socket got 1150. */
static void test_queued_after_the_end(void **state)
{
	struct handed *h = hand(5, 100);
	struct seen seen = {};
	bool linked;

	(void)state;
	handed_sent(h, PID, TRANSPORT, OBJ(2), &CONN, 1000);
	assert_int_equal(handed_close(h, PID, &CONN, 1150, collect, &seen, &linked), 2);
	assert_true(linked);
	assert_int_equal(seen.n, 2);
	assert_int_equal(seen.ts[0], 4);
	assert_int_equal(seen.ts[1], 5);
	assert_int_equal(handed_stats(h)->queued_bytes, 200);
	assert_int_equal(handed_stats(h)->held, 0);
	handed_free(h);
}

/* Everything was given to the socket: nothing queued. */
static void test_none_when_all_left(void **state)
{
	struct handed *h = hand(3, 100);
	struct seen seen = {};
	bool linked;

	(void)state;
	handed_sent(h, PID, TRANSPORT, OBJ(1), &CONN, 500);
	assert_int_equal(handed_close(h, PID, &CONN, 800, collect, &seen, &linked), 0);
	handed_free(h);
}

/* Never linked (no frame of it left), another connection, or only the trace ended: none. */
static void test_not_linked_or_not_judged(void **state)
{
	struct handed *h = hand(3, 100);
	struct conn_id other = { .ino = 43, .gen = 1 };
	struct seen seen = {};
	bool linked;

	(void)state;
	assert_int_equal(handed_close(h, PID, &CONN, 0, collect, &seen, &linked), 0);
	assert_false(linked);
	handed_sent(h, PID, TRANSPORT, OBJ(1), &CONN, 0);
	assert_int_equal(handed_close(h, PID, &other, 0, collect, &seen, &linked), 0);
	assert_int_equal(handed_close(h, PID, &CONN, UINT64_MAX, collect, &seen, &linked), 0);
	assert_int_equal(seen.n, 0);
	handed_free(h);
}

/* A write of unknown length: where the ones after it start is not known, none is judged. */
static void test_unknown_length_unplaced(void **state)
{
	static const char *const frames[] = { "produce@/srv/app.py:10" };
	struct handed *h = hand(2, 100);
	struct attrib_stack *s = stack_of(frames, 1, 0);
	struct seen seen = {};
	bool linked;

	(void)state;
	handed_put(h, PID, PID, TRANSPORT, OBJ(3), HANDED_LEN_UNKNOWN, 3, s);
	handed_put(h, PID, PID, TRANSPORT, OBJ(4), 100, 4, s);
	attrib_stack_put(s);
	handed_sent(h, PID, TRANSPORT, OBJ(1), &CONN, 0);
	assert_int_equal(handed_close(h, PID, &CONN, 200, collect, &seen, &linked), 0);
	assert_int_equal(handed_stats(h)->unplaced_writes, 2);
	handed_free(h);
}

/* A sent object that was never handed over (or was evicted) links nothing. */
static void test_unknown_token(void **state)
{
	struct handed *h = hand(2, 100);
	struct seen seen = {};
	bool linked;

	(void)state;
	handed_sent(h, PID, TRANSPORT, OBJ(9), &CONN, 0);
	handed_sent(h, PID + 1, TRANSPORT, OBJ(1), &CONN, 0);
	assert_int_equal(handed_stats(h)->linked, 0);
	assert_int_equal(handed_close(h, PID, &CONN, 0, collect, &seen, &linked), 0);
	handed_forget_process(h, PID);
	assert_int_equal(handed_stats(h)->held, 0);
	handed_free(h);
}

/* A transport never linked goes once its last write is old; a linked one stays. */
static void test_expire_unlinked(void **state)
{
	static const char *const frames[] = { "produce@/srv/app.py:10" };
	struct handed *h = hand(3, 100);
	struct attrib_stack *s = stack_of(frames, 1, 0);
	struct seen seen = {};
	bool linked;

	(void)state;
	handed_put(h, PID, PID, TRANSPORT + 1, OBJ(7), 100, 1, s);
	handed_put(h, PID, PID, TRANSPORT + 1, OBJ(8), 100, 2, s);
	attrib_stack_put(s);
	handed_sent(h, PID, TRANSPORT + 1, OBJ(7), &CONN, 0);
	handed_expire(h, 10, 5);
	assert_int_equal(handed_stats(h)->held, 1);
	assert_int_equal(handed_close(h, PID, &CONN, 50, collect, &seen, &linked), 1);
	assert_true(linked);
	handed_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queued_after_the_end),
		cmocka_unit_test(test_none_when_all_left),
		cmocka_unit_test(test_not_linked_or_not_judged),
		cmocka_unit_test(test_unknown_length_unplaced),
		cmocka_unit_test(test_unknown_token),
		cmocka_unit_test(test_expire_unlinked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

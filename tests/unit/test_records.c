// SPDX-License-Identifier: GPL-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "records.h"

struct seen {
	int calls[RECORD_KINDS];
	int malformed;
	size_t last_size;
};

static int on_any(void *ctx, const void *rec, size_t size)
{
	struct seen *s = ctx;
	const struct evt_hdr *h = rec;

	s->calls[h->type]++;
	s->last_size = size;
	return 0;
}

static int on_malformed(void *ctx, const void *rec, size_t size)
{
	((struct seen *)ctx)->malformed++;
	return 0;
}

static struct records routes(struct seen *s)
{
	struct records r = { .malformed = { on_malformed, s } };

	for (int i = 1; i < RECORD_KINDS; i++)
		r.on[i] = (struct record_route){ on_any, s };
	return r;
}

static void hdr(struct evt_hdr *h, unsigned int type, size_t size)
{
	h->type = type;
	h->version = EVT_VERSION;
	h->size = size;
}

static void test_whole_records_reach_their_route(void **state)
{
	struct seen s = { 0 };
	struct records r = routes(&s);
	struct {
		struct evt_data d;
		uint8_t bytes[8];
	} data = { 0 };
	struct evt_proc p = { 0 };

	hdr(&data.d.hdr, EVT_DATA, sizeof(data));
	data.d.len = 8;
	data.d.tgid = 42;
	assert_int_equal(records_dispatch(&r, &data, sizeof(data)), 0);
	assert_int_equal(s.calls[EVT_DATA], 1);
	assert_int_equal(s.last_size, sizeof(data));
	assert_int_equal(records_tgid(&data, sizeof(data)), 42);

	hdr(&p.hdr, EVT_PROC_EXIT, sizeof(p));
	p.pid = 7;
	assert_int_equal(records_dispatch(&r, &p, sizeof(p)), 0);
	assert_int_equal(s.calls[EVT_PROC_EXIT], 1);
	assert_int_equal(records_tgid(&p, sizeof(p)), 7);
	assert_int_equal(s.malformed, 0);
}

static void test_a_kind_routed_nowhere_is_passed_over(void **state)
{
	struct seen s = { 0 };
	struct records r = { .malformed = { on_malformed, &s } };
	struct evt_conn c = { 0 };

	hdr(&c.hdr, EVT_CONN_NEW, sizeof(c));
	assert_int_equal(records_dispatch(&r, &c, sizeof(c)), 0);
	assert_int_equal(s.malformed, 0);
}

static void test_malformed_records_are_told_and_never_routed(void **state)
{
	struct seen s = { 0 };
	struct records r = routes(&s);
	struct {
		struct evt_data d;
		uint8_t bytes[8];
	} data = { 0 };
	struct evt_proc p = { 0 };
	struct evt_hdr h = { 0 };

	/* Data bytes claimed beyond the record. */
	hdr(&data.d.hdr, EVT_DATA, sizeof(data));
	data.d.len = 9;
	assert_int_equal(records_dispatch(&r, &data, sizeof(data)), -EINVAL);
	assert_int_equal(records_tgid(&data, sizeof(data)), 0);
	/* A process record cut short. */
	hdr(&p.hdr, EVT_PROC_FORK, sizeof(p));
	assert_int_equal(records_dispatch(&r, &p, sizeof(p) - 1), -EINVAL);
	/* A header claiming more than was read, a foreign version, a kind not known. */
	hdr(&h, EVT_ZFLUSH, sizeof(h) + 1);
	assert_int_equal(records_dispatch(&r, &h, sizeof(h)), -EINVAL);
	hdr(&h, EVT_ZFLUSH, sizeof(h));
	h.version = EVT_VERSION + 1;
	assert_int_equal(records_dispatch(&r, &h, sizeof(h)), -EINVAL);
	hdr(&h, RECORD_KINDS, sizeof(h));
	assert_int_equal(records_dispatch(&r, &h, sizeof(h)), -EINVAL);
	hdr(&h, 0, sizeof(h));
	assert_int_equal(records_dispatch(&r, &h, sizeof(h)), -EINVAL);
	/* Shorter than a header. */
	assert_int_equal(records_dispatch(&r, &h, sizeof(h) - 1), -EINVAL);
	assert_int_equal(s.malformed, 7);
	for (int i = 0; i < RECORD_KINDS; i++)
		assert_int_equal(s.calls[i], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_records_reach_their_route),
		cmocka_unit_test(test_a_kind_routed_nowhere_is_passed_over),
		cmocka_unit_test(test_malformed_records_are_told_and_never_routed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

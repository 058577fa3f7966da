// SPDX-License-Identifier: GPL-2.0
/* The pure parts of the system checks: kernel releases, lockdown, CapEff, cgroup mounts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sysreq.h"

static void expect_release(const char *s, unsigned int major, unsigned int minor,
			   unsigned int patch)
{
	struct kver v;

	assert_int_equal(sysreq_parse_release(s, &v), 0);
	assert_int_equal(v.major, major);
	assert_int_equal(v.minor, minor);
	assert_int_equal(v.patch, patch);
}

static void test_release(void **state)
{
	struct kver v;

	expect_release("6.1.0-37-amd64", 6, 1, 0);
	expect_release("5.10.0-35-cloud-amd64", 5, 10, 0);
	expect_release("6.12.48+deb13-amd64", 6, 12, 48);
	expect_release("7.2.13+deb14-amd64", 7, 2, 13);
	expect_release("6.1", 6, 1, 0);
	expect_release("5.15.0-1049-gke", 5, 15, 0);
	assert_int_equal(sysreq_parse_release("", &v), -1);
	assert_int_equal(sysreq_parse_release("6", &v), -1);
	assert_int_equal(sysreq_parse_release("6.", &v), -1);
	assert_int_equal(sysreq_parse_release("linux-6.1", &v), -1);
}

static void test_kver_cmp(void **state)
{
	const struct kver min = { 6, 1, 0 }, v510 = { 5, 10, 0 }, v515 = { 5, 15, 0 },
			  v61 = { 6, 1, 0 }, v612 = { 6, 12, 1 }, v72 = { 7, 2, 0 },
			  v6_10 = { 6, 10, 0 };

	assert_true(sysreq_kver_cmp(&v510, &min) < 0);
	assert_true(sysreq_kver_cmp(&v515, &min) < 0);
	assert_int_equal(sysreq_kver_cmp(&v61, &min), 0);
	assert_true(sysreq_kver_cmp(&v612, &min) > 0);
	assert_true(sysreq_kver_cmp(&v72, &min) > 0);
	/* Numeric, not lexical: 6.10 is newer than 6.1. */
	assert_true(sysreq_kver_cmp(&v6_10, &min) > 0);
}

static void test_lockdown(void **state)
{
	assert_int_equal(sysreq_parse_lockdown("[none] integrity confidentiality\n"),
			 LOCKDOWN_NONE);
	assert_int_equal(sysreq_parse_lockdown("none [integrity] confidentiality\n"),
			 LOCKDOWN_INTEGRITY);
	assert_int_equal(sysreq_parse_lockdown("none integrity [confidentiality]\n"),
			 LOCKDOWN_CONFIDENTIALITY);
	assert_int_equal(sysreq_parse_lockdown("none integrity confidentiality"), LOCKDOWN_UNKNOWN);
	assert_int_equal(sysreq_parse_lockdown(""), LOCKDOWN_UNKNOWN);
}

static void test_capeff(void **state)
{
	uint64_t caps = 0;

	assert_int_equal(
		sysreq_parse_capeff("Name:\tx\nCapInh:\t0000000000000000\n"
				    "CapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n"
				    "CapBnd:\t000001ffffffffff\n",
				    &caps),
		0);
	assert_true(caps == 0x1ffffffffffULL);
	assert_int_equal(sysreq_parse_capeff("CapEff:\t0000000000000000\n", &caps), 0);
	assert_true(caps == 0);
	/* CapPrm must not be taken for CapEff, nor a CapEff without a value. */
	assert_int_equal(sysreq_parse_capeff("CapPrm:\t00000000000000ff\n", &caps), -1);
	assert_int_equal(sysreq_parse_capeff("CapEff:\t\n", &caps), -1);
	assert_int_equal(sysreq_parse_capeff("CapEff:\tzz\n", &caps), -1);
	assert_int_equal(sysreq_parse_capeff("", &caps), -1);
}

static void test_cgroup(void **state)
{
	assert_int_equal(sysreq_cgroup_version("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"),
			 CGROUP_V2);
	assert_int_equal(sysreq_cgroup_version("tmpfs /sys/fs/cgroup tmpfs ro 0 0\n"
					       "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
					       "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"),
			 CGROUP_HYBRID);
	assert_int_equal(sysreq_cgroup_version(
				 "tmpfs /sys/fs/cgroup tmpfs ro 0 0\n"
				 "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"),
			 CGROUP_V1);
	assert_int_equal(sysreq_cgroup_version("proc /proc proc rw 0 0\n"), CGROUP_NONE);
	/* A cgroup2 mounted elsewhere is not the system's hierarchy. */
	assert_int_equal(sysreq_cgroup_version("cgroup2 /tmp/cg cgroup2 rw 0 0\n"), CGROUP_NONE);
	assert_int_equal(sysreq_cgroup_version(""), CGROUP_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_release),	 cmocka_unit_test(test_kver_cmp),
		cmocka_unit_test(test_lockdown), cmocka_unit_test(test_capeff),
		cmocka_unit_test(test_cgroup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

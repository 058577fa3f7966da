/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The clock of wsaudit's user space: CLOCK_MONOTONIC in nanoseconds, the clock the kernel
 * stamps events with (bpf_ktime_get_ns), so a time read here and an event's ts_ns compare.
 */
#ifndef WSAUDIT_CLOCK_H
#define WSAUDIT_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t mono_ms(void)
{
	return mono_ns() / 1000000;
}

/* What to add to a CLOCK_MONOTONIC time for the wall clock's (Unix time), now. */
static inline int64_t mono_to_real_offset(void)
{
	struct timespec r, m;

	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m);
	return ((int64_t)r.tv_sec - m.tv_sec) * 1000000000LL + (r.tv_nsec - m.tv_nsec);
}

#endif /* WSAUDIT_CLOCK_H */

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

#endif /* WSAUDIT_CLOCK_H */

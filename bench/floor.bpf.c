// SPDX-License-Identifier: GPL-2.0
/*
 * The cost floor of wsaudit's kernel hooks, for bench_send.  The hook points of
 * bpf/{send,recv,process}.bpf.c, in variants that bench_send selects with the programs'
 * autoload flags and by attaching one variant at a time:
 *
 *   empty_*   return at once: what any program on these tracepoints costs;
 *   lookup_*  the traced-tgid hash lookup that every wsaudit syscall program does first:
 *             what a process that is not traced pays at best with that filter;
 *   bitmap_*  the same test on a bitmap of tgids in an array map, whose lookup the verifier
 *             inlines as arithmetic: what a cheaper filter would cost;
 *   untraced_ what wsaudit's programs do for a process it does not trace, as written: at
 *             syscall exit the in-flight arguments are looked up (LRU hash by pid_tgid) before
 *             the tgid, so a miss costs two hash lookups.
 *
 * Programs are named <variant>_<event>_<hook>; bench_send selects them by the prefix.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* Same type, key, value and size as wsaudit's traced_map (TRACED_MAX). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u32);
} traced_map SEC(".maps");

/* One bit per tgid, for pid_max up to 2^22 (PID_MAX_LIMIT on 64-bit). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, (1 << 22) / 64);
	__type(key, __u32);
	__type(value, __u64);
} traced_bits SEC(".maps");

/* Same shape as wsaudit's inflight_map (INFLIGHT_MAX): arguments stashed at syscall entry. */
struct inflight {
	__u64 buf;
	__u64 count;
	__u32 fd;
	__u8 syscall;
	__u8 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct inflight);
} inflight_map SEC(".maps");

/*
 * Hits of the filters.  The bench is not traced, so they stay 0; counting them keeps the test
 * and its branch in the code, as in wsaudit, where a hit goes on to the real work.
 */
__u64 hits = 0;

static __always_inline int tgid_lookup(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (bpf_map_lookup_elem(&traced_map, &tgid))
		__sync_fetch_and_add(&hits, 1);
	return 0;
}

static __always_inline int tgid_bit_test(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 word = tgid / 64;
	__u64 *bits;

	bits = bpf_map_lookup_elem(&traced_bits, &word);
	if (bits && (*bits & (1ULL << (tgid % 64))))
		__sync_fetch_and_add(&hits, 1);
	return 0;
}

/* wsaudit's syscall exit for an untraced process: in-flight lookup, then the tgid. */
static __always_inline int inflight_then_tgid(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if (bpf_map_lookup_elem(&inflight_map, &id)) {
		__sync_fetch_and_add(&hits, 1);
		return 0;
	}
	if (bpf_map_lookup_elem(&traced_map, &tgid))
		__sync_fetch_and_add(&hits, 1);
	return 0;
}

static __always_inline int nothing(void)
{
	return 0;
}

/* One hook point in every variant; untraced_ runs the body given. */
#define FLOOR_PROG_AS(sec, name, untraced_body) \
	SEC(sec)                                \
	int empty_##name(void *ctx)             \
	{                                       \
		return nothing();               \
	}                                       \
	SEC(sec)                                \
	int lookup_##name(void *ctx)            \
	{                                       \
		return tgid_lookup();           \
	}                                       \
	SEC(sec)                                \
	int bitmap_##name(void *ctx)            \
	{                                       \
		return tgid_bit_test();         \
	}                                       \
	SEC(sec)                                \
	int untraced_##name(void *ctx)          \
	{                                       \
		return untraced_body();         \
	}

#define FLOOR_PROG(sec, name) FLOOR_PROG_AS(sec, name, tgid_lookup)

#define FLOOR_SYSCALL(sc)                                            \
	FLOOR_PROG("tracepoint/syscalls/sys_enter_" #sc, sc##_enter) \
	FLOOR_PROG_AS("tracepoint/syscalls/sys_exit_" #sc, sc##_exit, inflight_then_tgid)

/* The write family, whose payload wsaudit captures. */
FLOOR_SYSCALL(write)
FLOOR_SYSCALL(writev)
FLOOR_SYSCALL(sendto)
FLOOR_SYSCALL(sendmsg)
FLOOR_SYSCALL(sendmmsg)
/* The read family, traced for the HTTP upgrade request. */
FLOOR_SYSCALL(read)
FLOOR_SYSCALL(readv)
FLOOR_SYSCALL(recvfrom)
FLOOR_SYSCALL(recvmsg)

FLOOR_PROG("tracepoint/syscalls/sys_enter_close", close_enter)

/*
 * Process lifecycle, with the hook types wsaudit uses (fork is tp_btf there).  They do not
 * fire on send(); they are here so that each variant attaches what wsaudit attaches.
 */
FLOOR_PROG("tracepoint/sched/sched_process_exec", exec_tp)
FLOOR_PROG("tracepoint/sched/sched_process_exit", exit_tp)
FLOOR_PROG("tp_btf/sched_process_fork", fork_tp)

char LICENSE[] SEC("license") = "GPL";

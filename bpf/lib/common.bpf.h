/* SPDX-License-Identifier: GPL-2.0 */
/* Includes every program needs, in the order they need them. */
#ifndef WSAUDIT_COMMON_BPF_H
#define WSAUDIT_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "lib/maps.bpf.h"
#include "lib/conn.bpf.h"
#include "lib/emit.bpf.h"

/* Syscall entry: remember the arguments of a traced process's call until its exit. */
static __always_inline int inflight_stash(__u8 syscall, __u64 fd, __u64 buf, __u64 count)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct inflight a = {
		.buf = buf,
		.count = count,
		.fd = (__u32)fd,
		.syscall = syscall,
	};

	if (!tgid_traced(id >> 32))
		return 0;
	if (bpf_map_update_elem(&inflight_map, &id, &a, BPF_ANY))
		count_drop(DROP_MAP_FULL);
	return 0;
}

/* Syscall exit: the stashed arguments, removed from the map; false when there are none. */
static __always_inline bool inflight_take(struct inflight *out)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct inflight *a;

	/* The cheap test first: an untraced process pays it and nothing else. */
	if (!tgid_traced(id >> 32))
		return false;
	a = bpf_map_lookup_elem(&inflight_map, &id);
	if (!a) {
		/* A traced process's exit without entry: the call began before attach. */
		count_drop(DROP_NO_ENTRY);
		return false;
	}
	*out = *a;
	bpf_map_delete_elem(&inflight_map, &id);
	return true;
}

/*
 * The entry program of one hooked syscall: it stashes fd, buffer and count (an expression over
 * ctx->args).  The exit programs are one per family (SYSCALL_EXIT), attached by user/capture.c
 * to every sys_exit_* of the family: the stash says which call it was, and one program is
 * verified once instead of once per syscall (most of the start-up time, bench/startup.md).
 */
#define SYSCALL_ENTER(name, kind, count)                                        \
	SEC("tracepoint/syscalls/sys_enter_" #name)                             \
	int name##_enter(struct trace_event_raw_sys_enter *ctx)                 \
	{                                                                       \
		return inflight_stash(kind, ctx->args[0], ctx->args[1], count); \
	}

/* The exit program of a family: hands the return value to exit_fn(ctx, ret). */
#define SYSCALL_EXIT(name, exit_fn)                    \
	SEC("tracepoint")                              \
	int name(struct trace_event_raw_sys_exit *ctx) \
	{                                              \
		return exit_fn(ctx, ctx->ret);         \
	}

#endif /* WSAUDIT_COMMON_BPF_H */

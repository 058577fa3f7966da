// SPDX-License-Identifier: GPL-2.0
/*
 * The syscalls that move bytes to a socket without passing them through the caller's memory:
 * sendfile, splice and copy_file_range (vmsplice fills a pipe, which splice then empties into
 * the socket).  The bytes are in the page cache or a pipe's pages when they leave, which no
 * tracepoint program can read: they are counted (drop zero_copy), and the connection's stream
 * gets a hole of their size in an empty data record, so the collector reports the frames it
 * cuts as truncated and the bytes as a gap of that connection, never silently.
 */
#include "lib/common.bpf.h"

static __always_inline int zero_copy_exit(void *ctx, long ret)
{
	struct sock_ref ref;
	struct conn_info *c;
	struct inflight a;

	if (!inflight_take(&a) || ret <= 0)
		return 0;
	c = conn_get(a.fd, &ref);
	if (!c || c->state == CONN_IGNORE)
		return 0;
	conn_tx_seq(c, &ref, a.fd, a.syscall, ret);
	count_drop(DROP_ZERO_COPY);
	conn_emit_hole(c, ref.ino, a.fd, a.syscall, __sync_fetch_and_add(&c->tx_pos, ret), ret);
	return 0;
}

/* Each stashes the fd the bytes go out to: sendfile's first argument, the others' third. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int sendfile_enter(struct trace_event_raw_sys_enter *ctx)
{
	return inflight_stash(SC_SENDFILE, ctx->args[0], 0, 0);
}

SEC("tracepoint/syscalls/sys_exit_sendfile64")
int sendfile_exit(struct trace_event_raw_sys_exit *ctx)
{
	return zero_copy_exit(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_splice")
int splice_enter(struct trace_event_raw_sys_enter *ctx)
{
	return inflight_stash(SC_SPLICE, ctx->args[2], 0, 0);
}

SEC("tracepoint/syscalls/sys_exit_splice")
int splice_exit(struct trace_event_raw_sys_exit *ctx)
{
	return zero_copy_exit(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_copy_file_range")
int copy_file_range_enter(struct trace_event_raw_sys_enter *ctx)
{
	return inflight_stash(SC_COPY_FILE_RANGE, ctx->args[2], 0, 0);
}

SEC("tracepoint/syscalls/sys_exit_copy_file_range")
int copy_file_range_exit(struct trace_event_raw_sys_exit *ctx)
{
	return zero_copy_exit(ctx, ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";

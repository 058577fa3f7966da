// SPDX-License-Identifier: GPL-2.0
/*
 * The read family on TCP sockets of traced processes, only to capture the HTTP upgrade
 * request that opens a WebSocket connection (identity is built from it).  Reads on
 * connections already classified cost a lookup and nothing more.
 */
#include "lib/common.bpf.h"

static __always_inline bool starts_with_get(const struct io_desc *io)
{
	char head[4];

	if (io->nsegs == 0 || io->segs[0].len < sizeof(head))
		return false;
	if (bpf_probe_read_user(head, sizeof(head), (void *)io->segs[0].ptr))
		return false;
	return head[0] == 'G' && head[1] == 'E' && head[2] == 'T' && head[3] == ' ';
}

static __always_inline int recv_exit_fn(void *ctx, long ret)
{
	struct io_desc *io;
	struct inflight a;
	struct sock_ref ref;
	struct conn_info *c;
	__u64 pos;

	if (!inflight_take(&a) || ret <= 0)
		return 0;
	c = conn_get(a.fd, &ref);
	if (!c || c->state == CONN_WS)
		return 0;
	io = io_gather(&a, ret, DIR_RX);
	if (!io)
		return 0;
	/* A request on a connection seen before (keep-alive) starts a handshake too. */
	if (c->state != CONN_HTTP) {
		if (!starts_with_get(io))
			return 0;
		c->state = CONN_HTTP;
	}
	pos = __sync_fetch_and_add(&c->rx_pos, io->total);
	emit_io(ctx, io, c, ref.ino, pos, READ_CAP, 0, false, false);
	return 0;
}

SYSCALL_ENTER(read, SC_READ, ctx->args[2])
SYSCALL_ENTER(readv, SC_READV, ctx->args[2])
SYSCALL_ENTER(recvfrom, SC_RECVFROM, ctx->args[2])
SYSCALL_ENTER(recvmsg, SC_RECVMSG, 1)
SYSCALL_EXIT(recv_exit, recv_exit_fn)

char LICENSE[] SEC("license") = "GPL";

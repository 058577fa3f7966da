// SPDX-License-Identifier: GPL-2.0
/*
 * The write family on TCP sockets of traced processes: write, writev, sendto, sendmsg,
 * sendmmsg.  Arguments are stashed at entry; bytes are read at exit, when the kernel has said
 * how many went out.  uvloop writes with write/writev, asyncio's selector transports with
 * sendto (socket.send).
 */
#include "lib/common.bpf.h"

/* "HTTP/1.1 101": the server accepted a WebSocket upgrade. */
static __always_inline bool is_upgrade_response(const struct io_desc *io)
{
	char head[12];

	if (io->nsegs == 0 || io->segs[0].len < sizeof(head))
		return false;
	if (bpf_probe_read_user(head, sizeof(head), (void *)io->segs[0].ptr))
		return false;
	return head[0] == 'H' && head[1] == 'T' && head[2] == 'T' && head[3] == 'P' &&
	       head[4] == '/' && head[5] == '1' && head[6] == '.' && head[8] == ' ' &&
	       head[9] == '1' && head[10] == '0' && head[11] == '1';
}

static __always_inline int send_exit_fn(void *ctx, long ret)
{
	struct io_desc *io;
	struct inflight a;
	struct sock_ref ref;
	struct conn_info *c;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u16 flags = 0;
	bool python;
	__u64 pos;
	__u8 state;

	if (!inflight_take(&a) || ret <= 0)
		return 0;
	c = conn_get(a.fd, &ref);
	if (!c)
		return 0;
	state = c->state;
	if (state == CONN_IGNORE)
		return 0;
	io = io_gather(&a, ret, DIR_TX);
	if (!io)
		return 0;
	pos = __sync_fetch_and_add(&c->tx_pos, io->total);
	if (state != CONN_WS) {
		flags = DATA_UNCLASSIFIED;
		if (is_upgrade_response(io))
			c->state = CONN_WS;
	}
	/* The stack is walked only for writes on WebSocket connections of Python processes. */
	python = bpf_map_lookup_elem(&py_procs, &tgid) != NULL;
	emit_io(ctx, io, c, ref.ino, pos, cfg_write_cap, flags, state == CONN_WS && python, python);
	return 0;
}

SYSCALL_ENTER(write, SC_WRITE, ctx->args[2])
SYSCALL_ENTER(writev, SC_WRITEV, ctx->args[2])
SYSCALL_ENTER(sendto, SC_SENDTO, ctx->args[2])
SYSCALL_ENTER(sendmsg, SC_SENDMSG, 1)
SYSCALL_ENTER(sendmmsg, SC_SENDMMSG, ctx->args[2])
SYSCALL_EXIT(send_exit, send_exit_fn)

char LICENSE[] SEC("license") = "GPL";

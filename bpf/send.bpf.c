// SPDX-License-Identifier: GPL-2.0
/*
 * The write family on TCP sockets of traced processes: write, writev, sendto, sendmsg,
 * sendmmsg.  Arguments are stashed at entry; bytes are read at exit, when the kernel has said
 * how many went out.  uvloop writes with write/writev, asyncio's selector transports with
 * sendto (socket.send).
 */
#include "lib/common.bpf.h"
#include "lib/tls.bpf.h"

#define UPGRADE_PREFIX_LEN 12

/*
 * "HTTP/1.x 101", the server accepting a WebSocket upgrade, matched across writes: the
 * response may be written a byte at a time ("H", then the rest), so c->resp_match keeps how
 * many bytes of it the writes before matched.  True once all of it has.
 */
static __always_inline bool upgrade_response_seen(const struct io_desc *io, struct conn_info *c)
{
	static const char want[UPGRADE_PREFIX_LEN] = "HTTP/1.x 101";
	char head[UPGRADE_PREFIX_LEN];
	__u32 m = c->resp_match, n, i;

	if (io->nsegs == 0 || m >= UPGRADE_PREFIX_LEN)
		return false;
	n = UPGRADE_PREFIX_LEN - m;
	if (io->segs[0].len < n)
		n = io->segs[0].len;
	/* Kept in the program for the 6.1 verifier, as in emit_chunks' gather_piece. */
	barrier_var(n);
	if (n == 0 || n > UPGRADE_PREFIX_LEN)
		return false;
	if (bpf_probe_read_user(head, n, (void *)io->segs[0].ptr))
		return false;
	for (i = 0; i < UPGRADE_PREFIX_LEN; i++) {
		if (i >= n)
			break;
		if (m + i >= UPGRADE_PREFIX_LEN)
			return false;
		/* The minor version (the "x") is any digit. */
		if (m + i == 7 ? head[i] < '0' || head[i] > '9' : head[i] != want[m + i]) {
			c->resp_match = 0;
			return false;
		}
	}
	/* A write that is shorter than its first segment ends the prefix there. */
	if (io->total < n)
		n = io->total;
	c->resp_match = m + n;
	return c->resp_match >= UPGRADE_PREFIX_LEN;
}

/*
 * A write on a WebSocket connection that failed or sent part of what it was given: its
 * bytes are sent as chunks all the same, the ones that left first, then the others at the
 * stream positions they would have had (DATA_UNSENT), with the writer's stack, so the
 * collector can name the frames that did not leave.  Only the ones that left move tx_pos.
 */
static __always_inline int send_unsent(void *ctx, const struct inflight *a, long ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 sent = ret > 0 ? ret : 0, pos;
	struct sock_ref ref;
	struct conn_info *c;
	struct io_desc *io;
	bool python;

	/* The common case, told without a look at the socket. */
	if (ret > 0 && (a->syscall == SC_WRITE || a->syscall == SC_SENDTO) && sent >= a->count)
		return -1;
	/* A failed write on a socket never seen is no connection's. */
	if (sock_from_fd(a->fd, &ref))
		return -1;
	c = bpf_map_lookup_elem(&conn_map, &ref.ino);
	if (!c || c->state != CONN_WS)
		return -1;
	io = io_gather_given(a);
	if (!io || io->total <= sent)
		return -1;
	io->sent = sent;
	io->err = ret < 0 ? ret : 0;
	if (sent)
		conn_tx_seq(c, &ref, a->fd, a->syscall, sent);
	pos = __sync_fetch_and_add(&c->tx_pos, sent);
	python = bpf_map_lookup_elem(&py_procs, &tgid) != NULL;
	emit_io(ctx, io, c, ref.ino, pos, cfg_write_cap, DATA_UNSENT, python, python);
	return 0;
}

static __always_inline int send_exit_fn(void *ctx, long ret)
{
	struct io_desc *io;
	struct inflight a;
	struct sock_ref ref;
	struct conn_info *c;
	struct tls_pending *tp;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u16 flags = 0;
	bool python, upgraded = false, tls;
	__u64 pos;
	__u8 state;

	if (!inflight_take(&a))
		return 0;
	/* EINTR before any byte: the call is made again, nothing was refused. */
	if (ret == -4 || ret == 0)
		return 0;
	/* A write on a WebSocket connection that sent less than it was given. */
	if ((ret < 0 || a.syscall != SC_SENDMMSG) && !send_unsent(ctx, &a, ret))
		return 0;
	if (ret < 0)
		return 0;
	c = conn_get(a.fd, &ref);
	if (!c)
		return 0;
	state = c->state;
	/* A TLS connection's ciphertext: on a socket already ignored, mostly. */
	tls = state != CONN_WS && tls_link_wanted(&tp);
	if (state == CONN_IGNORE && !tls)
		return 0;
	io = io_gather(&a, ret, DIR_TX);
	if (!io)
		return 0;
	if (tls)
		tls_link_write(io, tp, c, ref.ino, a.fd);
	if (state == CONN_IGNORE)
		return 0;
	conn_tx_seq(c, &ref, a.fd, a.syscall, io->total);
	pos = __sync_fetch_and_add(&c->tx_pos, io->total);
	if (state != CONN_WS) {
		flags = DATA_UNCLASSIFIED;
		upgraded = upgrade_response_seen(io, c);
		if (upgraded)
			c->state = CONN_WS;
	}
	/*
	 * The stack is walked only for writes on WebSocket connections of Python processes, the
	 * one that carries the 101 included: its first frames may share it (daphne's always do).
	 */
	python = bpf_map_lookup_elem(&py_procs, &tgid) != NULL;
	emit_io(ctx, io, c, ref.ino, pos, cfg_write_cap, flags,
		(state == CONN_WS || upgraded) && python, python);
	return 0;
}

SYSCALL_ENTER(write, SC_WRITE, ctx->args[2])
SYSCALL_ENTER(writev, SC_WRITEV, ctx->args[2])
SYSCALL_ENTER(sendto, SC_SENDTO, ctx->args[2])
SYSCALL_ENTER(sendmsg, SC_SENDMSG, 1)
SYSCALL_ENTER(sendmmsg, SC_SENDMMSG, ctx->args[2])
SYSCALL_EXIT(send_exit, send_exit_fn)

char LICENSE[] SEC("license") = "GPL";

/* SPDX-License-Identifier: GPL-2.0 */
/* Connection records: created on first sight, classified, and their verdicts applied. */
#ifndef WSAUDIT_CONN_BPF_H
#define WSAUDIT_CONN_BPF_H

#include "lib/sock.bpf.h"

static __always_inline void conn_emit_new(struct sock_ref *ref, struct conn_info *c, __u32 fd)
{
	struct evt_conn *e;

	e = evt_reserve(sizeof(*e), EVT_CONN_NEW);
	if (!e)
		return;
	e->conn.ino = ref->ino;
	e->conn.gen = c->gen;
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->tid = (__u32)bpf_get_current_pid_tgid();
	e->fd = fd;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	sock_fill_tuple(ref->sk, e);
	bpf_ringbuf_submit(e, ringbuf_flags(sizeof(*e), true));
	count_stat(STAT_EVENTS, 1);
}

/*
 * The connection record of a TCP socket fd, created on first sight.  NULL when fd is not a
 * TCP socket or there is no room (counted).
 */
static __always_inline struct conn_info *conn_get(__u32 fd, struct sock_ref *ref)
{
	struct conn_info *c, fresh = {};
	struct conn_verdict *v;

	if (sock_from_fd(fd, ref))
		return NULL;
	c = bpf_map_lookup_elem(&conn_map, &ref->ino);
	if (!c) {
		fresh.gen = bpf_ktime_get_ns();
		fresh.tgid = bpf_get_current_pid_tgid() >> 32;
		fresh.state = CONN_UNKNOWN;
		if (bpf_map_update_elem(&conn_map, &ref->ino, &fresh, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&conn_map, &ref->ino)) {
			count_drop(DROP_MAP_FULL);
			return NULL;
		}
		c = bpf_map_lookup_elem(&conn_map, &ref->ino);
		if (!c)
			return NULL;
		if (c->gen == fresh.gen)
			conn_emit_new(ref, c, fd);
	}
	if (c->state == CONN_UNKNOWN || c->state == CONN_HTTP) {
		v = bpf_map_lookup_elem(&verdict_map, &ref->ino);
		if (v) {
			if (v->gen == c->gen)
				c->state = v->state;
			bpf_map_delete_elem(&verdict_map, &ref->ino);
		}
	}
	return c;
}

/*
 * A hole of len bytes at pos in the connection's outgoing stream: an empty data record, so
 * that the collector reports the frames it cuts as truncated and the bytes as a gap of the
 * connection, never silently.
 */
static __always_inline void conn_emit_hole(const struct conn_info *c, __u64 ino, __u32 fd,
					   __u8 syscall, __u64 pos, __u64 len)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct evt_data *e;

	count_stat(STAT_LOST_BYTES, len);
	e = evt_reserve(sizeof(*e), EVT_DATA);
	if (!e)
		return;
	e->conn.ino = ino;
	e->conn.gen = c->gen;
	e->stream_pos = pos;
	e->io_pos = pos;
	e->io_len = len;
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->fd = fd;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->dir = DIR_TX;
	e->syscall = syscall;
	e->flags = DATA_FIRST | DATA_LAST | (c->state == CONN_WS ? 0 : DATA_UNCLASSIFIED);
	bpf_ringbuf_submit(e, ringbuf_flags(sizeof(*e), true));
	count_stat(STAT_EVENTS, 1);
}

/*
 * Accounts a write of len bytes that has just left, by the socket's TCP sequence: bytes sent
 * between the last write seen and this one were carried by writes no program captured (a run
 * the kernel skipped, io_uring, a writer wsaudit does not follow).  They get a hole of their
 * size before this write's bytes, counted as unseen_write.  Two threads writing one socket at
 * the same instant can finish out of order: the later one finds its bytes behind the sequence
 * and moves nothing, the earlier one takes the other's bytes for a hole (docs/trust-model.md).
 */
static __always_inline void conn_tx_seq(struct conn_info *c, const struct sock_ref *ref, __u32 fd,
					__u8 syscall, __u64 len)
{
	struct tcp_sock *tp = (struct tcp_sock *)ref->sk;
	struct sock *sk = ref->sk;
	__u32 end = BPF_CORE_READ(tp, write_seq);
	__s32 hole;

	/* A FIN queued (shutdown, or the peer's reset) takes one sequence number, no byte. */
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_shutdown) & WS_SEND_SHUTDOWN)
		end--;
	hole = (__s32)(end - (__u32)len - c->tx_seq);

	if (c->seq_known && hole > 0) {
		count_drop(DROP_UNSEEN_WRITE);
		conn_emit_hole(c, ref->ino, fd, syscall,
			       __sync_fetch_and_add(&c->tx_pos, (__u64)hole), (__u64)hole);
	}
	if (!c->seq_known || (__s32)(end - c->tx_seq) > 0)
		c->tx_seq = end;
	c->seq_known = 1;
}

/* EVT_CONN_CLOSE of the connection io_heap names (io->conn, io->fd): see close_enter. */
static __always_inline void conn_close_emit(const struct io_desc *io)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct evt_conn *e;

	e = evt_reserve(sizeof(*e), EVT_CONN_CLOSE);
	if (!e)
		return;
	e->conn = io->conn;
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->fd = io->fd;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, ringbuf_flags(sizeof(*e), true));
}

#endif /* WSAUDIT_CONN_BPF_H */

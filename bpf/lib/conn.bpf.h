/* SPDX-License-Identifier: GPL-2.0 */
/* Connection records: created on first sight, classified, and their verdicts applied. */
#ifndef WSAUDIT_CONN_BPF_H
#define WSAUDIT_CONN_BPF_H

#include "lib/sock.bpf.h"

static __always_inline void conn_emit_new(struct sock_ref *ref, struct conn_info *c, __u32 fd)
{
	struct evt_conn *e;

	e = bpf_ringbuf_reserve(&events_rb, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_RINGBUF_FULL);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr.type = EVT_CONN_NEW;
	e->hdr.version = EVT_VERSION;
	e->hdr.size = sizeof(*e);
	e->hdr.ts_ns = bpf_ktime_get_ns();
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

/* EVT_CONN_CLOSE of the connection io_heap names (io->conn, io->fd): see close_enter. */
static __always_inline void conn_close_emit(const struct io_desc *io)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct evt_conn *e;

	e = bpf_ringbuf_reserve(&events_rb, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_RINGBUF_FULL);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr.type = EVT_CONN_CLOSE;
	e->hdr.version = EVT_VERSION;
	e->hdr.size = sizeof(*e);
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->conn = io->conn;
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->fd = io->fd;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, ringbuf_flags(sizeof(*e), true));
}

#endif /* WSAUDIT_CONN_BPF_H */

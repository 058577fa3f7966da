/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Gathering a syscall's byte ranges (plain buffer, iovecs, msghdr, mmsghdr) and sending them
 * to the collector as bounded chunks.  Every byte the syscall moved is either in a record or
 * visible to the collector as a hole (positions), and every give-up is counted.
 */
#ifndef WSAUDIT_EMIT_BPF_H
#define WSAUDIT_EMIT_BPF_H

static __always_inline struct io_desc *io_desc_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&io_heap, &zero);
}

/* One contiguous buffer of which the syscall moved `total` bytes. */
static __always_inline void io_from_buf(struct io_desc *io, __u64 buf, __u64 total)
{
	io->segs[0].ptr = buf;
	io->segs[0].len = total;
	io->nsegs = 1;
	io->total = total;
	io->iov_ptr = 0;
	io->iov_cnt = 0;
}

/*
 * An iovec array of which the syscall moved `total` bytes, filling the segments in order.
 * Appends to io->segs; returns the bytes left unassigned (more segments than fit).
 */
static __always_inline __u64 io_add_iov(struct io_desc *io, __u64 iov_ptr, __u64 iovcnt,
					__u64 total)
{
	struct iovec iov;
	__u32 i, n;

	for (i = 0; i < IOV_MAX_WALK; i++) {
		if (i >= iovcnt || total == 0)
			break;
		n = io->nsegs;
		if (n >= IOV_MAX_WALK)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(iov_ptr + i * sizeof(iov)))) {
			count_drop(DROP_READ_FAULT);
			break;
		}
		io->segs[n & (IOV_MAX_WALK - 1)].ptr = (__u64)iov.iov_base;
		io->segs[n & (IOV_MAX_WALK - 1)].len = iov.iov_len < total ? iov.iov_len : total;
		total -= io->segs[n & (IOV_MAX_WALK - 1)].len;
		io->nsegs = n + 1;
	}
	return total;
}

/*
 * The one iovec array of a writev or sendmsg: its first IOV_MAX_WALK segments are gathered
 * now (the upgrade check reads the first), the emitter reads the others as it goes.
 */
static __always_inline void io_from_iov(struct io_desc *io, __u64 iov_ptr, __u64 iovcnt,
					__u64 total)
{
	io->nsegs = 0;
	io->total = total;
	io->iov_ptr = iov_ptr;
	io->iov_cnt = iovcnt;
	io_add_iov(io, iov_ptr, iovcnt, total);
}

static __always_inline void io_from_msghdr(struct io_desc *io, __u64 msg_ptr, __u64 total)
{
	struct user_msghdr msg;

	io->nsegs = 0;
	io->total = total;
	io->iov_ptr = 0;
	io->iov_cnt = 0;
	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)msg_ptr)) {
		count_drop(DROP_READ_FAULT);
		return;
	}
	io_from_iov(io, (__u64)msg.msg_iov, msg.msg_iovlen, total);
}

/* sendmmsg: `sent` messages went out, each with its msg_len filled in by the kernel. */
static __always_inline void io_from_mmsghdr(struct io_desc *io, __u64 vec_ptr, __u64 sent)
{
	struct mmsghdr mm;
	__u32 i;

	io->nsegs = 0;
	io->total = 0;
	io->iov_ptr = 0;
	io->iov_cnt = 0;
	for (i = 0; i < MMSG_MAX_WALK; i++) {
		if (i >= sent)
			break;
		if (bpf_probe_read_user(&mm, sizeof(mm), (void *)(vec_ptr + i * sizeof(mm)))) {
			count_drop(DROP_READ_FAULT);
			break;
		}
		io->total += mm.msg_len;
		if (io_add_iov(io, (__u64)mm.msg_hdr.msg_iov, mm.msg_hdr.msg_iovlen, mm.msg_len))
			count_drop(DROP_TOO_MANY_IOV);
	}
	if (sent > MMSG_MAX_WALK)
		count_drop(DROP_TOO_MANY_IOV);
}

/*
 * The byte ranges a syscall moved (`ret` bytes), from its stashed arguments: a buffer, an
 * iovec array, a msghdr or an mmsghdr array.  NULL for a kind it does not know.
 */
static __always_inline struct io_desc *io_gather(const struct inflight *a, long ret, __u8 dir)
{
	struct io_desc *io = io_desc_get();

	if (!io)
		return NULL;
	io->fd = a->fd;
	io->syscall = a->syscall;
	io->dir = dir;
	switch (a->syscall) {
	case SC_WRITE:
	case SC_SENDTO:
	case SC_READ:
	case SC_RECVFROM:
		io_from_buf(io, a->buf, ret);
		return io;
	case SC_WRITEV:
	case SC_READV:
		io_from_iov(io, a->buf, a->count, ret);
		return io;
	case SC_SENDMSG:
	case SC_RECVMSG:
		io_from_msghdr(io, a->buf, ret);
		return io;
	case SC_SENDMMSG:
		io_from_mmsghdr(io, a->buf, ret);
		return io;
	}
	return NULL;
}

/*
 * The bytes a write was given rather than those it moved, for a write that failed or sent
 * part (its total is then what the iovecs hold, as far as the first IOV_MAX_WALK segments
 * tell).  NULL for sendmmsg, whose unsent messages are not followed.
 */
static __always_inline struct io_desc *io_gather_given(const struct inflight *a)
{
	struct io_desc *io;
	__u32 i;

	switch (a->syscall) {
	case SC_WRITE:
	case SC_SENDTO:
		return io_gather(a, a->count, DIR_TX);
	case SC_WRITEV:
	case SC_SENDMSG:
		io = io_gather(a, ~0UL, DIR_TX);
		if (!io)
			return NULL;
		io->total = 0;
		for (i = 0; i < IOV_MAX_WALK; i++) {
			if (i >= io->nsegs)
				break;
			io->total += io->segs[i].len;
		}
		/* The emitter reads only what segs[] maps. */
		io->iov_ptr = 0;
		return io;
	}
	return NULL;
}

/*
 * Starts sending up to `cap` bytes of the syscall's data as chunks; io_pos is the stream
 * position of its first byte.  The work goes on by tail call through progs, which does not
 * return on success: in py_stack_walk first (bpf/pystack.bpf.c; tls_stack_walk from the TLS
 * probes) when `walk` asks for the writer's Python stack, then in emit_chunks.  `python`: the writer is a Python process, whose
 * transports may queue buffer objects (uvloop): the addresses of a gathered write's segments
 * are sent too, whether or not the connection is known to be WebSocket yet (a handshake
 * response and the first frames can leave in one writev).
 */
static __always_inline void emit_io_via(void *ctx, void *progs, struct io_desc *io,
					struct conn_info *c, __u64 ino, __u64 io_pos, __u64 cap,
					__u16 flags, bool walk, bool python)
{
	io->target = io->total < cap ? io->total : cap;
	if (io->total > cap) {
		count_drop(DROP_CAP_EXCEEDED);
		count_stat(STAT_CAP_BYTES, io->total - cap);
	}
	io->seg = 0;
	io->cur_ptr = 0;
	io->cur_len = 0;
	io->off = 0;
	io->done = 0;
	io->flags = flags;
	io->map_segs = python && (io->nsegs > 1 || io->iov_cnt > 1);
	io->closing = 0;
	io->io_pos = io_pos;
	io->conn.ino = ino;
	io->conn.gen = c->gen;
	if (walk)
		bpf_tail_call(ctx, progs, TAIL_PY_STACK);
	bpf_tail_call(ctx, progs, TAIL_EMIT_CHUNKS);
	count_drop(DROP_LOOP_LIMIT);
}

/* From a syscall exit: through the tracepoints' program array. */
static __always_inline void emit_io(void *ctx, struct io_desc *io, struct conn_info *c, __u64 ino,
				    __u64 io_pos, __u64 cap, __u16 flags, bool walk, bool python)
{
	emit_io_via(ctx, &emit_progs, io, c, ino, io_pos, cap, flags, walk, python);
}

#endif /* WSAUDIT_EMIT_BPF_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The chunk emitter: sends the bytes described by the per-CPU io_desc to the collector, then
 * tail-calls itself while bytes remain.  Each invocation takes up to SEGS_PER_CALL segments and
 * fills up to CHUNKS_PER_CALL records of CHUNK_MAX bytes, gathering small segments into one
 * record: a queue of frames flushed by one writev of hundreds of iovecs becomes a few records
 * rather than one per segment.  Split this way, each program is a short loop the verifier
 * checks quickly on every kernel, and the 33 tail calls the kernel allows carry more than the
 * largest capture cap and IOV_MAX segments.
 */
#ifndef WSAUDIT_CHUNKS_BPF_H
#define WSAUDIT_CHUNKS_BPF_H

#define CHUNKS_PER_CALL 8

_Static_assert(CHUNKS_PER_CALL * 32 * CHUNK_MAX >= WRITE_CAP_MAX, "tail calls cannot reach cap");
_Static_assert(SEGS_PER_CALL * 32 >= 1024, "tail calls cannot reach IOV_MAX segments");

/* The iovec segment after the current one, or 0 when there is none (-1: unreadable). */
static __always_inline int seg_next(struct io_desc *io)
{
	__u64 n = io->seg;
	struct iovec iov;

	if (n < io->nsegs && n < IOV_MAX_WALK) {
		io->cur_ptr = io->segs[n & (IOV_MAX_WALK - 1)].ptr;
		io->cur_len = io->segs[n & (IOV_MAX_WALK - 1)].len;
	} else if (io->iov_ptr && n < io->iov_cnt) {
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(io->iov_ptr + n * sizeof(iov))))
			return -1;
		io->cur_ptr = (__u64)iov.iov_base;
		io->cur_len = iov.iov_len;
	} else {
		return 0;
	}
	/* The syscall may have moved fewer bytes than its segments hold. */
	if (io->cur_len > io->total - io->done)
		io->cur_len = io->total - io->done;
	io->seg = n + 1;
	io->off = 0;
	return 1;
}

/* Sends the segment map gathered so far, before the data records it describes. */
static __always_inline void flush_segs(struct data_scratch *s)
{
	__u64 n = s->st.nmap, size;

	if (!n || n > SEGS_PER_CALL)
		return;
	size = EVT_SEGS_SIZE(n);
	s->segs.n = n;
	s->segs.hdr.size = size;
	s->st.nmap = 0;
	if (bpf_ringbuf_output(&events_rb, &s->segs, size, ringbuf_flags(size, false)))
		count_drop(DROP_RINGBUF_FULL);
	else
		count_stat(STAT_EVENTS, 1);
}

/* Sends the segment map, then the data record of the bytes gathered. */
static __always_inline void flush(struct data_scratch *s, struct io_desc *io)
{
	__u64 fill = s->st.fill;

	flush_segs(s);
	if (!fill || fill > CHUNK_MAX)
		return;
	s->st.fill = 0;
	s->evt.stream_pos = s->st.rec_pos;
	s->evt.len = fill;
	s->evt.user_ptr = s->st.rec_ptr;
	s->evt.flags = io->flags;
	if (s->st.rec_pos == io->io_pos)
		s->evt.flags |= DATA_FIRST;
	if (io->done >= io->target)
		s->evt.flags |= DATA_LAST;
	if (s->st.rec_segs > 1)
		s->evt.flags |= DATA_GATHERED;
	s->evt.hdr.size = sizeof(s->evt) + fill;
	if (bpf_ringbuf_output(&events_rb, s, sizeof(s->evt) + fill,
			       ringbuf_flags(sizeof(s->evt) + fill, false))) {
		count_drop(DROP_RINGBUF_FULL);
		count_stat(STAT_LOST_BYTES, fill);
	} else {
		count_stat(STAT_EVENTS, 1);
		count_stat(STAT_BYTES, fill);
	}
}

/* Takes the next segment, noting it in the map when the writer's addresses are wanted. */
static __always_inline int take_segment(struct data_scratch *s, struct io_desc *io)
{
	__u32 k = s->st.nmap;
	int r = seg_next(io);

	if (r <= 0) {
		if (r < 0)
			count_drop(DROP_READ_FAULT);
		else
			count_drop(DROP_TOO_MANY_IOV);
		/* The rest has no known address: a hole the collector sees. */
		count_stat(STAT_LOST_BYTES, io->target - io->done);
		io->done = io->target;
		return -1;
	}
	s->st.taken++;
	if (io->map_segs && io->cur_len && k < SEGS_PER_CALL) {
		s->segs.seg[k & (SEGS_PER_CALL - 1)].stream_pos = io->io_pos + io->done;
		s->segs.seg[k & (SEGS_PER_CALL - 1)].ptr = io->cur_ptr;
		s->segs.seg[k & (SEGS_PER_CALL - 1)].len = io->cur_len;
		s->st.nmap = k + 1;
	}
	return 0;
}

/* Copies the next piece of the current segment into the record; 1 when the record is full. */
static __always_inline int gather_piece(struct data_scratch *s, struct io_desc *io)
{
	__u64 fill = s->st.fill, n;

	if (fill >= CHUNK_MAX)
		return 1;
	n = io->cur_len - io->off;
	if (n > CHUNK_MAX - fill)
		n = CHUNK_MAX - fill;
	if (n > io->target - io->done)
		n = io->target - io->done;
	/*
	 * clang proves this bound from the lines above and drops the test, but the 6.1 verifier
	 * cannot follow CHUNK_MAX - fill and refuses the read ("R2 unbounded memory access"):
	 * keep the test in the program.
	 */
	barrier_var(n);
	if (n > CHUNK_MAX)
		return 1;
	if (!fill) {
		s->st.rec_pos = io->io_pos + io->done;
		s->st.rec_ptr = io->cur_ptr + io->off;
		s->st.rec_segs = 0;
	}
	if (bpf_probe_read_user(s->payload + (fill & (CHUNK_MAX - 1)), n,
				(void *)(io->cur_ptr + io->off))) {
		/* Send what came before; these bytes become a hole. */
		flush(s, io);
		count_drop(DROP_READ_FAULT);
		count_stat(STAT_LOST_BYTES, n);
	} else {
		s->st.fill = fill + n;
		s->st.rec_segs++;
	}
	io->off += n;
	io->done += n;
	return s->st.fill >= CHUNK_MAX;
}

/*
 * The body of an emitter program: progs is the program array it tail-calls itself through
 * (one per program type: the syscall tracepoints' and the uprobes').
 */
static __always_inline int emit_chunks_run(void *ctx, void *progs)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct data_scratch *s;
	struct io_desc *io;
	__u32 zero = 0, i;

	s = bpf_map_lookup_elem(&data_heap, &zero);
	io = bpf_map_lookup_elem(&io_heap, &zero);
	if (!s || !io)
		return 0;
	s->evt.hdr.type = EVT_DATA;
	s->evt.hdr.version = EVT_VERSION;
	s->evt.hdr.ts_ns = bpf_ktime_get_ns();
	s->evt.conn = io->conn;
	s->evt.io_pos = io->io_pos;
	s->evt.io_len = io->flags & DATA_UNSENT ? io->sent : io->total;
	s->evt.tgid = id >> 32;
	s->evt.tid = (__u32)id;
	s->evt.fd = io->fd;
	s->evt.dir = io->dir;
	s->evt.syscall = io->syscall;
	s->evt.err = io->flags & DATA_UNSENT ? io->err : 0;
	bpf_get_current_comm(s->evt.comm, sizeof(s->evt.comm));
	s->segs.hdr.type = EVT_SEGS;
	s->segs.hdr.version = EVT_VERSION;
	s->segs.hdr.ts_ns = s->evt.hdr.ts_ns;
	s->segs.conn = io->conn;
	s->segs.tgid = id >> 32;
	__builtin_memset(&s->st, 0, sizeof(s->st));

	/* Each turn takes a segment or copies a piece of one: bounded by both. */
	for (i = 0; i < 2 * SEGS_PER_CALL + CHUNKS_PER_CALL; i++) {
		if (io->done >= io->target)
			break;
		if (io->off >= io->cur_len) {
			if (s->st.taken >= SEGS_PER_CALL || take_segment(s, io))
				break;
			continue;
		}
		if (gather_piece(s, io)) {
			flush(s, io);
			if (++s->st.nrec >= CHUNKS_PER_CALL)
				break;
		}
	}
	flush(s, io);
	if (io->done < io->target) {
		bpf_tail_call(ctx, progs, TAIL_EMIT_CHUNKS);
		/* Out of tail calls: the rest of this syscall's bytes is a hole. */
		count_drop(DROP_LOOP_LIMIT);
		count_stat(STAT_LOST_BYTES, io->target - io->done);
	}
	return 0;
}

#endif /* WSAUDIT_CHUNKS_BPF_H */

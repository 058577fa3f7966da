// SPDX-License-Identifier: GPL-2.0
/*
 * The chunk emitter: sends the bytes described by the per-CPU io_desc to the collector,
 * CHUNKS_PER_CALL records per invocation, then tail-calls itself while bytes remain.  Split
 * this way, each program is a short loop the verifier checks quickly on every kernel, and the
 * 33 tail calls the kernel allows carry more than the largest capture cap.
 */
#include "lib/common.bpf.h"

#define CHUNKS_PER_CALL 8

_Static_assert(CHUNKS_PER_CALL * 33 * CHUNK_MAX >= WRITE_CAP_MAX, "tail calls cannot reach cap");

SEC("tracepoint")
int emit_chunks(void *ctx)
{
	__u32 zero = 0, i, seg;
	struct data_scratch *s;
	struct io_desc *io;
	__u64 seglen, n, ptr, id = bpf_get_current_pid_tgid();

	s = bpf_map_lookup_elem(&data_heap, &zero);
	io = bpf_map_lookup_elem(&io_heap, &zero);
	if (!s || !io)
		return 0;
	s->evt.hdr.type = EVT_DATA;
	s->evt.hdr.version = EVT_VERSION;
	s->evt.hdr.ts_ns = bpf_ktime_get_ns();
	s->evt.conn = io->conn;
	s->evt.io_pos = io->io_pos;
	s->evt.io_len = io->total;
	s->evt.tgid = id >> 32;
	s->evt.tid = (__u32)id;
	s->evt.fd = io->fd;
	s->evt.dir = io->dir;
	s->evt.syscall = io->syscall;
	s->evt._pad = 0;
	bpf_get_current_comm(s->evt.comm, sizeof(s->evt.comm));

	for (i = 0; i < CHUNKS_PER_CALL + 1; i++) {
		seg = io->seg;
		if (io->done >= io->target || seg >= io->nsegs || seg >= IOV_MAX_WALK)
			return 0;
		seglen = io->segs[seg & (IOV_MAX_WALK - 1)].len;
		if (io->off >= seglen) {
			io->seg = seg + 1;
			io->off = 0;
			continue;
		}
		n = seglen - io->off;
		if (n > CHUNK_MAX)
			n = CHUNK_MAX;
		if (n > io->target - io->done)
			n = io->target - io->done;
		n &= 2 * CHUNK_MAX - 1;
		ptr = io->segs[seg & (IOV_MAX_WALK - 1)].ptr + io->off;

		s->evt.stream_pos = io->io_pos + io->done;
		s->evt.len = n;
		s->evt.user_ptr = ptr;
		s->evt.flags = io->flags;
		if (io->done == 0)
			s->evt.flags |= DATA_FIRST;
		if (io->done + n >= io->target)
			s->evt.flags |= DATA_LAST;
		s->evt.hdr.size = sizeof(s->evt) + n;
		if (bpf_probe_read_user(s->payload, n, (void *)ptr)) {
			count_drop(DROP_READ_FAULT);
			count_stat(STAT_LOST_BYTES, n);
		} else if (bpf_ringbuf_output(&events_rb, s, sizeof(s->evt) + n, ringbuf_flags())) {
			count_drop(DROP_RINGBUF_FULL);
			count_stat(STAT_LOST_BYTES, n);
		} else {
			count_stat(STAT_EVENTS, 1);
			count_stat(STAT_BYTES, n);
		}
		io->off += n;
		io->done += n;
		/* Small segments (a queue of frames flushed by writev) take one iteration each. */
		if (io->off >= seglen) {
			io->seg = seg + 1;
			io->off = 0;
		}
	}
	if (io->done < io->target) {
		bpf_tail_call(ctx, &emit_progs, TAIL_EMIT_CHUNKS);
		/* Out of tail calls: the rest of this syscall's bytes is a hole. */
		count_drop(DROP_LOOP_LIMIT);
		count_stat(STAT_LOST_BYTES, io->target - io->done);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

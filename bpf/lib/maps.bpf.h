/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Maps and tunables shared by every program of the object.  They are __weak so that each
 * translation unit can include this header and the static linker (bpftool gen object)
 * merges them into one definition.
 */
#ifndef WSAUDIT_MAPS_BPF_H
#define WSAUDIT_MAPS_BPF_H

#include "wsaudit/events.h"
#include "wsaudit/pyoffsets.h"

/* Tunables, set by the collector between open and load. */
const volatile __u64 cfg_write_cap __weak = WRITE_CAP_DEFAULT;
const volatile __u64 cfg_wakeup_bytes __weak = WAKEUP_BYTES_DEFAULT;
const volatile bool cfg_follow_exec __weak = false;

/*
 * Processes (tgid) whose sockets are followed: one bit per tgid.  Every hooked syscall of
 * every process on the node asks this first, so it is an array the verifier inlines (a bounds
 * check and a load, no helper call, no hashing), sized from pid_max by the collector, which
 * sets and clears bits with atomic operations through a shared mapping.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, TRACED_WORDS_DEFAULT);
	__type(key, __u32);
	__type(value, __u64);
} traced_bits SEC(".maps") __weak;

/* Arguments of syscalls in flight, from entry to exit, by pid_tgid. */
struct inflight {
	__u64 buf; /* buffer, iovec array, msghdr or mmsghdr array */
	__u64 count; /* length, iovec count or message count */
	__u32 fd;
	__u8 syscall; /* enum syscall_kind */
	__u8 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, INFLIGHT_MAX);
	__type(key, __u64);
	__type(value, struct inflight);
} inflight_map SEC(".maps") __weak;

/* TCP sockets of traced processes, by socket inode number. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CONN_MAX);
	__type(key, __u64);
	__type(value, struct conn_info);
} conn_map SEC(".maps") __weak;

/*
 * The collector's verdicts on unclassified connections, applied on the next syscall.  A
 * verdict for a connection that closed first is never read: LRU, and the collector removes
 * the ones it posted when it sees the close.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct conn_verdict);
} verdict_map SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_DEFAULT);
} events_rb SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drop_cnt SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stat_cnt SEC(".maps") __weak;

/*
 * Per-CPU scratch for one data record.  The payload area is twice CHUNK_MAX so that a length
 * masked with (2 * CHUNK_MAX - 1) is provably inside it, whatever the compiler does with the
 * clamp to CHUNK_MAX before it.
 */
/*
 * Where one invocation of the chunk emitter stands.  Kept in the map value rather than in
 * registers: values loaded from memory are ranges to the verifier, so the loop's states
 * prune instead of being explored once per distinct count.
 */
struct emit_state {
	__u64 fill; /* bytes gathered in payload */
	__u64 rec_pos; /* stream position of payload[0] */
	__u64 rec_ptr; /* its address in the writer */
	__u32 rec_segs; /* segments the gathered bytes come from */
	__u32 nmap; /* entries in segs */
	__u32 taken; /* segments taken by this invocation */
	__u32 nrec; /* records sent by this invocation */
};

struct data_scratch {
	struct evt_data evt;
	__u8 payload[2 * CHUNK_MAX];
	struct evt_segs segs;
	struct emit_state st;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct data_scratch);
} data_heap SEC(".maps") __weak;

/* The byte ranges of one syscall, gathered from its buffer or iovecs. */
struct io_seg {
	__u64 ptr;
	__u64 len;
};

struct io_desc {
	struct io_seg segs[IOV_MAX_WALK];
	__u32 nsegs;
	__u32 fd;
	__u64 total; /* bytes the syscall moved, as returned */
	/*
	 * The iovec array (writev, sendmsg) whose segments past the first nsegs the emitter
	 * reads as it goes; 0 when segs[] holds all there is.
	 */
	__u64 iov_ptr;
	__u64 iov_cnt;
	__u8 syscall;
	__u8 dir;
	/* Where the chunk emitter stands; it carries on across tail calls. */
	__u16 flags;
	__u8 map_segs; /* send EVT_SEGS records: a Python writer's gathered write */
	__u8 closing; /* set by close_enter: py_stack_walk then sends the close, no chunks */
	__u8 _pad[2];
	__u64 seg; /* index of the next segment to take */
	__u64 cur_ptr, cur_len; /* the segment being sent */
	__u64 off; /* in it */
	__u64 done; /* bytes handled so far */
	__u64 target; /* bytes to capture: total, or less past the cap */
	__u64 io_pos;
	struct conn_id conn;
	/* DATA_UNSENT: bytes the syscall sent of the total it was given, and its -errno. */
	__u64 sent;
	__s32 err;
	__u32 _pad2;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct io_desc);
} io_heap SEC(".maps") __weak;

/*
 * Programs entered by tail call, so that each stays small for the verifier: the Python stack
 * walk, then the chunk emitter.
 */
enum tail_slot {
	TAIL_EMIT_CHUNKS = 0,
	TAIL_PY_STACK = 1,
	TAIL_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, TAIL_MAX);
	__type(key, __u32);
	__type(value, __u32);
} emit_progs SEC(".maps") __weak;

/* CPython interpreters of traced processes, by tgid (user/pyproc.c fills them). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TRACED_MAX);
	__type(key, __u32);
	__type(value, struct py_offsets);
} py_procs SEC(".maps") __weak;

/* Code objects whose frames carry a user argument to read (identity.context). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CTX_CODES_MAX);
	__type(key, struct ctx_code_key);
	__type(value, struct ctx_code);
} ctx_codes SEC(".maps") __weak;

/* Processes with marked code objects: the walk looks frames up in ctx_codes only for them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TRACED_MAX);
	__type(key, __u32);
	__type(value, __u32);
} ctx_procs SEC(".maps") __weak;

/*
 * Code objects at which a send's walk may stop, per process (user/procs.c,
 * mark_stop_frame): its innermost bridge frames that are not transport, once named, when what
 * is printed needs no frame beyond them (trace without --stack).  A few per process, compared
 * frame by frame without a lookup each.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TRACED_MAX);
	__type(key, __u32);
	__type(value, struct stop_set);
} stop_sets SEC(".maps") __weak;

/*
 * Code objects under which a context copy cannot be the context of a send, per process
 * (user/procs.c, mark_inert_creator): asyncio.sleep's timer handle, whose callback only
 * sets the sleeping future's result.  A copy's walk that meets one ends there and sends no
 * record (STAT_COPIES_SKIPPED).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TRACED_MAX);
	__type(key, __u32);
	__type(value, struct stop_set);
} copy_skips SEC(".maps") __weak;

/* Thread state of each writing thread (pid_tgid), checked against the thread on every use. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, INFLIGHT_MAX);
	__type(key, __u64);
	__type(value, __u64);
} tstate_cache SEC(".maps") __weak;

/*
 * Buffers handed over to a transport whose hand-over stack was recorded
 * (transport_write_uprobe), by process and data address, with the time of the hand-over: a
 * write that sends only such buffers is not walked again at its syscall (py_stack_walk).
 * LRU: a buffer forgotten is walked, as before.
 */
struct handover_key {
	__u32 tgid;
	__u32 _pad;
	__u64 data;
};

struct handover {
	__u64 ts_ns;
	__u32 tid; /* the thread that handed it over: the event loop's, which writes it */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HANDOVER_MAX);
	__type(key, struct handover_key);
	__type(value, struct handover);
} handover_map SEC(".maps") __weak;

/*
 * The stack record is built here and copied to the ring buffer with only the frames found, and
 * frames are read into win: a map value, so that fields can be picked at variable offsets.  A
 * read never exceeds PY_WALK_WIN + PY_FRAME_READ bytes; fields are addressed masked by twice
 * PY_WALK_WIN, and the tail keeps an 8-byte access at the highest masked offset in bounds.
 */
struct walk_scratch {
	struct evt_stack stack;
	__u8 win[2 * PY_WALK_WIN + 8];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_scratch);
} walk_heap SEC(".maps") __weak;

/* What the walk needs to copy names, by tgid (struct py_names_layout); none: no names sent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TRACED_MAX);
	__type(key, __u32);
	__type(value, struct py_names_layout);
} py_names SEC(".maps") __weak;

/*
 * The code objects whose names were sent (bpf/names.bpf.c), with the fields that identify
 * each: an address met again is named by the record already sent while those fields match.
 */
struct names_key {
	__u32 tgid;
	__u32 gen;
	__u64 code;
};

struct names_ident {
	__u64 filename;
	__u64 name;
	__u64 qualname;
	__u64 linetable;
	__u32 firstlineno;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NAMES_SEEN_MAX);
	__type(key, struct names_key);
	__type(value, struct names_ident);
} names_seen SEC(".maps") __weak;

/*
 * In front of names_seen, per CPU, direct-mapped by address: a frame met again on the same CPU
 * costs an array lookup (inlined) instead of a hashed one.  A slot holds a key and what
 * identified the object when it was sent; a miss or a clash asks names_seen.
 */
struct names_slot {
	struct names_key key;
	struct names_ident id;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NAMES_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct names_slot);
} names_cache SEC(".maps") __weak;

/* The names record is built here, and the code object's header read into it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct evt_code_names);
} names_heap SEC(".maps") __weak;

static __always_inline void count_drop(enum drop_reason reason)
{
	__u32 key = reason;
	__u64 *v = bpf_map_lookup_elem(&drop_cnt, &key);

	if (v)
		*v += 1;
}

static __always_inline void count_stat(enum stat_counter stat, __u64 n)
{
	__u32 key = stat;
	__u64 *v = bpf_map_lookup_elem(&stat_cnt, &key);

	if (v)
		*v += n;
}

/*
 * A zeroed record of size bytes from the ring buffer with its header filled, or NULL with the
 * drop counted.  Inlined, size is a constant and the memset is expanded.
 */
static __always_inline void *evt_reserve(__u32 size, __u16 type)
{
	struct evt_hdr *h = bpf_ringbuf_reserve(&events_rb, size, 0);

	if (!h) {
		count_drop(DROP_RINGBUF_FULL);
		return NULL;
	}
	__builtin_memset(h, 0, size);
	h->type = type;
	h->version = EVT_VERSION;
	h->size = size;
	h->ts_ns = bpf_ktime_get_ns();
	return h;
}

static __always_inline bool tgid_traced(__u32 tgid)
{
	__u32 word = tgid / 64;
	__u64 *bits = bpf_map_lookup_elem(&traced_bits, &word);

	return bits && (*bits >> (tgid % 64)) & 1;
}

/* false when tgid is past the map (pid_max grew after load). */
static __always_inline bool tgid_set_traced(__u32 tgid, bool traced)
{
	__u32 word = tgid / 64;
	__u64 *bits = bpf_map_lookup_elem(&traced_bits, &word);

	if (!bits)
		return false;
	if (traced)
		__sync_fetch_and_or(bits, 1ULL << (tgid % 64));
	else
		__sync_fetch_and_and(bits, ~(1ULL << (tgid % 64)));
	return true;
}

/*
 * Wake the collector when the bytes queued cross cfg_wakeup_bytes with this record of `size`
 * bytes (`queued`: already counted, as after a reserve).  Only the crossing wakes it: while it
 * drains the ring it needs no more, and a wake-up costs the writer an irq_work, a self-IPI
 * that a VM pays with an exit.  It polls on a short timer besides, and poll() sees data still
 * queued when it goes back to sleep.
 */
static __always_inline __u64 ringbuf_flags(__u64 size, bool queued)
{
	__u64 avail = bpf_ringbuf_query(&events_rb, BPF_RB_AVAIL_DATA);

	if (queued)
		avail = avail > size ? avail - size : 0;
	if (avail < cfg_wakeup_bytes && avail + size >= cfg_wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

#endif /* WSAUDIT_MAPS_BPF_H */

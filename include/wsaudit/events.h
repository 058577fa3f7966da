/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Records sent from the BPF programs to the collector through the ring buffer, and the maps'
 * value types that both sides touch.  Wire structs only: fixed-size __u8..__u64 fields, big
 * members first, explicit padding, sizes checked below.
 */
#ifndef WSAUDIT_EVENTS_H
#define WSAUDIT_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "limits.h"

enum evt_type {
	EVT_DATA = 1, /* bytes a traced process wrote to or read from a TCP socket */
	EVT_CONN_NEW, /* first sight of a TCP socket in a traced process */
	EVT_CONN_CLOSE, /* the traced process closed its fd of that socket */
	EVT_PROC_EXEC, /* an exec, sent only while executables are being matched */
	EVT_PROC_EXIT, /* a traced process exited */
	EVT_PROC_FORK, /* a traced process forked a child, which is now traced too */
	EVT_STACK, /* the Python stack of the thread that made a WebSocket write */
	EVT_SEGS, /* where a gathered write's segments were in the writer's memory */
	EVT_ZFLUSH, /* a zlib compressor of a traced process ended a message (sync/full flush) */
	EVT_CONN_PASSED, /* a traced process sent a followed socket's fd over a UNIX socket */
	EVT_TLS_LINK, /* a TLS connection's ciphertext went out on a socket: they are one */
	EVT_CODE_NAMES, /* the names of a code object a walk met, copied while the process lives */
};

#define EVT_VERSION 1

struct evt_hdr {
	__u64 ts_ns; /* CLOCK_MONOTONIC */
	__u16 type;
	__u16 version;
	__u32 size; /* of the whole record */
};

/* A connection: the socket's inode number plus a generation (first-sight time). */
struct conn_id {
	__u64 ino;
	__u64 gen;
};

/*
 * The plaintext of a TLS connection, read by the probes on libssl (bpf/tls.bpf.c), is a
 * connection of its own: its ino is this bit and a sequence number, never a socket's inode
 * number.  EVT_CONN_NEW announces it (no addresses), EVT_TLS_LINK ties it to its socket,
 * EVT_CONN_CLOSE ends it (SSL_free).
 */
#define TLS_CONN_INO (1ULL << 63)

/* tls names the TLS connection, sock the socket its ciphertext was written to. */
struct evt_tls_link {
	struct evt_hdr hdr;
	struct conn_id tls;
	struct conn_id sock;
	__u32 tgid;
	__u32 tid;
	__u32 fd;
	__u32 _pad;
};

enum data_dir {
	DIR_TX = 0, /* written by the traced process: server to client */
	DIR_RX = 1, /* read by it: only the HTTP upgrade request is captured */
};

enum data_flags {
	DATA_FIRST = 1 << 0, /* first chunk of this syscall's bytes */
	DATA_LAST = 1 << 1, /* last chunk captured of this syscall's bytes */
	DATA_UNCLASSIFIED = 1 << 2, /* connection not yet known to be WebSocket or not */
	/*
	 * The chunk holds bytes of several iovec segments: user_ptr is that of its first byte
	 * only, and an EVT_SEGS record sent before it maps the others.
	 */
	DATA_GATHERED = 1 << 3,
	/*
	 * A write on a WebSocket connection that failed, or sent part of what it was given:
	 * the chunks go on past io_pos + io_len with the bytes that did not leave (their
	 * stream positions are those they would have had), and err is -errno when it failed.
	 */
	DATA_UNSENT = 1 << 4,
	/*
	 * The write's Python stack was not walked at the syscall: each of its buffers is a
	 * bytes object whose hand-over to a transport was walked (STACK_AT_TRANSPORT_WRITE,
	 * token), and its frames take their stacks from there.
	 */
	DATA_HANDED_OVER = 1 << 5,
};

enum syscall_kind {
	SC_WRITE = 1,
	SC_WRITEV,
	SC_SENDTO,
	SC_SENDMSG,
	SC_SENDMMSG,
	SC_READ,
	SC_READV,
	SC_RECVFROM,
	SC_RECVMSG,
	/* Zero-copy: their bytes are never captured, only their size (bpf/zerocopy.bpf.c). */
	SC_SENDFILE,
	SC_SPLICE,
	SC_COPY_FILE_RANGE,
	/* The plaintext of a TLS connection, at the return of libssl's calls (bpf/tls.bpf.c). */
	SC_SSL_WRITE,
	SC_SSL_READ,
};

/*
 * One chunk of a syscall's bytes.  stream_pos is the position of data[0] in this direction's
 * byte stream of the connection; io_pos/io_len give the syscall's whole range, so bytes that
 * were not captured (over the cap, a failed read, a full ring buffer) show up as holes.
 */
struct evt_data {
	struct evt_hdr hdr;
	struct conn_id conn;
	__u64 stream_pos;
	__u64 io_pos; /* stream position of the syscall's first byte */
	__u64 io_len; /* bytes the syscall moved */
	__u32 tgid;
	__u32 tid;
	__u32 fd;
	__u32 len; /* bytes in data[] */
	/*
	 * Where data[0] was in the writer's memory, which ties the bytes to the buffer object
	 * they came from (see evt_stack's token).  Without DATA_GATHERED the chunk is one
	 * contiguous piece of it.
	 */
	__u64 user_ptr;
	__u8 comm[16];
	__u8 dir; /* enum data_dir */
	__u8 syscall; /* enum syscall_kind */
	__u16 flags; /* enum data_flags */
	__s32 err; /* DATA_UNSENT: the syscall's -errno, 0 when it sent part */
	/* followed by len payload bytes (up to CHUNK_MAX) */
};

/* One iovec segment of a write: stream positions [stream_pos, stream_pos + len). */
struct io_seg_map {
	__u64 stream_pos;
	__u64 ptr;
	__u64 len;
};

/*
 * The segments of a gathered write (writev, sendmsg) that the data records following it
 * cover, sent for the writes of Python processes (whose transports queue buffer objects: see
 * evt_stack's token).  Sent with its n entries only.
 */
struct evt_segs {
	struct evt_hdr hdr;
	struct conn_id conn;
	__u32 tgid;
	__u32 n;
	struct io_seg_map seg[SEGS_PER_CALL];
};

#define EVT_SEGS_SIZE(k) \
	(__builtin_offsetof(struct evt_segs, seg) + (k) * sizeof(struct io_seg_map))

struct evt_conn {
	struct evt_hdr hdr;
	struct conn_id conn;
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u32 tgid;
	__u32 tid;
	__u32 fd;
	__u16 family; /* AF_INET or AF_INET6 */
	__u16 sport; /* host order */
	__u16 dport; /* host order */
	__u16 _pad;
	__u32 peer_pid; /* EVT_CONN_PASSED: the process at the other end of the UNIX socket */
	__u8 comm[16];
};

struct evt_proc {
	struct evt_hdr hdr;
	__u32 pid;
	__u32 ppid; /* EVT_PROC_FORK: the parent */
	__s32 exit_code;
	__u32 traced; /* EVT_PROC_EXEC: the process was traced before this exec */
	__u32 by_leader; /* EVT_PROC_EXEC: its leader thread ran the exec, no other */
	__u8 comm[16];
	char filename[PATH_CAP]; /* EVT_PROC_EXEC */
};

/* Why a stack walk stopped short, or WALK_OK. */
/*
 * A compressor ended a message: deflate(strm, Z_SYNC_FLUSH or Z_FULL_FLUSH) returned in a
 * traced process (uprobes on zlib's deflate, user/zflush.c).  The write that follows on the
 * same thread carries that message, so strm is the connection's compressor and total_out
 * its output count at the message's end (docs/adoption.md).
 */
struct evt_zflush {
	struct evt_hdr hdr;
	__u32 tgid;
	__u32 tid;
	__u64 strm; /* the z_stream's address in the process */
	__u64 total_out; /* strm->total_out after the call */
};

enum walk_status {
	WALK_OK = 0,
	WALK_NO_THREAD, /* no thread state of this thread: not a Python thread */
	WALK_NO_FRAME, /* the thread state has no current frame */
	WALK_READ_FAULT, /* interpreter memory could not be read (not resident, torn) */
	WALK_TRUNCATED, /* deeper than PY_FRAMES_MAX: the outermost frames are missing */
	WALK_NO_THREAD_BASE, /* the thread pointer could not be read */
};

/* py_frame.flags */
enum {
	PYF_SKIP = 1 << 0, /* a shim or C-stack entry frame: no Python code of its own */
	/*
	 * The walk could not send this code object's names (struct evt_code_names): a names
	 * record the collector holds for its address may be another code object's.
	 */
	PYF_UNNAMED = 1 << 1,
};

struct py_frame {
	__u64 code; /* PyCodeObject address (tag bits cleared) */
	__u64 arg0; /* the first argument (self/cls), read on 3.9/3.10 only (PY_OFF_F_RECEIVER) */
	/*
	 * arg0's ob_type, read at walk time too: the receiver may be freed and its memory
	 * reused before user space names it (0 when arg0 is 0 or unreadable).
	 */
	__u64 arg0_type;
	__s32 lasti; /* instruction byte offset, -1 when unknown */
	__u32 flags;
};

enum stack_site {
	/* At the exit of a WebSocket write: sent right before that write's data records. */
	STACK_AT_SYSCALL = 0,
	/*
	 * When Python code handed a buffer object to a transport that sends it later (uvloop
	 * queues every write and flushes it from the event loop): token is the object.
	 */
	STACK_AT_TRANSPORT_WRITE = 1,
	/*
	 * When the interpreter copied the current context (PyContext_CopyCurrent): the hand-off
	 * of work to a Task, a scheduled callback or asyncio.to_thread, each of which later runs
	 * in that copy.  token is the new context object; py_context the one current at the
	 * copy, its parent (docs/causal.md).
	 */
	STACK_AT_CONTEXT_COPY = 2,
	/*
	 * At close(2) of a WebSocket connection's last fd: sent right before its EVT_CONN_CLOSE,
	 * io_pos is the connection's stream position then.
	 */
	STACK_AT_CLOSE = 3,
};

/* Why the context identity (a bridge call's user argument) was not read, or CTX_OK. */
enum ctx_status {
	CTX_NONE = 0, /* no marked bridge frame on the stack */
	CTX_OK, /* value holds the argument (ASCII str) */
	CTX_NOT_STR, /* the argument is not a compact ASCII str (None, int, a cell, ...) */
	CTX_READ_FAULT,
	CTX_TOO_LONG, /* longer than CTX_VALUE_MAX: value holds its start */
};

/* The user argument of the innermost marked bridge frame (identity.context). */
struct py_ctx {
	__u16 frame; /* index into frames[] */
	__u8 status; /* enum ctx_status */
	__u8 len;
	__u32 _pad;
	char value[CTX_VALUE_MAX];
};

/*
 * frames[0] is the innermost frame.  Sent with its first nframes frames only: hdr.size is
 * EVT_STACK_SIZE(nframes).
 */
struct evt_stack {
	struct evt_hdr hdr;
	union {
		struct {
			struct conn_id conn; /* STACK_AT_SYSCALL, STACK_AT_CLOSE */
			__u64 io_pos; /* STACK_AT_SYSCALL, STACK_AT_CLOSE */
		};
		/*
		 * STACK_AT_TRANSPORT_WRITE: the transport the object was handed to (the
		 * method's self), and the object's ob_type and ob_size as read then: its
		 * length when it is a bytes object (user/handed.c).
		 */
		struct {
			__u64 transport;
			__u64 obj_type;
			__u64 obj_size;
		} handed;
	};
	__u64 thread_base; /* pthread_self() of the writer */
	__u64 token; /* STACK_AT_TRANSPORT_WRITE: address of the object written */
	__u32 tgid;
	__u32 tid;
	__u16 nframes;
	__u8 status; /* enum walk_status */
	__u8 site; /* enum stack_site */
	/*
	 * The walk stopped at frames[nframes - 1], a code object the collector marked as
	 * enough for its verdicts (struct stop_set): the outer frames were not read.
	 */
	__u8 stopped;
	__u8 _pad[3];
	/* The thread's current contextvars context (PyThreadState.context), 0 when unknown. */
	__u64 py_context;
	struct py_ctx ctx;
	struct py_frame frames[PY_FRAMES_MAX];
};

#define EVT_STACK_SIZE(n) \
	(__builtin_offsetof(struct evt_stack, frames) + (n) * sizeof(struct py_frame))

/*
 * The names of a code object, copied by the walk the first time it meets the object in a
 * process (and again when its address holds another one), sent before the stack that names
 * it: a process that exits before the collector reads its stacks is named all the same
 * (docs/names.md).  Raw bytes only: the collector checks and decodes them as it would read
 * them from the process (user/pysym.c).
 */
#define NAMES_CODE_HEAD 256 /* bytes of the code object copied from its start */
#define NAMES_OBJ_HEAD 128 /* bytes of a str or bytes object copied from its start */
#define NAMES_NAME_MAX 256 /* bytes of co_qualname's and co_name's characters */
#define NAMES_FILE_MAX 512 /* bytes of co_filename's characters */
#define NAMES_TABLE_MAX 2048 /* bytes of the line table */

enum names_obj_index {
	NAMES_QUALNAME = 0,
	NAMES_NAME,
	NAMES_FILE,
	NAMES_TABLE,
	NAMES_OBJS,
};

enum names_obj_status {
	NAMES_OBJ_OK = 0,
	NAMES_OBJ_NONE, /* no such field (co_qualname before 3.11) or a NULL pointer */
	NAMES_OBJ_FAULT, /* the object could not be read */
	NAMES_OBJ_CUT, /* longer than its field: the start only */
};

struct names_obj {
	__u8 head[NAMES_OBJ_HEAD];
	__u32 len; /* data bytes copied */
	__u32 status; /* enum names_obj_status */
};

struct evt_code_names {
	struct evt_hdr hdr;
	__u32 tgid;
	__u32 gen; /* struct py_names_layout.gen of the walk */
	__u64 code;
	__u8 code_head[NAMES_CODE_HEAD];
	struct names_obj obj[NAMES_OBJS];
	/* The data of obj[i], from its data offset (str: per its kind; bytes: ob_sval). */
	__u8 qualname[NAMES_NAME_MAX];
	__u8 name[NAMES_NAME_MAX];
	__u8 file[NAMES_FILE_MAX];
	__u8 table[NAMES_TABLE_MAX];
};

#ifndef __bpf__
/* A stack record of `size` bytes whose frames are all there. */
static inline int evt_stack_complete(const void *data, unsigned long size)
{
	const struct evt_stack *e = (const struct evt_stack *)data;

	return size >= EVT_STACK_SIZE(0) && e->nframes <= PY_FRAMES_MAX &&
	       size >= EVT_STACK_SIZE(e->nframes);
}
#endif

/* _PyInterpreterFrame.owner of a frame in the thread's data stack (3.11+). */
#define PY_FRAME_OWNED_BY_THREAD 0

/*
 * A code object whose frames carry a user argument to read (identity.context), marked by the
 * collector per process once it has named the function.  Key: struct ctx_code_key.
 */
struct ctx_code_key {
	__u64 code;
	__u32 tgid;
	__u32 _pad;
};

/*
 * The code objects of a process at which a send's walk stops (bpf/lib/pywalk.bpf.h), by
 * tgid; unused slots hold STOP_CODE_NONE.  Two: each slot more is one more compare per frame
 * that the verifier follows (bench_verifier).
 */
#define STOP_CODES_MAX 2
#define STOP_CODE_NONE (~0ULL)

struct stop_set {
	__u64 code[STOP_CODES_MAX];
};

struct ctx_code {
	__u64 str_type; /* PyUnicode_Type in that process */
	__u16 slot; /* index of the argument in localsplus */
	__u16 unicode_length; /* PyASCIIObject.length */
	__u16 unicode_state;
	__u16 unicode_ascii_data; /* where the characters of a compact ASCII str start */
	__u32 compact_ascii_bits; /* state bits that must both be set */
	__u8 tag_bits; /* stackref tag bits of localsplus slots (3.14) */
	__u8 _pad[3];
};

/* Connection states, in conn_map values. */
enum conn_state {
	CONN_UNKNOWN = 0, /* bytes captured until the collector decides */
	CONN_HTTP, /* upgrade request seen, waiting for the response */
	CONN_WS, /* WebSocket: writes are captured */
	CONN_IGNORE, /* not WebSocket: nothing captured */
};

struct conn_info {
	__u64 gen;
	__u64 tx_pos;
	__u64 rx_pos;
	__u32 tgid;
	__u8 state; /* enum conn_state */
	__u8 resp_match; /* bytes of "HTTP/1.x 101" the connection's writes matched so far */
	__u8 seq_known; /* tx_seq holds the socket's write_seq after a write seen */
	__u8 _pad;
	/*
	 * TCP's write_seq after the last write wsaudit saw: a write whose bytes do not start
	 * there had bytes before it that no captured write carried.
	 */
	__u32 tx_seq;
	__u32 _pad2;
};

/* The collector's verdict on an unclassified connection (conn_verdict map). */
struct conn_verdict {
	__u64 gen;
	__u8 state; /* CONN_WS or CONN_IGNORE */
	__u8 _pad[7];
};

/* Drops and self-counters: one per-CPU array slot each. */
enum drop_reason {
	DROP_RINGBUF_FULL = 0, /* ring buffer had no room for a record */
	DROP_READ_FAULT, /* reading the user buffer failed (page not resident) */
	DROP_CAP_EXCEEDED, /* a syscall moved more than the per-syscall capture cap */
	DROP_MAP_FULL, /* no room for a new connection or in-flight syscall */
	DROP_NO_ENTRY, /* a syscall exit without its entry (attached mid-call) */
	DROP_TOO_MANY_IOV, /* more iovec segments than the walk follows */
	DROP_LOOP_LIMIT, /* the chunk loop ran out of iterations */
	DROP_FD_RESOLVE, /* the fd could not be resolved to a file */
	DROP_STACK_RINGBUF_FULL, /* no room for a stack record: the write goes unattributed */
	DROP_ZERO_COPY, /* sendfile/splice/copy_file_range to a socket: bytes not readable */
	/*
	 * Runs of wsaudit's programs the kernel skipped because a BPF program was already running
	 * on that CPU (bpf_prog_info.recursion_misses): read from the programs by user space, no
	 * BPF code counts it.  A skipped exit loses its write without a hole in the stream.
	 */
	DROP_KERNEL_SKIPPED,
	/*
	 * Writes to a followed connection that no program captured, found by the socket's TCP
	 * sequence: a skipped run, a path without a syscall per write (io_uring), or a writer
	 * wsaudit does not follow.  Their bytes become a hole in the stream.
	 */
	DROP_UNSEEN_WRITE,
	/*
	 * A code object's names the walk could not send (no room in the ring buffer, or its
	 * header unreadable): the frame is named only if the process still lives when the
	 * collector reads it (PYF_UNNAMED).
	 */
	DROP_NAMES_LOST,
	DROP_MAX,
};

enum stat_counter {
	STAT_EVENTS = 0, /* records output */
	STAT_BYTES, /* payload bytes output */
	STAT_CAP_BYTES, /* bytes not captured because of the cap */
	STAT_LOST_BYTES, /* bytes lost to full ring buffer or read faults, or sent zero-copy */
	/*
	 * Context copies not recorded: made under a code object that makes only copies no send
	 * runs in (copy_skips, asyncio.sleep's timer handle).
	 */
	STAT_COPIES_SKIPPED,
	STAT_MAX,
};

#define DROP_NAMES                                                                        \
	[DROP_RINGBUF_FULL] = "ringbuf_full", [DROP_READ_FAULT] = "read_fault",           \
	[DROP_CAP_EXCEEDED] = "cap_exceeded", [DROP_MAP_FULL] = "map_full",               \
	[DROP_NO_ENTRY] = "no_entry", [DROP_TOO_MANY_IOV] = "too_many_iov",               \
	[DROP_LOOP_LIMIT] = "loop_limit", [DROP_FD_RESOLVE] = "fd_resolve",               \
	[DROP_STACK_RINGBUF_FULL] = "stack_ringbuf_full", [DROP_ZERO_COPY] = "zero_copy", \
	[DROP_KERNEL_SKIPPED] = "kernel_skipped", [DROP_UNSEEN_WRITE] = "unseen_write",   \
	[DROP_NAMES_LOST] = "names_lost"

_Static_assert(sizeof(struct evt_hdr) == 16, "evt_hdr layout");
_Static_assert(sizeof(struct evt_data) == 104, "evt_data layout");
_Static_assert(sizeof(struct evt_conn) == 104, "evt_conn layout");
_Static_assert(sizeof(struct conn_info) == 40, "conn_info layout");
_Static_assert(sizeof(struct evt_tls_link) == 64, "evt_tls_link layout");
_Static_assert(sizeof(struct py_frame) == 32, "py_frame layout");
_Static_assert(sizeof(struct py_ctx) == 8 + CTX_VALUE_MAX, "py_ctx layout");
_Static_assert(sizeof(struct evt_stack) == 80 + sizeof(struct py_ctx) + 32 * PY_FRAMES_MAX,
	       "evt_stack layout");
_Static_assert(sizeof(struct ctx_code) == 24, "ctx_code layout");
_Static_assert(sizeof(struct names_obj) == NAMES_OBJ_HEAD + 8, "names_obj layout");
_Static_assert(sizeof(struct evt_code_names) ==
		       32 + NAMES_CODE_HEAD + NAMES_OBJS * (NAMES_OBJ_HEAD + 8) +
			       2 * NAMES_NAME_MAX + NAMES_FILE_MAX + NAMES_TABLE_MAX,
	       "evt_code_names layout");
_Static_assert(sizeof(struct evt_segs) == 40 + 24 * SEGS_PER_CALL, "evt_segs layout");

#endif /* WSAUDIT_EVENTS_H */

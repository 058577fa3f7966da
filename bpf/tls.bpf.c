// SPDX-License-Identifier: GPL-2.0
/*
 * The plaintext of the TLS connections a traced process terminates itself: uprobes on the
 * libssl it maps (user/tlshook.c finds it, per process), at the entry and return of
 * SSL_write, SSL_write_ex, SSL_read and SSL_read_ex (Python's _ssl calls the _ex pair from
 * 3.10 on, the others before), and SSL_free.  Each SSL object is a connection of its own
 * (TLS_CONN_INO), whose streams go through the same path as a socket's: the upgrade request
 * read, the 101 and the frames written, the Python stack walked at SSL_write, where the
 * writer is still on the stack even when the ciphertext is sent later by an event loop
 * (asyncio and uvloop write to a memory BIO).  The socket is learnt from the write of the
 * ciphertext (bpf/lib/tls.bpf.h).  docs/tls.md.
 */
#include "lib/common.bpf.h"
#include "lib/chunks.bpf.h"
#include "lib/pywalk.bpf.h"
#include "lib/tls.bpf.h"

/* A call in flight, from entry to return. */
struct tls_call {
	__u64 ssl;
	__u64 buf;
	__u64 num;
	__u64 done_ptr; /* size_t * of the _ex calls, 0 for the others */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, INFLIGHT_MAX);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* The next TLS connection's sequence number. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tls_seq SEC(".maps");

/* The stack walk and the chunk emitter for uprobes: a program array of that type. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, TAIL_MAX);
	__type(key, __u32);
	__type(value, __u32);
} tls_progs SEC(".maps");

static __always_inline void tls_emit_new(const struct tls_conn *t, __u64 id)
{
	struct evt_conn *e;

	e = evt_reserve(sizeof(*e), EVT_CONN_NEW);
	if (!e)
		return;
	e->conn.ino = t->ino;
	e->conn.gen = t->ci.gen;
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, ringbuf_flags(sizeof(*e), true));
	count_stat(STAT_EVENTS, 1);
}

/* The TLS connection of ssl in this process, created on first sight; its verdict applied. */
static __always_inline struct tls_conn *tls_conn_get(__u64 ssl, __u64 id)
{
	struct tls_key k = { .ssl = ssl, .tgid = id >> 32 };
	struct tls_conn *t, fresh = {};
	struct conn_verdict *v;
	__u32 zero = 0;
	__u64 *seq;

	t = bpf_map_lookup_elem(&tls_conns, &k);
	if (!t) {
		seq = bpf_map_lookup_elem(&tls_seq, &zero);
		if (!seq)
			return NULL;
		fresh.ino = TLS_CONN_INO | (__sync_fetch_and_add(seq, 1) + 1);
		fresh.ci.gen = bpf_ktime_get_ns();
		fresh.ci.tgid = id >> 32;
		fresh.ci.state = CONN_UNKNOWN;
		if (bpf_map_update_elem(&tls_conns, &k, &fresh, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&tls_conns, &k)) {
			count_drop(DROP_MAP_FULL);
			return NULL;
		}
		t = bpf_map_lookup_elem(&tls_conns, &k);
		if (!t)
			return NULL;
		if (t->ino == fresh.ino)
			tls_emit_new(t, id);
	}
	if (t->ci.state == CONN_UNKNOWN || t->ci.state == CONN_HTTP) {
		v = bpf_map_lookup_elem(&verdict_map, &t->ino);
		if (v) {
			if (v->gen == t->ci.gen)
				t->ci.state = v->state;
			bpf_map_delete_elem(&verdict_map, &t->ino);
		}
	}
	return t;
}

static __always_inline int call_stash(__u64 ssl, __u64 buf, __u64 num, __u64 done_ptr)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call call = { .ssl = ssl, .buf = buf, .num = num, .done_ptr = done_ptr };

	if (!tgid_traced(id >> 32) || !ssl)
		return 0;
	if (bpf_map_update_elem(&tls_calls, &id, &call, BPF_ANY))
		count_drop(DROP_MAP_FULL);
	return 0;
}

/* Bytes the call moved (0: none), its stash taken. */
static __always_inline __u64 call_take(struct tls_call *out, long ret)
{
	__u64 id = bpf_get_current_pid_tgid(), done = 0;
	struct tls_call *call;

	if (!tgid_traced(id >> 32))
		return 0;
	call = bpf_map_lookup_elem(&tls_calls, &id);
	if (!call) {
		count_drop(DROP_NO_ENTRY);
		return 0;
	}
	*out = *call;
	bpf_map_delete_elem(&tls_calls, &id);
	if (out->done_ptr) {
		/* SSL_write_ex, SSL_read_ex: 1 on success, the count in *done. */
		if (ret != 1 || bpf_probe_read_user(&done, sizeof(done), (void *)out->done_ptr))
			return 0;
	} else if (ret > 0) {
		done = ret;
	}
	return done <= out->num ? done : out->num;
}

/*
 * At a write's entry, the connection is known and its thread's write pending: a blocking
 * socket writes the ciphertext inside the call, an event loop after it returns.
 */
static __always_inline int write_entry(__u64 ssl, __u64 buf, __u64 num, __u64 done_ptr)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_pending p = { .ssl = ssl, .len = num };

	if (!tgid_traced(id >> 32) || !ssl || !num)
		return 0;
	if (!tls_conn_get(ssl, id))
		return 0;
	bpf_map_update_elem(&tls_pending, &id, &p, BPF_ANY);
	return call_stash(ssl, buf, num, done_ptr);
}

static __always_inline int write_return(void *ctx, long ret)
{
	__u64 id = bpf_get_current_pid_tgid(), n, pos;
	struct tls_call call;
	struct tls_conn *t;
	struct io_desc *io;
	__u8 state;
	bool python;

	n = call_take(&call, ret);
	if (!n)
		return 0;
	t = tls_conn_get(call.ssl, id);
	if (!t)
		return 0;
	state = t->ci.state;
	if (state == CONN_IGNORE)
		return 0;
	io = io_desc_get();
	if (!io)
		return 0;
	io->fd = 0;
	io->syscall = SC_SSL_WRITE;
	io->dir = DIR_TX;
	io_from_buf(io, call.buf, n);
	pos = __sync_fetch_and_add(&t->ci.tx_pos, n);
	/* The 101 is recognised by the collector in the plaintext, as on a socket. */
	python = bpf_map_lookup_elem(&py_procs, &(__u32){ id >> 32 }) != NULL;
	emit_io_via(ctx, &tls_progs, io, &t->ci, t->ino, pos, cfg_write_cap,
		    state == CONN_WS ? 0 : DATA_UNCLASSIFIED, python, python);
	return 0;
}

static __always_inline int read_return(void *ctx, long ret)
{
	__u64 id = bpf_get_current_pid_tgid(), n, pos;
	struct tls_call call;
	struct tls_conn *t;
	struct io_desc *io;
	char head[4];

	n = call_take(&call, ret);
	if (!n)
		return 0;
	t = tls_conn_get(call.ssl, id);
	if (!t || t->ci.state == CONN_WS || t->ci.state == CONN_IGNORE)
		return 0;
	/* Only an upgrade request is captured, as on a socket (bpf/recv.bpf.c). */
	if (t->ci.state != CONN_HTTP) {
		if (n < sizeof(head) || bpf_probe_read_user(head, sizeof(head), (void *)call.buf) ||
		    head[0] != 'G' || head[1] != 'E' || head[2] != 'T' || head[3] != ' ')
			return 0;
		t->ci.state = CONN_HTTP;
	}
	io = io_desc_get();
	if (!io)
		return 0;
	io->fd = 0;
	io->syscall = SC_SSL_READ;
	io->dir = DIR_RX;
	io_from_buf(io, call.buf, n);
	pos = __sync_fetch_and_add(&t->ci.rx_pos, n);
	emit_io_via(ctx, &tls_progs, io, &t->ci, t->ino, pos, READ_CAP, 0, false, false);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_write_entry, void *ssl, const void *buf, int num)
{
	return write_entry((__u64)ssl, (__u64)buf, num > 0 ? num : 0, 0);
}

SEC("uprobe")
int BPF_KPROBE(tls_write_ex_entry, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	return write_entry((__u64)ssl, (__u64)buf, num, (__u64)written);
}

SEC("uretprobe")
int BPF_KRETPROBE(tls_write_return, int ret)
{
	return write_return(ctx, ret);
}

SEC("uretprobe")
int BPF_KRETPROBE(tls_write_ex_return, int ret)
{
	return write_return(ctx, ret);
}

SEC("uprobe")
int BPF_KPROBE(tls_read_entry, void *ssl, void *buf, int num)
{
	return call_stash((__u64)ssl, (__u64)buf, num > 0 ? num : 0, 0);
}

SEC("uprobe")
int BPF_KPROBE(tls_read_ex_entry, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	return call_stash((__u64)ssl, (__u64)buf, num, (__u64)readbytes);
}

SEC("uretprobe")
int BPF_KRETPROBE(tls_read_return, int ret)
{
	return read_return(ctx, ret);
}

SEC("uretprobe")
int BPF_KRETPROBE(tls_read_ex_return, int ret)
{
	return read_return(ctx, ret);
}

/* The SSL object is freed: its connection ends (its address may serve another next). */
SEC("uprobe")
int BPF_KPROBE(tls_free_entry, void *ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_key k = { .ssl = (__u64)ssl, .tgid = id >> 32 };
	struct tls_conn *t;
	struct evt_conn *e;

	if (!tgid_traced(id >> 32))
		return 0;
	t = bpf_map_lookup_elem(&tls_conns, &k);
	if (!t)
		return 0;
	e = bpf_ringbuf_reserve(&events_rb, sizeof(*e), 0);
	if (e) {
		__builtin_memset(e, 0, sizeof(*e));
		e->hdr.type = EVT_CONN_CLOSE;
		e->hdr.version = EVT_VERSION;
		e->hdr.size = sizeof(*e);
		e->hdr.ts_ns = bpf_ktime_get_ns();
		e->conn.ino = t->ino;
		e->conn.gen = t->ci.gen;
		e->tgid = id >> 32;
		e->tid = (__u32)id;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		bpf_ringbuf_submit(e, ringbuf_flags(sizeof(*e), true));
		count_stat(STAT_EVENTS, 1);
	} else {
		count_drop(DROP_RINGBUF_FULL);
	}
	bpf_map_delete_elem(&tls_conns, &k);
	return 0;
}

SEC("uprobe")
int tls_stack_walk(struct pt_regs *ctx)
{
	return py_stack_walk_run(ctx, &tls_progs, false);
}

SEC("uprobe")
int tls_emit_chunks(struct pt_regs *ctx)
{
	return emit_chunks_run(ctx, &tls_progs);
}

char LICENSE[] SEC("license") = "GPL";

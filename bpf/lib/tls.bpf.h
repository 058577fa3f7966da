/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the TLS probes (bpf/tls.bpf.c) share with the write family: the TLS connection whose
 * plaintext a thread handed to SSL_write last, so that the write of its ciphertext on a
 * socket ties the two together (EVT_TLS_LINK).
 */
#ifndef WSAUDIT_TLS_BPF_H
#define WSAUDIT_TLS_BPF_H

/* A TLS connection of a process: libssl's SSL object there. */
struct tls_key {
	__u64 ssl;
	__u32 tgid;
	__u32 _pad;
};

struct tls_conn {
	struct conn_info ci; /* its plaintext streams, as a socket's */
	__u64 ino; /* TLS_CONN_INO | sequence number */
	__u64 sock_ino; /* the socket it was linked to last, 0: none yet */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CONN_MAX);
	__type(key, struct tls_key);
	__type(value, struct tls_conn);
} tls_conns SEC(".maps") __weak;

/* The SSL_write a thread made last, until a socket write of its ciphertext is seen. */
struct tls_pending {
	__u64 ssl;
	__u64 len; /* plaintext bytes handed to it */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, INFLIGHT_MAX);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tls_pending);
} tls_pending SEC(".maps") __weak;

#define TLS_RECORD_HDR 5
#define TLS_RECORD_MAX 16384

/*
 * Whether the first record of a write is the ciphertext of `len` plaintext bytes: application
 * data (23), version 3.3, and a length that is the plaintext's (up to a full record) plus an
 * AEAD's overhead: 17 (TLS 1.3: content type and tag), 24 (TLS 1.2 AES-GCM: explicit nonce and
 * tag) or 16 (TLS 1.2 ChaCha20-Poly1305).  Another connection's write that happens to follow
 * on the thread (its transport was flushing a queue) is not taken for this one's.
 */
static __always_inline bool tls_record_of(const struct io_desc *io, __u64 len)
{
	__u8 h[TLS_RECORD_HDR];
	__u64 rec, plain = len < TLS_RECORD_MAX ? len : TLS_RECORD_MAX;

	if (io->nsegs == 0 || io->segs[0].len < TLS_RECORD_HDR ||
	    bpf_probe_read_user(h, sizeof(h), (void *)io->segs[0].ptr))
		return false;
	if (h[0] != 23 || h[1] != 3 || h[2] != 3)
		return false;
	rec = (__u64)h[3] << 8 | h[4];
	return rec == plain + 17 || rec == plain + 24 || rec == plain + 16;
}

/*
 * uvloop queues what its transports are given and writes it later from the loop, after other
 * connections' SSL_writes maybe: the ciphertext object handed to the transport right after
 * an SSL_write (bpf/pystack.bpf.c's transport_write_uprobe) names the connection instead,
 * by the address of its bytes, which the later writev sends from.
 */
struct tls_token_key {
	__u64 ptr; /* of the bytes: a bytes object's ob_sval */
	__u32 tgid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, INFLIGHT_MAX);
	__type(key, struct tls_token_key);
	__type(value, __u64); /* ssl */
} tls_tokens SEC(".maps") __weak;

/* Tokens put and not taken yet (approximate: the LRU evicts): writes look only while any. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} tls_tokens_out SEC(".maps") __weak;

/* offsetof(PyBytesObject, ob_sval) on 64-bit CPython 3.9 to 3.14 */
#define PY_BYTES_SVAL 32

static __always_inline __s64 *tls_tokens_count(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tls_tokens_out, &zero);
}

/*
 * A transport was handed data: if its thread's SSL_write is pending, data is its ciphertext.
 * True then (the hand-over is not a writer's).
 */
static __always_inline bool tls_handover(__u64 data)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_token_key k = { .ptr = data + PY_BYTES_SVAL, .tgid = id >> 32 };
	struct tls_pending *p = bpf_map_lookup_elem(&tls_pending, &id);
	__s64 *n;

	if (!p)
		return false;
	if (!bpf_map_update_elem(&tls_tokens, &k, &p->ssl, BPF_ANY)) {
		n = tls_tokens_count();
		if (n)
			__sync_fetch_and_add(n, 1);
	}
	bpf_map_delete_elem(&tls_pending, &id);
	return true;
}

/* The TLS connection of ssl in this process is the socket's (c, ino, fd): said once per socket. */
static __always_inline void tls_link(__u64 ssl, struct conn_info *c, __u64 ino, __u32 fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_key k = { .ssl = ssl, .tgid = id >> 32 };
	struct evt_tls_link *e;
	struct tls_conn *t;

	t = bpf_map_lookup_elem(&tls_conns, &k);
	if (!t || t->sock_ino == ino)
		return;
	t->sock_ino = ino;
	e = bpf_ringbuf_reserve(&events_rb, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_RINGBUF_FULL);
		return;
	}
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->hdr.type = EVT_TLS_LINK;
	e->hdr.version = EVT_VERSION;
	e->hdr.size = sizeof(*e);
	e->tls.ino = t->ino;
	e->tls.gen = t->ci.gen;
	e->sock.ino = ino;
	e->sock.gen = c->gen;
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->fd = fd;
	e->_pad = 0;
	bpf_ringbuf_submit(e, ringbuf_flags(sizeof(*e), true));
	count_stat(STAT_EVENTS, 1);
}

/* Whether the write of a traced process may carry a TLS connection's ciphertext. */
static __always_inline bool tls_link_wanted(struct tls_pending **p)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s64 *n = tls_tokens_count();

	*p = bpf_map_lookup_elem(&tls_pending, &id);
	return *p || (n && *n > 0);
}

/*
 * A write of a traced process on a TCP socket (c, ino, fd) that may carry a TLS connection's
 * ciphertext: the bytes of an object handed over (uvloop), or, on the thread of a pending
 * SSL_write, its record (a blocking socket inside the call, asyncio's transport right after).
 */
static __always_inline void tls_link_write(const struct io_desc *io, struct tls_pending *p,
					   struct conn_info *c, __u64 ino, __u32 fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_token_key k = { .tgid = id >> 32 };
	__u64 *ssl;
	__s64 *n;

	if (io->nsegs) {
		k.ptr = io->segs[0].ptr;
		ssl = bpf_map_lookup_elem(&tls_tokens, &k);
		if (ssl) {
			tls_link(*ssl, c, ino, fd);
			bpf_map_delete_elem(&tls_tokens, &k);
			n = tls_tokens_count();
			if (n)
				__sync_fetch_and_add(n, -1);
			return;
		}
	}
	if (!p || !tls_record_of(io, p->len))
		return;
	bpf_map_delete_elem(&tls_pending, &id);
	tls_link(p->ssl, c, ino, fd);
}

#endif /* WSAUDIT_TLS_BPF_H */

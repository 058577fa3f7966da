/* SPDX-License-Identifier: GPL-2.0 */
/* Sizes shared by the BPF programs and the collector; defaults of the tunables. */
#ifndef WSAUDIT_LIMITS_H
#define WSAUDIT_LIMITS_H

/*
 * Payload bytes per ring buffer record.  A power of two: the BPF side masks with twice it, and
 * the per-CPU scratch (twice it plus a header) must stay under the 32 KiB per-CPU value limit.
 */
#define CHUNK_MAX 8192
/* Default and maximum bytes captured per syscall (--write-cap). */
#define WRITE_CAP_DEFAULT (256 * 1024)
#define WRITE_CAP_MAX (1024 * 1024)
/* Bytes of an upgrade request captured per read: a whole head of HTTP1_MAX_HEAD. */
#define READ_CAP 16384
/* iovec segments followed per writev/sendmsg/readv/recvmsg, messages per sendmmsg. */
#define IOV_MAX_WALK 64
/*
 * iovec segments the chunk emitter visits per invocation; past the first IOV_MAX_WALK it reads
 * them as it goes, so a writev of IOV_MAX (1024) segments fits in the tail calls allowed.
 */
#define SEGS_PER_CALL 64
#define MMSG_MAX_WALK 8

#define PATH_CAP 256

/* Python frames recorded per write (shim entries included), and thread states searched. */
#define PY_FRAMES_MAX 64
#define PY_THREADS_WALK 256
/* Bytes read per frame: every field the walk needs lies in this prefix on 3.9-3.14. */
#define PY_FRAME_READ 128
/*
 * Bytes read at once below a frame of the thread's data stack (3.11+), where its callers lie
 * one after the other: a 32-frame stack of small functions takes about one such read.
 */
#define PY_WALK_WIN 4096
/* Frames searched (innermost first) for a marked bridge call, and bytes of its user argument. */
#define CTX_FRAMES_MAX 24
#define CTX_VALUE_MAX 64
#define CTX_CODES_MAX 4096

/* Map sizes (defaults; the collector may resize before load). */
/* Words of the traced-tgid bitmap when pid_max cannot be read: pid_max 4194304. */
#define TRACED_WORDS_DEFAULT (4194304 / 64)
#define TRACED_MAX 8192
#define CONN_MAX 65536
#define INFLIGHT_MAX 16384
/* Buffers handed over to a transport and not yet written (bpf/pystack.bpf.c). */
#define HANDOVER_MAX 16384
/* Code objects whose names the walks sent, over all processes (LRU: one forgotten is sent again). */
#define NAMES_SEEN_MAX 32768
/* Slots of the per-CPU cache in front of it (a power of two). */
#define NAMES_CACHE_SLOTS 1024
/*
 * A hand-over older than this is not trusted to spare a write its walk: the collector keeps
 * the stack of a hand-over for 30 s (user/session.c, TOKEN_MAX_AGE_NS).
 */
#define HANDOVER_MAX_AGE_NS (10ULL * 1000000000ULL)
#define RINGBUF_DEFAULT (8 * 1024 * 1024)
/* Wake the collector once this many bytes are queued; it also polls on a short timer. */
#define WAKEUP_BYTES_DEFAULT (256 * 1024)

#endif /* WSAUDIT_LIMITS_H */

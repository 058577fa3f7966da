/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel side as seen from the collector: loads and attaches the BPF programs, keeps the
 * set of traced processes, passes verdicts on connections, drains the ring buffer and reads
 * the drop counters.
 */
#ifndef WSAUDIT_CAPTURE_H
#define WSAUDIT_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wsaudit/events.h"
#include "wsaudit/pyoffsets.h"

struct capture_opts {
	size_t ringbuf_size; /* bytes, a power of two >= page size; 0: default */
	uint64_t write_cap; /* bytes captured per syscall; 0: default */
	bool follow_exec; /* report execs (for --exe matching) */
	bool stack_walk; /* load the Python stack walks (not with --capture-only) */
};

/* Called for each ring buffer record; a negative return stops the current drain. */
typedef int (*capture_record_fn)(void *ctx, const void *data, size_t size);

struct capture;

/* NULL and errno on failure; the reason has been logged. */
struct capture *capture_open(const struct capture_opts *opts, capture_record_fn fn, void *ctx);
void capture_close(struct capture *cap);

int capture_trace_pid(struct capture *cap, pid_t pid);
int capture_untrace_pid(struct capture *cap, pid_t pid);
bool capture_is_traced(const struct capture *cap, pid_t pid);
/* The ring buffer's epoll fd: readable when records wait. */
int capture_fd(const struct capture *cap);
/* Removes the kernel's records of the connections of a process that exited. */
int capture_forget_tgid(struct capture *cap, pid_t tgid);
/*
 * Drops what belongs to a process's image: its marked code objects and its uprobes (at exec,
 * or for a pid that a new process now holds).
 */
void capture_forget_image(struct capture *cap, pid_t tgid);
/*
 * A traced process exec'd (by its leader thread, or by another): drops its marks, and the
 * uprobes that cannot serve the new image.  The others stay, and attaching them again finds
 * them in place.
 */
void capture_exec_image(struct capture *cap, pid_t tgid, bool by_leader);
/* The tgids holding marks or uprobes (at most max, each once).  Returns how many. */
int capture_held_tgids(struct capture *cap, pid_t *out, int max);
/* Detaches the deflate probes of a process (capture_attach_zlib). */
void capture_detach_zlib(struct capture *cap, pid_t tgid);
/* Enables (off) or disables (NULL) the Python stack walk for a process. */
int capture_set_pyoffsets(struct capture *cap, pid_t pid, const struct py_offsets *off);
/*
 * Makes the walks of a process send the names of the code objects they meet (nl), or not
 * (NULL).  Dropped by the kernel side at the process's exec and exit.
 */
int capture_set_pynames(struct capture *cap, pid_t pid, const struct py_names_layout *nl);
/*
 * Attaches the transport-write uprobe at offset in the file at path for process pid, once per
 * (pid, dev, ino, offset); capture_forget_tgid detaches it.  0 (also when already attached)
 * or -errno.
 */
int capture_attach_transport_write(struct capture *cap, pid_t pid, const char *path, dev_t dev,
				   ino_t ino, unsigned long long offset);
/*
 * Attaches the return probe on PyContext_CopyCurrent (bpf/link.bpf.c) in the interpreter's
 * ELF file at path (dev, ino: once per process and file), for process pid only.
 */
int capture_attach_context_copy(struct capture *cap, pid_t pid, const char *path, dev_t dev,
				ino_t ino);
/*
 * Attaches the probes on zlib's deflate (entry and return, bpf/zlib.bpf.c) in the library at
 * path for process pid, once per (pid, dev, ino); capture_forget_tgid detaches them.  0 or
 * -errno.
 */
int capture_attach_zlib(struct capture *cap, pid_t pid, const char *path, dev_t dev, ino_t ino);
/*
 * Attaches the probes on libssl's SSL_write, SSL_write_ex, SSL_read, SSL_read_ex (entry and
 * return) and SSL_free (bpf/tls.bpf.c) in the library at path for process pid, once per
 * (pid, dev, ino); capture_forget_tgid detaches them.  0, or the first -errno (the functions
 * an OpenSSL version lacks fail alone).
 */
int capture_attach_tls(struct capture *cap, pid_t pid, const char *path, dev_t dev, ino_t ino);
/* Whether a probe on a libssl is attached for pid. */
bool capture_tls_probed(const struct capture *cap, pid_t pid);
/*
 * Attaches for a forked child the transport-write and libssl uprobes of its parent (a breakpoint set for
 * one process is not inherited).  Sites attached, or -errno.
 */
int capture_fork_transport_writes(struct capture *cap, pid_t parent, pid_t child);
/* Marks a code object of a process whose frames carry a user argument to read. */
int capture_mark_ctx_code(struct capture *cap, pid_t pid, unsigned long long code,
			  const struct ctx_code *cc);
/*
 * Marks (on) or unmarks a code object of a process at which a send's walk may stop
 * (bpf/lib/pywalk.bpf.h, stop_sets): -ENOSPC when it has STOP_CODES_MAX marks already.
 * clear: every process's marks.
 */
int capture_mark_stop_code(struct capture *cap, pid_t pid, unsigned long long code, bool on);
void capture_clear_stop_codes(struct capture *cap);
/*
 * Marks a code object of a process under which its context copies are not recorded
 * (bpf/link.bpf.c, copy_skips): -ENOSPC when it has STOP_CODES_MAX such marks already.
 */
int capture_mark_copy_skip(struct capture *cap, pid_t pid, unsigned long long code);
int capture_set_verdict(struct capture *cap, const struct conn_id *id, enum conn_state state);

/*
 * Waits up to timeout_ms for records, then drains what is queued for at most
 * CAPTURE_POLL_BUDGET_MS: the caller's loop turns (heartbeat, log, reload) between drains
 * however many records a flood queued.  Records or -errno.
 */
#define CAPTURE_POLL_BUDGET_MS 50
int capture_poll(struct capture *cap, int timeout_ms);
/* Whether the last capture_poll() stopped at its budget with records left. */
bool capture_pending(const struct capture *cap);

struct capture_counters {
	uint64_t drops[DROP_MAX];
	uint64_t stats[STAT_MAX];
};

int capture_read_counters(struct capture *cap, struct capture_counters *out);
const char *capture_drop_name(enum drop_reason reason);

/*
 * Programs and uprobes attached now (the uprobes of forgotten images not included), and
 * attach failures so far, for self-reporting.
 */
void capture_probe_counts(const struct capture *cap, unsigned int *attached, unsigned int *failed);

/* Where the start-up went: the programs loaded and the time to load and attach them. */
struct capture_startup {
	uint64_t load_ns; /* open to loaded: almost all of it is the verifier */
	uint64_t attach_ns;
	unsigned int programs;
	uint64_t insns; /* as loaded */
	uint64_t verified_insns; /* instructions the verifier went through */
};

void capture_startup(const struct capture *cap, struct capture_startup *out);

#endif /* WSAUDIT_CAPTURE_H */

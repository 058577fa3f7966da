// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture.h"
#include "clock.h"
#include "linkreap.h"
#include "log.h"
#include "sysreq.h"
#include "tlshook.h"
#include "wsaudit.skel.h"

/*
 * The syscall exits each family's one exit program is attached to (bpf/lib/common.bpf.h):
 * the stash taken at entry says which call it was.
 */
static const char *const send_exits[] = { "sys_exit_write", "sys_exit_writev", "sys_exit_sendto",
					  "sys_exit_sendmsg", "sys_exit_sendmmsg" };
static const char *const recv_exits[] = { "sys_exit_read", "sys_exit_readv", "sys_exit_recvfrom",
					  "sys_exit_recvmsg" };
#define EXIT_LINKS \
	(sizeof(send_exits) / sizeof(send_exits[0]) + sizeof(recv_exits) / sizeof(recv_exits[0]))

/* Transport-write uprobes held at once: a few sites per traced Python process. */
#define UPROBES_MAX 4096

struct uprobe_rec {
	pid_t pid;
	dev_t dev;
	ino_t ino;
	unsigned long long offset;
	char *path; /* as attached, for a forked child */
	struct bpf_link *link;
	struct bpf_link *ret_link; /* zlib's deflate, libssl's calls: the return probe */
	enum uprobe_kind {
		UPROBE_TRANSPORT, /* a transport's write (user/uvhook.c) */
		UPROBE_ZLIB, /* deflate's probes (user/zflush.c) */
		UPROBE_TLS, /* a libssl function (user/tlshook.c); offset: its index */
		UPROBE_CTX_COPY, /* PyContext_CopyCurrent's return (bpf/link.bpf.c) */
	} kind;
};

/* Programs whose skipped runs are named; more are counted all the same. */
#define SKIPPED_PROGS_MAX 64

struct capture {
	struct wsaudit *skel;
	unsigned int batch; /* records handled by this capture_poll() */
	uint64_t batch_start; /* when it handled the first */
	bool pending; /* it stopped at its budget with records left */
	uint64_t *traced_bits; /* the traced_bits map, mapped */
	size_t traced_bits_len;
	uint32_t traced_words;
	struct uprobe_rec *uprobes;
	unsigned int nuprobes, uprobes_cap;
	struct linkreap *reaper; /* destroys the uprobe links of processes that are gone */
	struct bpf_link *exit_links[EXIT_LINKS];
	struct ring_buffer *rb;
	capture_record_fn fn;
	struct capture_startup startup;
	void *ctx;
	unsigned int failed; /* attach failures, counted as they happen */
	int ncpus;
	/* recursion_misses of each program (in object order) when it was last said */
	uint64_t skipped_said[SKIPPED_PROGS_MAX];
};

static const char *const drop_names[DROP_MAX] = { DROP_NAMES };

const char *capture_drop_name(enum drop_reason reason)
{
	return reason < DROP_MAX && drop_names[reason] ? drop_names[reason] : "unknown";
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && log_max_level < LOG_DEBUG)
		return 0;
	if (level == LIBBPF_INFO && log_max_level < LOG_INFO)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int ringbuf_cb(void *ctx, void *data, size_t size)
{
	struct capture *cap = ctx;
	uint64_t now;
	int err;

	if (!cap->batch++)
		cap->batch_start = mono_ns();
	err = cap->fn(cap->ctx, data, size);
	if (err || cap->batch % 16)
		return err;
	/*
	 * A record's cost is the frames in it (a write of 100 frames is one record): the drain
	 * is bounded by time.  libbpf has consumed this record already; a negative return stops
	 * the drain here and leaves the rest to the next capture_poll().
	 */
	now = mono_ns();
	if (now - cap->batch_start < CAPTURE_POLL_BUDGET_MS * 1000000ULL)
		return 0;
	cap->pending = true;
	return -EAGAIN;
}

/* The stack walk and the chunk emitter are reached by tail call through a program array. */
static int emit_prog_install(struct wsaudit *skel)
{
	const struct {
		__u32 slot;
		struct bpf_program *prog;
		struct bpf_map *array;
	} slots[] = {
		{ 0, skel->progs.emit_chunks, skel->maps.emit_progs },
		{ 1, skel->progs.py_stack_walk, skel->maps.emit_progs },
		/* The TLS probes' own: a program array holds programs of one type. */
		{ 0, skel->progs.tls_emit_chunks, skel->maps.tls_progs },
		{ 1, skel->progs.tls_stack_walk, skel->maps.tls_progs },
	};
	int prog_fd;

	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		/* Not loaded (no stack walk): its slot stays empty and the tail call falls through. */
		if (!bpf_program__autoload(slots[i].prog))
			continue;
		prog_fd = bpf_program__fd(slots[i].prog);
		if (bpf_map_update_elem(bpf_map__fd(slots[i].array), &slots[i].slot, &prog_fd,
					BPF_ANY)) {
			log_err("failed to install %s: %s", bpf_program__name(slots[i].prog),
				strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* Words of the traced-tgid bitmap: every tgid below pid_max gets a bit. */
static uint32_t traced_words(void)
{
	unsigned long pid_max = 0;
	FILE *f = fopen("/proc/sys/kernel/pid_max", "re");

	if (f) {
		if (fscanf(f, "%lu", &pid_max) != 1)
			pid_max = 0;
		fclose(f);
	}
	if (!pid_max || pid_max > 4194304)
		return TRACED_WORDS_DEFAULT;
	return (uint32_t)((pid_max + 63) / 64);
}

/* Each family's exit program on each of its syscalls' exits. */
static int exits_attach(struct capture *cap)
{
	const struct {
		struct bpf_program *prog;
		const char *const *tps;
		size_t n;
	} fams[] = {
		{ cap->skel->progs.send_exit, send_exits,
		  sizeof(send_exits) / sizeof(send_exits[0]) },
		{ cap->skel->progs.recv_exit, recv_exits,
		  sizeof(recv_exits) / sizeof(recv_exits[0]) },
	};
	unsigned int k = 0;
	int err;

	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		for (size_t i = 0; i < fams[f].n; i++) {
			cap->exit_links[k] = bpf_program__attach_tracepoint(
				fams[f].prog, "syscalls", fams[f].tps[i]);
			if (!cap->exit_links[k]) {
				err = -errno;
				log_err("failed to attach %s to %s: %s",
					bpf_program__name(fams[f].prog), fams[f].tps[i],
					strerror(-err));
				return err;
			}
			k++;
		}
	}
	return 0;
}

/* Programs loaded, their instructions and what the verifier went through, for the banner. */
static void startup_programs(struct capture *cap)
{
	struct bpf_program *prog;
	struct bpf_prog_info info;
	__u32 len;

	bpf_object__for_each_program(prog, cap->skel->obj) {
		if (!bpf_program__autoload(prog))
			continue;
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		cap->startup.programs++;
		if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
			continue;
		cap->startup.insns += info.xlated_prog_len / 8;
		cap->startup.verified_insns += info.verified_insns;
	}
}

static int traced_bits_map(struct capture *cap)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	cap->traced_bits_len = ((size_t)cap->traced_words * 8 + page - 1) / page * page;
	p = mmap(NULL, cap->traced_bits_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		 bpf_map__fd(cap->skel->maps.traced_bits), 0);
	if (p == MAP_FAILED) {
		log_err("failed to map the traced-process bitmap: %s", strerror(errno));
		return -errno;
	}
	cap->traced_bits = p;
	return 0;
}

struct capture *capture_open(const struct capture_opts *opts, capture_record_fn fn, void *ctx)
{
	struct capture *cap;
	size_t rb_size = opts->ringbuf_size ? opts->ringbuf_size : RINGBUF_DEFAULT;
	uint64_t t0;
	int err;

	cap = calloc(1, sizeof(*cap));
	if (!cap)
		return NULL;
	cap->fn = fn;
	cap->ctx = ctx;
	cap->ncpus = libbpf_num_possible_cpus();
	if (cap->ncpus <= 0) {
		err = cap->ncpus ? cap->ncpus : -EINVAL;
		log_err("failed to count possible CPUs: %s", strerror(-err));
		goto err_free;
	}
	/* What is missing is said in one line, before a load that would fail obscurely. */
	if (sysreq_preflight()) {
		err = -ENOTSUP;
		goto err_free;
	}
	libbpf_set_print(libbpf_log);

	cap->skel = wsaudit__open();
	if (!cap->skel) {
		err = -errno;
		log_err("failed to open the BPF object: %s", strerror(-err));
		goto err_free;
	}
	cap->skel->rodata->cfg_write_cap = opts->write_cap ? opts->write_cap : WRITE_CAP_DEFAULT;
	cap->skel->rodata->cfg_follow_exec = opts->follow_exec;
	/* Wake the collector at a quarter of the ring, so a burst never finds it asleep. */
	cap->skel->rodata->cfg_wakeup_bytes =
		rb_size / 4 < WAKEUP_BYTES_DEFAULT ? rb_size / 4 : WAKEUP_BYTES_DEFAULT;
	/*
	 * Only what the options need is loaded: the verifier's time is most of the start-up,
	 * and the two stack walks are its largest programs.
	 */
	if (!opts->stack_walk) {
		bpf_program__set_autoload(cap->skel->progs.py_stack_walk, false);
		bpf_program__set_autoload(cap->skel->progs.tls_stack_walk, false);
		bpf_program__set_autoload(cap->skel->progs.transport_write_uprobe, false);
		bpf_program__set_autoload(cap->skel->progs.context_copy_uretprobe, false);
	}
	/*
	 * The exec program is always loaded (it is small): besides --exe matching, a traced
	 * process that runs a new program must be inspected again (bpf/process.bpf.c).
	 */
	cap->traced_words = traced_words();
	err = bpf_map__set_max_entries(cap->skel->maps.traced_bits, cap->traced_words);
	if (!err)
		err = bpf_map__set_max_entries(cap->skel->maps.events_rb, rb_size);
	if (err) {
		log_err("failed to size the ring buffer to %zu bytes: %s", rb_size, strerror(-err));
		goto err_destroy_skel;
	}
	t0 = mono_ns();
	err = wsaudit__load(cap->skel);
	if (err) {
		log_err("failed to load the BPF programs: %s", strerror(-err));
		goto err_destroy_skel;
	}
	cap->startup.load_ns = mono_ns() - t0;
	startup_programs(cap);
	err = emit_prog_install(cap->skel);
	if (!err)
		err = traced_bits_map(cap);
	if (err)
		goto err_destroy_skel;
	t0 = mono_ns();
	err = wsaudit__attach(cap->skel);
	if (err) {
		log_err("failed to attach the BPF programs: %s", strerror(-err));
		goto err_destroy_skel;
	}
	err = exits_attach(cap);
	if (err)
		goto err_destroy_skel;
	cap->startup.attach_ns = mono_ns() - t0;
	cap->rb = ring_buffer__new(bpf_map__fd(cap->skel->maps.events_rb), ringbuf_cb, cap, NULL);
	if (!cap->rb) {
		err = -errno;
		log_err("failed to open the ring buffer: %s", strerror(-err));
		goto err_destroy_skel;
	}
	cap->reaper = linkreap_new();
	if (!cap->reaper)
		log_warn("no thread to destroy uprobe links (%s): each exit destroys its own, "
			 "holding the loop",
			 strerror(errno));
	return cap;

err_destroy_skel:
	for (size_t i = 0; i < EXIT_LINKS; i++)
		bpf_link__destroy(cap->exit_links[i]);
	if (cap->traced_bits)
		munmap(cap->traced_bits, cap->traced_bits_len);
	wsaudit__destroy(cap->skel);
err_free:
	free(cap);
	errno = -err;
	return NULL;
}

/* Entry i of the uprobes leaves the table; its links go to the reaper. */
static void uprobe_release(struct capture *cap, unsigned int i)
{
	linkreap_put(cap->reaper, cap->uprobes[i].link);
	linkreap_put(cap->reaper, cap->uprobes[i].ret_link);
	free(cap->uprobes[i].path);
	cap->uprobes[i] = cap->uprobes[--cap->nuprobes];
}

void capture_close(struct capture *cap)
{
	if (!cap)
		return;
	while (cap->nuprobes)
		uprobe_release(cap, cap->nuprobes - 1);
	linkreap_free(cap->reaper);
	free(cap->uprobes);
	for (size_t i = 0; i < EXIT_LINKS; i++)
		bpf_link__destroy(cap->exit_links[i]);
	ring_buffer__free(cap->rb);
	if (cap->traced_bits)
		munmap(cap->traced_bits, cap->traced_bits_len);
	wsaudit__destroy(cap->skel);
	free(cap);
}

/* The BPF side sets and clears bits too (fork, exit): only atomic updates here. */
int capture_trace_pid(struct capture *cap, pid_t pid)
{
	if (pid <= 0 || (uint32_t)pid / 64 >= cap->traced_words)
		return -ERANGE;
	__atomic_fetch_or(&cap->traced_bits[pid / 64], 1ULL << (pid % 64), __ATOMIC_SEQ_CST);
	return 0;
}

bool capture_pending(const struct capture *cap)
{
	return cap->pending;
}

bool capture_is_traced(const struct capture *cap, pid_t pid)
{
	if (pid <= 0 || (uint32_t)pid / 64 >= cap->traced_words)
		return false;
	return __atomic_load_n(&cap->traced_bits[pid / 64], __ATOMIC_SEQ_CST) >> (pid % 64) & 1;
}

int capture_fd(const struct capture *cap)
{
	return ring_buffer__epoll_fd(cap->rb);
}

int capture_untrace_pid(struct capture *cap, pid_t pid)
{
	if (pid <= 0 || (uint32_t)pid / 64 >= cap->traced_words)
		return -ERANGE;
	__atomic_fetch_and(&cap->traced_bits[pid / 64], ~(1ULL << (pid % 64)), __ATOMIC_SEQ_CST);
	return capture_set_pyoffsets(cap, pid, NULL);
}

/* The context marks of a process that exited. */
static void forget_ctx_codes(struct capture *cap, pid_t tgid)
{
	int fd = bpf_map__fd(cap->skel->maps.ctx_codes);
	struct ctx_code_key key, next, *prev = NULL;
	__u32 pid = tgid;

	bpf_map_delete_elem(bpf_map__fd(cap->skel->maps.ctx_procs), &pid);
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		if (key.tgid == (__u32)tgid) {
			bpf_map_delete_elem(fd, &key);
			continue;
		}
		prev = &key;
	}
}

void capture_detach_zlib(struct capture *cap, pid_t tgid)
{
	for (unsigned int i = 0; i < cap->nuprobes; i++) {
		if (cap->uprobes[i].pid == tgid && cap->uprobes[i].kind == UPROBE_ZLIB)
			uprobe_release(cap, i--);
	}
}

static void forget_marks(struct capture *cap, pid_t tgid)
{
	__u32 pid = tgid;

	forget_ctx_codes(cap, tgid);
	bpf_map_delete_elem(bpf_map__fd(cap->skel->maps.stop_sets), &pid);
	bpf_map_delete_elem(bpf_map__fd(cap->skel->maps.copy_skips), &pid);
}

void capture_forget_image(struct capture *cap, pid_t tgid)
{
	forget_marks(cap, tgid);
	for (unsigned int i = 0; i < cap->nuprobes; i++) {
		if (cap->uprobes[i].pid == tgid)
			uprobe_release(cap, i--);
	}
}

void capture_exec_image(struct capture *cap, pid_t tgid, bool by_leader)
{
	/*
	 * A uprobe of a process filters by the address space of the thread it was opened on, the
	 * leader: after an exec by the leader it serves the new image for every file that image
	 * maps (the same file, the same offsets), and the attach that follows finds it in place.
	 * A python exec'ing python keeps its dozen links instead of unregistering each and
	 * registering it again.  An exec by another thread ends the leader the links name.  The
	 * deflate probes are the adoption's (session_add_pid), never the new image's.
	 */
	forget_marks(cap, tgid);
	for (unsigned int i = 0; i < cap->nuprobes; i++) {
		if (cap->uprobes[i].pid == tgid &&
		    (!by_leader || cap->uprobes[i].kind == UPROBE_ZLIB))
			uprobe_release(cap, i--);
	}
}

static int add_tgid(pid_t *out, int n, int max, pid_t tgid)
{
	for (int j = 0; j < n; j++) {
		if (out[j] == tgid)
			return n;
	}
	if (n < max)
		out[n++] = tgid;
	return n;
}

int capture_held_tgids(struct capture *cap, pid_t *out, int max)
{
	int fd = bpf_map__fd(cap->skel->maps.ctx_codes);
	struct ctx_code_key key, next, *prev = NULL;
	int n = 0;

	/* Marked code objects (the marks of a process are its flag in ctx_procs too). */
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		n = add_tgid(out, n, max, (pid_t)key.tgid);
		prev = &key;
	}
	fd = bpf_map__fd(cap->skel->maps.stop_sets);
	for (__u32 *p = NULL, t, pt; !bpf_map_get_next_key(fd, p, &t); pt = t, p = &pt)
		n = add_tgid(out, n, max, (pid_t)t);
	fd = bpf_map__fd(cap->skel->maps.copy_skips);
	for (__u32 *p = NULL, t, pt; !bpf_map_get_next_key(fd, p, &t); pt = t, p = &pt)
		n = add_tgid(out, n, max, (pid_t)t);
	for (unsigned int i = 0; i < cap->nuprobes; i++)
		n = add_tgid(out, n, max, cap->uprobes[i].pid);
	return n;
}

/* The TLS connections of a process that exited (bpf/tls.bpf.c: by SSL object). */
static void forget_tls_conns(struct capture *cap, pid_t tgid)
{
	int fd = bpf_map__fd(cap->skel->maps.tls_conns);
	struct tls_key_user {
		__u64 ssl;
		__u32 tgid;
		__u32 pad;
	} key, next, *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		if (key.tgid == (__u32)tgid) {
			bpf_map_delete_elem(fd, &key);
			continue;
		}
		prev = &key;
	}
}

int capture_forget_tgid(struct capture *cap, pid_t tgid)
{
	int fd = bpf_map__fd(cap->skel->maps.conn_map);
	__u64 key, next, *prev = NULL;
	struct conn_info info;
	int removed = 0;

	capture_forget_image(cap, tgid);
	forget_tls_conns(cap, tgid);
	/* Deleting while iterating restarts the walk at the deleted key's successor. */
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		if (!bpf_map_lookup_elem(fd, &key, &info) && info.tgid == (__u32)tgid) {
			bpf_map_delete_elem(fd, &key);
			removed++;
			continue;
		}
		prev = &key;
	}
	return removed;
}

int capture_set_pyoffsets(struct capture *cap, pid_t pid, const struct py_offsets *off)
{
	__u32 key = pid;
	int fd = bpf_map__fd(cap->skel->maps.py_procs);

	if (!off) {
		capture_set_pynames(cap, pid, NULL);
		return bpf_map_delete_elem(fd, &key) && errno != ENOENT ? -errno : 0;
	}
	if (bpf_map_update_elem(fd, &key, off, BPF_ANY))
		return -errno;
	return 0;
}

int capture_set_pynames(struct capture *cap, pid_t pid, const struct py_names_layout *nl)
{
	__u32 key = pid;
	int fd = bpf_map__fd(cap->skel->maps.py_names);

	if (!nl)
		return bpf_map_delete_elem(fd, &key) && errno != ENOENT ? -errno : 0;
	if (bpf_map_update_elem(fd, &key, nl, BPF_ANY))
		return -errno;
	return 0;
}

/* 1 when (pid, dev, ino, offset, kind) is attached already, 0 with room for it, or -errno. */
static int uprobe_slot(struct capture *cap, pid_t pid, dev_t dev, ino_t ino,
		       unsigned long long offset, enum uprobe_kind kind)
{
	struct uprobe_rec *u;
	unsigned int ncap;

	for (unsigned int i = 0; i < cap->nuprobes; i++) {
		u = &cap->uprobes[i];
		if (u->pid == pid && u->dev == dev && u->ino == ino && u->offset == offset &&
		    u->kind == kind)
			return 1;
	}
	if (cap->nuprobes == cap->uprobes_cap) {
		if (cap->uprobes_cap == UPROBES_MAX) {
			cap->failed++;
			return -ENOSPC;
		}
		ncap = cap->uprobes_cap ? 2 * cap->uprobes_cap : 16;
		u = realloc(cap->uprobes, ncap * sizeof(*u));
		if (!u)
			return -ENOMEM;
		cap->uprobes = u;
		cap->uprobes_cap = ncap;
	}
	return 0;
}

/*
 * The probes of one (pid, file, slot, kind): an entry program, a return program or both, on
 * @func (libbpf finds it in the file's symbols) or, without one, at the file offset @slot.
 * 0 when attached or attached already, -errno otherwise (counted in cap->failed).
 */
static int uprobe_attach(struct capture *cap, pid_t pid, const char *path, dev_t dev, ino_t ino,
			 unsigned long long slot, enum uprobe_kind kind, const char *func,
			 struct bpf_program *entry, struct bpf_program *ret)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = func);
	size_t at = func ? 0 : (size_t)slot;
	struct bpf_link *e = NULL, *r = NULL;
	char *copy;
	int err = uprobe_slot(cap, pid, dev, ino, slot, kind);

	if (err)
		return err < 0 ? err : 0;
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	/*
	 * For this process only: the kernel then writes the breakpoint into its memory alone,
	 * and the other processes mapping the file (services that are not audited) never trap.
	 */
	if (entry) {
		e = bpf_program__attach_uprobe_opts(entry, pid, path, at, &opts);
		if (!e)
			goto err;
	}
	if (ret) {
		opts.retprobe = true;
		r = bpf_program__attach_uprobe_opts(ret, pid, path, at, &opts);
		if (!r)
			goto err;
	}
	cap->uprobes[cap->nuprobes++] = (struct uprobe_rec){
		.pid = pid,
		.dev = dev,
		.ino = ino,
		.offset = slot,
		.path = copy,
		.link = e ? e : r,
		.ret_link = e ? r : NULL,
		.kind = kind,
	};
	return 0;

err:
	err = -errno;
	bpf_link__destroy(e);
	free(copy);
	cap->failed++;
	return err;
}

int capture_attach_zlib(struct capture *cap, pid_t pid, const char *path, dev_t dev, ino_t ino)
{
	return uprobe_attach(cap, pid, path, dev, ino, 0, UPROBE_ZLIB, "deflate",
			     cap->skel->progs.zlib_deflate_entry,
			     cap->skel->progs.zlib_deflate_return);
}

int capture_attach_transport_write(struct capture *cap, pid_t pid, const char *path, dev_t dev,
				   ino_t ino, unsigned long long offset)
{
	return uprobe_attach(cap, pid, path, dev, ino, offset, UPROBE_TRANSPORT, NULL,
			     cap->skel->progs.transport_write_uprobe, NULL);
}

int capture_attach_context_copy(struct capture *cap, pid_t pid, const char *path, dev_t dev,
				ino_t ino)
{
	return uprobe_attach(cap, pid, path, dev, ino, 0, UPROBE_CTX_COPY, "PyContext_CopyCurrent",
			     NULL, cap->skel->progs.context_copy_uretprobe);
}

int capture_attach_tls(struct capture *cap, pid_t pid, const char *path, dev_t dev, ino_t ino)
{
	const struct {
		const char *func;
		struct bpf_program *entry, *ret;
	} funcs[] = {
		{ "SSL_write", cap->skel->progs.tls_write_entry,
		  cap->skel->progs.tls_write_return },
		{ "SSL_write_ex", cap->skel->progs.tls_write_ex_entry,
		  cap->skel->progs.tls_write_ex_return },
		{ "SSL_read", cap->skel->progs.tls_read_entry, cap->skel->progs.tls_read_return },
		{ "SSL_read_ex", cap->skel->progs.tls_read_ex_entry,
		  cap->skel->progs.tls_read_ex_return },
		/* Last: a connection is never ended by a probe set before its writes' are. */
		{ "SSL_free", cap->skel->progs.tls_free_entry, NULL },
	};
	int err, first = 0;

	for (unsigned int i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++) {
		/* The slot is the function's index: one file, several functions. */
		err = uprobe_attach(cap, pid, path, dev, ino, i, UPROBE_TLS, funcs[i].func,
				    funcs[i].entry, funcs[i].ret);
		if (err && !first)
			first = err;
	}
	return first;
}

bool capture_tls_probed(const struct capture *cap, pid_t pid)
{
	for (unsigned int i = 0; i < cap->nuprobes; i++) {
		if (cap->uprobes[i].pid == pid && cap->uprobes[i].kind == UPROBE_TLS)
			return true;
	}
	return false;
}

int capture_fork_transport_writes(struct capture *cap, pid_t parent, pid_t child)
{
	unsigned int n = cap->nuprobes;
	struct uprobe_rec u;
	int err, attached = 0;

	/* Entries added below are the child's: only the first n can be the parent's. */
	for (unsigned int i = 0; i < n; i++) {
		if (cap->uprobes[i].pid != parent || cap->uprobes[i].kind == UPROBE_ZLIB)
			continue;
		u = cap->uprobes[i];
		if (u.kind == UPROBE_CTX_COPY)
			err = capture_attach_context_copy(cap, child, u.path, u.dev, u.ino);
		else if (u.kind == UPROBE_TLS)
			err = capture_attach_tls(cap, child, u.path, u.dev, u.ino);
		else
			err = capture_attach_transport_write(cap, child, u.path, u.dev, u.ino,
							     u.offset);
		if (err)
			return err;
		attached++;
	}
	return attached;
}

int capture_mark_ctx_code(struct capture *cap, pid_t pid, unsigned long long code,
			  const struct ctx_code *cc)
{
	struct ctx_code_key key = { .code = code, .tgid = pid };
	__u32 tgid = pid, one = 1;

	if (bpf_map_update_elem(bpf_map__fd(cap->skel->maps.ctx_codes), &key, cc, BPF_ANY))
		return -errno;
	if (bpf_map_update_elem(bpf_map__fd(cap->skel->maps.ctx_procs), &tgid, &one, BPF_ANY))
		return -errno;
	return 0;
}

/* Marks or unmarks code in pid's stop_set of map fd (stop_sets, copy_skips). */
static int mark_code(int fd, pid_t pid, unsigned long long code, bool on)
{
	struct stop_set set;
	__u32 tgid = pid;
	int slot = -1;

	if (bpf_map_lookup_elem(fd, &tgid, &set)) {
		for (int i = 0; i < STOP_CODES_MAX; i++)
			set.code[i] = STOP_CODE_NONE;
	}
	for (int i = STOP_CODES_MAX - 1; i >= 0; i--) {
		if (set.code[i] == code) {
			if (on)
				return 0;
			set.code[i] = STOP_CODE_NONE;
			slot = i;
		} else if (on && set.code[i] == STOP_CODE_NONE) {
			slot = i;
		}
	}
	if (slot < 0)
		return on ? -ENOSPC : 0;
	if (on)
		set.code[slot] = code;
	if (bpf_map_update_elem(fd, &tgid, &set, BPF_ANY))
		return -errno;
	return 0;
}

int capture_mark_stop_code(struct capture *cap, pid_t pid, unsigned long long code, bool on)
{
	return mark_code(bpf_map__fd(cap->skel->maps.stop_sets), pid, code, on);
}

int capture_mark_copy_skip(struct capture *cap, pid_t pid, unsigned long long code)
{
	return mark_code(bpf_map__fd(cap->skel->maps.copy_skips), pid, code, true);
}

void capture_clear_stop_codes(struct capture *cap)
{
	int fd = bpf_map__fd(cap->skel->maps.stop_sets);
	__u32 tgid;

	while (!bpf_map_get_next_key(fd, NULL, &tgid)) {
		if (bpf_map_delete_elem(fd, &tgid))
			break;
	}
}

int capture_set_verdict(struct capture *cap, const struct conn_id *id, enum conn_state state)
{
	struct conn_verdict v = { .gen = id->gen, .state = state };
	int fd = bpf_map__fd(cap->skel->maps.verdict_map);

	if (state == CONN_UNKNOWN)
		return bpf_map_delete_elem(fd, &id->ino) && errno != ENOENT ? -errno : 0;
	if (bpf_map_update_elem(bpf_map__fd(cap->skel->maps.verdict_map), &id->ino, &v, BPF_ANY))
		return -errno;
	return 0;
}

int capture_poll(struct capture *cap, int timeout_ms)
{
	int n, m;

	cap->batch = 0;
	cap->pending = false;
	/*
	 * Wake-ups are batched in the kernel, so a timed-out wait may still leave records
	 * queued: always drain after waiting.
	 */
	n = ring_buffer__poll(cap->rb, timeout_ms);
	if (n == -EAGAIN)
		return (int)cap->batch;
	if (n < 0 && n != -EINTR)
		return n;
	m = ring_buffer__consume(cap->rb);
	if (m == -EAGAIN)
		return (int)cap->batch;
	if (m < 0)
		return m;
	return (n > 0 ? n : 0) + m;
}

static int sum_percpu(int fd, __u32 nkeys, uint64_t *out, int ncpus)
{
	__u64 *vals = calloc(ncpus, sizeof(*vals));

	if (!vals)
		return -ENOMEM;
	for (__u32 k = 0; k < nkeys; k++) {
		out[k] = 0;
		if (bpf_map_lookup_elem(fd, &k, vals))
			continue;
		for (int c = 0; c < ncpus; c++)
			out[k] += vals[c];
	}
	free(vals);
	return 0;
}

/*
 * The runs of our programs the kernel skipped: a tracepoint or uprobe program does not run
 * while another BPF program runs on the same CPU, and the kernel only counts it, in each
 * program's recursion_misses.  Tail-called programs are entered from ours, never skipped.
 * Each new skip is said once, naming the program: which one decides what was lost.
 */
static uint64_t kernel_skipped(struct capture *cap)
{
	struct bpf_program *prog;
	struct bpf_prog_info info;
	unsigned int i = 0;
	uint64_t n = 0;
	__u32 len;

	bpf_object__for_each_program(prog, cap->skel->obj) {
		if (!bpf_program__autoload(prog) || bpf_program__fd(prog) < 0)
			continue;
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
			continue;
		n += info.recursion_misses;
		if (i < SKIPPED_PROGS_MAX && info.recursion_misses > cap->skipped_said[i]) {
			log_warn("the kernel skipped %llu run(s) of %s: another BPF program was "
				 "running on its CPU (drop kernel_skipped)",
				 (unsigned long long)(info.recursion_misses - cap->skipped_said[i]),
				 bpf_program__name(prog));
			cap->skipped_said[i] = info.recursion_misses;
		}
		i++;
	}
	return n;
}

int capture_read_counters(struct capture *cap, struct capture_counters *out)
{
	int err;

	err = sum_percpu(bpf_map__fd(cap->skel->maps.drop_cnt), DROP_MAX, out->drops, cap->ncpus);
	if (err)
		return err;
	out->drops[DROP_KERNEL_SKIPPED] = kernel_skipped(cap);
	return sum_percpu(bpf_map__fd(cap->skel->maps.stat_cnt), STAT_MAX, out->stats, cap->ncpus);
}

/*
 * Counted from the links held now, not kept as a running total: the uprobes of a process
 * that exited are destroyed with its image (capture_forget_image), and only links that exist
 * are attached programs.
 */
void capture_probe_counts(const struct capture *cap, unsigned int *attached, unsigned int *failed)
{
	struct bpf_link *const *links = (struct bpf_link *const *)&cap->skel->links;
	unsigned int n = 0;

	for (size_t i = 0; i < sizeof(cap->skel->links) / sizeof(*links); i++)
		n += links[i] != NULL;
	for (size_t i = 0; i < EXIT_LINKS; i++)
		n += cap->exit_links[i] != NULL;
	for (unsigned int i = 0; i < cap->nuprobes; i++)
		n += (cap->uprobes[i].link != NULL) + (cap->uprobes[i].ret_link != NULL);
	*attached = n;
	*failed = cap->failed;
}

void capture_startup(const struct capture *cap, struct capture_startup *out)
{
	*out = cap->startup;
}

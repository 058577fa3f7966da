// SPDX-License-Identifier: GPL-2.0
/*
 * bench_send: what wsaudit's kernel hooks add to a send(), above all by a process that wsaudit
 * does not trace, next to the floor: empty programs on the same tracepoints.
 *
 * One loopback TCP connection; this thread sends 64 B and 4 KiB payloads, a reader thread
 * drains the other end.  Configurations are measured side by side in one run, interleaved
 * (the order rotates each repetition so that none always runs first after a switch):
 *
 *   a  no BPF program attached
 *   b  the floor: empty programs on every hook point of wsaudit (bench/floor.bpf.c)
 *   c  the floor plus the traced-tgid hash lookup
 *   d  `wsaudit trace -p IDLE -o json`, started before and stopped after the repetition
 *   e  the floor plus the same test on a bitmap in an array map: a cheaper filter
 *   f  the floor plus what wsaudit's programs do for an untraced process, as written
 *   g  `wsaudit trace -p SELF -o json`: this process traced, its socket not a WebSocket
 *   h  `wsaudit trace -p SELF --capture-only -o json`: each send() a WebSocket frame that
 *      wsaudit captures, without the stack walk
 *
 * Each figure is ns per call over one timed batch of calls; a configuration's cost is paired
 * with (a) of the same repetition.  Markdown goes to stdout, progress to stderr.  Root only.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "wsaudit/limits.h"

#include "floor.skel.h"

#define REPS_MAX 51
#define LINKS_MAX 64
#define READ_BUF (256 * 1024)
#define TRACER_READY "wsaudit: tracing"
#define TRACER_READY_MS 60000
#define TRACER_STOP_MS 15000
#define TRACER_SETTLE_MS 5000
#define TAIL_MAX 2048
/* Spread of the no-BPF figures (max / min) above which the report calls the run noisy. */
#define NOISY_SPREAD 1.25
#define DROP_REASONS_MAX 16
/* Room to allow per ring buffer record besides the payload, and the pause after (h)'s batches. */
#define WS_RECORD_OVERHEAD 128
#define WS_DRAIN_MS 200

/*
 * Two clocks per batch.  The sending thread's CPU time leaves out the time it was preempted
 * by anything else (its reader included), so it is the steadier figure and the one the goal
 * is judged on; it still holds the loopback receive path, which runs in the sender's softirq.
 * Wall time holds everything, the reader's recv() and its hooks included.
 */
enum metric {
	METRIC_CPU,
	METRIC_WALL,
	METRIC_MAX,
};

enum cfg_id {
	CFG_NONE,
	CFG_FLOOR,
	CFG_LOOKUP,
	CFG_WSAUDIT,
	CFG_BITMAP,
	CFG_UNTRACED,
	CFG_SELF,
	CFG_WS,
	CFG_MAX,
};

static const char *const cfg_names[CFG_MAX] = {
	[CFG_NONE] = "(a) no BPF",
	[CFG_FLOOR] = "(b) floor: empty programs on wsaudit's hook points",
	[CFG_LOOKUP] = "(c) floor + traced-tgid hash lookup",
	[CFG_WSAUDIT] = "(d) `wsaudit trace -p IDLE -o json`",
	[CFG_BITMAP] = "(e) floor + traced-tgid bitmap test (array map)",
	[CFG_UNTRACED] = "(f) floor + wsaudit's untraced path (exit: in-flight, then tgid lookup)",
	[CFG_SELF] = "(g) `wsaudit trace -p SELF -o json`: traced, the socket not a WebSocket",
	[CFG_WS] = "(h) `wsaudit trace -p SELF --capture-only -o json`: WebSocket frames captured",
};

/* The programs of bench/floor.bpf.c that each configuration attaches, by name prefix. */
static const char *const cfg_progs[CFG_MAX] = {
	[CFG_FLOOR] = "empty_",
	[CFG_LOOKUP] = "lookup_",
	[CFG_BITMAP] = "bitmap_",
	[CFG_UNTRACED] = "untraced_",
};

static const size_t sizes[] = { 64, 4096 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

struct bench_opts {
	unsigned int reps;
	unsigned long calls; /* per timed batch; 0: calibrate to batch_ms */
	unsigned int batch_ms;
	unsigned int max_s; /* more repetitions to replace disturbed ones, up to this time */
	unsigned int cfg_mask;
	const char *wsaudit;
	pid_t target;
	int cpu_send;
	int cpu_read;
};

struct floor {
	struct floor_bpf *skel;
	struct bpf_link *links[LINKS_MAX];
	__u32 link_ids[LINKS_MAX];
	unsigned int nlinks;
};

struct tracer {
	pid_t pid;
	int err_fd;
	char tail[TAIL_MAX]; /* the last stderr bytes, for error messages */
	size_t tail_len;
	double cpu_s; /* user + system time over every run */
	double up_s; /* wall time from ready to stop, over every run */
	unsigned int starts;
	struct timespec ready_at;
	long ready_ticks; /* its CPU ticks when measuring began */
	long steady_ticks; /* CPU ticks while measured, over every run */
	unsigned int unsettled; /* runs measured before its CPU use went quiet */
	int out_fd; /* its stdout, a memfd: the final stats record is read from it */
	/* Sums of its final stats records over every run. */
	__u64 records, drops, ignored, websocket;
	struct {
		char name[32];
		__u64 n;
	} drop_reasons[DROP_REASONS_MAX]; /* the nonzero ones */
	unsigned int ndrop_reasons;
	unsigned int stats_missing; /* runs without a final stats record */
};

/* A loopback TCP connection and the thread that drains it. */
struct conn {
	int tx_fd, rx_fd;
	pthread_t reader;
	int cpu; /* of the reader */
	unsigned long recvs; /* recv() calls of the reader */
};

struct bench {
	struct bench_opts opts;
	struct conn conn; /* (a) to (g) */
	struct conn ws; /* (h): a WebSocket connection, opened while wsaudit traces */
	char *payload;
	char *frames[NSIZES]; /* (h): one binary frame of each size, header included */
	unsigned long calls[NSIZES];
	double ns[METRIC_MAX][CFG_MAX][NSIZES][REPS_MAX];
	bool disturbed[REPS_MAX]; /* foreign tracepoint programs were seen around a batch */
	unsigned int clean[REPS_MAX], nclean; /* the repetitions that the report summarizes */
	unsigned int nrun; /* repetitions run */
	struct floor floor;
	struct tracer tracer; /* (d), tracing an idle process */
	struct tracer self; /* (g), tracing this process */
	struct tracer wscap; /* (h), tracing this process, capture only */
	pid_t idle_pid; /* the idle process we spawned for wsaudit to trace, or 0 */
	unsigned long sends[CFG_MAX][NSIZES], drains[CFG_MAX][NSIZES]; /* over all batches */
};

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static double ts_diff_s(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static int cpu_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return -errno;
	return 0;
}

/* Children must not inherit the sender's pinning: they would compete with it for its CPU. */
static void cpu_unpin(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	CPU_ZERO(&set);
	for (long i = 0; i < n && i < CPU_SETSIZE; i++)
		CPU_SET(i, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* --- the connection -------------------------------------------------------------------------- */

static void *reader_run(void *arg)
{
	struct conn *c = arg;
	char *buf = malloc(READ_BUF);
	ssize_t n;

	if (!buf)
		return NULL;
	if (cpu_pin(c->cpu))
		fprintf(stderr, "bench_send: failed to pin the reader to CPU %d\n", c->cpu);
	do {
		n = recv(c->rx_fd, buf, READ_BUF, 0);
		__atomic_fetch_add(&c->recvs, 1, __ATOMIC_RELAXED);
	} while (n > 0 || (n < 0 && errno == EINTR));
	free(buf);
	return NULL;
}

/*
 * The opening of a WebSocket connection: the client's upgrade request, read by the server
 * (wsaudit takes the request from the server's reads), then the server's 101 response.
 */
static const char ws_request[] = "GET /bench HTTP/1.1\r\n"
				 "Host: 127.0.0.1\r\n"
				 "Upgrade: websocket\r\n"
				 "Connection: Upgrade\r\n"
				 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				 "Sec-WebSocket-Version: 13\r\n\r\n";
static const char ws_response[] = "HTTP/1.1 101 Switching Protocols\r\n"
				  "Upgrade: websocket\r\n"
				  "Connection: Upgrade\r\n"
				  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

static int ws_handshake(struct conn *c)
{
	char buf[sizeof(ws_request)];
	size_t got = 0;
	ssize_t n;

	if (send(c->rx_fd, ws_request, strlen(ws_request), MSG_NOSIGNAL) !=
	    (ssize_t)strlen(ws_request))
		return -EIO;
	while (got < strlen(ws_request)) {
		n = recv(c->tx_fd, buf + got, strlen(ws_request) - got, 0);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += n;
	}
	if (send(c->tx_fd, ws_response, strlen(ws_response), MSG_NOSIGNAL) !=
	    (ssize_t)strlen(ws_response))
		return -EIO;
	return 0;
}

/*
 * TCP_NODELAY as the WebSocket servers set it (asyncio does for every TCP transport): each
 * send() goes down the stack instead of waiting in the socket for Nagle.  tx_fd is the
 * server's end, which sends; with ws, the WebSocket handshake goes first.
 */
static int conn_open(struct conn *c, int cpu, bool ws)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int one = 1, lfd, err = 0;

	c->cpu = cpu;
	c->tx_fd = c->rx_fd = -1;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len)) {
		err = -errno;
		goto out_close_listener;
	}
	c->rx_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->rx_fd < 0 || connect(c->rx_fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		goto err_close;
	}
	c->tx_fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c->tx_fd < 0 || setsockopt(c->tx_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))) {
		err = -errno;
		goto err_close;
	}
	if (ws) {
		err = ws_handshake(c);
		if (err)
			goto err_close;
	}
	err = -pthread_create(&c->reader, NULL, reader_run, c);
	if (err)
		goto err_close;
	goto out_close_listener;
err_close:
	if (c->tx_fd >= 0)
		close(c->tx_fd);
	if (c->rx_fd >= 0)
		close(c->rx_fd);
	c->tx_fd = c->rx_fd = -1;
out_close_listener:
	close(lfd);
	return err;
}

static void conn_close(struct conn *c)
{
	if (c->rx_fd < 0)
		return;
	shutdown(c->tx_fd, SHUT_WR);
	pthread_join(c->reader, NULL);
	close(c->rx_fd);
	close(c->tx_fd);
	c->tx_fd = c->rx_fd = -1;
}

/* ns per send() over one batch on each clock in ns[METRIC_MAX]; 0 or -errno. */
static int send_batch(struct conn *c, const char *buf, size_t size, unsigned long calls, double *ns)
{
	struct timespec w0, w1, c0, c1;
	ssize_t n;

	clock_gettime(CLOCK_MONOTONIC, &w0);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	for (unsigned long i = 0; i < calls; i++) {
		n = send(c->tx_fd, buf, size, MSG_NOSIGNAL);
		if (n != (ssize_t)size)
			return n < 0 ? -errno : -EIO;
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	clock_gettime(CLOCK_MONOTONIC, &w1);
	ns[METRIC_CPU] = ts_diff_s(&c0, &c1) * 1e9 / (double)calls;
	ns[METRIC_WALL] = ts_diff_s(&w0, &w1) * 1e9 / (double)calls;
	return 0;
}

/* Warm the path up and size the batches so that each takes about batch_ms without BPF. */
static int send_calibrate(struct bench *b)
{
	double ns[METRIC_MAX];
	int err;

	for (size_t s = 0; s < NSIZES; s++) {
		err = send_batch(&b->conn, b->payload, sizes[s], 20000, ns);
		if (err)
			return err;
		err = send_batch(&b->conn, b->payload, sizes[s], 20000, ns);
		if (err)
			return err;
		if (b->opts.calls)
			b->calls[s] = b->opts.calls;
		else
			b->calls[s] = (unsigned long)(b->opts.batch_ms * 1e6 / ns[METRIC_WALL]);
		if (b->calls[s] < 10000)
			b->calls[s] = 10000;
	}
	return 0;
}

/* --- the floor ------------------------------------------------------------------------------- */

static bool prog_in_variant(const struct bpf_program *prog, const char *prefix)
{
	return strncmp(bpf_program__name(prog), prefix, strlen(prefix)) == 0;
}

/*
 * Load the variants that the configurations need; the others are not loaded (autoload off).
 * One entry goes into the tgid map so that the lookup misses in a populated table, as in
 * wsaudit tracing one process.
 */
static int floor_open(struct floor *f, unsigned int cfg_mask)
{
	struct bpf_program *prog;
	__u32 key = 1, val = 1;
	__u64 bits;
	int err;

	f->skel = floor_bpf__open();
	if (!f->skel)
		return -errno;
	bpf_object__for_each_program(prog, f->skel->obj) {
		bool want = false;

		for (int c = 0; c < CFG_MAX; c++)
			if (cfg_progs[c] && (cfg_mask & (1u << c)))
				want |= prog_in_variant(prog, cfg_progs[c]);
		bpf_program__set_autoload(prog, want);
	}
	err = floor_bpf__load(f->skel);
	if (err)
		goto err_destroy;
	err = bpf_map__update_elem(f->skel->maps.traced_map, &key, sizeof(key), &val, sizeof(val),
				   BPF_ANY);
	if (err)
		goto err_destroy;
	bits = 1ULL << key;
	key = 0;
	err = bpf_map__update_elem(f->skel->maps.traced_bits, &key, sizeof(key), &bits,
				   sizeof(bits), BPF_ANY);
	if (err)
		goto err_destroy;
	return 0;
err_destroy:
	floor_bpf__destroy(f->skel);
	f->skel = NULL;
	return err;
}

static __u32 link_id(int fd)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

static bool prog_is_tracing(__u32 prog_id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd, err;

	fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0)
		return false;
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	return !err &&
	       (info.type == BPF_PROG_TYPE_TRACEPOINT ||
		info.type == BPF_PROG_TYPE_RAW_TRACEPOINT || info.type == BPF_PROG_TYPE_TRACING);
}

/*
 * Tracepoint programs attached by anyone but us, such as a wsaudit run by someone else on the
 * machine: while one is on the syscall tracepoints, "no BPF" is not what it says.
 */
static unsigned int floor_foreign_links(const struct floor *f)
{
	struct bpf_link_info info;
	unsigned int n = 0;
	__u32 id = 0, len;
	bool ours;
	int fd;

	while (!bpf_link_get_next_id(id, &id)) {
		ours = false;
		for (unsigned int i = 0; i < f->nlinks; i++)
			ours |= f->link_ids[i] == id;
		if (ours)
			continue;
		fd = bpf_link_get_fd_by_id(id);
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && prog_is_tracing(info.prog_id))
			n++;
		close(fd);
	}
	return n;
}

static void *link_destroy_run(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

/*
 * Each detach waits for an RCU grace period (about 90 ms here): one thread per link lets them
 * share it, so that switching configurations takes a fraction of a second, not two.
 */
static void floor_detach(struct floor *f)
{
	pthread_t tids[LINKS_MAX];
	bool started[LINKS_MAX];

	for (unsigned int i = 0; i < f->nlinks; i++)
		started[i] = !pthread_create(&tids[i], NULL, link_destroy_run, f->links[i]);
	for (unsigned int i = 0; i < f->nlinks; i++) {
		if (started[i])
			pthread_join(tids[i], NULL);
		else
			bpf_link__destroy(f->links[i]);
	}
	f->nlinks = 0;
}

static int floor_attach(struct floor *f, const char *prefix)
{
	struct bpf_program *prog;
	struct bpf_link *link;
	int err;

	bpf_object__for_each_program(prog, f->skel->obj) {
		if (!prog_in_variant(prog, prefix))
			continue;
		if (f->nlinks == LINKS_MAX) {
			err = -E2BIG;
			goto err_detach;
		}
		link = bpf_program__attach(prog);
		if (!link) {
			err = -errno;
			fprintf(stderr, "bench_send: failed to attach %s: %s\n",
				bpf_program__name(prog), strerror(-err));
			goto err_detach;
		}
		f->link_ids[f->nlinks] = link_id(bpf_link__fd(link));
		f->links[f->nlinks++] = link;
	}
	return 0;
err_detach:
	floor_detach(f);
	return err;
}

/* libbpf finds syscall tracepoint ids in tracefs, which is not mounted at boot everywhere. */
static int tracefs_ensure(void)
{
	struct stat st;

	if (!stat("/sys/kernel/tracing/events", &st) ||
	    !stat("/sys/kernel/debug/tracing/events", &st))
		return 0;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
		return -errno;
	return 0;
}

/* --- wsaudit as a child ---------------------------------------------------------------------- */

static void tail_add(struct tracer *t, const char *buf, size_t n)
{
	if (n >= TAIL_MAX - 1) {
		buf += n - (TAIL_MAX - 1);
		n = TAIL_MAX - 1;
	}
	if (t->tail_len + n >= TAIL_MAX) {
		size_t drop = t->tail_len + n - (TAIL_MAX - 1);

		memmove(t->tail, t->tail + drop, t->tail_len - drop);
		t->tail_len -= drop;
	}
	memcpy(t->tail + t->tail_len, buf, n);
	t->tail_len += n;
	t->tail[t->tail_len] = '\0';
}

/* Read what stderr has within timeout_ms; 1 on EOF, 0 on timeout, -errno. */
static int tracer_read(struct tracer *t, int timeout_ms)
{
	struct pollfd pfd = { .fd = t->err_fd, .events = POLLIN };
	char buf[512];
	ssize_t n;
	int r;

	r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return 0;
	n = read(t->err_fd, buf, sizeof(buf));
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return 1;
	tail_add(t, buf, (size_t)n);
	return 0;
}

static bool tracer_ready(const struct tracer *t)
{
	const char *p = t->tail;

	/* Only at the start of a line, and only once the line is complete. */
	while ((p = strstr(p, TRACER_READY))) {
		if ((p == t->tail || p[-1] == '\n') && strchr(p, '\n'))
			return true;
		p++;
	}
	return false;
}

static long proc_cpu_ticks(pid_t pid)
{
	unsigned long utime, stime;
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* Fields after the command name, which may hold spaces; utime and stime are 14 and 15. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
			 &stime) != 2)
		return -EIO;
	return (long)(utime + stime);
}

/*
 * wsaudit reads the target's interpreter after it says it is tracing; measure its steady
 * state, not its start-up: wait until it has used no CPU tick for 200 ms.
 */
static void tracer_settle(struct tracer *t)
{
	long prev = -1, cur;

	for (int waited = 0; waited < TRACER_SETTLE_MS; waited += 200) {
		tracer_read(t, 200);
		cur = proc_cpu_ticks(t->pid);
		if (cur < 0)
			return;
		if (cur == prev)
			return;
		prev = cur;
	}
	t->unsettled++;
}

static int tracer_start(struct tracer *t, const char *path, pid_t target, bool capture_only)
{
	struct timespec t0, now;
	char pidstr[16];
	int pfd[2], r;

	t->out_fd = memfd_create("wsaudit-stdout", MFD_CLOEXEC);
	if (t->out_fd < 0)
		return -errno;
	if (pipe2(pfd, O_CLOEXEC)) {
		r = -errno;
		close(t->out_fd);
		return r;
	}
	snprintf(pidstr, sizeof(pidstr), "%d", target);
	t->pid = fork();
	if (t->pid < 0) {
		r = -errno;
		close(pfd[0]);
		close(pfd[1]);
		close(t->out_fd);
		return r;
	}
	if (t->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		cpu_unpin();
		if (dup2(t->out_fd, STDOUT_FILENO) < 0 || dup2(pfd[1], STDERR_FILENO) < 0)
			_exit(127);
		/* -d bounds an orphan's life should this process die without stopping it. */
		if (capture_only)
			execl(path, path, "trace", "--standalone", "-p", pidstr, "-o", "json", "-d",
			      "900", "--capture-only", (char *)NULL);
		else
			execl(path, path, "trace", "--standalone", "-p", pidstr, "-o", "json", "-d",
			      "900", (char *)NULL);
		fprintf(stderr, "bench_send: failed to run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	t->err_fd = pfd[0];
	t->tail_len = 0;
	t->tail[0] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		r = tracer_read(t, 500);
		if (tracer_ready(t))
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (r != 0 || ts_diff_s(&t0, &now) * 1000 > TRACER_READY_MS) {
			fprintf(stderr,
				"bench_send: %s did not start tracing (%s); its stderr:\n%s\n",
				path,
				r > 0 ? "it exited" :
				r < 0 ? strerror(-r) :
					"timed out",
				t->tail);
			kill(t->pid, SIGKILL);
			waitpid(t->pid, NULL, 0);
			close(t->err_fd);
			close(t->out_fd);
			t->pid = 0;
			return r < 0 ? r : -ECHILD;
		}
	}
	tracer_settle(t);
	t->starts++;
	t->ready_ticks = proc_cpu_ticks(t->pid);
	clock_gettime(CLOCK_MONOTONIC, &t->ready_at);
	return 0;
}

/* Add up the counts of the final stats record that wsaudit printed on exit. */
static void tracer_final_stats(struct tracer *t)
{
	json_int_t records = 0, drops = 0, ignored = 0, websocket = 0;
	char *buf = NULL, *line;
	json_t *root = NULL, *count;
	const char *reason;
	struct stat st;

	if (fstat(t->out_fd, &st) || st.st_size <= 0)
		goto out_missing;
	buf = malloc(st.st_size + 1);
	if (!buf || pread(t->out_fd, buf, st.st_size, 0) != st.st_size)
		goto out_missing;
	buf[st.st_size] = '\0';
	while (st.st_size > 0 && buf[st.st_size - 1] == '\n')
		buf[--st.st_size] = '\0';
	line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	root = json_loads(line, 0, NULL);
	if (!root || json_unpack(root, "{s:{s:I}, s:I, s:{s:I, s:I}}", "kernel", "records",
				 &records, "drops_total", &drops, "conns", "ignored", &ignored,
				 "websocket", &websocket))
		goto out_missing;
	json_object_foreach(json_object_get(root, "drops"), reason, count)
	{
		unsigned int i;

		if (!json_is_integer(count) || json_integer_value(count) <= 0)
			continue;
		for (i = 0; i < t->ndrop_reasons; i++)
			if (!strcmp(t->drop_reasons[i].name, reason))
				break;
		if (i == t->ndrop_reasons) {
			if (i == DROP_REASONS_MAX)
				continue;
			snprintf(t->drop_reasons[i].name, sizeof(t->drop_reasons[i].name), "%s",
				 reason);
			t->drop_reasons[i].n = 0;
			t->ndrop_reasons++;
		}
		t->drop_reasons[i].n += json_integer_value(count);
	}
	t->records += records;
	t->drops += drops;
	t->ignored += ignored;
	t->websocket += websocket;
	goto out;
out_missing:
	t->stats_missing++;
out:
	json_decref(root);
	free(buf);
}

/* SIGINT, as a user stops it; it must exit 0 within TRACER_STOP_MS. */
static int tracer_stop(struct tracer *t)
{
	struct timespec t0, now;
	struct rusage ru;
	int status, r, err = 0;
	long ticks;

	if (!t->pid)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	t->up_s += ts_diff_s(&t->ready_at, &t0);
	ticks = proc_cpu_ticks(t->pid);
	if (ticks >= 0 && t->ready_ticks >= 0)
		t->steady_ticks += ticks - t->ready_ticks;
	kill(t->pid, SIGINT);
	for (;;) {
		r = tracer_read(t, 500);
		if (r != 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (ts_diff_s(&t0, &now) * 1000 > TRACER_STOP_MS) {
			fprintf(stderr, "bench_send: wsaudit did not stop on SIGINT; killing it\n");
			kill(t->pid, SIGKILL);
			err = -ETIMEDOUT;
			break;
		}
	}
	if (wait4(t->pid, &status, 0, &ru) < 0) {
		err = -errno;
		goto out;
	}
	t->cpu_s += (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	if (!err && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
		fprintf(stderr, "bench_send: wsaudit ended with status 0x%x; its stderr:\n%s\n",
			status, t->tail);
		err = -ECHILD;
	}
	tracer_final_stats(t);
out:
	close(t->err_fd);
	close(t->out_fd);
	t->pid = 0;
	return err;
}

/* An idle Python process for wsaudit to trace: the bench itself must stay untraced. */
static pid_t idle_spawn(void)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	cpu_unpin();
	execl("/usr/bin/python3", "python3", "-c", "import signal; signal.pause()", (char *)NULL);
	fprintf(stderr, "bench_send: failed to run /usr/bin/python3: %s\n", strerror(errno));
	_exit(127);
}

/*
 * Unmasked binary frames, as a server sends them, of exactly each payload size on the wire:
 * 64 B is a 2-byte header and 62 bytes, 4 KiB a 4-byte header (16-bit length) and 4092.
 */
static int frames_build(struct bench *b)
{
	for (size_t i = 0; i < NSIZES; i++) {
		size_t size = sizes[i], hdr = size - 2 <= 125 ? 2 : 4, len = size - hdr;
		unsigned char *f = malloc(size);

		if (!f)
			return -ENOMEM;
		f[0] = 0x82; /* FIN, binary */
		if (hdr == 2) {
			f[1] = (unsigned char)len;
		} else {
			f[1] = 126;
			f[2] = (unsigned char)(len >> 8);
			f[3] = (unsigned char)len;
		}
		memset(f + hdr, 'x', len);
		b->frames[i] = (char *)f;
	}
	return 0;
}

/* --- one configuration ----------------------------------------------------------------------- */

static bool cfg_is_tracer(enum cfg_id cfg)
{
	return cfg == CFG_WSAUDIT || cfg == CFG_SELF || cfg == CFG_WS;
}

/*
 * Traced, wsaudit first sees the connection as unclassified and sends its bytes up until the
 * collector's verdict (not a WebSocket) reaches the kernel: measure after that, in the steady
 * state of a traced process writing to a socket wsaudit ignores.
 */
static int self_warm_up(struct bench *b)
{
	double ns[METRIC_MAX];
	int err;

	for (int round = 0; round < 2; round++) {
		for (size_t s = 0; s < NSIZES; s++) {
			err = send_batch(&b->conn, b->payload, sizes[s], 2000, ns);
			if (err)
				return err;
		}
		usleep(300 * 1000);
	}
	return 0;
}

static int cfg_enter(struct bench *b, enum cfg_id cfg)
{
	int err;

	if (cfg == CFG_WSAUDIT)
		return tracer_start(&b->tracer, b->opts.wsaudit, b->opts.target, false);
	if (cfg == CFG_SELF) {
		err = tracer_start(&b->self, b->opts.wsaudit, getpid(), false);
		if (!err)
			err = self_warm_up(b);
		return err;
	}
	if (cfg == CFG_WS) {
		/* A connection that opens while wsaudit traces, as a new client's would. */
		err = tracer_start(&b->wscap, b->opts.wsaudit, getpid(), true);
		if (err)
			return err;
		err = conn_open(&b->ws, b->opts.cpu_read, true);
		if (err)
			tracer_stop(&b->wscap);
		return err;
	}
	if (cfg_progs[cfg])
		return floor_attach(&b->floor, cfg_progs[cfg]);
	return 0;
}

static int cfg_leave(struct bench *b, enum cfg_id cfg)
{
	if (cfg == CFG_WSAUDIT)
		return tracer_stop(&b->tracer);
	if (cfg == CFG_SELF)
		return tracer_stop(&b->self);
	if (cfg == CFG_WS) {
		conn_close(&b->ws);
		return tracer_stop(&b->wscap);
	}
	floor_detach(&b->floor);
	return 0;
}

/*
 * Calls per batch.  (h) sends no more than half of wsaudit's default ring buffer holds, so that
 * the figure is that of capture, not of a full ring buffer (the drops in the report say
 * whether that held).
 */
static unsigned long cfg_calls(const struct bench *b, enum cfg_id cfg, size_t s)
{
	unsigned long cap = RINGBUF_DEFAULT / 2 / (sizes[s] + WS_RECORD_OVERHEAD);

	if (cfg == CFG_WS && b->calls[s] > cap)
		return cap;
	return b->calls[s];
}

static int cfg_measure(struct bench *b, enum cfg_id cfg, unsigned int rep)
{
	double ns[METRIC_MAX];
	int err;

	err = cfg_enter(b, cfg);
	if (err)
		return err;
	for (size_t s = 0; s < NSIZES; s++) {
		struct conn *c = cfg == CFG_WS ? &b->ws : &b->conn;
		const char *buf = cfg == CFG_WS ? b->frames[s] : b->payload;
		unsigned long recvs = __atomic_load_n(&c->recvs, __ATOMIC_RELAXED);

		/* wsaudit's own links cannot be told from others': check around the rest. */
		if (!cfg_is_tracer(cfg) && floor_foreign_links(&b->floor))
			b->disturbed[rep] = true;
		err = send_batch(c, buf, sizes[s], cfg_calls(b, cfg, s), ns);
		if (err) {
			cfg_leave(b, cfg);
			return err;
		}
		/* Let the collector drain what (h) queued before the next batch. */
		if (cfg == CFG_WS)
			usleep(WS_DRAIN_MS * 1000);
		if (!cfg_is_tracer(cfg) && floor_foreign_links(&b->floor))
			b->disturbed[rep] = true;
		for (int m = 0; m < METRIC_MAX; m++)
			b->ns[m][cfg][s][rep] = ns[m];
		b->sends[cfg][s] += cfg_calls(b, cfg, s);
		b->drains[cfg][s] += __atomic_load_n(&c->recvs, __ATOMIC_RELAXED) - recvs;
	}
	return cfg_leave(b, cfg);
}

/* --- the report ------------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct summary {
	double min, med, max;
};

static struct summary summarize(const double *v, unsigned int n)
{
	double s[REPS_MAX];
	struct summary r = { 0 };

	if (!n)
		return r; /* every repetition was dropped as disturbed */
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	r.min = s[0];
	r.max = s[n - 1];
	r.med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	return r;
}

/* Added ns per call of cfg over (a), paired by repetition. */
static struct summary summarize_added(const struct bench *b, int m, enum cfg_id cfg, size_t s)
{
	double d[REPS_MAX];

	for (unsigned int i = 0; i < b->nclean; i++)
		d[i] = b->ns[m][cfg][s][b->clean[i]] - b->ns[m][CFG_NONE][s][b->clean[i]];
	return summarize(d, b->nclean);
}

static struct summary summarize_cfg(const struct bench *b, int m, enum cfg_id cfg, size_t s)
{
	double d[REPS_MAX];

	for (unsigned int i = 0; i < b->nclean; i++)
		d[i] = b->ns[m][cfg][s][b->clean[i]];
	return summarize(d, b->nclean);
}

/*
 * Summarize the undisturbed repetitions; when fewer than three are left, all of them, and the
 * report says so.
 */
static unsigned int select_clean(struct bench *b)
{
	unsigned int disturbed = 0;

	b->nclean = 0;
	for (unsigned int r = 0; r < b->nrun; r++) {
		if (b->disturbed[r])
			disturbed++;
		else
			b->clean[b->nclean++] = r;
	}
	if (b->nclean < 3) {
		b->nclean = 0;
		for (unsigned int r = 0; r < b->nrun; r++)
			b->clean[b->nclean++] = r;
	}
	return disturbed;
}

static bool cfg_on(const struct bench *b, enum cfg_id cfg)
{
	return b->opts.cfg_mask & (1u << cfg);
}

static void report_machine(void)
{
	char line[256], model[256] = "unknown";
	struct utsname u;
	FILE *f;

	f = fopen("/proc/cpuinfo", "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *p = strchr(line, ':');

			if (!strncmp(line, "model name", 10) && p) {
				snprintf(model, sizeof(model), "%s", p + 2);
				model[strcspn(model, "\n")] = '\0';
				break;
			}
		}
		fclose(f);
	}
	uname(&u);
	printf("Machine: %s, %ld CPUs online, Linux %s %s.\n", model, sysconf(_SC_NPROCESSORS_ONLN),
	       u.release, u.machine);
}

static void report_header(void)
{
	printf("| configuration |");
	for (size_t i = 0; i < NSIZES; i++)
		printf(" %zu B |", sizes[i]);
	printf("\n|---|");
	for (size_t i = 0; i < NSIZES; i++)
		printf("---|");
	printf("\n");
}

static void report_metric(const struct bench *b, int m)
{
	struct summary s;

	printf("ns per send(), min / median / max over the repetitions:\n\n");
	report_header();
	for (int c = 0; c < CFG_MAX; c++) {
		if (!cfg_on(b, c))
			continue;
		printf("| %s |", cfg_names[c]);
		for (size_t i = 0; i < NSIZES; i++) {
			s = summarize_cfg(b, m, c, i);
			printf(" %.0f / %.0f / %.0f |", s.min, s.med, s.max);
		}
		printf("\n");
	}
	for (size_t i = 0; i < NSIZES; i++) {
		s = summarize_cfg(b, m, CFG_NONE, i);
		if (s.max > NOISY_SPREAD * s.min) {
			printf("\n**Noisy:** without BPF, the slowest %zu B batch took %.2fx the "
			       "fastest (other work on the machine, or the host). Differences of a "
			       "few hundred ns below may not be reliable.\n",
			       sizes[i], s.max / s.min);
			break;
		}
	}

	printf("\nAdded ns per send() over (a) of the same repetition, min / median / max; "
	       "in brackets, the median figure as a ratio to (a)'s:\n\n");
	report_header();
	for (int c = CFG_FLOOR; c < CFG_MAX; c++) {
		if (!cfg_on(b, c))
			continue;
		printf("| %s |", cfg_names[c]);
		for (size_t i = 0; i < NSIZES; i++) {
			s = summarize_added(b, m, c, i);
			printf(" %+.0f / %+.0f / %+.0f (x%.3f) |", s.min, s.med, s.max,
			       summarize_cfg(b, m, c, i).med /
				       summarize_cfg(b, m, CFG_NONE, i).med);
		}
		printf("\n");
	}
	if (!cfg_on(b, CFG_FLOOR))
		return;

	printf("\nAdded cost as a ratio to the floor's, (x-a)/(b-a): from the medians of the "
	       "paired added costs above, and from the minima of the raw figures (noise only adds "
	       "time, so the minima are the least disturbed)%s:\n\n",
	       m == METRIC_CPU ? ". The goal for wsaudit is at most 1.15, judged on the medians" :
				 "");
	printf("| ratio |");
	for (size_t i = 0; i < NSIZES; i++)
		printf(" %zu B, medians |", sizes[i]);
	for (size_t i = 0; i < NSIZES; i++)
		printf(" %zu B, minima |", sizes[i]);
	printf("\n|---|");
	for (size_t i = 0; i < 2 * NSIZES; i++)
		printf("---|");
	printf("\n");
	for (int c = CFG_LOOKUP; c < CFG_MAX; c++) {
		if (!cfg_on(b, c))
			continue;
		printf("| (%c-a)/(b-a) |", 'a' + c);
		for (size_t i = 0; i < NSIZES; i++) {
			double fl = summarize_added(b, m, CFG_FLOOR, i).med;
			double r = summarize_added(b, m, c, i).med / fl;

			if (fl <= 0)
				printf(" n/a: floor lost in noise |");
			else if (c == CFG_WSAUDIT && m == METRIC_CPU)
				printf(" %.2f (goal %s) |", r, r <= 1.15 ? "met" : "missed");
			else
				printf(" %.2f |", r);
		}
		for (size_t i = 0; i < NSIZES; i++) {
			double a = summarize_cfg(b, m, CFG_NONE, i).min;
			double fl = summarize_cfg(b, m, CFG_FLOOR, i).min - a;

			if (fl <= 0)
				printf(" n/a |");
			else
				printf(" %.2f |", (summarize_cfg(b, m, c, i).min - a) / fl);
		}
		printf("\n");
	}
}

static void report_tracer(const struct tracer *t, char cfg)
{
	printf("\n(%c): wsaudit was started %u times and measured for %.1f s in all; meanwhile it "
	       "used %.0f ms of CPU, and %.0f ms with its start-ups and exits. Its final stats, "
	       "summed: %llu kernel records, %llu drops, %llu connections ignored, %llu WebSocket.",
	       cfg, t->starts, t->up_s, t->steady_ticks * 1000.0 / sysconf(_SC_CLK_TCK),
	       t->cpu_s * 1000, (unsigned long long)t->records, (unsigned long long)t->drops,
	       (unsigned long long)t->ignored, (unsigned long long)t->websocket);
	for (unsigned int i = 0; i < t->ndrop_reasons; i++)
		printf("%s%s %llu", i ? ", " : " Drops by reason: ", t->drop_reasons[i].name,
		       (unsigned long long)t->drop_reasons[i].n);
	if (t->ndrop_reasons)
		printf(".");
	if (t->stats_missing)
		printf(" %u runs printed no final stats record.", t->stats_missing);
	if (t->unsettled)
		printf(" %u times it still used CPU %d ms after saying it was tracing; those "
		       "repetitions were measured anyway.",
		       t->unsettled, TRACER_SETTLE_MS);
	printf("\n");
}

static void report(struct bench *b)
{
	const struct bench_opts *o = &b->opts;
	unsigned int disturbed = select_clean(b);

	printf("## Kernel path: what wsaudit adds to a send()\n\n");
	report_machine();
	printf("Loopback TCP with TCP_NODELAY; the sender is pinned to CPU %d, the reader thread to "
	       "CPU %d. %u repetitions, the configurations interleaved in each (rotating order); "
	       "one batch per configuration, payload and repetition:",
	       o->cpu_send, o->cpu_read, b->nrun);
	for (size_t i = 0; i < NSIZES; i++)
		printf("%s %lu calls of %zu B", i ? "," : "", b->calls[i], sizes[i]);
	if (cfg_on(b, CFG_WS)) {
		printf(" (for (h)");
		for (size_t i = 0; i < NSIZES; i++)
			printf("%s %lu", i ? " and" : "", cfg_calls(b, CFG_WS, i));
		printf(", half a ring buffer, each batch followed by a %d ms pause)", WS_DRAIN_MS);
	}
	printf(". By default the reader drains on the sender's CPU: across CPUs in this VM each "
	       "send() pays for waking the other CPU whenever the reader sleeps, and the figures "
	       "swing between two modes several times apart. The reader made");
	for (size_t i = 0; i < NSIZES; i++)
		printf("%s %.3f recv() per send() of %zu B", i ? "," : "",
		       (double)b->drains[CFG_NONE][i] / (double)b->sends[CFG_NONE][i], sizes[i]);
	printf(" without BPF.\n\n");
	if (disturbed && b->nclean < b->nrun)
		printf("**%u of the %u repetitions were left out:** tracepoint programs of another "
		       "process were attached around them. The figures below are from the %u "
		       "others.\n\n",
		       disturbed, b->nrun, b->nclean);
	else if (disturbed)
		printf("**Disturbed run:** tracepoint programs of another process were attached "
		       "during %u of the %u repetitions, too many to leave out; the figures below "
		       "include them and are not reliable.\n\n",
		       disturbed, b->nrun);

	printf("### CPU time of the sending thread per send()\n\n");
	printf("Leaves out the time the sender was preempted (by its reader or anything else); "
	       "holds the loopback receive path, which runs in the sender's softirq.\n\n");
	report_metric(b, METRIC_CPU);
	printf("\n### Wall time per send()\n\n");
	printf("Holds everything, the reader's recv() calls and their hooks included, and "
	       "whatever else ran on the CPU.\n\n");
	report_metric(b, METRIC_WALL);

	if (cfg_on(b, CFG_WSAUDIT))
		report_tracer(&b->tracer, 'd');
	if (cfg_on(b, CFG_SELF))
		report_tracer(&b->self, 'g');
	if (cfg_on(b, CFG_WS))
		report_tracer(&b->wscap, 'h');
}

/* --- command line ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_send [-r REPS] [-t SECONDS] [-n CALLS | -m MS] [-c CONFIGS] [-w WSAUDIT]\n"
		"                  [-p PID] [--cpu-send N] [--cpu-read N]\n"
		"  -r, --reps N       undisturbed repetitions wanted (default 11, at most %d)\n"
		"  -t, --max-seconds S  stop adding repetitions to replace disturbed ones after S\n"
		"                     seconds (default 200)\n"
		"  -n, --calls N      send() calls per batch (default: calibrated, see -m)\n"
		"  -m, --ms MS        calibrate batches to about MS ms without BPF (default 100)\n"
		"  -c, --configs LIST configurations among a-h (default all; a is implied)\n"
		"                     a no BPF, b empty programs, c + tgid hash lookup,\n"
		"                     d wsaudit trace, e + tgid bitmap test,\n"
		"                     f + wsaudit's untraced path (exit: two hash lookups),\n"
		"                     g wsaudit trace of this process (a socket it ignores),\n"
		"                     h the same, capture only, on a WebSocket connection\n"
		"  -w, --wsaudit PATH the wsaudit binary for (d) (default ./wsaudit)\n"
		"  -p, --target PID   the process wsaudit traces in (d) (default: an idle python3\n"
		"                     started by the bench)\n"
		"      --cpu-send N   CPU of the sending thread (default: the last one)\n"
		"      --cpu-read N   CPU of the reading thread (default: the sender's)\n",
		REPS_MAX);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *out > max)
		return -EINVAL;
	return 0;
}

static int opts_parse(int argc, char **argv, struct bench_opts *o)
{
	enum { OPT_CPU_SEND = 256, OPT_CPU_READ };
	static const struct option longopts[] = {
		{ "reps", required_argument, NULL, 'r' },
		{ "calls", required_argument, NULL, 'n' },
		{ "ms", required_argument, NULL, 'm' },
		{ "max-seconds", required_argument, NULL, 't' },
		{ "configs", required_argument, NULL, 'c' },
		{ "wsaudit", required_argument, NULL, 'w' },
		{ "target", required_argument, NULL, 'p' },
		{ "cpu-send", required_argument, NULL, OPT_CPU_SEND },
		{ "cpu-read", required_argument, NULL, OPT_CPU_READ },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned long v;
	int c;

	*o = (struct bench_opts){
		.reps = 11,
		.batch_ms = 100,
		.max_s = 200,
		.cfg_mask = (1u << CFG_MAX) - 1,
		.wsaudit = "./wsaudit",
		.cpu_send = ncpu > 1 ? (int)ncpu - 1 : 0,
		.cpu_read = ncpu > 1 ? (int)ncpu - 1 : 0,
	};
	while ((c = getopt_long(argc, argv, "r:n:m:t:c:w:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (parse_uint(optarg, REPS_MAX, &v) || v < 3)
				goto err_value;
			o->reps = v;
			break;
		case 't':
			if (parse_uint(optarg, 86400, &v))
				goto err_value;
			o->max_s = v;
			break;
		case 'n':
			if (parse_uint(optarg, 1000000000, &v) || v == 0)
				goto err_value;
			o->calls = v;
			break;
		case 'm':
			if (parse_uint(optarg, 60000, &v) || v == 0)
				goto err_value;
			o->batch_ms = v;
			break;
		case 'c':
			o->cfg_mask = 1u << CFG_NONE;
			for (const char *p = optarg; *p; p++) {
				if (*p == ',')
					continue;
				if (*p < 'a' || *p >= 'a' + CFG_MAX)
					goto err_value;
				o->cfg_mask |= 1u << (*p - 'a');
			}
			break;
		case 'w':
			o->wsaudit = optarg;
			break;
		case 'p':
			if (parse_uint(optarg, INT_MAX, &v) || v == 0)
				goto err_value;
			o->target = (pid_t)v;
			break;
		case OPT_CPU_SEND:
		case OPT_CPU_READ:
			if (parse_uint(optarg, CPU_SETSIZE - 1, &v) || (long)v >= ncpu)
				goto err_value;
			*(c == OPT_CPU_SEND ? &o->cpu_send : &o->cpu_read) = (int)v;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "bench_send: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
err_value:
	fprintf(stderr, "bench_send: invalid value '%s' for -%c\n", optarg,
		c == OPT_CPU_SEND ? 'S' :
		c == OPT_CPU_READ ? 'R' :
				    c);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static struct bench b;
	struct bench_opts *o = &b.opts;
	const size_t largest = sizes[NSIZES - 1];
	int ncfg = 0, order[CFG_MAX];
	struct timespec t0, now;
	int err;

	b.conn.tx_fd = b.conn.rx_fd = b.ws.tx_fd = b.ws.rx_fd = -1;
	if (opts_parse(argc, argv, o))
		return 2;
	if (geteuid() != 0) {
		fprintf(stderr, "bench_send: must run as root (it loads BPF programs)\n");
		return 2;
	}
	if ((cfg_on(&b, CFG_WSAUDIT) || cfg_on(&b, CFG_SELF) || cfg_on(&b, CFG_WS)) &&
	    access(o->wsaudit, X_OK)) {
		fprintf(stderr,
			"bench_send: %s: %s; build it (make wsaudit), pass -w PATH, or "
			"leave (d), (g) and (h) out with -c a,b,c,e,f\n",
			o->wsaudit, strerror(errno));
		return 2;
	}
	for (int c = 0; c < CFG_MAX; c++)
		if (cfg_on(&b, c))
			order[ncfg++] = c;
	libbpf_set_print(libbpf_print);
	signal(SIGPIPE, SIG_IGN);

	err = tracefs_ensure();
	if (err) {
		fprintf(stderr, "bench_send: failed to mount tracefs: %s\n", strerror(-err));
		return 1;
	}
	if (o->cfg_mask &
	    ~((1u << CFG_NONE) | (1u << CFG_WSAUDIT) | (1u << CFG_SELF) | (1u << CFG_WS))) {
		err = floor_open(&b.floor, o->cfg_mask);
		if (err) {
			fprintf(stderr, "bench_send: failed to load the floor programs: %s\n",
				strerror(-err));
			return 1;
		}
	}
	if (cfg_on(&b, CFG_WSAUDIT) && !o->target) {
		b.idle_pid = idle_spawn();
		if (b.idle_pid < 0) {
			err = -errno;
			fprintf(stderr, "bench_send: failed to start an idle process: %s\n",
				strerror(-err));
			goto out_floor;
		}
		o->target = b.idle_pid;
	}
	b.payload = malloc(largest);
	if (!b.payload) {
		err = -ENOMEM;
		goto out_idle;
	}
	/*
	 * Text, not zeros: a run of zero bytes parses as empty WebSocket frames, and (g) must
	 * write what wsaudit recognises as not a WebSocket.
	 */
	memset(b.payload, 'x', largest);
	err = cpu_pin(o->cpu_send);
	if (err) {
		fprintf(stderr, "bench_send: failed to pin to CPU %d: %s\n", o->cpu_send,
			strerror(-err));
		goto out_payload;
	}
	err = frames_build(&b);
	if (err)
		goto out_payload;
	err = conn_open(&b.conn, o->cpu_read, false);
	if (err) {
		fprintf(stderr, "bench_send: failed to open a loopback connection: %s\n",
			strerror(-err));
		goto out_payload;
	}
	err = send_calibrate(&b);
	if (err) {
		fprintf(stderr, "bench_send: send() failed: %s\n", strerror(-err));
		goto out_conn;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/*
	 * Until reps repetitions were undisturbed by other tracepoint programs, within max_s
	 * seconds and REPS_MAX repetitions.
	 */
	for (unsigned int r = 0, clean = 0; r < REPS_MAX && clean < o->reps; r++) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (r >= o->reps && ts_diff_s(&t0, &now) > o->max_s)
			break;
		fprintf(stderr, "bench_send: repetition %u (%u of %u undisturbed so far)\n", r + 1,
			clean, o->reps);
		b.nrun = r + 1;
		for (int k = 0; k < ncfg; k++) {
			int c = order[(r + k) % ncfg];

			err = cfg_measure(&b, c, r);
			if (err) {
				/* -ECHILD: wsaudit failed, and what it said is printed above. */
				fprintf(stderr, "bench_send: %s: %s\n", cfg_names[c],
					err == -ECHILD ? "wsaudit failed" : strerror(-err));
				goto out_conn;
			}
		}
		clean += !b.disturbed[r];
	}
	report(&b);
out_conn:
	tracer_stop(&b.tracer);
	tracer_stop(&b.self);
	conn_close(&b.ws);
	tracer_stop(&b.wscap);
	floor_detach(&b.floor);
	conn_close(&b.conn);
out_payload:
	free(b.payload);
	for (size_t i = 0; i < NSIZES; i++)
		free(b.frames[i]);
out_idle:
	if (b.idle_pid > 0) {
		kill(b.idle_pid, SIGKILL);
		waitpid(b.idle_pid, NULL, 0);
	}
out_floor:
	floor_bpf__destroy(b.floor.skel);
	return err ? 1 : 0;
}

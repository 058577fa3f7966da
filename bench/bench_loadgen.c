// SPDX-License-Identifier: GPL-2.0
/*
 * bench_loadgen: the load generator of the collector capacity benchmark (issue 7, bench/capacity.py).
 *
 * One process holds CONNS loopback TCP connections to itself.  On each, the client end sends an
 * HTTP upgrade request with the RFC 6455 sample key, the server end reads it and answers 101 with
 * the matching Sec-WebSocket-Accept, so that a collector tracing this process sees real
 * WebSocket handshakes.  Then the server ends write unmasked text frames of SIZE payload bytes,
 * one write() per frame, round robin over the connections, at RATE frames/s (0: as fast as the
 * sockets take them) for SECONDS; between 1 ms ticks the client ends are drained.  With -b K, each
 * write() carries K whole frames (as an event loop flushes what it buffered), so that the
 * collector's parser gets K times the frames for the same number of captured writes.
 *
 * With --wait, the program prints "READY pid=N" and waits for a line on stdin before it opens
 * the connections (time for a tracer to attach), and once done it prints its result and waits
 * for another line before it closes them (time to read the tracer's memory with the connections
 * open).  The result is one JSON line on stdout:
 *   {"conns":N,"rate":R,"seconds":S,"sent":N,"achieved":F,"eagain":N,"late_ticks":N,
 *    "frame_bytes":N,"batch":K}
 * It is a tool driven by capacity.py, not a benchmark of its own: run with no arguments it
 * prints its usage and exits 2.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <arpa/inet.h>

#define LOADGEN_MAX_CONNS 20000
#define LOADGEN_MAX_SIZE 65535
#define LOADGEN_TICK_NS 1000000LL
#define LOADGEN_MAX_BATCH 64

static const char loadgen_request[] = "GET /ws HTTP/1.1\r\n"
				      "Host: 127.0.0.1\r\n"
				      "Upgrade: websocket\r\n"
				      "Connection: Upgrade\r\n"
				      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				      "Sec-WebSocket-Version: 13\r\n\r\n";
static const char loadgen_response[] = "HTTP/1.1 101 Switching Protocols\r\n"
				       "Upgrade: websocket\r\n"
				       "Connection: Upgrade\r\n"
				       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

struct loadgen {
	int conns;
	long rate;
	double seconds;
	int size;
	bool wait;
	int *srv;
	int *cli;
	int epfd;
	int batch;
	unsigned char *frame;
	size_t frame_len, write_len;
	unsigned long long sent, eagain, late_ticks;
};

static long long loadgen_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int loadgen_read_headers(int fd)
{
	char buf[1024];
	size_t have = 0;
	ssize_t n;

	/* Byte by byte: the peer sends nothing after the headers before it gets an answer. */
	while (have < sizeof(buf) - 1) {
		n = read(fd, buf + have, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		have++;
		if (have >= 4 && !memcmp(buf + have - 4, "\r\n\r\n", 4))
			return 0;
	}
	return -E2BIG;
}

static int loadgen_write_all(int fd, const void *p, size_t len)
{
	const char *c = p;
	ssize_t n;

	while (len) {
		n = write(fd, c, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		c += n;
		len -= n;
	}
	return 0;
}

static int loadgen_connect(struct loadgen *lg)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN };
	socklen_t alen = sizeof(addr);
	int lfd, one = 1, err = 0, i;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen) || listen(lfd, 1024)) {
		err = -errno;
		goto out;
	}
	for (i = 0; i < lg->conns; i++) {
		lg->cli[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lg->cli[i] < 0 || connect(lg->cli[i], (struct sockaddr *)&addr, sizeof(addr))) {
			err = -errno;
			goto out;
		}
		lg->srv[i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (lg->srv[i] < 0) {
			err = -errno;
			goto out;
		}
		/* As asyncio sets it on every TCP transport. */
		setsockopt(lg->srv[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		err = loadgen_write_all(lg->cli[i], loadgen_request, sizeof(loadgen_request) - 1);
		if (!err)
			err = loadgen_read_headers(lg->srv[i]);
		if (!err)
			err = loadgen_write_all(lg->srv[i], loadgen_response,
						sizeof(loadgen_response) - 1);
		if (!err)
			err = loadgen_read_headers(lg->cli[i]);
		if (err)
			goto out;
		if (fcntl(lg->srv[i], F_SETFL, O_NONBLOCK) ||
		    fcntl(lg->cli[i], F_SETFL, O_NONBLOCK)) {
			err = -errno;
			goto out;
		}
		ev.data.u32 = i;
		if (epoll_ctl(lg->epfd, EPOLL_CTL_ADD, lg->cli[i], &ev)) {
			err = -errno;
			goto out;
		}
	}
out:
	close(lfd);
	return err;
}

static void loadgen_drain(struct loadgen *lg)
{
	static char buf[1 << 16];
	struct epoll_event evs[256];
	int n, i, round;

	/* Bounded: a few rounds are enough to empty what one tick wrote. */
	for (round = 0; round < 8; round++) {
		n = epoll_wait(lg->epfd, evs, 256, 0);
		if (n <= 0)
			return;
		for (i = 0; i < n; i++)
			while (read(lg->cli[evs[i].data.u32], buf, sizeof(buf)) == sizeof(buf))
				;
	}
}

static void loadgen_make_frame(struct loadgen *lg)
{
	unsigned char *p = lg->frame;
	int i;

	*p++ = 0x81; /* FIN, text */
	if (lg->size < 126) {
		*p++ = lg->size;
	} else {
		*p++ = 126;
		*p++ = lg->size >> 8;
		*p++ = lg->size & 0xff;
	}
	/* A JSON-looking payload, as the services audited send: {"type":"tick","pad":"xxx..."} */
	for (i = 0; i < lg->size; i++)
		p[i] = 'x';
	if (lg->size >= 24) {
		memcpy(p, "{\"type\":\"tick\",\"pad\":\"", 22);
		p[lg->size - 2] = '"';
		p[lg->size - 1] = '}';
	}
	lg->frame_len = (p - lg->frame) + lg->size;
	for (i = 1; i < lg->batch; i++)
		memcpy(lg->frame + i * lg->frame_len, lg->frame, lg->frame_len);
	lg->write_len = lg->frame_len * lg->batch;
}

static int loadgen_run(struct loadgen *lg)
{
	long long start = loadgen_now_ns(), end = start + (long long)(lg->seconds * 1e9);
	long long tick = start, now;
	unsigned long long target;
	struct timespec ts;
	int next = 0, blocked;
	ssize_t n;

	for (;;) {
		now = loadgen_now_ns();
		if (now >= end)
			break;
		target = lg->rate ? (unsigned long long)((now - start) * (double)lg->rate / 1e9) :
				    lg->sent + 256;
		blocked = 0;
		while (lg->sent < target && blocked < lg->conns) {
			n = write(lg->srv[next], lg->frame, lg->write_len);
			if (n == (ssize_t)lg->write_len) {
				lg->sent += lg->batch;
				blocked = 0;
			} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				lg->eagain++;
				blocked++;
			} else if (n < 0 && errno == EINTR) {
				continue;
			} else {
				/* A partial frame would desynchronise the stream: not expected on loopback
				 * with a frame far below the socket buffer, so it ends the run. */
				fprintf(stderr, "bench_loadgen: write: %s\n",
					n < 0 ? strerror(errno) : "partial frame");
				return n < 0 ? -errno : -EIO;
			}
			next = (next + 1) % lg->conns;
		}
		loadgen_drain(lg);
		if (!lg->rate)
			continue;
		tick += LOADGEN_TICK_NS;
		if (tick < loadgen_now_ns()) {
			lg->late_ticks++;
			continue;
		}
		ts.tv_sec = tick / 1000000000LL;
		ts.tv_nsec = tick % 1000000000LL;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
	lg->seconds = (loadgen_now_ns() - start) / 1e9;
	return 0;
}

static int loadgen_wait_line(void)
{
	char line[64];

	return fgets(line, sizeof(line), stdin) ? 0 : -EPIPE;
}

static void loadgen_usage(FILE *f)
{
	fprintf(f,
		"usage: bench_loadgen -c CONNS -r RATE -d SECONDS [-s SIZE] [--wait]\n"
		"  -c  loopback WebSocket connections (1..%d)\n"
		"  -r  frames per second over all connections (0: as fast as possible)\n"
		"  -d  seconds of sending\n"
		"  -s  payload bytes per frame (default 64, max %d)\n"
		"  -b  frames per write() (default 1, max %d)\n"
		"  --wait  print READY pid=N and wait for a stdin line before connecting and "
		"before closing\n",
		LOADGEN_MAX_CONNS, LOADGEN_MAX_SIZE, LOADGEN_MAX_BATCH);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "conns", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "batch", required_argument, NULL, 'b' },
		{ "wait", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct loadgen *lg;
	struct rlimit rl;
	int c, i, err = 0, ret = 1;
	bool have_c = false, have_r = false, have_d = false;

	lg = calloc(1, sizeof(*lg));
	if (!lg)
		return 1;
	lg->size = 64;
	lg->batch = 1;
	while ((c = getopt_long(argc, argv, "c:r:d:s:b:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			lg->conns = atoi(optarg);
			have_c = true;
			break;
		case 'r':
			lg->rate = atol(optarg);
			have_r = true;
			break;
		case 'd':
			lg->seconds = atof(optarg);
			have_d = true;
			break;
		case 's':
			lg->size = atoi(optarg);
			break;
		case 'b':
			lg->batch = atoi(optarg);
			break;
		case 'w':
			lg->wait = true;
			break;
		case 'h':
			loadgen_usage(stdout);
			ret = 0;
			goto out;
		default:
			loadgen_usage(stderr);
			ret = 2;
			goto out;
		}
	}
	if (!have_c || !have_r || !have_d || optind != argc || lg->conns < 1 ||
	    lg->conns > LOADGEN_MAX_CONNS || lg->rate < 0 || lg->seconds <= 0 || lg->size < 0 ||
	    lg->size > LOADGEN_MAX_SIZE || lg->batch < 1 || lg->batch > LOADGEN_MAX_BATCH) {
		loadgen_usage(stderr);
		ret = 2;
		goto out;
	}
	rl.rlim_cur = rl.rlim_max = 2 * lg->conns + 64;
	if (setrlimit(RLIMIT_NOFILE, &rl)) {
		fprintf(stderr, "bench_loadgen: RLIMIT_NOFILE %lu: %s\n",
			(unsigned long)rl.rlim_cur, strerror(errno));
		goto out;
	}
	lg->srv = calloc(lg->conns, sizeof(int));
	lg->cli = calloc(lg->conns, sizeof(int));
	lg->epfd = epoll_create1(EPOLL_CLOEXEC);
	lg->frame = malloc((size_t)(LOADGEN_MAX_SIZE + 4) * lg->batch);
	if (!lg->srv || !lg->cli || lg->epfd < 0 || !lg->frame)
		goto out;
	for (i = 0; i < lg->conns; i++)
		lg->srv[i] = lg->cli[i] = -1;
	loadgen_make_frame(lg);
	if (lg->wait) {
		printf("READY pid=%d\n", getpid());
		fflush(stdout);
		if (loadgen_wait_line())
			goto out;
	}
	err = loadgen_connect(lg);
	if (err) {
		fprintf(stderr, "bench_loadgen: connections: %s\n", strerror(-err));
		goto out;
	}
	err = loadgen_run(lg);
	if (err)
		goto out;
	printf("{\"conns\":%d,\"rate\":%ld,\"seconds\":%.3f,\"sent\":%llu,\"achieved\":%.0f,"
	       "\"eagain\":%llu,\"late_ticks\":%llu,\"frame_bytes\":%zu,\"batch\":%d}\n",
	       lg->conns, lg->rate, lg->seconds, lg->sent, lg->sent / lg->seconds, lg->eagain,
	       lg->late_ticks, lg->frame_len, lg->batch);
	fflush(stdout);
	if (lg->wait)
		loadgen_wait_line();
	ret = 0;
out:
	if (lg->srv && lg->cli) {
		for (i = 0; i < lg->conns; i++) {
			if (lg->srv[i] >= 0)
				close(lg->srv[i]);
			if (lg->cli[i] >= 0)
				close(lg->cli[i]);
		}
	}
	if (lg->epfd > 0)
		close(lg->epfd);
	free(lg->frame);
	free(lg->srv);
	free(lg->cli);
	free(lg);
	return ret;
}

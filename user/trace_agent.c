// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <jansson.h>

#include "clock.h"
#include "trace_agent.h"

/* The agent's hello is one line; what came after it in the same read waits here. */
#define HELLO_MAX 65536
/* After asking the agent to stop: its final records come within this long. */
#define DRAIN_MS 10000
#define POLL_MS 100

static char early[HELLO_MAX];
static size_t nearly;

int trace_agent_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The first line the agent sends, within timeout_ms; the rest is kept for the stream. */
static int read_hello(int fd, char *line, size_t size, int timeout_ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char *nl;
	ssize_t n;

	nearly = 0;
	while (!(nl = memchr(early, '\n', nearly))) {
		if (nearly == sizeof(early) || mono_ms() >= deadline)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)(deadline - mono_ms())) <= 0)
			continue;
		n = recv(fd, early + nearly, sizeof(early) - nearly, 0);
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		nearly += (size_t)n;
	}
	n = nl - early;
	if ((size_t)n >= size)
		return -EMSGSIZE;
	memcpy(line, early, (size_t)n);
	line[n] = '\0';
	nearly -= (size_t)n + 1;
	memmove(early, nl + 1, nearly);
	return 0;
}

static void hello_followed(struct trace_agent_hello *h, json_t *followed)
{
	size_t i, len = 0;
	json_t *f;

	json_array_foreach(followed, i, f)
	{
		json_t *pid = json_object_get(f, "pid"), *comm = json_object_get(f, "comm");

		h->nfollowed++;
		h->nadded += json_is_true(json_object_get(f, "added"));
		if (len < sizeof(h->followed) - 1)
			len += (size_t)snprintf(
				h->followed + len, sizeof(h->followed) - len, "%s %lld %s",
				i ? "," : "", (long long)json_integer_value(pid),
				json_is_string(comm) ? json_string_value(comm) : "?");
	}
}

int trace_agent_start(int fd, const struct trace_opts *o, const pid_t *pids, size_t npids,
		      struct trace_agent_hello *h)
{
	json_t *req, *arr, *hello, *sc;
	json_error_t jerr;
	char line[HELLO_MAX], *s;
	int err;

	memset(h, 0, sizeof(*h));
	arr = json_array();
	for (size_t i = 0; i < npids; i++)
		json_array_append_new(arr, json_integer(pids[i]));
	req = json_pack("{s:i, s:o, s:s, s:b, s:b, s:b}", "v", 1, "pids", arr, "format",
			o->format == OUTPUT_JSON ? "json" : "text", "stack", o->stack, "payload",
			o->payload, "violations_only", o->violations_only);
	s = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!s)
		return -ENOMEM;
	err = send_all(fd, s, strlen(s));
	if (!err)
		err = send_all(fd, "\n", 1);
	free(s);
	/* The agent runs a self-check for the client first: up to 2 s when it fails. */
	if (!err)
		err = read_hello(fd, line, sizeof(line), 10000);
	if (err) {
		snprintf(h->why, sizeof(h->why), "no answer from the agent: %s", strerror(-err));
		return err;
	}
	hello = json_loads(line, 0, &jerr);
	if (!hello || !json_is_true(json_object_get(hello, "ok"))) {
		json_t *why = json_object_get(hello, "error");

		snprintf(h->why, sizeof(h->why), "the agent refused: %s",
			 json_is_string(why) ? json_string_value(why) : "no reason given");
		json_decref(hello);
		return -EPROTO;
	}
	h->agent_pid = (pid_t)json_integer_value(json_object_get(hello, "agent_pid"));
	h->conns_open = (unsigned int)json_integer_value(json_object_get(hello, "conns_open"));
	hello_followed(h, json_object_get(hello, "followed"));
	sc = json_object_get(hello, "selfcheck");
	h->selfcheck_ok = json_is_true(json_object_get(sc, "ok"));
	h->selfcheck_ms = json_integer_value(json_object_get(sc, "took_us")) / 1e3;
	if (!h->selfcheck_ok) {
		json_t *why = json_object_get(sc, "reason");

		snprintf(h->why, sizeof(h->why), "%s",
			 json_is_string(why) ? json_string_value(why) : "no reason given");
	}
	json_decref(hello);
	return 0;
}

/* Copies what is readable to out; 1 at the end of the stream, 0, or -errno. */
static int copy_some(int fd, FILE *out)
{
	char buf[65536];
	ssize_t n;

	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n == 0)
		return 1;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	fwrite(buf, 1, (size_t)n, out);
	return 0;
}

int trace_agent_stream(int fd, FILE *out, double duration_s, volatile sig_atomic_t *stop)
{
	uint64_t start = mono_ms(), deadline;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int rc = 0;

	fwrite(early, 1, nearly, out);
	nearly = 0;
	while (!*stop && !(duration_s && mono_ms() - start >= duration_s * 1e3)) {
		if (poll(&p, 1, POLL_MS) > 0)
			rc = copy_some(fd, out);
		fflush(out);
		if (rc)
			return -EPIPE; /* the agent ended the stream: it went away */
	}
	/* Stop: the agent sends the connections' ends and its final stats, then closes. */
	shutdown(fd, SHUT_WR);
	deadline = mono_ms() + DRAIN_MS;
	while (mono_ms() < deadline) {
		if (poll(&p, 1, POLL_MS) > 0) {
			rc = copy_some(fd, out);
			if (rc)
				break;
		}
	}
	fflush(out);
	return rc < 0 ? rc : 0;
}

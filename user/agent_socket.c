// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <jansson.h>

#include "agent_socket.h"
#include "clock.h"
#include "log.h"
#include "output.h"
#include "session.h"
#include "targets.h"

/* Clients at once: a few engineers tracing on one node. */
#define CLIENTS_MAX 16
/* A request is one JSON line: a list of pids and a few options. */
#define REQUEST_MAX 16384
/* Bytes queued for one client; past that its records are dropped whole (and counted). */
#define QUEUE_MAX (8u << 20)
/* Processes one client follows (the pids it named, their descendants and later children). */
#define CLIENT_PIDS_MAX 8192
#define DESCENDANTS_MAX 1024
/* A client that stopped and reads nothing of what is queued for it this long is closed. */
#define CLOSING_NS (5ULL * 1000000000ULL)
/* How long the self-check run for a new client waits for its probe. */
#define SELFCHECK_TIMEOUT_MS 2000

enum client_state {
	CLIENT_REQUEST, /* reading its request */
	CLIENT_STREAM, /* sending it records */
	CLIENT_CLOSING, /* stopped: sending what is queued, then closed */
};

struct client {
	struct agent_socket *a;
	int fd;
	enum client_state state;
	uint64_t closing_since; /* or its last progress since */
	char req[REQUEST_MAX];
	size_t reqlen;
	/* The client's output writes into pending; commit moves it to the queue or drops it. */
	FILE *f;
	struct output *out;
	enum output_format format;
	char *pending;
	size_t plen, pcap;
	bool overflow; /* the record being written did not fit */
	bool final; /* writing its last records: queued whatever the bound */
	char *q;
	size_t qhead, qlen, qcap; /* bytes [qhead, qhead + qlen) are queued */
	uint64_t dropped, dropped_unsaid;
	pid_t *pids; /* sorted */
	size_t npids;
	struct session_tap tap;
};

struct agent_socket {
	struct session *s;
	char *path;
	int listen_fd;
	struct client *clients[CLIENTS_MAX];
	uint64_t clients_total, records_dropped;
};

/* --- the client's queue ------------------------------------------------------------------ */

/* Past QUEUE_MAX only when forced: a stopping client's last records (notice, stats). */
static bool queue_put(struct client *c, const char *buf, size_t len)
{
	size_t need;
	char *nq;

	if (c->qlen + len > QUEUE_MAX && !c->final)
		return false;
	if (c->qhead && c->qhead + c->qlen + len > c->qcap) {
		memmove(c->q, c->q + c->qhead, c->qlen);
		c->qhead = 0;
	}
	need = c->qhead + c->qlen + len;
	if (need > c->qcap) {
		nq = realloc(c->q, need + 65536);
		if (!nq)
			return false;
		c->q = nq;
		c->qcap = need + 65536;
	}
	memcpy(c->q + c->qhead + c->qlen, buf, len);
	c->qlen += len;
	return true;
}

/* What a client that was too slow has lost: said once it has room again, and counted. */
static void queue_notice(struct client *c)
{
	char line[160];
	int n;

	if (c->format == OUTPUT_TEXT)
		n = snprintf(line, sizeof(line),
			     "dropped %llu record(s): this reader did not keep up (queue full)\n",
			     (unsigned long long)c->dropped_unsaid);
	else
		n = snprintf(line, sizeof(line),
			     "{\"v\":" OUTPUT_RECORD_VERSION_STR
			     ",\"type\":\"dropped\",\"records\":%llu,"
			     "\"total\":%llu,"
			     "\"reason\":\"slow_reader\"}\n",
			     (unsigned long long)c->dropped_unsaid, (unsigned long long)c->dropped);
	if (queue_put(c, line, (size_t)n))
		c->dropped_unsaid = 0;
}

static ssize_t pending_write(void *cookie, const char *buf, size_t len)
{
	struct client *c = cookie;
	char *np;

	if (c->overflow || c->plen + len > QUEUE_MAX) {
		c->overflow = true;
		return (ssize_t)len;
	}
	if (c->plen + len > c->pcap) {
		np = realloc(c->pending, c->plen + len + 4096);
		if (!np) {
			c->overflow = true;
			return (ssize_t)len;
		}
		c->pending = np;
		c->pcap = c->plen + len + 4096;
	}
	memcpy(c->pending + c->plen, buf, len);
	c->plen += len;
	return (ssize_t)len;
}

/*
 * One record has been written to the client's output: queue it whole, or drop it whole.
 * Once it dropped one, a client gets records again when half its queue has drained, after
 * the notice of what it lost.
 */
static void tap_commit(void *ctx)
{
	struct client *c = ctx;

	fflush(c->f);
	if (c->dropped_unsaid && (c->final || c->qlen <= QUEUE_MAX / 2))
		queue_notice(c);
	if (c->overflow || c->dropped_unsaid || !queue_put(c, c->pending, c->plen)) {
		c->dropped++;
		c->dropped_unsaid++;
		c->a->records_dropped++;
	}
	c->plen = 0;
	c->overflow = false;
}

/* --- the processes a client follows ------------------------------------------------------ */

static size_t pid_slot(const struct client *c, pid_t pid)
{
	size_t lo = 0, hi = c->npids;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c->pids[mid] < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool tap_wants(void *ctx, pid_t pid)
{
	struct client *c = ctx;
	size_t i = pid_slot(c, pid);

	return i < c->npids && c->pids[i] == pid;
}

static void pid_add(struct client *c, pid_t pid)
{
	size_t i = pid_slot(c, pid);

	if ((i < c->npids && c->pids[i] == pid) || c->npids == CLIENT_PIDS_MAX)
		return;
	memmove(&c->pids[i + 1], &c->pids[i], (c->npids - i) * sizeof(pid_t));
	c->pids[i] = pid;
	c->npids++;
}

static void tap_fork(void *ctx, pid_t parent, pid_t child)
{
	(void)parent;
	pid_add(ctx, child);
}

static void tap_exit(void *ctx, pid_t pid)
{
	struct client *c = ctx;
	size_t i = pid_slot(c, pid);

	if (i < c->npids && c->pids[i] == pid) {
		memmove(&c->pids[i], &c->pids[i + 1], (c->npids - i - 1) * sizeof(pid_t));
		c->npids--;
	}
}

/* --- clients ----------------------------------------------------------------------------- */

static void client_free(struct client *c, const char *why)
{
	struct agent_socket *a = c->a;

	log_info("trace client on fd %d: closed (%s)", c->fd, why);
	if (c->state == CLIENT_STREAM)
		session_remove_tap(a->s, &c->tap);
	for (int i = 0; i < CLIENTS_MAX; i++) {
		if (a->clients[i] == c)
			a->clients[i] = NULL;
	}
	if (c->dropped)
		log_warn("trace client on fd %d lost %llu record(s): it did not keep up", c->fd,
			 (unsigned long long)c->dropped);
	output_free(c->out);
	if (c->f)
		fclose(c->f);
	close(c->fd);
	free(c->pending);
	free(c->q);
	free(c->pids);
	free(c);
}

static void client_stop(struct client *c)
{
	if (c->state == CLIENT_STREAM) {
		c->final = true;
		session_tap_stats(c->a->s, &c->tap);
		session_remove_tap(c->a->s, &c->tap);
	}
	c->state = CLIENT_CLOSING;
	c->closing_since = mono_ns();
	shutdown(c->fd, SHUT_RD);
}

static void reply_error(struct client *c, const char *why)
{
	json_t *o = json_pack("{s:s, s:b, s:s}", "type", "agent_hello", "ok", 0, "error", why);
	char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;

	if (line) {
		queue_put(c, line, strlen(line));
		queue_put(c, "\n", 1);
	}
	free(line);
	json_decref(o);
	c->state = CLIENT_CLOSING;
	c->closing_since = mono_ns();
}

/* Follows pid for the client, the agent too if it did not; its entry in the hello. */
static json_t *client_follow(struct client *c, pid_t pid)
{
	struct session *s = c->a->s;
	bool added = false;
	char comm[32];

	if (!session_follows(s, pid)) {
		if (session_add_pid(s, pid, " (for a trace through the socket)"))
			return NULL;
		added = true;
	}
	pid_add(c, pid);
	target_comm(pid, comm, sizeof(comm));
	return json_pack("{s:i, s:s, s:b}", "pid", (int)pid, "comm", comm, "added", added);
}

static int parse_request(struct client *c, json_t **pids, char *err, size_t errlen)
{
	json_error_t jerr;
	const char *format = "json";
	int stack = 0, payload = 0, vonly = 0;
	json_t *req;

	req = json_loadb(c->req, c->reqlen, 0, &jerr);
	if (!req) {
		snprintf(err, errlen, "the request is not JSON: %s", jerr.text);
		return -EINVAL;
	}
	*pids = NULL;
	if (json_unpack_ex(req, &jerr, 0, "{s:o, s?s, s?b, s?b, s?b}", "pids", pids, "format",
			   &format, "stack", &stack, "payload", &payload, "violations_only",
			   &vonly) ||
	    !json_is_array(*pids) || !json_array_size(*pids) ||
	    (strcmp(format, "json") && strcmp(format, "text"))) {
		snprintf(err, errlen,
			 "the request must name pids (a non-empty array) and a format "
			 "json or text");
		json_decref(req);
		return -EINVAL;
	}
	json_incref(*pids);
	c->format = strcmp(format, "text") ? OUTPUT_JSON : OUTPUT_TEXT;
	c->tap.violations_only = vonly;
	c->out = output_new(c->f, c->format, payload, stack);
	json_decref(req);
	return c->out ? 0 : -ENOMEM;
}

static void client_start(struct client *c)
{
	struct session *s = c->a->s;
	const struct session_selfcheck *sc;
	json_t *pids = NULL, *followed, *hello, *v;
	pid_t kids[DESCENDANTS_MAX];
	char err[256], *line;
	unsigned int conns;
	size_t i;
	int n;

	if (parse_request(c, &pids, err, sizeof(err))) {
		reply_error(c, err);
		return;
	}
	followed = json_array();
	json_array_foreach(pids, i, v)
	{
		pid_t pid = (pid_t)json_integer_value(v);

		if (!json_is_integer(v) || pid <= 0 || target_check_pid(pid)) {
			snprintf(err, sizeof(err), "pid %lld: no such process",
				 (long long)json_integer_value(v));
			json_decref(followed);
			json_decref(pids);
			reply_error(c, err);
			return;
		}
		json_array_append_new(followed, client_follow(c, pid));
		n = target_descendants(pid, kids, DESCENDANTS_MAX);
		for (int k = 0; k < n; k++)
			json_array_append_new(followed, client_follow(c, kids[k]));
	}
	json_decref(pids);
	/* The client's programs are the agent's: they are checked for it now. */
	session_selfcheck(s, SELFCHECK_TIMEOUT_MS, false);
	sc = session_selfcheck_state(s);
	c->tap.out = c->out;
	c->tap.wants = tap_wants;
	c->tap.fork = tap_fork;
	c->tap.exit = tap_exit;
	c->tap.commit = tap_commit;
	c->tap.ctx = c;
	/* Counted before the tap is added: the replay below writes them. */
	hello = json_pack("{s:s, s:b, s:i, s:o, s:{s:b, s:I, s:I, s:s?}}", "type", "agent_hello",
			  "ok", 1, "agent_pid", (int)getpid(), "followed", followed, "selfcheck",
			  "ok", sc->ok, "took_us", (json_int_t)(sc->last_ns / 1000), "last_ok_unix",
			  (json_int_t)sc->last_ok_unix, "reason", sc->ok ? NULL : sc->why);
	session_add_tap(s, &c->tap);
	c->state = CLIENT_STREAM;
	/* The hello goes first; the replayed conn_open records after it. */
	size_t mark = c->qlen;

	conns = session_tap_open_conns(s, &c->tap);
	json_object_set_new(hello, "conns_open", json_integer(conns));
	line = json_dumps(hello, JSON_COMPACT);
	json_decref(hello);
	if (!line || c->qlen + strlen(line) + 1 > QUEUE_MAX) {
		free(line);
		client_stop(c);
		return;
	}
	/* Insert the hello before what the replay queued. */
	size_t hl = strlen(line) + 1, tail = c->qlen - mark;
	char *tmp = malloc(tail ? tail : 1);

	if (!tmp) {
		free(line);
		client_stop(c);
		return;
	}
	memcpy(tmp, c->q + c->qhead + mark, tail);
	c->qlen = mark;
	line[hl - 1] = '\n';
	queue_put(c, line, hl);
	queue_put(c, tmp, tail);
	free(tmp);
	free(line);
	log_info("trace client on fd %d: %zu process(es), %u connection(s) open", c->fd, c->npids,
		 conns);
}

static void client_read(struct client *c)
{
	ssize_t n;
	char *nl;
	char buf[256];

	if (c->state == CLIENT_REQUEST) {
		n = recv(c->fd, c->req + c->reqlen, sizeof(c->req) - c->reqlen, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_free(c, n ? strerror(errno) : "it left before its request");
			return;
		}
		if (n < 0)
			return;
		c->reqlen += (size_t)n;
		nl = memchr(c->req, '\n', c->reqlen);
		if (nl) {
			c->reqlen = (size_t)(nl - c->req);
			client_start(c);
		} else if (c->reqlen == sizeof(c->req)) {
			reply_error(c, "request too long");
		}
		return;
	}
	/* Anything after the request (or its end) asks to stop. */
	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
		if (c->state == CLIENT_STREAM)
			client_stop(c);
	}
}

static void client_send(struct client *c)
{
	ssize_t n;

	while (c->qlen) {
		n = send(c->fd, c->q + c->qhead, c->qlen, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			client_free(c, strerror(errno));
			return;
		}
		c->qhead += (size_t)n;
		c->qlen -= (size_t)n;
		c->closing_since = mono_ns(); /* progress: a stopping client is given more time */
	}
	if (!c->qlen)
		c->qhead = 0;
	if (c->state == CLIENT_CLOSING && (!c->qlen || mono_ns() - c->closing_since > CLOSING_NS))
		client_free(c, c->qlen ? "it stopped reading" : "done");
}

static bool peer_is_root(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	return !getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) && cred.uid == 0;
}

static void accept_clients(struct agent_socket *a)
{
	struct client *c;
	int fd, slot;

	while ((fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		for (slot = 0; slot < CLIENTS_MAX && a->clients[slot]; slot++)
			;
		if (slot == CLIENTS_MAX || !peer_is_root(fd)) {
			log_warn("trace client refused: %s",
				 slot == CLIENTS_MAX ? "too many clients" : "not root");
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c)
			c->pids = calloc(CLIENT_PIDS_MAX, sizeof(pid_t));
		if (c && c->pids) {
			c->f = fopencookie(c, "w",
					   (cookie_io_functions_t){ .write = pending_write });
			/* Full buffering: a record reaches pending in few writes. */
			if (c->f)
				setvbuf(c->f, NULL, _IOFBF, 65536);
		}
		if (!c || !c->pids || !c->f) {
			if (c)
				free(c->pids);
			free(c);
			close(fd);
			continue;
		}
		c->a = a;
		c->fd = fd;
		a->clients[slot] = c;
		a->clients_total++;
	}
}

struct agent_socket *agent_socket_open(const char *path, struct session *s)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct agent_socket *a;
	char dir[sizeof(addr.sun_path)], *slash;
	mode_t old;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_err("socket path too long: %s", path);
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->s = s;
	a->listen_fd = -1;
	a->path = strdup(path);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) && errno != EEXIST)
			log_warn("failed to make %s: %s", dir, strerror(errno));
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	a->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->listen_fd < 0 || !a->path)
		goto err;
	/* A socket left by an agent that died: nobody listens on it any more. */
	unlink(path);
	old = umask(0077);
	if (bind(a->listen_fd, (struct sockaddr *)&addr, sizeof(addr))) {
		umask(old);
		goto err;
	}
	umask(old);
	if (chmod(path, 0600) || listen(a->listen_fd, CLIENTS_MAX))
		goto err;
	log_info("trace clients served on %s", path);
	return a;

err:
	log_err("failed to listen on %s: %s", path, strerror(errno));
	if (a->listen_fd >= 0)
		close(a->listen_fd);
	free(a->path);
	free(a);
	return NULL;
}

void agent_socket_close(struct agent_socket *a)
{
	if (!a)
		return;
	for (int i = 0; i < CLIENTS_MAX; i++) {
		if (!a->clients[i])
			continue;
		client_stop(a->clients[i]);
		/* One last try: the agent is going away. */
		if (a->clients[i]) {
			a->clients[i]->closing_since = 0;
			client_send(a->clients[i]);
		}
		if (a->clients[i])
			client_free(a->clients[i], "the agent stops");
	}
	close(a->listen_fd);
	unlink(a->path);
	free(a->path);
	free(a);
}

int agent_socket_pollfds(struct agent_socket *a, struct pollfd *fds, int max)
{
	int n = 0;

	if (!a || !max)
		return 0;
	fds[n++] = (struct pollfd){ .fd = a->listen_fd, .events = POLLIN };
	for (int i = 0; i < CLIENTS_MAX && n < max; i++) {
		struct client *c = a->clients[i];

		/* A client that stopped is only written to (its end reads EOF forever). */
		if (c)
			fds[n++] = (struct pollfd){
				.fd = c->fd,
				.events = (c->state != CLIENT_CLOSING ? POLLIN : 0) |
					  (c->qlen ? POLLOUT : 0),
			};
	}
	return n;
}

void agent_socket_service(struct agent_socket *a)
{
	if (!a)
		return;
	accept_clients(a);
	for (int i = 0; i < CLIENTS_MAX; i++) {
		if (a->clients[i] && a->clients[i]->state != CLIENT_CLOSING)
			client_read(a->clients[i]);
		if (a->clients[i])
			client_send(a->clients[i]);
	}
}

void agent_socket_stats(const struct agent_socket *a, struct agent_socket_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!a)
		return;
	for (int i = 0; i < CLIENTS_MAX; i++)
		out->clients += a->clients[i] != NULL;
	out->clients_total = a->clients_total;
	out->records_dropped = a->records_dropped;
}

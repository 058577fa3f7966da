// SPDX-License-Identifier: GPL-2.0
/*
 * libmicrohttpd with its internal polling thread: scrapes are rare (every 15-60 s) and small,
 * so one thread serves them all.  The connection table is shared with the reaper thread,
 * which cuts connections past their deadline, under the table's mutex; the registry has its
 * own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <microhttpd.h>

#include "clock.h"
#include "log.h"
#include "metrics_http.h"

#define REAP_EVERY_MS 250

/* One open connection, from libmicrohttpd's "started" notification to its "closed" one. */
struct conn_slot {
	bool used;
	int fd; /* libmicrohttpd's: only shut down, never closed, and only while used */
	unsigned char ip[16]; /* the peer's address, IPv4 in the first 4 bytes */
	uint64_t deadline_ns;
};

struct metrics_http {
	struct MHD_Daemon *daemon;
	struct metrics *metrics;
	uint16_t port;
	metrics_http_health_fn health;
	void *health_ctx;
	pthread_mutex_t lock; /* conns, nconns, st, stopping */
	pthread_cond_t wake;
	pthread_t reaper;
	bool reaper_started, stopping;
	struct conn_slot conns[METRICS_HTTP_MAX_CONNS];
	unsigned int nconns;
	struct metrics_http_stats st;
};

static void peer_ip(const struct sockaddr *sa, unsigned char ip[16])
{
	memset(ip, 0, 16);
	if (sa && sa->sa_family == AF_INET)
		memcpy(ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa && sa->sa_family == AF_INET6)
		memcpy(ip, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}

/* Before libmicrohttpd takes a new connection: the caps, counted. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct metrics_http *h = cls;
	unsigned char ip[16];
	unsigned int same = 0;
	enum MHD_Result ret = MHD_YES;

	(void)addrlen;
	peer_ip(addr, ip);
	pthread_mutex_lock(&h->lock);
	if (h->nconns >= METRICS_HTTP_MAX_CONNS) {
		h->st.refused_limit++;
		ret = MHD_NO;
		goto out;
	}
	for (unsigned int i = 0; i < METRICS_HTTP_MAX_CONNS; i++)
		same += h->conns[i].used && !memcmp(h->conns[i].ip, ip, sizeof(ip));
	if (same >= METRICS_HTTP_MAX_PER_IP) {
		h->st.refused_per_ip++;
		ret = MHD_NO;
	}
out:
	pthread_mutex_unlock(&h->lock);
	return ret;
}

static void notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	struct metrics_http *h = cls;
	const union MHD_ConnectionInfo *fd, *addr;
	struct conn_slot *c = *socket_context;

	pthread_mutex_lock(&h->lock);
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (c) {
			c->used = false;
			h->nconns--;
		}
		goto out;
	}
	fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	addr = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	for (unsigned int i = 0; i < METRICS_HTTP_MAX_CONNS && fd; i++) {
		if (h->conns[i].used)
			continue;
		c = &h->conns[i];
		c->used = true;
		c->fd = fd->connect_fd;
		peer_ip(addr ? addr->client_addr : NULL, c->ip);
		c->deadline_ns = mono_ns() + METRICS_HTTP_DEADLINE_S * 1000000000ULL;
		*socket_context = c;
		h->nconns++;
		h->st.accepted++;
		break;
	}
out:
	pthread_mutex_unlock(&h->lock);
}

/* A request came whole: the connection has the deadline again to be answered and reused. */
static void conn_renew(struct metrics_http *h, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_slot *c = ci ? ci->socket_context : NULL;

	if (!c)
		return;
	pthread_mutex_lock(&h->lock);
	c->deadline_ns = mono_ns() + METRICS_HTTP_DEADLINE_S * 1000000000ULL;
	pthread_mutex_unlock(&h->lock);
}

/*
 * Cuts connections past their deadline: shutdown() makes libmicrohttpd see the end of the
 * stream and close the connection itself.  The slot is used, so the fd is still its own.
 */
static void *reaper(void *arg)
{
	struct metrics_http *h = arg;
	struct timespec until;
	uint64_t now;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += REAP_EVERY_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&h->wake, &h->lock, &until);
		now = mono_ns();
		for (unsigned int i = 0; i < METRICS_HTTP_MAX_CONNS; i++) {
			struct conn_slot *c = &h->conns[i];

			if (!c->used || c->deadline_ns > now)
				continue;
			shutdown(c->fd, SHUT_RDWR);
			c->deadline_ns = UINT64_MAX;
			h->st.expired++;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

void metrics_http_set_health(struct metrics_http *h, metrics_http_health_fn fn, void *ctx)
{
	h->health = fn;
	h->health_ctx = ctx;
}

void metrics_http_stats(struct metrics_http *h, struct metrics_http_stats *st)
{
	pthread_mutex_lock(&h->lock);
	*st = h->st;
	st->open = h->nconns;
	pthread_mutex_unlock(&h->lock);
}

static int fail(char *err, size_t errlen, const char *listen, const char *why)
{
	if (errlen)
		snprintf(err, errlen, "invalid listen address \"%s\": %s", listen, why);
	return -EINVAL;
}

/* 0..65535, digits only (strtoul would take "+1", " 1" and "0x1"). */
static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int metrics_http_parse_listen(const char *listen, struct sockaddr_storage *addr, socklen_t *addrlen,
			      char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *end;
	uint16_t port;
	size_t n;

	if (!listen || !*listen)
		return fail(err, errlen, listen ? listen : "",
			    "expected HOST:PORT, e.g. " METRICS_HTTP_DEFAULT_LISTEN);
	memset(addr, 0, sizeof(*addr));
	if (listen[0] == '[') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;

		end = strchr(listen, ']');
		if (!end)
			return fail(err, errlen, listen, "missing ']' after the IPv6 address");
		n = (size_t)(end - listen - 1);
		if (end[1] != ':')
			return fail(err, errlen, listen, "expected ':PORT' after ']'");
		if (!n || n >= sizeof(host))
			return fail(err, errlen, listen, "not an IPv6 address between [ and ]");
		memcpy(host, listen + 1, n);
		host[n] = '\0';
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return fail(err, errlen, listen,
				    "not a numeric IPv6 address between [ and ] (no zone ids)");
		if (parse_port(end + 2, &port))
			return fail(err, errlen, listen,
				    "the port must be a number from 0 to 65535");
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*addrlen = sizeof(*sin6);
		return 0;
	}

	colon = strrchr(listen, ':');
	if (!colon)
		return fail(err, errlen, listen,
			    "expected HOST:PORT, e.g. " METRICS_HTTP_DEFAULT_LISTEN);
	if (memchr(listen, ':', (size_t)(colon - listen)))
		return fail(err, errlen, listen,
			    "an IPv6 address goes between brackets, e.g. [::1]:9464");
	n = (size_t)(colon - listen);
	if (n >= sizeof(host))
		return fail(err, errlen, listen, "the host must be a numeric IPv4 address");
	memcpy(host, listen, n);
	host[n] = '\0';
	/*
	 * ":PORT" is every IPv4 address, as Prometheus exporters spell it; "localhost" is the
	 * loopback address itself, never looked up (no DNS at start-up).
	 */
	if (!n)
		snprintf(host, sizeof(host), "0.0.0.0");
	else if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	{
		struct sockaddr_in *sin = (struct sockaddr_in *)addr;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return fail(err, errlen, listen,
				    "the host must be a numeric IPv4 address (a.b.c.d) or a "
				    "bracketed IPv6 address, not a name");
		if (parse_port(colon + 1, &port))
			return fail(err, errlen, listen,
				    "the port must be a number from 0 to 65535");
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*addrlen = sizeof(*sin);
	}
	return 0;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned int status, void *body,
			       size_t len, enum MHD_ResponseMemoryMode mode, const char *type)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, body, mode);
	if (!resp) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	ret = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (ret == MHD_YES && status == MHD_HTTP_METHOD_NOT_ALLOWED)
		ret = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (ret == MHD_YES)
		ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A constant reply; libmicrohttpd's buffer is not const but PERSISTENT is never written. */
static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned int status,
				    const char *text)
{
	return respond(conn, status, (void *)(uintptr_t)text, strlen(text), MHD_RESPMEM_PERSISTENT,
		       "text/plain; charset=utf-8");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct metrics_http *h = cls;
	bool metrics = !strcmp(url, "/metrics"), live = !strcmp(url, "/healthz");
	char why[256];
	size_t len;
	char *body;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_cls;
	conn_renew(h, conn);
	if (!metrics && !live && strcmp(url, "/readyz"))
		return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (!metrics) {
		if (!h->health ||
		    h->health(h->health_ctx, live ? METRICS_HTTP_LIVE : METRICS_HTTP_READY, why,
			      sizeof(why) - 1))
			return respond_text(conn, MHD_HTTP_OK, "ok\n");
		why[sizeof(why) - 2] = '\0';
		len = strlen(why);
		why[len++] = '\n';
		return respond(conn, MHD_HTTP_SERVICE_UNAVAILABLE, why, len, MHD_RESPMEM_MUST_COPY,
			       "text/plain; charset=utf-8");
	}

	body = metrics_render(h->metrics, &len);
	if (!body) {
		log_warn("failed to render metrics: %s", strerror(errno));
		return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "cannot render metrics\n");
	}
	return respond(conn, MHD_HTTP_OK, body, len, MHD_RESPMEM_MUST_FREE, METRICS_CONTENT_TYPE);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	/* Clients choose how often libmicrohttpd complains: one line per 10 s, the rest counted. */
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static uint64_t last, suppressed;
	uint64_t now = mono_ns(), skipped;
	char buf[256];
	size_t n;

	(void)cls;
	pthread_mutex_lock(&lock);
	if (last && now - last < 10000000000ULL) {
		suppressed++;
		pthread_mutex_unlock(&lock);
		return;
	}
	last = now;
	skipped = suppressed;
	suppressed = 0;
	pthread_mutex_unlock(&lock);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* libmicrohttpd ends its messages with a line feed; ours are one line without. */
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (skipped)
		log_warn("metrics server: %s (and %llu more messages in the last 10 s)", buf,
			 (unsigned long long)skipped);
	else
		log_warn("metrics server: %s", buf);
}

struct metrics_http *metrics_http_start(struct metrics *m, const char *listen, char *err,
					size_t errlen)
{
	struct sockaddr_storage addr, bound;
	socklen_t addrlen, boundlen = sizeof(bound);
	const union MHD_DaemonInfo *info;
	struct metrics_http *h;
	unsigned int flags;
	int ret;

	if (!listen)
		listen = METRICS_HTTP_DEFAULT_LISTEN;
	ret = metrics_http_parse_listen(listen, &addr, &addrlen, err, errlen);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		goto err_out;
	h->metrics = m;
	pthread_mutex_init(&h->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&h->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger first: libmicrohttpd logs with its own until it has seen it. */
	/* Its own limit as a backstop: accept_policy() refuses (and counts) first. */
	h->daemon = MHD_start_daemon(
		flags, 0, accept_policy, h, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned int)METRICS_HTTP_MAX_CONNS, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)METRICS_HTTP_DEADLINE_S, MHD_OPTION_NOTIFY_CONNECTION,
		notify_connection, h, MHD_OPTION_END);
	if (!h->daemon) {
		/* libmicrohttpd does not say why; the usual reason is the address in use. */
		if (!errno)
			errno = EADDRINUSE;
		goto err_free;
	}
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_LISTEN_FD);
	if (!info || getsockname(info->listen_fd, (struct sockaddr *)&bound, &boundlen))
		goto err_stop;
	h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port :
						      ((struct sockaddr_in *)&bound)->sin_port);
	errno = pthread_create(&h->reaper, NULL, reaper, h);
	if (errno)
		goto err_stop;
	h->reaper_started = true;
	return h;

err_stop:
	ret = errno;
	MHD_stop_daemon(h->daemon);
	errno = ret;
err_free:
	ret = errno;
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h);
	errno = ret;
err_out:
	if (errlen)
		snprintf(err, errlen, "failed to listen on %s: %s", listen, strerror(errno));
	return NULL;
}

uint16_t metrics_http_port(const struct metrics_http *h)
{
	return h->port;
}

void metrics_http_stop(struct metrics_http *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_cond_signal(&h->wake);
	pthread_mutex_unlock(&h->lock);
	if (h->reaper_started)
		pthread_join(h->reaper, NULL);
	MHD_stop_daemon(h->daemon);
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

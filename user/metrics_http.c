// SPDX-License-Identifier: GPL-2.0
/*
 * libmicrohttpd with its internal polling thread: scrapes are rare (every 15-60 s) and small,
 * so one thread serves them all, and the registry's mutex is the only shared state.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>

#include "log.h"
#include "metrics_http.h"

#define CONNECTION_LIMIT 32 /* concurrent scrapers and health checks */
#define CONNECTION_TIMEOUT 10 /* seconds: Prometheus' default scrape timeout */

struct metrics_http {
	struct MHD_Daemon *daemon;
	struct metrics *metrics;
	uint16_t port;
};

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
	if (!n)
		return fail(err, errlen, listen,
			    "no host: use 0.0.0.0 or [::] to listen on every address");
	if (n >= sizeof(host))
		return fail(err, errlen, listen, "the host must be a numeric IPv4 address");
	memcpy(host, listen, n);
	host[n] = '\0';
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
	bool metrics = !strcmp(url, "/metrics");
	size_t len;
	char *body;

	if (!metrics && strcmp(url, "/healthz"))
		return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (!metrics)
		return respond_text(conn, MHD_HTTP_OK, "ok\n");

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
	char buf[256];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* libmicrohttpd ends its messages with a line feed; ours are one line without. */
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
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
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger first: libmicrohttpd logs with its own until it has seen it. */
	h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER,
				     mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONNECTION_LIMIT,
				     MHD_OPTION_CONNECTION_TIMEOUT,
				     (unsigned int)CONNECTION_TIMEOUT, MHD_OPTION_END);
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
	return h;

err_stop:
	ret = errno;
	MHD_stop_daemon(h->daemon);
	errno = ret;
err_free:
	ret = errno;
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
	MHD_stop_daemon(h->daemon);
	free(h);
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The /metrics endpoint, served by libmicrohttpd from its own thread.
 *
 *   GET|HEAD /metrics   the registry in text format 0.0.4 (METRICS_CONTENT_TYPE), rendered
 *                       at each scrape; 500 if it cannot be rendered
 *   GET|HEAD /healthz   "ok"
 *   anything else       404 (405 for another method on those two paths)
 *
 * The listen address is "HOST:PORT" with a numeric IPv4 host or a bracketed IPv6 one
 * ("[::1]:9464"); "0.0.0.0:9464" and "[::]:9464" listen on every address (the IPv6 one on
 * IPv6 only).  Port 0 lets the kernel choose (metrics_http_port() tells which).  The default
 * is loopback only: the metrics carry no user data, but which functions violate the policy
 * is still worth not publishing to the whole network by accident.
 */
#ifndef WSAUDIT_METRICS_HTTP_H
#define WSAUDIT_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "metrics.h"

#define METRICS_HTTP_DEFAULT_LISTEN "127.0.0.1:9464"

struct metrics_http;

/*
 * Parse a listen address into *addr and *addrlen.  0, or -EINVAL with a one-line reason in err
 * (errlen bytes, may be 0) naming the address.  Host names are refused: resolving them at
 * start-up would make the bound address depend on DNS.
 */
int metrics_http_parse_listen(const char *listen, struct sockaddr_storage *addr, socklen_t *addrlen,
			      char *err, size_t errlen);

/*
 * Serve m on listen (NULL: METRICS_HTTP_DEFAULT_LISTEN) until metrics_http_stop().  NULL and
 * errno on failure, with the reason in err (a bad address, or the address in use).  m must
 * outlive the server.
 */
struct metrics_http *metrics_http_start(struct metrics *m, const char *listen, char *err,
					size_t errlen);
/* The port bound (the chosen one when the address asked for port 0). */
uint16_t metrics_http_port(const struct metrics_http *h);
/* Stop serving (waits for the server thread) and free h; NULL is a no-op. */
void metrics_http_stop(struct metrics_http *h);

#endif /* WSAUDIT_METRICS_HTTP_H */

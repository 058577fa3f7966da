/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The /metrics endpoint, served by libmicrohttpd from its own thread.
 *
 *   GET|HEAD /metrics   the registry in text format 0.0.4 (METRICS_CONTENT_TYPE), rendered
 *                       at each scrape; 500 if it cannot be rendered
 *   GET|HEAD /healthz   liveness: "ok", or 503 and the reason (the health callback's)
 *   GET|HEAD /readyz    readiness: likewise
 *   anything else       404 (405 for another method on those paths)
 *
 * Untrusted clients cannot starve it: at most METRICS_HTTP_MAX_CONNS connections, at most
 * METRICS_HTTP_MAX_PER_IP from one address (a new one past either is closed at once and
 * counted), and each connection is cut METRICS_HTTP_DEADLINE_S seconds after it was opened or
 * last answered, however slowly it trickles its request (libmicrohttpd's own timeout is reset
 * by every byte).  A probe from another address than the slow clients' is answered at once.
 *
 * The listen address is "HOST:PORT" with a numeric IPv4 host or a bracketed IPv6 one
 * ("[::1]:9464"); "0.0.0.0:9464" and "[::]:9464" listen on every address (the IPv6 one on
 * IPv6 only).  Port 0 lets the kernel choose (metrics_http_port() tells which).  The default
 * is loopback only: the metrics carry no user data, but which functions violate the policy
 * is still worth not publishing to the whole network by accident.
 */
#ifndef WSAUDIT_METRICS_HTTP_H
#define WSAUDIT_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "metrics.h"

#define METRICS_HTTP_DEFAULT_LISTEN "127.0.0.1:9464"
#define METRICS_HTTP_MAX_CONNS 256
#define METRICS_HTTP_MAX_PER_IP 16
#define METRICS_HTTP_DEADLINE_S 5

struct metrics_http;

enum metrics_http_probe {
	METRICS_HTTP_LIVE, /* /healthz */
	METRICS_HTTP_READY, /* /readyz */
};

/*
 * Answers a probe from the server's thread: true when healthy, else false with the reason in
 * why (one line).  Must be thread-safe and must not block.
 */
typedef bool (*metrics_http_health_fn)(void *ctx, enum metrics_http_probe probe, char *why,
				       size_t len);

struct metrics_http_stats {
	uint64_t accepted;
	uint64_t refused_limit; /* METRICS_HTTP_MAX_CONNS open already */
	uint64_t refused_per_ip; /* METRICS_HTTP_MAX_PER_IP open from that address already */
	uint64_t expired; /* cut at the deadline */
	unsigned int open;
};

/*
 * Parse a listen address into *addr and *addrlen.  0, or -EINVAL with a one-line reason in err
 * (errlen bytes, may be 0) naming the address.  ":PORT" is 0.0.0.0:PORT and "localhost:PORT"
 * 127.0.0.1:PORT; other host names are refused: resolving them at start-up would make the
 * bound address depend on DNS.
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
/* Without it (or with fn NULL) both probes answer "ok".  Set before clients come. */
void metrics_http_set_health(struct metrics_http *h, metrics_http_health_fn fn, void *ctx);
void metrics_http_stats(struct metrics_http *h, struct metrics_http_stats *st);
/* The port bound (the chosen one when the address asked for port 0). */
uint16_t metrics_http_port(const struct metrics_http *h);
/* Stop serving (waits for the server thread) and free h; NULL is a no-op. */
void metrics_http_stop(struct metrics_http *h);

#endif /* WSAUDIT_METRICS_HTTP_H */

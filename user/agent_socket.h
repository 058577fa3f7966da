/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The agent's local socket: `wsaudit trace` on the node takes its records from the running
 * agent instead of loading programs of its own (docs/trace-agent.md has the protocol).
 * A UNIX stream socket, root only (0600 in a 0700 directory).  Each client names the
 * processes it wants; the agent follows them (and their descendants) if it did not already,
 * and sends the client, in the client's format, every record about them: conn_open for the
 * connections already open first, then frames, connection and process records as they come.
 * Each client's queue is bounded: a slow client loses whole records, told by a counted
 * `dropped` record, and never blocks the agent.
 */
#ifndef WSAUDIT_AGENT_SOCKET_H
#define WSAUDIT_AGENT_SOCKET_H

#include <poll.h>
#include <stdint.h>

#include "trace_opts.h" /* TRACE_AGENT_SOCKET: where trace looks for it */

struct session;
struct agent_socket;

/* Listens on path (its directory made 0700 if missing); NULL with the reason logged. */
struct agent_socket *agent_socket_open(const char *path, struct session *s);
/* Ends every client (each gets its final stats) and removes the socket. */
void agent_socket_close(struct agent_socket *a);
/* The fds to poll, written to fds (at most max).  How many. */
int agent_socket_pollfds(struct agent_socket *a, struct pollfd *fds, int max);
/* Accepts, reads requests and sends what is queued; never blocks. */
void agent_socket_service(struct agent_socket *a);

struct agent_socket_stats {
	uint64_t clients; /* connected now */
	uint64_t clients_total;
	uint64_t records_dropped; /* records lost by slow clients */
};

void agent_socket_stats(const struct agent_socket *a, struct agent_socket_stats *out);

#endif /* WSAUDIT_AGENT_SOCKET_H */

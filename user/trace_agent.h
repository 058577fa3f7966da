/* SPDX-License-Identifier: GPL-2.0 */
/*
 * `wsaudit trace` through the node's agent: the client end of user/agent_socket.c.  The agent
 * already has the programs loaded and the connections' state; the trace names its processes
 * and prints what the agent sends it (docs/trace-agent.md).
 */
#ifndef WSAUDIT_TRACE_AGENT_H
#define WSAUDIT_TRACE_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "trace_opts.h"

/*
 * Connected to the agent's socket: the fd, or -errno (-ENOENT or -ECONNREFUSED: no agent
 * runs).
 */
int trace_agent_connect(const char *path);

struct trace_agent_hello {
	pid_t agent_pid;
	unsigned int nfollowed, nadded;
	char followed[1024]; /* "pid comm, pid comm, ..." for the banner */
	unsigned int conns_open;
	bool selfcheck_ok;
	double selfcheck_ms;
	char why[256]; /* a refusal's or a failed self-check's reason */
};

/*
 * Sends the request for the pids and the output options, and reads the agent's answer.
 * 0 (the agent follows them and checked itself: see h->selfcheck_ok), or -errno with the
 * reason in h->why.
 */
int trace_agent_start(int fd, const struct trace_opts *o, const pid_t *pids, size_t npids,
		      struct trace_agent_hello *h);
/*
 * Copies the agent's records to out until *stop, or until duration_s (0: none); then asks
 * the agent to stop and copies the rest (its final stats).  0, or -EPIPE when the agent went
 * away first.
 */
int trace_agent_stream(int fd, FILE *out, double duration_s, volatile sig_atomic_t *stop);

#endif /* WSAUDIT_TRACE_AGENT_H */

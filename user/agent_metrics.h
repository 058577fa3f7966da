/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The agent's Prometheus metrics: the session's totals copied into the registry of
 * user/metrics.c, and each judged frame counted as it passes, served on /metrics by
 * user/metrics_http.c.  Every function accepts NULL (metrics switched off).
 *
 * Its /healthz means "the collector loop is turning and the BPF programs are attached and
 * see": the loop's last call of agent_metrics_update() is its heartbeat, and liveness fails
 * once it is older than AGENT_STALL_S, when the programs are detached, or when the last
 * self-check (session_selfcheck()) did not see its own write.  /readyz answers ok from the
 * first attach on.
 */
#ifndef WSAUDIT_AGENT_METRICS_H
#define WSAUDIT_AGENT_METRICS_H

#include <stdbool.h>

#define AGENT_STALL_S 10

struct session;
struct agent_metrics;
struct vlog_stats;

/* Serves /metrics on listen ("HOST:PORT"); NULL with the reason on stderr. */
struct agent_metrics *agent_metrics_start(const char *listen);
void agent_metrics_stop(struct agent_metrics *m);
/* Counts the session's frames from now on; detach before the session closes. */
void agent_metrics_attach(struct agent_metrics *m, struct session *s);
void agent_metrics_detach(struct agent_metrics *m);
/*
 * The loop's heartbeat, and the session's totals copied into the registry once a second:
 * call it at every turn of the loop.
 */
void agent_metrics_update(struct agent_metrics *m, struct session *s, const struct vlog_stats *log);
struct agent_socket_stats;
/* The trace clients of the agent's socket (user/agent_socket.h). */
void agent_metrics_trace_clients(struct agent_metrics *m, const struct agent_socket_stats *st);
void agent_metrics_policy_reload(struct agent_metrics *m, bool ok);

#endif /* WSAUDIT_AGENT_METRICS_H */

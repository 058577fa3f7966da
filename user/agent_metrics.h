/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The agent's Prometheus metrics: the session's totals copied into the registry of
 * user/metrics.c, and each judged frame counted as it passes, served on /metrics by
 * user/metrics_http.c.  Every function accepts NULL (metrics switched off).
 */
#ifndef WSAUDIT_AGENT_METRICS_H
#define WSAUDIT_AGENT_METRICS_H

#include <stdbool.h>

struct session;
struct agent_metrics;
struct vlog_stats;

/* Serves /metrics on listen ("HOST:PORT"); NULL with the reason on stderr. */
struct agent_metrics *agent_metrics_start(const char *listen);
void agent_metrics_stop(struct agent_metrics *m);
/* Counts the session's frames from now on; detach before the session closes. */
void agent_metrics_attach(struct agent_metrics *m, struct session *s);
void agent_metrics_detach(struct agent_metrics *m);
/* Copies the session's totals into the registry (cheap enough to call every second). */
void agent_metrics_update(struct agent_metrics *m, struct session *s, const struct vlog_stats *log);
struct agent_socket_stats;
/* The trace clients of the agent's socket (user/agent_socket.h). */
void agent_metrics_trace_clients(struct agent_metrics *m, const struct agent_socket_stats *st);
void agent_metrics_policy_reload(struct agent_metrics *m, bool ok);

#endif /* WSAUDIT_AGENT_METRICS_H */

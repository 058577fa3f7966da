// SPDX-License-Identifier: GPL-2.0
/*
 * Serves the collector's metric families (metrics_wsaudit_init) over HTTP, filled with the
 * figures of a short agent run, for the scrape tests: promtool, a real Prometheus, the
 * dashboards' metric names.  Violations come from the command line, so the test that checks
 * what Prometheus reports is the one that planted them.
 *
 *   metrics_serve [-l HOST:PORT] [[-w NAMESPACE/WORKLOAD] -v RULE,ORIGIN,COUNT]...
 *
 * -w sets the k8s_namespace and k8s_workload of the violations planted after it ("none").
 *
 * Prints "listening on PORT" once it serves, and stops on SIGTERM or SIGINT with exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "metrics_http.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

/* The self-metrics of a run that followed two processes through a burst of traffic. */
static int fill(struct metrics_wsaudit *w)
{
	static const struct {
		const char *opcode;
		uint64_t n;
	} frames[] = { { "text", 18342 }, { "binary", 1207 }, { "close", 96 },
		       { "ping", 311 },	  { "pong", 4 },      { "continuation", 12 } };
	int err = 0;
	size_t i;

	for (i = 0; i < sizeof(frames) / sizeof(frames[0]) && !err; i++)
		err = metrics_add1(w->frames, frames[i].opcode, frames[i].n);
	err = err ?: metrics_add(w->events, NULL, 40127);
	err = err ?: metrics_add(w->captured_bytes, NULL, 9650233);
	err = err ?: metrics_add1(w->drops, "ringbuf_full", 17);
	err = err ?: metrics_add1(w->drops, "read_fault", 2);
	err = err ?: metrics_add1(w->drops, "cap_exceeded", 40);
	err = err ?: metrics_add1(w->dropped_bytes, "cap_exceeded", 2621440);
	err = err ?: metrics_add1(w->dropped_bytes, "lost", 70312);
	err = err ?: metrics_gauge_set1(w->probes, "attached", 14);
	err = err ?: metrics_gauge_set1(w->probes, "failed", 1);
	err = err ?: metrics_gauge_set(w->processes, NULL, 2);
	err = err ?: metrics_gauge_set(w->connections, NULL, 37);
	err = err ?: metrics_add1(w->connections_total, "handshake", 96);
	err = err ?: metrics_add1(w->connections_total, "adopted", 3);
	err = err ?: metrics_add1(w->unattributed, "deferred_write", 21);
	err = err ?: metrics_add1(w->unattributed, "stack_lost", 5);
	err = err ?: metrics_add1(w->unattributed, "no_application_frames", 9);
	err = err ?: metrics_add(w->attributed, NULL, 19937);
	err = err ?: metrics_add1(w->messages, "ok", 19480);
	err = err ?: metrics_add1(w->messages, "truncated", 31);
	err = err ?: metrics_add1(w->messages, "inflate_error", 1);
	err = err ?: metrics_add(w->parser_desyncs, NULL, 1);
	err = err ?: metrics_add(w->truncated_frames, NULL, 31);
	err = err ?: metrics_add(w->runs_completed, NULL, 412);
	err = err ?: metrics_gauge_set(w->runs_open, NULL, 9);
	err = err ?: metrics_add1(w->runs_incomplete, "conn_closed", 3);
	err = err ?: metrics_add1(w->runs_incomplete, "timeout", 1);
	err = err ?: metrics_add1(w->runs_out_of_order, "start_after_end", 1);
	err = err ?: metrics_add(w->runs_missing_event, NULL, 2);
	err = err ?: metrics_add1(w->runs_unjudged, "message_unreadable", 1);
	err = err ?: metrics_add1(w->policy_reloads, "ok", 2);
	err = err ?: metrics_add1(w->policy_reloads, "error", 1);
	err = err ?: metrics_gauge_set(w->policy_last_reload_success, NULL, 1);
	for (i = 0; i < 3 && !err; i++)
		err = metrics_wsaudit_lost(w, "ProgressStreamer.stream_steps", "agent_thinking");
	err = err ?: metrics_wsaudit_lost(w, NULL, NULL);
	err = err   ?:
		      metrics_wsaudit_abnormal_close(w, 1011,
						     "WebSocketSSOTRouter._close_on_agent_error");
	err = err ?: metrics_wsaudit_abnormal_close(w, 0, NULL);
	for (i = 0; i < 2 && !err; i++)
		err = metrics_wsaudit_queued(w, "produce", 1004);
	return err;
}

static char plant_ns[64] = "none", plant_workload[256] = "none";

/* NAMESPACE/WORKLOAD */
static int plant_where(const char *arg)
{
	const char *slash = strchr(arg, '/');

	if (!slash || slash == arg || !slash[1] || (size_t)(slash - arg) >= sizeof(plant_ns) ||
	    strlen(slash + 1) >= sizeof(plant_workload))
		return -EINVAL;
	snprintf(plant_ns, sizeof(plant_ns), "%.*s", (int)(slash - arg), arg);
	snprintf(plant_workload, sizeof(plant_workload), "%s", slash + 1);
	return 0;
}

/* The agent's own process: 2.5 s of CPU, 60 MiB resident. */
static int fill_process(struct metrics *reg)
{
	struct metrics_process p;

	if (metrics_process_init(reg, &p))
		return -errno;
	return metrics_counter_set(p.cpu, NULL, 2500000)	   ?:
		       metrics_gauge_set(p.rss, NULL, 62914560)	   ?:
		       metrics_gauge_set(p.vsize, NULL, 268435456) ?:
		       metrics_gauge_set(p.fds, NULL, 23)	   ?:
		       metrics_gauge_set(p.max_fds, NULL, 1048576) ?:
		       metrics_gauge_set(p.start, NULL, 1767225600);
}

/* RULE,ORIGIN,COUNT; the origin may contain commas (it runs to the last one). */
static int plant(struct metrics_wsaudit *w, const char *arg)
{
	char *copy = strdup(arg), *origin, *count, *end;
	unsigned long long n, i;
	int err = -EINVAL;

	if (!copy)
		return -ENOMEM;
	origin = strchr(copy, ',');
	count = strrchr(copy, ',');
	if (!origin || origin == count)
		goto out_free;
	*origin++ = '\0';
	*count++ = '\0';
	errno = 0;
	n = strtoull(count, &end, 10);
	if (errno || end == count || *end)
		goto out_free;
	for (i = 0, err = 0; i < n && !err; i++)
		err = metrics_wsaudit_violation(w, copy, origin, plant_ns, plant_workload);
out_free:
	free(copy);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "violation", required_argument, NULL, 'v' },
		{ "workload", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen = METRICS_HTTP_DEFAULT_LISTEN;
	struct metrics_http *http = NULL;
	struct metrics_wsaudit w;
	int ret = EXIT_FAILURE, opt, err;
	struct sigaction sa = { .sa_handler = on_signal };
	char why[256];

	err = metrics_wsaudit_init(&w, "0.0.0-test", "golden");
	if (err) {
		fprintf(stderr, "metrics_serve: failed to create the metrics: %s\n",
			strerror(-err));
		return EXIT_FAILURE;
	}
	err = fill(&w);
	err = err ?: fill_process(w.reg);
	while (!err && (opt = getopt_long(argc, argv, "l:v:w:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen = optarg;
			break;
		case 'v':
			err = plant(&w, optarg);
			if (err)
				fprintf(stderr, "metrics_serve: bad violation \"%s\": %s\n", optarg,
					strerror(-err));
			break;
		case 'w':
			err = plant_where(optarg);
			if (err)
				fprintf(stderr, "metrics_serve: bad workload \"%s\"\n", optarg);
			break;
		default:
			err = -EINVAL;
		}
	}
	if (err || optind != argc)
		goto out_fini;

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	http = metrics_http_start(w.reg, listen, why, sizeof(why));
	if (!http) {
		fprintf(stderr, "metrics_serve: %s\n", why);
		goto out_fini;
	}
	printf("listening on %u\n", metrics_http_port(http));
	fflush(stdout);
	while (!stop)
		pause();
	ret = EXIT_SUCCESS;
	metrics_http_stop(http);
out_fini:
	metrics_wsaudit_fini(&w);
	return ret;
}

/* SPDX-License-Identifier: GPL-2.0 */
/* The options of `wsaudit trace`, parsed without side effects so tests can drive it. */
#ifndef WSAUDIT_TRACE_OPTS_H
#define WSAUDIT_TRACE_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "filter.h"
#include "output_format.h"
#include "podinfo.h"

#define TRACE_MAX_PIDS 256
#define TRACE_MAX_GLOBS 32

struct trace_opts {
	pid_t pids[TRACE_MAX_PIDS];
	size_t npids;
	char *exe_globs[TRACE_MAX_GLOBS];
	size_t nglobs;
	/* --pod NS/NAME [--container NAME] | --container-id ID | --namespace NS */
	struct pod_selector pods;
	bool by_pod; /* one of them was given */
	bool ns_given; /* --namespace (pods.namespace is also set by --pod) */
	char pod_buf[PODINFO_NAMESPACE_MAX + 1 + PODINFO_POD_NAME_MAX + 1];
	char id_buf[PODINFO_ID_LEN + 1];
	const char *bundle_root; /* NULL: containerd's (PODINFO_BUNDLE_ROOT) */
	enum output_format format;
	bool wide; /* --wide: text with every field whole */
	double duration_s; /* 0: until interrupted */
	double stats_interval_s;
	bool payload;
	bool stack;
	bool capture_only; /* no stack walk: frames without attribution */
	bool violations_only;
	bool show_identities;
	const char *identity_key; /* --identity-key FILE */
	const char *user; /* --user ID: only this user's connections and messages */
	struct frame_filter filter; /* --type, --function, --peer, -n */
	const char *policy_path; /* NULL: the built-in policy */
	bool help;
	int verbose;
	size_t ringbuf_size;
	uint64_t write_cap;
	/* --write DIR: each connection's bytes to files (user/streamwrite.h); NULL: none. */
	const char *write_dir;
	uint64_t write_conn_max, write_run_max; /* 0: the defaults */
	bool standalone; /* never through the agent */
	const char *agent_socket;
};

/* Where `wsaudit agent` serves trace clients (user/agent_socket.h). */
#define TRACE_AGENT_SOCKET "/run/wsaudit/agent.sock"

/*
 * Fills opts from argv (argv[0] is "trace").  Returns 0, or -EINVAL with a message for the
 * user in err.  Does not print or exit.
 */
int trace_parse_args(int argc, char **argv, struct trace_opts *opts, char *err, size_t errlen);
void trace_usage(FILE *out);

/*
 * A duration: seconds ("90", "2.5"), or numbers with units ms, s, m, h, in any sequence
 * ("90s", "5m", "1h30m", "1500ms").  0, or -EINVAL.
 */
int parse_duration(const char *s, double *seconds);

#endif /* WSAUDIT_TRACE_OPTS_H */

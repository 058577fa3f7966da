/* SPDX-License-Identifier: GPL-2.0 */
/* The options of `wsaudit agent`, parsed without side effects so tests can drive it. */
#ifndef WSAUDIT_AGENT_OPTS_H
#define WSAUDIT_AGENT_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "trace_opts.h" /* TRACE_AGENT_SOCKET: the default --socket */
#include "vlog.h"

#define AGENT_DEFAULT_METRICS_ADDR "127.0.0.1:9464"

struct agent_opts {
	const char *policy_path;
	const char *identity_key;
	struct vlog_opts log;
	const char *metrics_addr;
	const char *socket_path; /* "none": no trace clients */
	const char *bundle_root; /* containerd's task state; NULL: PODINFO_BUNDLE_ROOT */
	double stats_interval_s;
	int verbose;
	bool help;
};

/*
 * Fills opts from argv (argv[0] is "agent").  Returns 0, or -EINVAL with a message for the
 * user in err.  Does not print or exit.
 */
int agent_parse_args(int argc, char **argv, struct agent_opts *opts, char *err, size_t errlen);
void agent_usage(FILE *out);

#endif /* WSAUDIT_AGENT_OPTS_H */

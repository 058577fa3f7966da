/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The self-check's probe: a child process of this instance that, once released, writes a
 * marker of its own to a loopback TCP connection.  The session traces that child only for
 * this purpose and expects to see the marker come back through its own programs and ring
 * buffer: a capture path that does not work is then an error, not silence.
 *
 * A child, not a thread: tracing is per process, and tracing this process would put every
 * TCP write of its own (the metrics endpoint) through the programs.
 */
#ifndef WSAUDIT_SELFCHECK_H
#define WSAUDIT_SELFCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SELFCHECK_MARKER_LEN 32

struct selfcheck_probe {
	pid_t pid; /* 0: none */
	int listen_fd;
	int go_fd; /* write end of the pipe the child waits on */
	char marker[SELFCHECK_MARKER_LEN]; /* "wsaudit-selfcheck-" and a random tail */
};

/*
 * Forks the child, which connects to a loopback listener and then waits to be released.
 * 0 or -errno (nothing is left behind).
 */
int selfcheck_probe_start(struct selfcheck_probe *p);
/* Releases the child: it writes the marker, closes its socket and exits.  0 or -errno. */
int selfcheck_probe_go(struct selfcheck_probe *p);
/* Reaps the child (killing it if it is still there) and closes what the probe holds. */
void selfcheck_probe_end(struct selfcheck_probe *p);
/* Whether buf holds the probe's marker. */
bool selfcheck_marker_in(const struct selfcheck_probe *p, const void *buf, size_t len);

#endif /* WSAUDIT_SELFCHECK_H */

/* SPDX-License-Identifier: GPL-2.0 */
/* Which processes to follow: PIDs given by the user, and executables matching globs. */
#ifndef WSAUDIT_TARGETS_H
#define WSAUDIT_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "podinfo.h"

/* 0 when pid names a live process, -ESRCH or another -errno otherwise. */
int target_check_pid(pid_t pid);
/* The process's executable path (resolved), 0 or -errno. */
int target_exe_path(pid_t pid, char *buf, size_t size);
/* The process's command name, "?" when it cannot be read. */
void target_comm(pid_t pid, char *buf, size_t size);
bool target_exe_matches(const char *path, char *const *globs, size_t nglobs);
/*
 * Calls fn for every live process (other than this one) whose executable matches a glob.
 * Returns the number of matches.
 */
int target_scan_exe(char *const *globs, size_t nglobs, void (*fn)(void *ctx, pid_t pid), void *ctx);

/*
 * Calls fn for every live process (other than this one) in a container sel selects, with
 * what was found of its container (pods' names from the bundles under bundle_root, NULL:
 * containerd's).  Processes in a pod's container whose names could not be read cannot be
 * matched by name: they are counted by reason in unresolved[PODINFO__COUNT] (may be NULL).
 * Returns the number of matches, or -errno.
 */
int target_scan_pods(struct podinfo_cache *cache, const char *bundle_root,
		     const struct pod_selector *sel,
		     void (*fn)(void *ctx, pid_t pid, const struct podinfo *pi), void *ctx,
		     unsigned int *unresolved);

/*
 * The processes of other PID namespaces that are known as pid inside theirs (NSpid in
 * /proc/PID/status) while their host pid differs: a pid copied from inside a container.
 * At most max host pids in out; returns how many there are, or -errno.
 */
int target_nspid_aliases(pid_t pid, pid_t *out, int max);

/*
 * The live descendants of pid (children, their children, ...), at most max, parents before
 * their children, from the parent pids in /proc/PID/stat.  Returns how many, or -errno.
 */
int target_descendants(pid_t pid, pid_t *out, int max);
/* The established TCP connections the process holds (its socket fds in /proc/PID/net/tcp*). */
int target_count_tcp(pid_t pid);

/*
 * The addresses of the TCP socket with inode ino, from /proc/PID/net/tcp{,6}: for a
 * connection whose announcement from the kernel was lost.  0 or -ENOENT.
 */
int target_sock_addrs(pid_t pid, unsigned long long ino, char *local, size_t lsize, char *peer,
		      size_t psize);

#endif /* WSAUDIT_TARGETS_H */

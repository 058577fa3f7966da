// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "targets.h"

int target_check_pid(pid_t pid)
{
	char path[64];

	if (pid <= 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (access(path, F_OK))
		return -ESRCH;
	return 0;
}

int target_exe_path(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

void target_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "re");
	if (!f || !fgets(buf, size, f)) {
		snprintf(buf, size, "?");
	} else {
		buf[strcspn(buf, "\n")] = '\0';
	}
	if (f)
		fclose(f);
}

bool target_exe_matches(const char *path, char *const *globs, size_t nglobs)
{
	for (size_t i = 0; i < nglobs; i++) {
		if (!fnmatch(globs[i], path, 0))
			return true;
	}
	return false;
}

int target_scan_exe(char *const *globs, size_t nglobs, void (*fn)(void *ctx, pid_t pid), void *ctx)
{
	char exe[4096];
	struct dirent *d;
	int matches = 0;
	pid_t pid;
	DIR *dir;

	dir = opendir("/proc");
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		pid = (pid_t)strtol(d->d_name, NULL, 10);
		if (pid == getpid() || target_exe_path(pid, exe, sizeof(exe)))
			continue;
		if (target_exe_matches(exe, globs, nglobs)) {
			fn(ctx, pid);
			matches++;
		}
	}
	closedir(dir);
	return matches;
}

/* "0100007F:1F90" (IPv4) or 32 hex digits (IPv6): words in host order, then the port. */
static int format_proc_addr(const char *hex, bool v6, char *out, size_t size)
{
	unsigned int words[4], port;
	char ip[INET6_ADDRSTRLEN];
	int n = v6 ? 4 : 1;

	for (int i = 0; i < n; i++) {
		if (sscanf(hex + 8 * i, "%8x", &words[i]) != 1)
			return -EINVAL;
	}
	if (sscanf(hex + 8 * n, ":%x", &port) != 1)
		return -EINVAL;
	if (!inet_ntop(v6 ? AF_INET6 : AF_INET, words, ip, sizeof(ip)))
		return -EINVAL;
	snprintf(out, size, v6 ? "[%s]:%u" : "%s:%u", ip, port);
	return 0;
}

int target_sock_addrs(pid_t pid, unsigned long long ino, char *local, size_t lsize, char *peer,
		      size_t psize)
{
	static const char *const files[] = { "tcp", "tcp6" };
	char path[64], laddr[64], raddr[64], *line = NULL;
	unsigned long long inode;
	size_t cap = 0;
	int found = -ENOENT;
	FILE *f;

	for (int i = 0; i < 2 && found; i++) {
		snprintf(path, sizeof(path), "/proc/%d/net/%s", pid, files[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (found && getline(&line, &cap, f) > 0) {
			if (sscanf(line, "%*d: %63s %63s %*x %*s %*s %*s %*d %*d %llu", laddr,
				   raddr, &inode) != 3 ||
			    inode != ino)
				continue;
			if (!format_proc_addr(laddr, i, local, lsize) &&
			    !format_proc_addr(raddr, i, peer, psize))
				found = 0;
		}
		fclose(f);
	}
	free(line);
	return found;
}

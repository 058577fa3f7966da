// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

int target_scan_pods(struct podinfo_cache *cache, const char *bundle_root,
		     const struct pod_selector *sel,
		     void (*fn)(void *ctx, pid_t pid, const struct podinfo *pi), void *ctx,
		     unsigned int *unresolved)
{
	struct podinfo pi;
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
		if (pid == getpid())
			continue;
		podinfo_lookup(cache, NULL, bundle_root, pid, &pi);
		if (podinfo_selected(sel, &pi)) {
			fn(ctx, pid, &pi);
			matches++;
		} else if (unresolved && pi.kind == PODINFO_CONTAINER && pi.pod_uid[0] &&
			   pi.reason != PODINFO_OK) {
			unresolved[pi.reason]++;
		}
	}
	closedir(dir);
	return matches;
}

/* The pids of "NSpid:\t<host>\t...\t<innermost>" in a status file; how many, or -1. */
static int status_nspids(pid_t pid, pid_t *v, int max)
{
	char path[64], line[256];
	int n = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = line + 6, *end;

		if (strncmp(line, "NSpid:", 6) != 0)
			continue;
		for (n = 0; n < max; n++) {
			long x = strtol(p, &end, 10);

			if (end == p)
				break;
			v[n] = (pid_t)x;
			p = end;
		}
		break;
	}
	fclose(f);
	return n;
}

int target_nspid_aliases(pid_t pid, pid_t *out, int max)
{
	pid_t ns[32];
	struct dirent *d;
	int found = 0, n;
	pid_t host;
	DIR *dir;

	dir = opendir("/proc");
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		host = (pid_t)strtol(d->d_name, NULL, 10);
		if (host == pid)
			continue;
		n = status_nspids(host, ns, 32);
		/* Innermost last; a process of the host's namespace only has one. */
		if (n < 2 || ns[n - 1] != pid)
			continue;
		if (found < max)
			out[found] = host;
		found++;
	}
	closedir(dir);
	return found;
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

/* The parent pid from /proc/PID/stat; the command name in parentheses may hold anything. */
static pid_t read_ppid(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd, ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

int target_descendants(pid_t pid, pid_t *out, int max)
{
	struct proc_parent {
		pid_t pid, ppid;
	} *all = NULL, *grown;
	size_t nall = 0, cap = 0;
	struct dirent *d;
	int n = 0;
	DIR *dir;

	dir = opendir("/proc");
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		if (nall == cap) {
			cap = cap ? 2 * cap : 256;
			grown = realloc(all, cap * sizeof(*all));
			if (!grown) {
				closedir(dir);
				free(all);
				return -ENOMEM;
			}
			all = grown;
		}
		all[nall].pid = (pid_t)strtol(d->d_name, NULL, 10);
		all[nall].ppid = read_ppid(all[nall].pid);
		if (all[nall].ppid > 0)
			nall++;
	}
	closedir(dir);
	/* Breadth first: out[] is the queue, so parents come before their children. */
	for (int head = -1; head < n; head++) {
		pid_t parent = head < 0 ? pid : out[head];

		for (size_t i = 0; i < nall && n < max; i++) {
			if (all[i].ppid == parent)
				out[n++] = all[i].pid;
		}
	}
	free(all);
	return n;
}

static int cmp_ull(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;

	return x < y ? -1 : x > y;
}

/* The inodes of the process's sockets, sorted; how many (*out to free), or -errno. */
static int socket_inodes(pid_t pid, unsigned long long **out)
{
	unsigned long long *v = NULL, *grown;
	char path[300], link[64];
	size_t n = 0, cap = 0;
	struct dirent *d;
	ssize_t len;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, d->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			grown = realloc(v, cap * sizeof(*v));
			if (!grown)
				break;
			v = grown;
		}
		if (sscanf(link, "socket:[%llu]", &v[n]) == 1)
			n++;
	}
	closedir(dir);
	qsort(v, n, sizeof(*v), cmp_ull);
	*out = v;
	return (int)n;
}

int target_count_tcp(pid_t pid)
{
	static const char *const files[] = { "tcp", "tcp6" };
	unsigned long long *inos = NULL, inode;
	char path[64], *line = NULL;
	int ninos, found = 0;
	unsigned int state;
	size_t cap = 0;
	FILE *f;

	ninos = socket_inodes(pid, &inos);
	if (ninos <= 0) {
		free(inos);
		return ninos;
	}
	/* One pass over each table of the process's network namespace. */
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/proc/%d/net/%s", pid, files[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (getline(&line, &cap, f) > 0) {
			if (sscanf(line, "%*d: %*s %*s %x %*s %*s %*s %*d %*d %llu", &state,
				   &inode) == 2 &&
			    state == 1 /* TCP_ESTABLISHED */ &&
			    bsearch(&inode, inos, ninos, sizeof(*inos), cmp_ull))
				found++;
		}
		fclose(f);
	}
	free(line);
	free(inos);
	return found;
}

/* SPDX-License-Identifier: GPL-2.0 */
/* The files a process maps executable, as /proc/PID/maps lists them. */
#ifndef WSAUDIT_PROCMAPS_H
#define WSAUDIT_PROCMAPS_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * For each distinct file (device, inode) that pid maps executable and match(name) accepts
 * (name: the path as maps shows it, in the process's mount namespace; match NULL: every
 * file), at most max of them: fn gets a path the kernel can open from any mount namespace
 * (/proc/PID/map_files/...), name, and the file's device and inode.  Returns how many, or
 * -errno.
 */
int procmaps_each_file(pid_t pid, bool (*match)(const char *name), int max,
		       void (*fn)(void *ctx, const char *path, const char *name, dev_t dev,
				  ino_t ino),
		       void *ctx);

#endif /* WSAUDIT_PROCMAPS_H */

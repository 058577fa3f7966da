/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where a process's zlib is, for the probes on deflate (bpf/zlib.bpf.c) that tell which
 * compressor ended each message of an adopted connection (docs/adoption.md).
 */
#ifndef WSAUDIT_ZFLUSH_H
#define WSAUDIT_ZFLUSH_H

#include <sys/types.h>

/*
 * For each zlib shared library (libz.so*) mapped by pid: a path the kernel can open from any
 * mount namespace (/proc/PID/map_files/...) and the file's device and inode.  Returns how
 * many, or -errno.
 */
int zflush_find_libz(pid_t pid, void (*fn)(void *ctx, const char *path, dev_t dev, ino_t ino),
		     void *ctx);

#endif /* WSAUDIT_ZFLUSH_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Finding where Python code hands data to a transport that sends it later.
 *
 * uvloop queues every transport.write() and flushes the queue from the event loop, so at the
 * writev that sends a WebSocket frame the function that wrote it is no longer on the stack.
 * Its transports are Cython classes whose write methods are ordinary PyMethodDef entries,
 * {"write", function, METH_O, doc}, even in stripped builds: this finds those functions in
 * the extension's ELF file through its relative relocations, so a uprobe can record the
 * stack when the object is handed over (bpf/pystack.bpf.c).
 */
#ifndef WSAUDIT_UVHOOK_H
#define WSAUDIT_UVHOOK_H

#include <stdbool.h>
#include <sys/types.h>

#define UVHOOK_MAX_SITES 8

struct uvhook_site {
	unsigned long long file_offset; /* of the method's first instruction */
	unsigned long long vaddr;
};

/*
 * Scans an ELF shared object for METH_O methods named @method.  Returns the number of sites
 * found (at most max), or -errno (-ENOEXEC: not a supported ELF file).
 */
int uvhook_scan_fd(int fd, const char *method, struct uvhook_site *out, int max);

/* True for a path that names uvloop's event loop extension (uvloop/loop.*.so). */
bool uvhook_is_uvloop(const char *path);

/*
 * For each uvloop extension mapped by pid: its write methods.  fn gets a path the kernel can
 * open from any mount namespace (/proc/PID/map_files/...), the file's device and inode (to
 * attach once per file), and a method's file offset.  Returns the number of sites, or -errno.
 */
int uvhook_find_in_process(pid_t pid,
			   void (*fn)(void *ctx, const char *path, dev_t dev, ino_t ino,
				      unsigned long long offset),
			   void *ctx);

/*
 * The same for uvloop installed where the process's interpreter would import it from (the
 * distribution's and the interpreter prefix's site directories, seen through
 * /proc/PID/root), before it is imported: a uprobe on the file then covers the process from
 * its first write.  Returns the number of sites, or -errno.
 */
int uvhook_find_installed(pid_t pid,
			  void (*fn)(void *ctx, const char *path, dev_t dev, ino_t ino,
				     unsigned long long offset),
			  void *ctx);

#endif /* WSAUDIT_UVHOOK_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where a process's TLS library is, for the probes that read the plaintext of the TLS
 * connections it terminates itself (bpf/tls.bpf.c, docs/tls.md): the libssl it maps, or
 * would load (Python's _ssl is imported lazily), and, when there is none, whether an OpenSSL
 * is linked into one of its binaries, which the probes do not cover.
 */
#ifndef WSAUDIT_TLSHOOK_H
#define WSAUDIT_TLSHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The functions probed in libssl, entry and return (SSL_free: entry only). */
#define TLSHOOK_FUNCS(X)                                         \
	X(SSL_write, tls_write_entry, tls_write_return)          \
	X(SSL_write_ex, tls_write_ex_entry, tls_write_ex_return) \
	X(SSL_read, tls_read_entry, tls_read_return)             \
	X(SSL_read_ex, tls_read_ex_entry, tls_read_ex_return)

/* A path names OpenSSL's libssl (libssl.so, libssl.so.3, ...). */
bool tlshook_is_libssl(const char *path);

typedef void (*tlshook_fn)(void *ctx, const char *path, dev_t dev, ino_t ino);

/* Each libssl pid maps now.  Returns how many, or -errno. */
int tlshook_find_mapped(pid_t pid, tlshook_fn fn, void *ctx);

/*
 * Each libssl in the library directories of pid's root (seen through /proc/PID/root), which
 * its _ssl module would load: probes set on the file before it is mapped cover the process
 * from its first TLS connection.  Returns how many, or -errno.
 */
int tlshook_find_installed(pid_t pid, tlshook_fn fn, void *ctx);

/*
 * 1 when a file pid maps executable, other than a libssl, defines SSL_write or SSL_write_ex
 * (OpenSSL linked into the program or an extension), with its name in name; 0 when none
 * does; -errno.
 */
int tlshook_find_static(pid_t pid, char *name, size_t size);

/* 1 when the ELF file open at fd defines SSL_write or SSL_write_ex, 0 when not, -errno. */
int tlshook_elf_defines_ssl(int fd);

#endif /* WSAUDIT_TLSHOOK_H */

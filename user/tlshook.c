// SPDX-License-Identifier: GPL-2.0
/* Finding a process's TLS library.  See tlshook.h. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "elfsym.h"
#include "procmaps.h"
#include "tlshook.h"

/* libssl files probed per process (one per OpenSSL version it could load). */
#define LIBS_MAX 4
/* Mapped files looked at for a linked-in OpenSSL. */
#define FILES_MAX 512

bool tlshook_is_libssl(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "libssl.so", 9) && (!base[9] || base[9] == '.');
}

struct found {
	tlshook_fn fn;
	void *ctx;
};

static void mapped_found(void *ctx, const char *path, const char *name, dev_t dev, ino_t ino)
{
	struct found *f = ctx;

	f->fn(f->ctx, path, dev, ino);
}

int tlshook_find_mapped(pid_t pid, tlshook_fn fn, void *ctx)
{
	struct found f = { .fn = fn, .ctx = ctx };

	return procmaps_each_file(pid, tlshook_is_libssl, LIBS_MAX, mapped_found, &f);
}

int tlshook_find_installed(pid_t pid, tlshook_fn fn, void *ctx)
{
	/* Where the dynamic loader finds libssl on Debian-like, Red Hat-like and source builds. */
	static const char *const dirs[] = {
		"/usr/lib/*-linux-gnu", "/lib/*-linux-gnu",   "/usr/lib64", "/usr/lib",
		"/usr/local/lib",	"/usr/local/ssl/lib",
	};
	struct {
		dev_t dev;
		ino_t ino;
	} seen[LIBS_MAX];
	char pattern[PATH_MAX];
	int n = 0;
	struct stat st;
	glob_t g;

	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]) && n < LIBS_MAX; d++) {
		snprintf(pattern, sizeof(pattern), "/proc/%d/root%s/libssl.so.[0-9]*", (int)pid,
			 dirs[d]);
		if (glob(pattern, 0, NULL, &g))
			continue;
		for (size_t i = 0; i < g.gl_pathc && n < LIBS_MAX; i++) {
			bool dup = false;

			/* Symbolic links (libssl.so.3 -> ...) and merged /usr name one file. */
			if (stat(g.gl_pathv[i], &st) || !S_ISREG(st.st_mode))
				continue;
			for (int j = 0; j < n; j++)
				dup |= seen[j].dev == st.st_dev && seen[j].ino == st.st_ino;
			if (dup)
				continue;
			seen[n].dev = st.st_dev;
			seen[n].ino = st.st_ino;
			n++;
			fn(ctx, g.gl_pathv[i], st.st_dev, st.st_ino);
		}
		globfree(&g);
	}
	return n;
}

static int ssl_write_sym(void *ctx, const char *name, const GElf_Sym *sym)
{
	return GELF_ST_TYPE(sym->st_info) == STT_FUNC &&
	       (!strcmp(name, "SSL_write") || !strcmp(name, "SSL_write_ex"));
}

int tlshook_elf_defines_ssl(int fd)
{
	struct elf_file f;
	int found;

	if (elf_file_open(&f, fd))
		return -ENOEXEC;
	found = elf_file_syms(&f, ELF_SYMS_ALL, ssl_write_sym, NULL);
	elf_file_close(&f);
	return found;
}

struct static_scan {
	char *name;
	size_t size;
	int found;
};

static bool not_libssl(const char *name)
{
	return !tlshook_is_libssl(name);
}

static void static_check(void *ctx, const char *path, const char *name, dev_t dev, ino_t ino)
{
	struct static_scan *s = ctx;
	int fd;

	if (s->found)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (tlshook_elf_defines_ssl(fd) == 1) {
		s->found = 1;
		snprintf(s->name, s->size, "%s", name);
	}
	close(fd);
}

int tlshook_find_static(pid_t pid, char *name, size_t size)
{
	struct static_scan s = { .name = name, .size = size };
	int n = procmaps_each_file(pid, not_libssl, FILES_MAX, static_check, &s);

	return n < 0 ? n : s.found;
}

// SPDX-License-Identifier: GPL-2.0
/* Finding a process's TLS library.  See tlshook.h. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <glob.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

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

static bool defines(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	size_t n = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;
	const char *name;
	GElf_Sym sym;

	for (size_t i = 0; d && i < n; i++) {
		if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF ||
		    GELF_ST_TYPE(sym.st_info) != STT_FUNC)
			continue;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (name && (!strcmp(name, "SSL_write") || !strcmp(name, "SSL_write_ex")))
			return true;
	}
	return false;
}

int tlshook_elf_defines_ssl(int fd)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	Elf *elf;
	int found = 0;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOEXEC;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -ENOEXEC;
	if (elf_kind(elf) != ELF_K_ELF) {
		elf_end(elf);
		return -ENOEXEC;
	}
	while (!found && (scn = elf_nextscn(elf, scn))) {
		if (gelf_getshdr(scn, &sh) &&
		    (sh.sh_type == SHT_DYNSYM || sh.sh_type == SHT_SYMTAB) &&
		    defines(elf, scn, &sh))
			found = 1;
	}
	elf_end(elf);
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

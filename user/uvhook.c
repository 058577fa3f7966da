// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "elfsym.h"
#include "procmaps.h"
#include "uvhook.h"

/* CPython's calling convention flag for a method taking one argument. */
#define PY_METH_O 0x0008
/* The flags that decide how a method is called (METH_COEXIST and METH_STATIC aside). */
#define PY_METH_CALL_MASK 0x00af

#ifndef R_AARCH64_RELATIVE
#define R_AARCH64_RELATIVE 1027
#endif

struct reloc {
	GElf_Addr where;
	GElf_Sxword addend;
};

struct elf_image {
	struct elf_file f;
	Elf *elf;
	struct reloc *relocs;
	size_t nrelocs;
};

static int reloc_cmp(const void *a, const void *b)
{
	const struct reloc *x = a, *y = b;

	return x->where < y->where ? -1 : x->where > y->where;
}

static bool is_relative(const GElf_Ehdr *eh, GElf_Xword info)
{
	unsigned int type = GELF_R_TYPE(info);

	return (eh->e_machine == EM_X86_64 && type == R_X86_64_RELATIVE) ||
	       (eh->e_machine == EM_AARCH64 && type == R_AARCH64_RELATIVE);
}

/* Every relative relocation (an address the dynamic loader adds the load bias to). */
static int collect_relocs(struct elf_image *im, const GElf_Ehdr *eh)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	Elf_Data *d;
	GElf_Rela r;
	size_t n, cap = 0;
	struct reloc *tmp;

	while ((scn = elf_nextscn(im->elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		n = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; i < n; i++) {
			if (!gelf_getrela(d, (int)i, &r) || !is_relative(eh, r.r_info))
				continue;
			if (im->nrelocs == cap) {
				cap = cap ? cap * 2 : 4096;
				tmp = realloc(im->relocs, cap * sizeof(*tmp));
				if (!tmp)
					return -ENOMEM;
				im->relocs = tmp;
			}
			im->relocs[im->nrelocs].where = r.r_offset;
			im->relocs[im->nrelocs].addend = r.r_addend;
			im->nrelocs++;
		}
	}
	qsort(im->relocs, im->nrelocs, sizeof(*im->relocs), reloc_cmp);
	return 0;
}

static const struct reloc *reloc_at(const struct elf_image *im, GElf_Addr where)
{
	struct reloc key = { .where = where };

	return bsearch(&key, im->relocs, im->nrelocs, sizeof(key), reloc_cmp);
}

/* Bytes of the file mapped at vaddr (len of them), from the section holding them. */
static const void *bytes_at(Elf *elf, GElf_Addr vaddr, size_t len)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	Elf_Data *d;

	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_ALLOC))
			continue;
		if (vaddr < sh.sh_addr || vaddr + len > sh.sh_addr + sh.sh_size)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf || d->d_size < sh.sh_size)
			return NULL;
		return (const char *)d->d_buf + (vaddr - sh.sh_addr);
	}
	return NULL;
}

int uvhook_scan_fd(int fd, const char *method, struct uvhook_site *out, int max)
{
	struct elf_image im = {};
	size_t mlen = strlen(method) + 1;
	const struct reloc *meth;
	const int32_t *flags;
	const char *name;
	int found = 0, err = 0;

	if (elf_file_open(&im.f, fd))
		return -ENOEXEC;
	im.elf = im.f.elf;
	if (im.f.eh.e_type != ET_DYN) {
		err = -ENOEXEC;
		goto out;
	}
	err = collect_relocs(&im, &im.f.eh);
	if (err)
		goto out;
	/* A PyMethodDef is {name, function, flags, doc}, pointer-sized fields. */
	for (size_t i = 0; i < im.nrelocs && found < max; i++) {
		name = bytes_at(im.elf, (GElf_Addr)im.relocs[i].addend, mlen);
		if (!name || memcmp(name, method, mlen))
			continue;
		meth = reloc_at(&im, im.relocs[i].where + 8);
		flags = bytes_at(im.elf, im.relocs[i].where + 16, sizeof(*flags));
		if (!meth || !flags || (*flags & PY_METH_CALL_MASK) != PY_METH_O)
			continue;
		out[found].vaddr = (unsigned long long)meth->addend;
		if (elf_file_offset(&im.f, (unsigned long long)meth->addend,
				    &out[found].file_offset))
			continue;
		found++;
	}
	err = found;
out:
	free(im.relocs);
	elf_file_close(&im.f);
	return err;
}

bool uvhook_is_uvloop(const char *path)
{
	return !fnmatch("*/uvloop/loop.*.so", path, 0) || !fnmatch("*/uvloop/loop.so", path, 0);
}

int uvhook_find_in_process(pid_t pid,
			   void (*fn)(void *ctx, const char *path, dev_t dev, ino_t ino,
				      unsigned long long offset),
			   void *ctx)
{
	struct uvhook_site sites[UVHOOK_MAX_SITES];
	int total = 0, n, fd, err;
	struct procmaps_entry e;
	struct procmaps m;
	struct stat st;
	char path[96];

	err = procmaps_open(&m, pid);
	if (err)
		return err;
	while (procmaps_next(&m, &e)) {
		/* The mapping of the file's start: map_files names it by its address range. */
		if (e.name[0] != '/' || !uvhook_is_uvloop(e.name) || e.offset)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pid, e.start, e.end);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st)) {
			close(fd);
			continue;
		}
		n = uvhook_scan_fd(fd, "write", sites, UVHOOK_MAX_SITES);
		close(fd);
		for (int i = 0; i < n; i++)
			fn(ctx, path, st.st_dev, st.st_ino, sites[i].file_offset);
		if (n > 0)
			total += n;
	}
	procmaps_close(&m);
	return total;
}

static int scan_path(const char *path,
		     void (*fn)(void *ctx, const char *path, dev_t dev, ino_t ino,
				unsigned long long offset),
		     void *ctx)
{
	struct uvhook_site sites[UVHOOK_MAX_SITES];
	struct stat st;
	int fd, n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		close(fd);
		return -errno;
	}
	n = uvhook_scan_fd(fd, "write", sites, UVHOOK_MAX_SITES);
	close(fd);
	for (int i = 0; i < n; i++)
		fn(ctx, path, st.st_dev, st.st_ino, sites[i].file_offset);
	return n;
}

int uvhook_find_installed(pid_t pid,
			  void (*fn)(void *ctx, const char *path, dev_t dev, ino_t ino,
				     unsigned long long offset),
			  void *ctx)
{
	/* Where CPython's site module finds packages, relative to the process's root. */
	static const char *const dirs[] = {
		"/usr/lib/python3/dist-packages",
		"/usr/lib/python3*/site-packages",
		"/usr/local/lib/python3*/site-packages",
		"/usr/local/lib/python3*/dist-packages",
	};
	char pattern[PATH_MAX + 64], exe[PATH_MAX], link[64], *prefix;
	int total = 0, n;
	ssize_t len;
	glob_t g;

	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	len = readlink(link, exe, sizeof(exe) - 1);
	exe[len > 0 ? len : 0] = '\0';
	for (size_t d = 0; d <= sizeof(dirs) / sizeof(dirs[0]); d++) {
		if (d < sizeof(dirs) / sizeof(dirs[0])) {
			snprintf(pattern, sizeof(pattern), "/proc/%d/root%s/uvloop/loop.*.so", pid,
				 dirs[d]);
		} else {
			/* A virtualenv's or a self-built interpreter's own prefix: bin/.. */
			if (len <= 0)
				break;
			prefix = dirname(dirname(exe));
			snprintf(pattern, sizeof(pattern),
				 "/proc/%d/root%s/lib/python3*/site-packages/uvloop/loop.*.so", pid,
				 prefix);
		}
		if (glob(pattern, 0, NULL, &g))
			continue;
		for (size_t i = 0; i < g.gl_pathc; i++) {
			n = scan_path(g.gl_pathv[i], fn, ctx);
			if (n > 0)
				total += n;
		}
		globfree(&g);
	}
	return total;
}

// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>

#include "elfsym.h"

int elf_file_open(struct elf_file *f, int fd)
{
	memset(f, 0, sizeof(*f));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOEXEC;
	f->elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!f->elf)
		return -ENOEXEC;
	if (elf_kind(f->elf) != ELF_K_ELF || !gelf_getehdr(f->elf, &f->eh)) {
		elf_file_close(f);
		return -ENOEXEC;
	}
	return 0;
}

void elf_file_close(struct elf_file *f)
{
	if (f->elf)
		elf_end(f->elf);
	f->elf = NULL;
}

int elf_file_syms(const struct elf_file *f, enum elf_syms_from from,
		  int (*fn)(void *ctx, const char *name, const GElf_Sym *sym), void *ctx)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	GElf_Sym sym;
	Elf_Data *data;
	const char *name;
	int r;

	while ((scn = elf_nextscn(f->elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || !sh.sh_entsize ||
		    (sh.sh_type != SHT_DYNSYM &&
		     (from == ELF_SYMS_DYNAMIC || sh.sh_type != SHT_SYMTAB)))
			continue;
		data = elf_getdata(scn, NULL);
		for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
			if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
				continue;
			name = elf_strptr(f->elf, sh.sh_link, sym.st_name);
			if (name && (r = fn(ctx, name, &sym)))
				return r;
		}
	}
	return 0;
}

int elf_file_section(const struct elf_file *f, const char *name, unsigned long long *addr)
{
	Elf_Scn *scn = NULL;
	const char *sn;
	size_t shstrndx;
	GElf_Shdr sh;

	if (elf_getshdrstrndx(f->elf, &shstrndx))
		return -ENOENT;
	while ((scn = elf_nextscn(f->elf, scn))) {
		if (!gelf_getshdr(scn, &sh))
			continue;
		sn = elf_strptr(f->elf, shstrndx, sh.sh_name);
		if (sn && !strcmp(sn, name)) {
			*addr = sh.sh_addr;
			return 0;
		}
	}
	return -ENOENT;
}

int elf_file_base(const struct elf_file *f, unsigned long long *vaddr)
{
	GElf_Phdr ph;
	size_t n;

	if (elf_getphdrnum(f->elf, &n))
		return -ENOEXEC;
	for (size_t i = 0; i < n; i++) {
		if (gelf_getphdr(f->elf, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_offset == 0) {
			*vaddr = ph.p_vaddr;
			return 0;
		}
	}
	return -ENOEXEC;
}

int elf_file_offset(const struct elf_file *f, unsigned long long vaddr, unsigned long long *off)
{
	GElf_Phdr ph;
	size_t n;

	if (elf_getphdrnum(f->elf, &n))
		return -ENOEXEC;
	for (size_t i = 0; i < n; i++) {
		if (!gelf_getphdr(f->elf, (int)i, &ph) || ph.p_type != PT_LOAD ||
		    !(ph.p_flags & PF_X))
			continue;
		if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz) {
			*off = vaddr - ph.p_vaddr + ph.p_offset;
			return 0;
		}
	}
	return -ENOENT;
}

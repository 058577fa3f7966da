/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One reader of ELF files' symbols and load segments (libelf), in the shape of bcc's
 * uprobe_helpers: what a symbol's address is, where the file is loaded from, and the file
 * offset a uprobe is attached at.  Files are untrusted (they are the traced process's): every
 * table is read through libelf's bounds-checked accessors.
 */
#ifndef WSAUDIT_ELFSYM_H
#define WSAUDIT_ELFSYM_H

#include <stdbool.h>
#include <gelf.h>
#include <libelf.h>

struct elf_file {
	Elf *elf;
	GElf_Ehdr eh;
};

/* Opens the ELF file at fd (the caller's, open while f is).  0, or -ENOEXEC. */
int elf_file_open(struct elf_file *f, int fd);
void elf_file_close(struct elf_file *f);

/* Which symbol tables elf_file_syms() reads. */
enum elf_syms_from {
	ELF_SYMS_DYNAMIC, /* .dynsym only: what the dynamic loader sees */
	ELF_SYMS_ALL, /* .dynsym and .symtab, in the order of their sections */
};

/*
 * fn(ctx, name, sym) for every defined symbol (not SHN_UNDEF, with a name) of the tables,
 * until fn returns non-zero, which is returned; 0 when every symbol was seen.
 */
int elf_file_syms(const struct elf_file *f, enum elf_syms_from from,
		  int (*fn)(void *ctx, const char *name, const GElf_Sym *sym), void *ctx);
/* The address of the section named name (sh_addr).  0, or -ENOENT. */
int elf_file_section(const struct elf_file *f, const char *name, unsigned long long *addr);
/*
 * p_vaddr of the load segment at file offset 0: a mapping of the file at start is loaded with
 * the bias start - (vaddr & ~0xfff) (none for ET_EXEC).  0, or -ENOEXEC.
 */
int elf_file_base(const struct elf_file *f, unsigned long long *vaddr);
/* The file offset of code at vaddr (an executable load segment): a uprobe's.  0 or -ENOENT. */
int elf_file_offset(const struct elf_file *f, unsigned long long vaddr, unsigned long long *off);

#endif

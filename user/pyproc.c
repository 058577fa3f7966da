// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "elfsym.h"
#include "log.h"
#include "procmaps.h"
#include "pyproc.h"

#define DEBUG_COOKIE "xdebugpy"
/* Sizes of _Py_DebugOffsets, verified on 3.13.0/3.13.5/3.13.18 and 3.14.10. */
#define DEBUG_SIZE_313 584
#define DEBUG_SIZE_314 760
#define DEBUG_SIZE_MAX DEBUG_SIZE_314
/* Offsets and struct sizes beyond this are not plausible for these structures. */
#define PLAUSIBLE_MAX 0x8000

struct elf_syms {
	int type; /* ET_EXEC or ET_DYN */
	unsigned long long vaddr0; /* p_vaddr of the PT_LOAD at file offset 0 */
	unsigned long long runtime; /* _PyRuntime, or the .PyRuntime section */
	unsigned long long version; /* Py_Version */
	unsigned long long code_type; /* PyCode_Type */
	unsigned long long unicode_type;
	unsigned long long bytes_type;
	unsigned long long cell_type;
	unsigned long long tuple_type;
	unsigned long long long_type;
	unsigned long long list_type;
	unsigned long long type_type; /* PyType_Type */
	unsigned long long dict_type;
	unsigned long long member_descr_type; /* PyMemberDescr_Type */
	bool runtime_section; /* a .PyRuntime section exists (3.10+) */
};

struct map_cand {
	unsigned long long start;
	unsigned long long end;
	unsigned long long inode;
	char path[PATH_MAX];
	int rank;
};

#define MAX_CANDS 16

int pyproc_read(pid_t pid, unsigned long long addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t n;

	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	if ((size_t)n != len)
		return -EFAULT;
	return 0;
}

int pyproc_version_from_name(const char *path, int *major, int *minor, bool *free_threaded)
{
	const char *base = strrchr(path, '/');
	const char *p;
	char *end;
	long maj, min;

	base = base ? base + 1 : path;
	if (!strncmp(base, "libpython", 9))
		p = base + 9;
	else if (!strncmp(base, "python", 6))
		p = base + 6;
	else
		return -ENOENT;
	maj = strtol(p, &end, 10);
	if (end == p || *end != '.' || maj < 2 || maj > 3)
		return -ENOENT;
	p = end + 1;
	min = strtol(p, &end, 10);
	if (end == p || min < 0 || min > 99)
		return -ENOENT;
	*major = (int)maj;
	*minor = (int)min;
	*free_threaded = *end == 't';
	return 0;
}

static unsigned int max_u(unsigned int a, unsigned int b)
{
	return a > b ? a : b;
}

/* The single-read spans BPF uses for a frame and a thread state. */
static void offsets_finish(struct py_offsets *o)
{
	unsigned int span;

	span = max_u(o->frame_previous, o->frame_code);
	span = max_u(span, o->frame_lasti);
	if (o->frame_owner != PY_OFF_NONE)
		span = max_u(span, o->frame_owner);
	o->frame_read_size = span + 8;
	span = max_u(o->tstate_next, o->tstate_thread_id);
	span = max_u(span, o->tstate_frame);
	if (o->tstate_native_thread_id != PY_OFF_NONE)
		span = max_u(span, o->tstate_native_thread_id);
	o->tstate_read_size = span + 8;
}

/*
 * The str layouts of GIL builds: 3.9-3.11 keep the wstr pointer (PEP 623 removed it in 3.12),
 * which makes PyASCIIObject and PyCompactUnicodeObject a word longer.
 */
#define UNICODE_GIL(ascii, compact)                                                              \
	.unicode_length = 16, .unicode_state = 32, .unicode_ascii_data = (ascii),                \
	.unicode_compact_data = (compact), .unicode_kind_shift = 2, .unicode_compact_bit = 0x20, \
	.unicode_ascii_bit = 0x40

/* What 3.9-3.12 share: object header, interpreter and thread lists, PyContext. */
#define OFFSETS_GIL_COMMON                                                                        \
	.major = 3, .code_tag_mask = ~0ULL, .object_type = 8, .interp_next = 0, .tstate_next = 8, \
	.context_entered = 40, .bytes_data = 32
#define LAYOUT_GIL_COMMON .var_size = 16, .tuple_item = 24, .bytes_data = 32, .type_name = 24

/*
 * 3.9-3.12, x86_64 GIL builds, one entry per minor version.  Checked with gdb on the DWARF of
 * the pyenv builds 3.9.18, 3.10.13, 3.11.7, 3.12.1 and Debian's 3.11.2, and by walking live
 * processes.  PyContext: PyObject_HEAD, ctx_prev, ctx_vars, ctx_weakreflist, then
 * ctx_entered (context_entered 40), 3.9 to 3.14.
 */
static const struct {
	struct py_offsets off;
	struct py_layout layout;
} gil_tables[] = {
	[0] = {
		.off = { OFFSETS_GIL_COMMON, .minor = 9, .flags = PY_OFF_F_TABLE | PY_OFF_F_RECEIVER,
			 .runtime_interp_head = 32, .interp_threads_head = 8,
			 .tstate_thread_id = 176, .tstate_native_thread_id = PY_OFF_NONE,
			 .frame_kind = PY_FRAME_OBJECT, .tstate_frame = 24, .tstate_context = 240,
			 .cframe_current_frame = PY_OFF_NONE, .frame_previous = 24, .frame_code = 32,
			 .lasti_kind = PY_LASTI_BYTES, .frame_lasti = 104, .frame_owner = PY_OFF_NONE,
			 .frame_localsplus = 360, .code_adaptive = PY_OFF_NONE },
		.layout = { LAYOUT_GIL_COMMON, UNICODE_GIL(48, 72), .code_filename = 104,
			    .code_name = 112, .code_qualname = PY_OFF_NONE, .code_linetable = 120,
			    .code_firstlineno = 40, .code_argcount = 16, .code_varnames = 72,
			    .lines = PY_LINES_LNOTAB },
	},
	[1] = {
		.off = { OFFSETS_GIL_COMMON, .minor = 10, .flags = PY_OFF_F_TABLE | PY_OFF_F_RECEIVER,
			 .runtime_interp_head = 32, .interp_threads_head = 8,
			 .tstate_thread_id = 176, .tstate_native_thread_id = PY_OFF_NONE,
			 .frame_kind = PY_FRAME_OBJECT, .tstate_frame = 24, .tstate_context = 240,
			 .cframe_current_frame = PY_OFF_NONE, .frame_previous = 24, .frame_code = 32,
			 .lasti_kind = PY_LASTI_UNITS, .frame_lasti = 96, .frame_owner = PY_OFF_NONE,
			 .frame_localsplus = 352, .code_adaptive = PY_OFF_NONE },
		.layout = { LAYOUT_GIL_COMMON, UNICODE_GIL(48, 72), .code_filename = 104,
			    .code_name = 112, .code_qualname = PY_OFF_NONE, .code_linetable = 120,
			    .code_firstlineno = 40, .code_argcount = 16, .code_varnames = 72,
			    .lines = PY_LINES_PEP626 },
	},
	[2] = {
		.off = { OFFSETS_GIL_COMMON, .minor = 11, .flags = PY_OFF_F_TABLE, .runtime_interp_head = 40,
			 .interp_threads_head = 16, .tstate_thread_id = 152,
			 .tstate_native_thread_id = 160, .frame_kind = PY_FRAME_CFRAME,
			 .tstate_frame = 56, .tstate_context = 224, .cframe_current_frame = 8,
			 .frame_previous = 48, .frame_code = 32, .lasti_kind = PY_LASTI_POINTER,
			 .frame_lasti = 56, .frame_owner = 69, .frame_localsplus = 72,
			 .code_adaptive = 184 },
		.layout = { LAYOUT_GIL_COMMON, UNICODE_GIL(48, 72), .code_filename = 112,
			    .code_name = 120, .code_qualname = 128, .code_linetable = 136,
			    .code_firstlineno = 72, .code_argcount = 56, .code_varnames = 96,
			    .lines = PY_LINES_LOCATIONS },
	},
	[3] = {
		.off = { OFFSETS_GIL_COMMON, .minor = 12, .flags = PY_OFF_F_TABLE, .runtime_interp_head = 40,
			 .interp_threads_head = 72, .tstate_thread_id = 136,
			 .tstate_native_thread_id = 144, .frame_kind = PY_FRAME_CFRAME,
			 .tstate_frame = 56, .tstate_context = 208, .cframe_current_frame = 0,
			 .frame_previous = 8, .frame_code = 0, .lasti_kind = PY_LASTI_POINTER,
			 .frame_lasti = 56, .frame_owner = 70,
			 .owner_skip_min = 3, /* FRAME_OWNED_BY_CSTACK */
			 .frame_localsplus = 72, .code_adaptive = 192 },
		.layout = { LAYOUT_GIL_COMMON, UNICODE_GIL(40, 56), .code_filename = 112,
			    .code_name = 120, .code_qualname = 128, .code_linetable = 136,
			    .code_firstlineno = 68, .code_argcount = 52, .code_varnames = 96,
			    .lines = PY_LINES_LOCATIONS },
	},
};

int pyproc_offsets_from_table(int major, int minor, struct pyproc_info *out)
{
	if (major != 3 || minor < 9 || minor > 12)
		return -ENOTSUP;
	out->off = gil_tables[minor - 9].off;
	out->layout = gil_tables[minor - 9].layout;
	offsets_finish(&out->off);
	out->major = 3;
	out->minor = minor;
	return 0;
}

static unsigned long long dbg_u64(const unsigned char *buf, size_t pos)
{
	unsigned long long v;

	memcpy(&v, buf + pos, sizeof(v));
	return v;
}

/* The _Py_DebugOffsets values we use. */
enum dbg_field {
	DF_INTERPRETERS_HEAD,
	DF_INTERP_NEXT,
	DF_INTERP_THREADS_HEAD,
	DF_TS_NEXT,
	DF_TS_CURRENT_FRAME,
	DF_TS_THREAD_ID,
	DF_TS_NATIVE_THREAD_ID,
	DF_FR_PREVIOUS,
	DF_FR_EXECUTABLE,
	DF_FR_INSTR_PTR,
	DF_FR_LOCALSPLUS,
	DF_FR_OWNER,
	DF_CO_FILENAME,
	DF_CO_NAME,
	DF_CO_QUALNAME,
	DF_CO_LINETABLE,
	DF_CO_FIRSTLINENO,
	DF_CO_ARGCOUNT,
	DF_CO_LOCALSPLUSNAMES,
	DF_CO_ADAPTIVE,
	DF_OB_TYPE,
	DF_TP_NAME,
	DF_TUPLE_ITEM,
	DF_BYTES_SIZE,
	DF_BYTES_DATA,
	DF_UNI_STATE,
	DF_UNI_LENGTH,
	DF_UNI_ASCII_SIZE,
	DF_COUNT,
};

/*
 * Byte positions of those values inside _Py_DebugOffsets, per minor version: 3.13
 * Include/internal/pycore_runtime.h, 3.14 Include/internal/pycore_debug_offsets.h; checked
 * against the DWARF of 3.13.0, 3.13.5, 3.13.18, 3.13.5t and 3.14.10.
 */
struct dbg_layout {
	size_t size;
	size_t co_tlbc; /* 0: none */
	size_t pos[DF_COUNT];
};

static const struct dbg_layout dbg_313 = {
	.size = DEBUG_SIZE_313,
	.pos = {
		[DF_INTERPRETERS_HEAD] = 40, [DF_INTERP_NEXT] = 64, [DF_INTERP_THREADS_HEAD] = 72,
		[DF_TS_NEXT] = 168, [DF_TS_CURRENT_FRAME] = 184, [DF_TS_THREAD_ID] = 192,
		[DF_TS_NATIVE_THREAD_ID] = 200, [DF_FR_PREVIOUS] = 232, [DF_FR_EXECUTABLE] = 240,
		[DF_FR_INSTR_PTR] = 248, [DF_FR_LOCALSPLUS] = 256, [DF_FR_OWNER] = 264,
		[DF_CO_FILENAME] = 280, [DF_CO_NAME] = 288, [DF_CO_QUALNAME] = 296,
		[DF_CO_LINETABLE] = 304, [DF_CO_FIRSTLINENO] = 312, [DF_CO_ARGCOUNT] = 320,
		[DF_CO_LOCALSPLUSNAMES] = 328, [DF_CO_ADAPTIVE] = 344, [DF_OB_TYPE] = 360,
		[DF_TP_NAME] = 376, [DF_TUPLE_ITEM] = 408, [DF_BYTES_SIZE] = 520,
		[DF_BYTES_DATA] = 528, [DF_UNI_STATE] = 544, [DF_UNI_LENGTH] = 552,
		[DF_UNI_ASCII_SIZE] = 560,
	},
};

static const struct dbg_layout dbg_314 = {
	.size = DEBUG_SIZE_314,
	.co_tlbc = 392,
	.pos = {
		[DF_INTERPRETERS_HEAD] = 40, [DF_INTERP_NEXT] = 64, [DF_INTERP_THREADS_HEAD] = 72,
		[DF_TS_NEXT] = 192, [DF_TS_CURRENT_FRAME] = 208, [DF_TS_THREAD_ID] = 216,
		[DF_TS_NATIVE_THREAD_ID] = 224, [DF_FR_PREVIOUS] = 256, [DF_FR_EXECUTABLE] = 264,
		[DF_FR_INSTR_PTR] = 272, [DF_FR_LOCALSPLUS] = 280, [DF_FR_OWNER] = 288,
		[DF_CO_FILENAME] = 320, [DF_CO_NAME] = 328, [DF_CO_QUALNAME] = 336,
		[DF_CO_LINETABLE] = 344, [DF_CO_FIRSTLINENO] = 352, [DF_CO_ARGCOUNT] = 360,
		[DF_CO_LOCALSPLUSNAMES] = 368, [DF_CO_ADAPTIVE] = 384, [DF_OB_TYPE] = 408,
		[DF_TP_NAME] = 424, [DF_TUPLE_ITEM] = 456, [DF_BYTES_SIZE] = 600,
		[DF_BYTES_DATA] = 608, [DF_UNI_STATE] = 624, [DF_UNI_LENGTH] = 632,
		[DF_UNI_ASCII_SIZE] = 640,
	},
};

int pyproc_offsets_from_debug(const void *data, size_t len, struct pyproc_info *out)
{
	const unsigned char *buf = data;
	const struct dbg_layout *d;
	struct py_offsets *o = &out->off;
	struct py_layout *l = &out->layout;
	unsigned long long version, ft, x;
	unsigned int v[DF_COUNT];
	int minor, f;

	if (len < 24 || memcmp(buf, DEBUG_COOKIE, 8))
		return -EINVAL;
	version = dbg_u64(buf, 8);
	ft = dbg_u64(buf, 16);
	if ((version >> 24) != 3 || ft > 1)
		return -EINVAL;
	minor = (version >> 16) & 0xff;
	if (minor == 13)
		d = &dbg_313;
	else if (minor == 14)
		d = &dbg_314;
	else
		return -ENOTSUP;
	if (len < d->size)
		return -EINVAL;
	/* Every value we use must be a plausible offset; a garbage read fails here. */
	for (f = 0; f < DF_COUNT; f++) {
		x = dbg_u64(buf, d->pos[f]);
		if (x >= PLAUSIBLE_MAX)
			return -EINVAL;
		v[f] = (unsigned int)x;
	}

	memset(o, 0, sizeof(*o));
	memset(l, 0, sizeof(*l));
	o->major = 3;
	o->minor = minor;
	o->hexversion = (__u32)version;
	o->flags = PY_OFF_F_DEBUG_OFFSETS | (ft ? PY_OFF_F_FREE_THREADED : 0);
	o->runtime_interp_head = v[DF_INTERPRETERS_HEAD];
	o->interp_next = v[DF_INTERP_NEXT];
	o->interp_threads_head = v[DF_INTERP_THREADS_HEAD];
	o->tstate_next = v[DF_TS_NEXT];
	o->tstate_frame = v[DF_TS_CURRENT_FRAME];
	o->tstate_thread_id = v[DF_TS_THREAD_ID];
	o->tstate_native_thread_id = v[DF_TS_NATIVE_THREAD_ID];
	/*
	 * _Py_DebugOffsets has no context field.  208 in 3.13 and 3.14 GIL builds (found live,
	 * docs/causal.md); free-threaded builds are not linked.
	 */
	o->tstate_context = ft ? PY_OFF_NONE : 208;
	o->frame_previous = v[DF_FR_PREVIOUS];
	o->frame_code = v[DF_FR_EXECUTABLE];
	o->frame_lasti = v[DF_FR_INSTR_PTR];
	o->frame_localsplus = v[DF_FR_LOCALSPLUS];
	o->frame_owner = v[DF_FR_OWNER];
	o->frame_kind = PY_FRAME_DIRECT;
	o->cframe_current_frame = PY_OFF_NONE;
	o->lasti_kind = PY_LASTI_POINTER;
	/* 3.13 skips CSTACK (3); 3.14 renumbered: INTERPRETER (3) and CSTACK (4). */
	o->owner_skip_min = 3;
	o->code_adaptive = v[DF_CO_ADAPTIVE];
	o->object_type = v[DF_OB_TYPE];
	l->code_filename = v[DF_CO_FILENAME];
	l->code_name = v[DF_CO_NAME];
	l->code_qualname = v[DF_CO_QUALNAME];
	l->code_linetable = v[DF_CO_LINETABLE];
	l->code_firstlineno = v[DF_CO_FIRSTLINENO];
	l->code_argcount = v[DF_CO_ARGCOUNT];
	l->code_varnames = v[DF_CO_LOCALSPLUSNAMES];
	l->type_name = v[DF_TP_NAME];
	l->tuple_item = v[DF_TUPLE_ITEM];
	l->var_size = v[DF_BYTES_SIZE];
	l->bytes_data = v[DF_BYTES_DATA];
	l->unicode_state = v[DF_UNI_STATE];
	l->unicode_length = v[DF_UNI_LENGTH];
	l->unicode_ascii_data = v[DF_UNI_ASCII_SIZE];
	/* PyCompactUnicodeObject adds utf8_length and utf8 to PyASCIIObject. */
	l->unicode_compact_data = l->unicode_ascii_data + 16;
	l->lines = PY_LINES_LOCATIONS;
	if (minor >= 14 && ft) {
		/* 3.14t: interned is a whole byte, so kind starts at bit 8. */
		l->unicode_kind_shift = 8;
		l->unicode_compact_bit = 0x800;
		l->unicode_ascii_bit = 0x1000;
	} else {
		l->unicode_kind_shift = 2;
		l->unicode_compact_bit = 0x20;
		l->unicode_ascii_bit = 0x40;
	}
	if (minor >= 14) {
		o->flags |= PY_OFF_F_TAGGED_CODE;
		l->stackref_mask_bits = ft ? 1 : 3;
		o->code_tag_mask = ~(unsigned long long)l->stackref_mask_bits;
		if (ft && d->co_tlbc && dbg_u64(buf, d->co_tlbc))
			o->flags |= PY_OFF_F_UNSUP_TLBC;
	} else {
		o->code_tag_mask = ~0ULL;
	}
	/* PyObject_HEAD, ctx_prev, ctx_vars, ctx_weakreflist, then ctx_entered: 3.9 to 3.14. */
	o->context_entered = 40;
	/* The process says it: a header larger than an object head is not a bytes object's. */
	o->bytes_data = l->bytes_data <= 64 ? l->bytes_data : 0;
	offsets_finish(o);
	out->major = 3;
	out->minor = minor;
	return 0;
}

/* The symbols the reader needs, by name. */
static int elf_sym(void *ctx, const char *name, const GElf_Sym *sym)
{
	static const struct {
		const char *name;
		size_t at;
	} wanted[] = {
		{ "_PyRuntime", offsetof(struct elf_syms, runtime) },
		{ "Py_Version", offsetof(struct elf_syms, version) },
		{ "PyCode_Type", offsetof(struct elf_syms, code_type) },
		{ "PyUnicode_Type", offsetof(struct elf_syms, unicode_type) },
		{ "PyBytes_Type", offsetof(struct elf_syms, bytes_type) },
		{ "PyCell_Type", offsetof(struct elf_syms, cell_type) },
		{ "PyTuple_Type", offsetof(struct elf_syms, tuple_type) },
		{ "PyLong_Type", offsetof(struct elf_syms, long_type) },
		{ "PyList_Type", offsetof(struct elf_syms, list_type) },
		{ "PyType_Type", offsetof(struct elf_syms, type_type) },
		{ "PyDict_Type", offsetof(struct elf_syms, dict_type) },
		{ "PyMemberDescr_Type", offsetof(struct elf_syms, member_descr_type) },
	};

	if (!sym->st_value || (name[0] != '_' && name[0] != 'P'))
		return 0;
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		if (!strcmp(name, wanted[i].name)) {
			*(unsigned long long *)((char *)ctx + wanted[i].at) = sym->st_value;
			break;
		}
	}
	return 0;
}

/* Symbols and the load segment of one ELF file. */
static int elf_scan(int fd, struct elf_syms *s)
{
	struct elf_file f;
	unsigned long long section;

	memset(s, 0, sizeof(*s));
	if (elf_file_open(&f, fd))
		return -EINVAL;
	s->type = f.eh.e_type;
	if (elf_file_base(&f, &s->vaddr0)) {
		elf_file_close(&f);
		return -EINVAL;
	}
	elf_file_syms(&f, ELF_SYMS_ALL, elf_sym, s);
	/* The symbol where there is one, else the section (3.10+ keeps it there). */
	if (!elf_file_section(&f, ".PyRuntime", &section)) {
		s->runtime_section = true;
		if (!s->runtime)
			s->runtime = section;
	}
	elf_file_close(&f);
	return 0;
}

static int cand_rank(const char *path, const char *exe)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (!strncmp(base, "libpython3", 10))
		return 3;
	if (!strcmp(path, exe))
		return 2;
	/* Not extension modules (*.cpython-311-x86_64-linux-gnu.so): they never hold it. */
	if (!strncmp(base, "python", 6) || !strncmp(base, "libpython", 9))
		return 1;
	return 0;
}

/* Mappings at file offset 0 that may hold the interpreter, best first. */
static int maps_candidates(pid_t pid, struct map_cand *c, int max)
{
	char fname[64], exe[PATH_MAX] = "";
	struct procmaps_entry e;
	struct procmaps m;
	ssize_t n;
	int cnt = 0, slot, i, j, err;

	snprintf(fname, sizeof(fname), "/proc/%d/exe", pid);
	n = readlink(fname, exe, sizeof(exe) - 1);
	if (n > 0)
		exe[n] = '\0';
	err = procmaps_open(&m, pid);
	if (err)
		return err;
	while (procmaps_next(&m, &e)) {
		const char *path = e.name;
		int rank;

		if (e.offset || path[0] != '/')
			continue;
		rank = cand_rank(path, exe);
		if (!rank)
			continue;
		for (i = 0; i < cnt; i++)
			if (!strcmp(c[i].path, path))
				break;
		if (i < cnt)
			continue;
		slot = cnt;
		if (cnt == max) {
			/* Full: replace the worst candidate if this one ranks higher. */
			for (i = slot = 0; i < cnt; i++)
				if (c[i].rank < c[slot].rank)
					slot = i;
			if (c[slot].rank >= rank)
				continue;
		} else {
			cnt++;
		}
		c[slot].inode = e.inode;
		c[slot].start = e.start;
		c[slot].end = e.end;
		c[slot].rank = rank;
		snprintf(c[slot].path, sizeof(c[slot].path), "%s", path);
	}
	procmaps_close(&m);
	/* Insertion sort by rank, stable. */
	for (i = 1; i < cnt; i++) {
		struct map_cand t = c[i];

		for (j = i; j > 0 && c[j - 1].rank < t.rank; j--)
			c[j] = c[j - 1];
		c[j] = t;
	}
	return cnt;
}

/*
 * Opens the mapped file.  map_files names use unpadded hex and open the file itself even
 * across chroots and mount namespaces, but need CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE;
 * without them, the path through /proc/PID/root is used, accepted only if its inode is
 * the mapped one.  An fd or -errno.
 */
static int cand_open(pid_t pid, const struct map_cand *c)
{
	char buf[PATH_MAX + 64];
	struct stat st;
	int fd, err;

	snprintf(buf, sizeof(buf), "/proc/%d/map_files/%llx-%llx", pid, c->start, c->end);
	fd = open(buf, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	err = -errno;
	if (err != -EPERM && err != -EACCES)
		return err;
	snprintf(buf, sizeof(buf), "/proc/%d/root%s", pid, c->path);
	fd = open(buf, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err;
	if (fstat(fd, &st) || st.st_ino != c->inode) {
		close(fd);
		return err;
	}
	return fd;
}

static void version_string(struct pyproc_info *out, unsigned int hex)
{
	static const char rel[] = { 'a', 'b', 'c', 'f' };
	unsigned int level = (hex >> 4) & 0xf, serial = hex & 0xf;

	if (!hex) {
		snprintf(out->version, sizeof(out->version), "%d.%d", out->major, out->minor);
		return;
	}
	if (level == 0xf || level < 0xa)
		snprintf(out->version, sizeof(out->version), "%u.%u.%u", hex >> 24,
			 (hex >> 16) & 0xff, (hex >> 8) & 0xff);
	else
		snprintf(out->version, sizeof(out->version), "%u.%u.%u%c%u", hex >> 24,
			 (hex >> 16) & 0xff, (hex >> 8) & 0xff, rel[level - 0xa], serial);
}

static void not_python(struct pyproc_info *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void not_python(struct pyproc_info *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

/* Version and offsets of the interpreter whose _PyRuntime is at @runtime. */
static int inspect_runtime(pid_t pid, const struct elf_syms *s, unsigned long long bias,
			   struct pyproc_info *out)
{
	unsigned char dbg[DEBUG_SIZE_MAX];
	unsigned int hex = 0;
	unsigned long long runtime = bias + s->runtime;
	bool from_dbg = false, ft = false;
	int major = 0, minor = 0, err;

	if (s->version) {
		__u32 v;

		err = pyproc_read(pid, bias + s->version, &v, sizeof(v));
		if (err) {
			not_python(out, "cannot read Py_Version in %s: %s", out->path,
				   strerror(-err));
			return err;
		}
		hex = v;
		major = hex >> 24;
		minor = (hex >> 16) & 0xff;
	}
	err = pyproc_read(pid, runtime, dbg, 24);
	if (err) {
		not_python(out, "cannot read _PyRuntime in %s: %s", out->path, strerror(-err));
		return err;
	}
	if (!memcmp(dbg, DEBUG_COOKIE, 8)) {
		unsigned long long dv = dbg_u64(dbg, 8);

		if (hex && dv != hex) {
			not_python(out,
				   "Py_Version %#x and _Py_DebugOffsets version %#llx differ in %s",
				   hex, dv, out->path);
			return -EINVAL;
		}
		hex = (unsigned int)dv;
		major = hex >> 24;
		minor = (hex >> 16) & 0xff;
		from_dbg = true;
	}
	if (!major && pyproc_version_from_name(out->path, &major, &minor, &ft)) {
		/* Py_Version appeared in 3.11 and the .PyRuntime section in 3.10. */
		if (!s->runtime_section) {
			not_python(
				out,
				"unknown CPython version in %s (no Py_Version, no debug offsets, "
				"no .PyRuntime section, file name without a version)",
				out->path);
			return -ENOTSUP;
		}
		major = 3;
		minor = 10;
	}
	out->major = major;
	out->minor = minor;
	version_string(out, hex);

	if (major == 3 && minor >= 13) {
		size_t len = minor == 13 ? DEBUG_SIZE_313 : DEBUG_SIZE_314;

		if (!from_dbg) {
			not_python(out, "CPython %s in %s: no _Py_DebugOffsets at _PyRuntime",
				   out->version, out->path);
			return -ENOTSUP;
		}
		if (minor > 14) {
			not_python(out, "CPython %s in %s: _Py_DebugOffsets layout not supported",
				   out->version, out->path);
			return -ENOTSUP;
		}
		err = pyproc_read(pid, runtime, dbg, len);
		if (!err)
			err = pyproc_offsets_from_debug(dbg, len, out);
		if (err) {
			not_python(out, "CPython %s in %s: bad _Py_DebugOffsets: %s", out->version,
				   out->path, strerror(-err));
			return err;
		}
	} else if (ft) {
		not_python(out, "CPython %s in %s: free-threaded build not supported", out->version,
			   out->path);
		return -ENOTSUP;
	} else {
		err = pyproc_offsets_from_table(major, minor, out);
		if (err) {
			not_python(out, "CPython %s in %s: version not supported (3.9 to 3.14 are)",
				   out->version, out->path);
			return err;
		}
	}
	out->off.hexversion = hex;
	out->off.runtime_addr = runtime;
	out->off.code_type_addr = bias + s->code_type;
	out->unicode_type_addr = s->unicode_type ? bias + s->unicode_type : 0;
	out->bytes_type_addr = s->bytes_type ? bias + s->bytes_type : 0;
	out->cell_type_addr = s->cell_type ? bias + s->cell_type : 0;
	out->tuple_type_addr = s->tuple_type ? bias + s->tuple_type : 0;
	out->long_type_addr = s->long_type ? bias + s->long_type : 0;
	out->list_type_addr = s->list_type ? bias + s->list_type : 0;
	out->type_type_addr = s->type_type ? bias + s->type_type : 0;
	out->dict_type_addr = s->dict_type ? bias + s->dict_type : 0;
	out->member_descr_type_addr = s->member_descr_type ? bias + s->member_descr_type : 0;
	out->bias = bias;
	return 0;
}

int pyproc_inspect(pid_t pid, struct pyproc_info *out)
{
	struct map_cand *c;
	int n, i, err = 0, open_err = 0, open_idx = 0;

	memset(out, 0, sizeof(*out));
	c = calloc(MAX_CANDS, sizeof(*c));
	if (!c)
		return -ENOMEM;
	n = maps_candidates(pid, c, MAX_CANDS);
	if (n < 0) {
		err = n;
		not_python(out, "cannot read /proc/%d/maps: %s", pid, strerror(-n));
		goto out_free;
	}
	not_python(out, "no mapped file defines _PyRuntime");
	for (i = 0; i < n; i++) {
		struct elf_syms s;
		unsigned long long bias;
		int fd, r;

		fd = cand_open(pid, &c[i]);
		if (fd < 0) {
			if (!open_err) {
				open_err = fd;
				open_idx = i;
			}
			log_debug("cannot open %s of process %d: %s", c[i].path, pid,
				  strerror(-fd));
			continue;
		}
		r = elf_scan(fd, &s);
		close(fd);
		if (r || !s.runtime)
			continue;
		snprintf(out->path, sizeof(out->path), "%s", c[i].path);
		if (!s.code_type) {
			not_python(out, "%s has _PyRuntime but no PyCode_Type", out->path);
			goto out_free;
		}
		if (s.type == ET_EXEC)
			bias = 0;
		else
			bias = c[i].start - (s.vaddr0 & ~0xfffULL);
		r = inspect_runtime(pid, &s, bias, out);
		/* Unrecognised builds are an answer; a process we cannot read is an error. */
		if (r == -ESRCH || r == -EPERM || r == -EFAULT || r == -ENOMEM)
			err = r;
		if (r)
			goto out_free;
		out->is_python = true;
		out->reason[0] = '\0';
		goto out_free;
	}
	if (open_err) {
		/* A file we could not read may well be the interpreter: never claim "not Python". */
		not_python(out,
			   "cannot open %s mapped by process %d: %s (/proc/PID/map_files needs "
			   "CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE)",
			   c[open_idx].path, pid, strerror(-open_err));
		err = open_err;
		goto out_free;
	}
	/* Say which interpreter it is when the file name tells: Python 2, 3.8 and older... */
	for (i = 0; i < n; i++) {
		int maj, min;
		bool ft;

		if (!pyproc_version_from_name(c[i].path, &maj, &min, &ft)) {
			not_python(
				out,
				"Python %d.%d in %s: no _PyRuntime, version not supported (3.9 to "
				"3.14 are)",
				maj, min, c[i].path);
			break;
		}
	}
out_free:
	free(c);
	return err;
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Process registry for CPython: finds the interpreter of a process (the executable or the
 * libpython it maps), where _PyRuntime is, which version it is, and the offsets the BPF stack
 * walk and the symbolizer need.
 */
#ifndef WSAUDIT_PYPROC_H
#define WSAUDIT_PYPROC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "wsaudit/pyoffsets.h"

enum py_linetable_kind {
	PY_LINES_LNOTAB = 1, /* 3.9 co_lnotab */
	PY_LINES_PEP626 = 2, /* 3.10 co_linetable */
	PY_LINES_LOCATIONS = 3, /* 3.11+ location table */
};

/* What the symbolizer reads; user space only, so plain types. */
struct py_layout {
	unsigned int code_filename;
	unsigned int code_name;
	unsigned int code_qualname; /* PY_OFF_NONE before 3.11 */
	unsigned int code_linetable;
	unsigned int code_firstlineno;
	unsigned int code_argcount;
	unsigned int code_varnames; /* co_varnames (3.9/3.10) or co_localsplusnames */
	unsigned int var_size; /* PyVarObject.ob_size */
	unsigned int tuple_item;
	unsigned int bytes_data;
	unsigned int type_name;
	unsigned int unicode_length;
	unsigned int unicode_state;
	unsigned int unicode_ascii_data; /* sizeof(PyASCIIObject) */
	unsigned int unicode_compact_data; /* sizeof(PyCompactUnicodeObject) */
	unsigned int unicode_kind_shift;
	unsigned int unicode_compact_bit;
	unsigned int unicode_ascii_bit;
	unsigned int stackref_mask_bits; /* tag bits on localsplus slots (3.14+) */
	enum py_linetable_kind lines;
};

struct pyproc_info {
	bool is_python;
	int major;
	int minor;
	/* "3.11.7", or "3.9" when only the file name told the version */
	char version[32];
	/* Path, as /proc/PID/maps shows it, of the file that holds _PyRuntime */
	char path[PATH_MAX];
	/* Why is_python is false, or which check failed */
	char reason[PATH_MAX + 256];
	unsigned long long bias;
	unsigned long long unicode_type_addr; /* 0 when the symbol is missing */
	unsigned long long bytes_type_addr;
	unsigned long long cell_type_addr;
	unsigned long long tuple_type_addr; /* read by user/pyscope.c; 0 when missing */
	unsigned long long long_type_addr;
	unsigned long long list_type_addr;
	/* PyType_Type, PyDict_Type, PyMemberDescr_Type: instance attributes (user/pyscope.c) */
	unsigned long long type_type_addr;
	unsigned long long dict_type_addr;
	unsigned long long member_descr_type_addr;
	struct py_offsets off;
	struct py_layout layout;
};

/*
 * Fill @out for process @pid.  Returns 0 with out->is_python true; 0 with is_python false
 * and out->reason set when the process is not a recognised CPython (reason names the version
 * and file when they were found); -errno when the process cannot be inspected at all.
 */
int pyproc_inspect(pid_t pid, struct pyproc_info *out);

/* Read @len bytes at @addr in @pid: 0, -EFAULT on a short read, or -errno. */
int pyproc_read(pid_t pid, unsigned long long addr, void *buf, size_t len);

/* Offsets for 3.9-3.12 from the built-in table: 0 or -ENOTSUP. Sets off/layout/major/minor. */
int pyproc_offsets_from_table(int major, int minor, struct pyproc_info *out);

/*
 * Offsets from the bytes of a _Py_DebugOffsets (3.13, 3.14): 0, -EINVAL when the cookie or a
 * value is implausible, -ENOTSUP for an unknown layout.  runtime_addr is not set.
 */
int pyproc_offsets_from_debug(const void *buf, size_t len, struct pyproc_info *out);

/* "libpython3.10.so.1.0", "python3.13t", ... -> 0 and version, or -ENOENT. */
int pyproc_version_from_name(const char *path, int *major, int *minor, bool *free_threaded);

#endif /* WSAUDIT_PYPROC_H */

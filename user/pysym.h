/* SPDX-License-Identifier: GPL-2.0 */
/*
 * CPython symbolizer: (pid, code object, instruction offset) -> function, file, line, read
 * from the process with process_vm_readv.  Results are cached per (pid, code object) and
 * re-validated on every use, so a freed and reused address never gets a stale name.
 * pysym_resolve hands out the cached symbol itself (refcounted), not a copy: a stack names
 * its frames without copying strings, and callers may keep per-symbol verdicts in it.
 */
#ifndef WSAUDIT_PYSYM_H
#define WSAUDIT_PYSYM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pyproc.h"

#define PYSYM_NAME_MAX 256
#define PYSYM_FILE_MAX 1024
/* Longest string and line table read from a process. */
#define PYSYM_STR_CHARS_MAX 4096
#define PYSYM_TABLE_MAX (1U << 20)

struct pysym_loc {
	/* co_qualname on 3.11+, co_name before (see pysym_method_class) */
	char function[PYSYM_NAME_MAX];
	/* co_name */
	char name[PYSYM_NAME_MAX];
	char file[PYSYM_FILE_MAX];
	/* 0 when there is no line; line_err then says why */
	int line;
	/*
	 * 0; -ENOENT: CPython itself has no line for this instruction; -ERANGE: offset past the
	 * table; -EINVAL: malformed table; -ENODATA: the walk could not compute the offset.
	 */
	int line_err;
	/* A name or the file was longer than its field (or PYSYM_STR_CHARS_MAX) and was cut. */
	bool truncated;
	/* Code object fields, for callers that want them. */
	int firstlineno;
	int argcount;
};

struct pysym_stats {
	unsigned long long hits;
	unsigned long long misses;
	unsigned long long stale; /* cached entry whose code object changed: re-read */
	unsigned long long evictions;
	unsigned long long read_errors;
	unsigned long long not_code; /* address does not hold a code object */
	unsigned long long bad_strings; /* names/files with undecodable code points */
	unsigned long long truncated; /* code objects with a name or file cut to fit */
	unsigned long long no_line; /* offset outside the line table, or a malformed table */
	unsigned long long unknown_offset; /* the walk could not compute the offset */
	unsigned long long unchecked; /* served by pysym_resolve_unchecked without a read */
	unsigned long long recorded; /* served by pysym_resolve_carried from a names record */
	unsigned long long names_learned; /* names records taken (pysym_learn) */
	unsigned long long names_rejected; /* ... refused: not a code object, malformed */
	unsigned long long names_table_cut; /* ... whose line table was cut to fit */
};

struct pysym;
struct evt_code_names;
struct py_names_layout;

/*
 * One code object as named by pysym_resolve.  Shared: take a reference to keep it
 * (pysym_sym_get), drop it with pysym_sym_put.  It outlives its cache entry (eviction, a
 * stale address, the process's exit) while referenced, with the names it had.
 */
struct pysym_sym {
	/* Unique for the life of the program, never reused: a key for per-symbol verdicts. */
	unsigned long long id;
	const char *function; /* co_qualname on 3.11+, co_name before */
	const char *name; /* co_name */
	const char *file;
	bool truncated; /* a name or the file was cut to fit */
	int firstlineno;
	int argcount;
	/*
	 * CLOCK_MONOTONIC time at which the latest read that found this code object at its
	 * address began: a stack walked before then needs no read of its own to trust the name.
	 */
	unsigned long long checked_ns;
	/*
	 * Free for the caller: verdicts that depend only on this code object (its file), valid
	 * while user_gen is the caller's current generation.  0 when new.
	 */
	unsigned int user_gen;
	unsigned int user_bits;
	/*
	 * Named from the record a walk sent (pysym_learn): valid for every stack whose walk
	 * sent or relied on it (no PYF_UNNAMED), read after that record, process alive or not.
	 */
	bool recorded;
};

struct pysym_hit {
	struct pysym_sym *sym; /* a reference: the caller puts it */
	int line; /* 0 when there is no line; line_err says why as in struct pysym_loc */
	int line_err;
};

/* A cache of at most @max_entries code objects; NULL and errno on failure. */
struct pysym *pysym_new(unsigned int max_entries);
void pysym_free(struct pysym *s);

/* An instruction offset the walk could not compute (3.14t thread-local bytecode). */
#define PYSYM_LASTI_UNKNOWN (-2)

/*
 * Resolve @code at instruction byte offset @lasti (-1: not started, gives co_firstlineno;
 * PYSYM_LASTI_UNKNOWN or below: line 0, counted in unknown_offset).
 * 0, -ENOEXEC when @code is not a code object, -EFAULT/-ESRCH when memory cannot be read,
 * -EINVAL for a malformed string or table.
 */
int pysym_lookup(struct pysym *s, pid_t pid, const struct pyproc_info *info,
		 unsigned long long code, int lasti, struct pysym_loc *out);

/*
 * pysym_lookup without copies: 0 and @out (with a reference to the symbol), errors as
 * pysym_lookup.
 */
int pysym_resolve(struct pysym *s, pid_t pid, const struct pyproc_info *info,
		  unsigned long long code, int lasti, struct pysym_hit *out);
/*
 * The same without validating a cached entry (no read): for a stack that may never be used,
 * whose frames must then be checked with pysym_resolve before their names are given out.
 * A code object not cached yet is read as by pysym_resolve.
 */
int pysym_resolve_unchecked(struct pysym *s, pid_t pid, const struct pyproc_info *info,
			    unsigned long long code, int lasti, struct pysym_hit *out);
/*
 * pysym_resolve for a frame whose walk sent its names (no PYF_UNNAMED): the entry made from
 * that record (pysym_learn) names it without reading the process, which may have exited.
 * Without one, as pysym_resolve.
 */
int pysym_resolve_carried(struct pysym *s, pid_t pid, const struct pyproc_info *info,
			  unsigned long long code, int lasti, struct pysym_hit *out);
/*
 * Takes the names a walk copied (struct evt_code_names) as a read of the process at the
 * walk's time would: checked and decoded the same way, cached as the current entry of its
 * code object.  0; -ENOEXEC/-EINVAL/-EFAULT when refused (counted in names_rejected).
 */
int pysym_learn(struct pysym *s, pid_t pid, const struct pyproc_info *info,
		const struct evt_code_names *r);
/*
 * What the walk needs to copy names for a process of @info (struct py_names_layout), with
 * @gen; -E2BIG when its objects' fields lie past what a names record holds.
 */
int pysym_names_layout(const struct pyproc_info *info, unsigned int gen,
		       struct py_names_layout *out);
/*
 * Validates the cached entry of @code against its header read now: 0 when it holds, -ESTALE
 * (the entry is dropped) when the address holds another object, -ENOENT when nothing is
 * cached, other -errno when it cannot be read.
 */
int pysym_check(struct pysym *s, pid_t pid, const struct pyproc_info *info,
		unsigned long long code);
struct pysym_sym *pysym_sym_get(struct pysym_sym *sym);
void pysym_sym_put(struct pysym_sym *sym);

/* Code objects of one stack whose headers pysym_prefetch reads at once. */
#define PYSYM_PREFETCH_MAX 64

/*
 * Reads the headers of @codes (the code objects of one stack) with one system call; the
 * pysym_lookup calls that follow validate their cache entries against these bytes instead of
 * reading each header again.  Good until pysym_prefetch_end (or the next prefetch): bytes
 * read before a walk must not validate its frames.
 */
void pysym_prefetch(struct pysym *s, pid_t pid, const struct pyproc_info *info,
		    const unsigned long long *codes, size_t n);
void pysym_prefetch_end(struct pysym *s);

/* Drop every entry of @pid (process exit). */
void pysym_forget_pid(struct pysym *s, pid_t pid);

void pysym_get_stats(const struct pysym *s, struct pysym_stats *out);

/*
 * Optional step for 3.9/3.10, where code objects have no qualname.  When the first argument
 * of @code is named self (or cls), write the name of its class (or of itself) to @buf.
 * @first_arg is localsplus[0] as the walk read it (tag bits are removed here); take it at
 * walk time when the frame may be gone by the time this runs.  A receiver captured by a
 * closure is followed through its cell on 3.11+; on 3.9/3.10 its slot is NULL (the value is
 * in a cell slot further on) and the answer is -ENOENT.  0, -ENOENT when there is no such
 * receiver, -errno on a read failure.
 */
int pysym_receiver_class(pid_t pid, const struct pyproc_info *info, unsigned long long code,
			 unsigned long long first_arg, char *buf, size_t len);

/*
 * The same with @first_type, the receiver's ob_type as the walk read it (0: read it now).
 * Give it whenever the walk has it: the receiver may be freed, and its memory reused by an
 * object of another type, before this runs.  For cls, @first_arg itself is the class.
 */
int pysym_receiver_class_typed(pid_t pid, const struct pyproc_info *info, unsigned long long code,
			       unsigned long long first_arg, unsigned long long first_type,
			       char *buf, size_t len);

/* The same, reading localsplus[0] from the live frame at @frame. */
int pysym_method_class(pid_t pid, const struct pyproc_info *info, unsigned long long frame,
		       unsigned long long code, char *buf, size_t len);

/*
 * Turns loc->function into "Class.name" on 3.9/3.10 when the receiver is known; a no-op (0)
 * on 3.11+, where function already is co_qualname.  Errors as pysym_receiver_class; @loc is
 * unchanged on error.
 */
int pysym_qualify(pid_t pid, const struct pyproc_info *info, unsigned long long code,
		  unsigned long long first_arg, struct pysym_loc *loc);

/* pysym_qualify with the receiver's type read at walk time (see pysym_receiver_class_typed). */
int pysym_qualify_typed(pid_t pid, const struct pyproc_info *info, unsigned long long code,
			unsigned long long first_arg, unsigned long long first_type,
			struct pysym_loc *loc);

/* Locals searched by pysym_local_slot. */
#define PYSYM_SLOTS_MAX 64

/*
 * The localsplus slot of the local (or argument) @name of @code: its index in co_varnames
 * (3.9/3.10) or co_localsplusnames (3.11+).  -ENOENT when it has none, -errno on a read error.
 */
int pysym_local_slot(pid_t pid, const struct pyproc_info *info, unsigned long long code,
		     const char *name);

/*
 * Pure decoders, exposed for tests.  The line of byte offset @lasti: 0 and *line, -ENOENT
 * when the table marks the instruction as having no line, -ERANGE when @lasti is past the
 * table, -EINVAL when the table is malformed.
 */
int pysym_line_lnotab(const unsigned char *t, size_t n, int first, int lasti, int *line);
int pysym_line_pep626(const unsigned char *t, size_t n, int first, int lasti, int *line);
int pysym_line_locations(const unsigned char *t, size_t n, int first, int lasti, int *line);

/*
 * @count code points of @kind (1, 2 or 4 bytes each) to NUL-terminated UTF-8 in @out.
 * Surrogates and values above U+10FFFF become U+FFFD and are counted in *bad.  Returns the
 * length written, or -ENOSPC when @out was too small (it then holds a truncated string,
 * cut at a character boundary), -EINVAL for a bad kind.
 */
int pysym_ucs_to_utf8(const void *data, size_t count, unsigned int kind, char *out, size_t outsz,
		      unsigned int *bad);

#endif /* WSAUDIT_PYSYM_H */

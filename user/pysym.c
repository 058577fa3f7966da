// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "clock.h"
#include "keyhash.h"
#include "pysym.h"
#include "wsaudit/events.h"

#define HEADER_MAX 512
#define PAGE_SZ 4096ULL

struct code_ident {
	unsigned long long filename;
	unsigned long long name;
	unsigned long long qualname;
	unsigned long long linetable;
	int firstlineno;
	int argcount;
};

/* Lines of a code object seen lately, so its table is decoded once per instruction offset. */
#define LINE_CACHE 8

struct line_memo {
	int lasti;
	int line;
	int err;
};

struct sym_entry {
	/* First: a struct pysym_sym * handed out is a struct sym_entry *. */
	struct pysym_sym pub;
	/* The cache's reference (while cached) and one per stack frame that names it. */
	unsigned int refs;
	bool cached;
	struct sym_entry *hnext;
	struct sym_entry *lprev;
	struct sym_entry *lnext;
	pid_t pid;
	unsigned long long code;
	struct code_ident id;
	enum py_linetable_kind lines;
	char *function;
	char *name;
	char *file;
	unsigned char *table;
	size_t table_len;
	bool truncated;
	unsigned int nmemo, next_memo;
	struct line_memo memo[LINE_CACHE];
};

/* Never reused, so a verdict kept by id can never be given to another code object. */
static unsigned long long sym_next_id = 1;

/*
 * Code-object headers of one stack, read with one process_vm_readv (pysym_prefetch) instead
 * of one per frame; pysym_lookup validates against these bytes, read moments before.  Each
 * distinct code object is read once, however often it recurs in the stack.
 */
struct prefetch {
	unsigned long long ts; /* CLOCK_MONOTONIC before the read */
	pid_t pid;
	unsigned int n;
	unsigned long long code[PYSYM_PREFETCH_MAX]; /* sorted, distinct */
	bool ok[PYSYM_PREFETCH_MAX];
	unsigned char hdr[PYSYM_PREFETCH_MAX][HEADER_MAX];
};

struct pysym {
	struct prefetch pf;
	struct sym_entry **buckets;
	unsigned int nbuckets;
	unsigned int count;
	unsigned int max;
	/* LRU list: head is the most recently used. */
	struct sym_entry *lru_head;
	struct sym_entry *lru_tail;
	struct pysym_stats stats;
};

/* --- line tables --------------------------------------------------------------------------- */

/*
 * A line found, in *line: the table and the first line are the traced process's, so the sum
 * is kept wide and a line past an int is -ERANGE, not an overflow.
 */
static int line_found(long long l, int *line)
{
	if (l < INT_MIN || l > INT_MAX)
		return -ERANGE;
	*line = (int)l;
	return 0;
}

int pysym_line_lnotab(const unsigned char *t, size_t n, int first, int lasti, int *line)
{
	long long l = first;
	int addr = 0;
	size_t i;

	/* 3.9 Objects/lnotab_notes.txt: the line of the last entry starting at or before lasti. */
	for (i = 0; i + 1 < n; i += 2) {
		addr += t[i];
		if (addr > lasti)
			break;
		l += (signed char)t[i + 1];
	}
	return line_found(l, line);
}

int pysym_line_pep626(const unsigned char *t, size_t n, int first, int lasti, int *line)
{
	int start, end = 0;
	long long l = first;
	size_t i;

	if (lasti < 0) {
		*line = first;
		return 0;
	}
	/* 3.10: (start delta, line delta) pairs; a line delta of -128 means "no line". */
	for (i = 0; i + 1 < n; i += 2) {
		signed char ld = (signed char)t[i + 1];

		start = end;
		end += t[i];
		if (ld != -128)
			l += ld;
		if (lasti >= start && lasti < end) {
			if (ld == -128)
				return -ENOENT;
			return line_found(l, line);
		}
	}
	return -ERANGE;
}

static int varint(const unsigned char *t, size_t n, size_t *i, unsigned int *out)
{
	unsigned int v = 0, shift = 0;
	unsigned char b;

	do {
		if (*i >= n || shift > 28)
			return -EINVAL;
		b = t[(*i)++];
		v |= (unsigned int)(b & 0x3f) << shift;
		shift += 6;
	} while (b & 0x40);
	*out = v;
	return 0;
}

static int svarint(const unsigned char *t, size_t n, size_t *i, int *out)
{
	unsigned int v;
	int err = varint(t, n, i, &v);

	if (err)
		return err;
	*out = (v & 1) ? -(int)(v >> 1) : (int)(v >> 1);
	return 0;
}

int pysym_line_locations(const unsigned char *t, size_t n, int first, int lasti, int *line)
{
	size_t i = 0;
	long pos = 0, target;
	long long l = first;

	if (lasti < 0) {
		*line = first;
		return 0;
	}
	/* 3.11+ Objects/locations.md; entry lengths are in 2-byte code units. */
	target = lasti / 2;
	while (i < n) {
		unsigned char b = t[i++];
		unsigned int code = (b >> 3) & 0xf, len = (b & 7) + 1, skip;
		bool none = false;
		int d, j;

		if (!(b & 0x80))
			return -EINVAL;
		switch (code) {
		case 15:
			none = true;
			break;
		case 14:
			if (svarint(t, n, &i, &d))
				return -EINVAL;
			l += d;
			for (j = 0; j < 3; j++)
				if (varint(t, n, &i, &skip))
					return -EINVAL;
			break;
		case 13:
			if (svarint(t, n, &i, &d))
				return -EINVAL;
			l += d;
			break;
		case 10:
		case 11:
		case 12:
			l += (int)code - 10;
			i += 2;
			break;
		default:
			i += 1;
			break;
		}
		if (i > n)
			return -EINVAL;
		if (target >= pos && target < pos + (long)len) {
			if (none)
				return -ENOENT;
			return line_found(l, line);
		}
		pos += len;
	}
	return -ERANGE;
}

/* --- strings ------------------------------------------------------------------------------- */

static size_t utf8_put(unsigned int c, char *o)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xc0 | (c >> 6));
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xe0 | (c >> 12));
		o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (c >> 18));
	o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

int pysym_ucs_to_utf8(const void *data, size_t count, unsigned int kind, char *out, size_t outsz,
		      unsigned int *bad)
{
	const unsigned char *p = data;
	size_t i, w = 0;
	unsigned int nbad = 0;
	int ret;

	if ((kind != 1 && kind != 2 && kind != 4) || !outsz)
		return -EINVAL;
	for (i = 0; i < count; i++) {
		char tmp[4];
		unsigned int c;
		size_t k;

		if (kind == 1) {
			c = p[i];
		} else if (kind == 2) {
			uint16_t v;

			memcpy(&v, p + i * 2, 2);
			c = v;
		} else {
			uint32_t v;

			memcpy(&v, p + i * 4, 4);
			c = v;
		}
		/* Lone surrogates (surrogateescape'd file names) have no UTF-8 form. */
		if ((c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff) {
			c = 0xfffd;
			nbad++;
		}
		k = utf8_put(c, tmp);
		if (w + k + 1 > outsz) {
			out[w] = '\0';
			ret = -ENOSPC;
			goto out;
		}
		memcpy(out + w, tmp, k);
		w += k;
	}
	out[w] = '\0';
	ret = (int)w;
out:
	if (bad)
		*bad = nbad;
	return ret;
}

/* --- reading from the process -------------------------------------------------------------- */

static unsigned long long get_u64(const unsigned char *b, unsigned int off)
{
	unsigned long long v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

static int get_i32(const unsigned char *b, unsigned int off)
{
	int v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

/*
 * Where the characters of the str whose first bytes are @hdr start, how many there are (at
 * most PYSYM_STR_CHARS_MAX: *cut says so) and their kind; -EINVAL when it is not a compact str.
 */
static int str_shape(const struct pyproc_info *info, const unsigned char *hdr, size_t *data_off,
		     size_t *nchars, unsigned int *kind, bool *cut)
{
	const struct py_layout *l = &info->layout;
	unsigned int state;
	long long length;

	if (info->unicode_type_addr &&
	    get_u64(hdr, info->off.object_type) != info->unicode_type_addr)
		return -EINVAL;
	memcpy(&state, hdr + l->unicode_state, sizeof(state));
	memcpy(&length, hdr + l->unicode_length, sizeof(length));
	*kind = (state >> l->unicode_kind_shift) & 7;
	/* Names and file names of code objects are compact; legacy strings are not expected. */
	if (!(state & l->unicode_compact_bit) || length < 0)
		return -EINVAL;
	if (state & l->unicode_ascii_bit) {
		if (*kind != 1)
			return -EINVAL;
		*data_off = l->unicode_ascii_data;
	} else {
		if (*kind != 1 && *kind != 2 && *kind != 4)
			return -EINVAL;
		*data_off = l->unicode_compact_data;
	}
	*nchars = (size_t)length;
	*cut = false;
	if (*nchars > PYSYM_STR_CHARS_MAX) {
		*nchars = PYSYM_STR_CHARS_MAX;
		*cut = true;
	}
	return 0;
}

/* The characters to UTF-8 in @out: 1 when cut (by a cap or @outsz), 0, or -errno. */
static int str_decode(struct pysym *s, const void *data, size_t nchars, unsigned int kind, bool cut,
		      char *out, size_t outsz)
{
	unsigned int bad = 0;
	int err = pysym_ucs_to_utf8(data, nchars, kind, out, outsz, &bad);

	if (bad)
		s->stats.bad_strings++;
	/* A name cut to fit is still the right name's prefix: say it was cut. */
	if (err == -ENOSPC)
		cut = true;
	return err >= 0 || err == -ENOSPC ? cut : err;
}

static int read_str(struct pysym *s, pid_t pid, const struct pyproc_info *info,
		    unsigned long long addr, char *out, size_t outsz)
{
	const struct py_layout *l = &info->layout;
	unsigned char hdr[128];
	size_t data_off, nchars;
	unsigned int kind;
	void *data;
	bool cut;
	int err;

	if (!addr || l->unicode_compact_data > sizeof(hdr))
		return -EINVAL;
	err = pyproc_read(pid, addr, hdr, l->unicode_compact_data);
	if (err)
		return err;
	err = str_shape(info, hdr, &data_off, &nchars, &kind, &cut);
	if (err)
		return err;
	data = malloc(nchars * kind + 1);
	if (!data)
		return -ENOMEM;
	err = nchars ? pyproc_read(pid, addr + data_off, data, nchars * kind) : 0;
	if (!err)
		err = str_decode(s, data, nchars, kind, cut, out, outsz);
	free(data);
	return err;
}

static int read_bytes(pid_t pid, const struct pyproc_info *info, unsigned long long addr,
		      unsigned char **out, size_t *len)
{
	const struct py_layout *l = &info->layout;
	unsigned char hdr[64];
	long long size;
	unsigned char *buf;
	int err;

	if (!addr || l->bytes_data > sizeof(hdr))
		return -EINVAL;
	err = pyproc_read(pid, addr, hdr, l->bytes_data);
	if (err)
		return err;
	if (info->bytes_type_addr && get_u64(hdr, info->off.object_type) != info->bytes_type_addr)
		return -EINVAL;
	memcpy(&size, hdr + l->var_size, sizeof(size));
	if (size < 0 || size > PYSYM_TABLE_MAX)
		return -EINVAL;
	buf = malloc(size ? (size_t)size : 1);
	if (!buf)
		return -ENOMEM;
	err = size ? pyproc_read(pid, addr + l->bytes_data, buf, (size_t)size) : 0;
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	*len = (size_t)size;
	return 0;
}

static unsigned int code_span(const struct pyproc_info *info)
{
	const struct py_layout *l = &info->layout;
	unsigned int offs[] = { l->code_filename,     l->code_name,	l->code_linetable,
				l->code_firstlineno,  l->code_argcount, l->code_varnames,
				info->off.object_type };
	unsigned int span = 0, i;

	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		if (offs[i] > span)
			span = offs[i];
	if (l->code_qualname != PY_OFF_NONE && l->code_qualname > span)
		span = l->code_qualname;
	return span + 8;
}

/* The fields that identify a code object from its header; -ENOEXEC when it is not one. */
static int code_ident_parse(const struct pyproc_info *info, const unsigned char *hdr,
			    struct code_ident *id)
{
	const struct py_layout *l = &info->layout;

	if (get_u64(hdr, info->off.object_type) != info->off.code_type_addr)
		return -ENOEXEC;
	memset(id, 0, sizeof(*id));
	id->filename = get_u64(hdr, l->code_filename);
	id->name = get_u64(hdr, l->code_name);
	id->qualname = l->code_qualname != PY_OFF_NONE ? get_u64(hdr, l->code_qualname) : 0;
	id->linetable = get_u64(hdr, l->code_linetable);
	id->firstlineno = get_i32(hdr, l->code_firstlineno);
	id->argcount = get_i32(hdr, l->code_argcount);
	return 0;
}

/*
 * Reads the fields that identify a code object; -ENOEXEC when it is not one.  *@read_ns:
 * when the read began (from @pf when it holds the header).
 */
static int code_read_ident_pf(const struct prefetch *pf, pid_t pid, const struct pyproc_info *info,
			      unsigned long long code, struct code_ident *id, unsigned char *hdr,
			      unsigned long long *read_ns)
{
	unsigned int span = code_span(info);
	int err;

	if (span > HEADER_MAX)
		return -EINVAL;
	err = -EAGAIN;
	if (pf && pf->pid == pid) {
		unsigned int lo = 0, hi = pf->n;

		while (lo < hi) {
			unsigned int mid = (lo + hi) / 2;

			if (pf->code[mid] < code)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < pf->n && pf->code[lo] == code && pf->ok[lo]) {
			memcpy(hdr, pf->hdr[lo], span);
			*read_ns = pf->ts;
			err = 0;
		}
	}
	if (err) {
		*read_ns = mono_ns();
		err = pyproc_read(pid, code, hdr, span);
	}
	if (err)
		return err;
	return code_ident_parse(info, hdr, id);
}

static int code_read_ident(pid_t pid, const struct pyproc_info *info, unsigned long long code,
			   struct code_ident *id, unsigned char *hdr)
{
	unsigned long long read_ns;

	return code_read_ident_pf(NULL, pid, info, code, id, hdr, &read_ns);
}

static int cmp_u64(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;

	return x < y ? -1 : x > y;
}

void pysym_prefetch(struct pysym *s, pid_t pid, const struct pyproc_info *info,
		    const unsigned long long *codes, size_t n)
{
	struct iovec local[PYSYM_PREFETCH_MAX], remote[PYSYM_PREFETCH_MAX];
	unsigned int span = code_span(info), m = 0;
	struct prefetch *pf = &s->pf;
	ssize_t got;

	pf->n = 0;
	pf->pid = pid;
	if (span > HEADER_MAX || !n)
		return;
	if (n > PYSYM_PREFETCH_MAX)
		n = PYSYM_PREFETCH_MAX;
	/* Sorted and distinct: a recursive stack reads each code object once. */
	memcpy(pf->code, codes, n * sizeof(codes[0]));
	qsort(pf->code, n, sizeof(pf->code[0]), cmp_u64);
	for (size_t i = 0; i < n; i++) {
		if (!pf->code[i] || (m && pf->code[i] == pf->code[m - 1]))
			continue;
		pf->code[m] = pf->code[i];
		local[m].iov_base = pf->hdr[m];
		local[m].iov_len = span;
		remote[m].iov_base = (void *)(uintptr_t)pf->code[m];
		remote[m].iov_len = span;
		m++;
	}
	if (!m)
		return;
	/* Reading stops at the first header that faults: those before it are whole. */
	pf->ts = mono_ns();
	got = process_vm_readv(pid, local, m, remote, m, 0);
	for (unsigned int i = 0; i < m; i++)
		pf->ok[i] = got >= (ssize_t)((i + 1) * span);
	pf->n = m;
}

/* --- cache --------------------------------------------------------------------------------- */

struct pysym *pysym_new(unsigned int max_entries)
{
	struct pysym *s;

	if (!max_entries) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->max = max_entries;
	s->nbuckets = 64;
	while (s->nbuckets < max_entries && s->nbuckets < (1U << 24))
		s->nbuckets <<= 1;
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	if (!s->buckets) {
		free(s);
		return NULL;
	}
	return s;
}

static void entry_clear(struct sym_entry *e)
{
	free(e->function);
	free(e->name);
	free(e->file);
	free(e->table);
	e->function = e->name = e->file = NULL;
	e->table = NULL;
	e->table_len = 0;
}

static void entry_put(struct sym_entry *e)
{
	if (--e->refs)
		return;
	entry_clear(e);
	free(e);
}

struct pysym_sym *pysym_sym_get(struct pysym_sym *sym)
{
	if (sym)
		((struct sym_entry *)sym)->refs++;
	return sym;
}

void pysym_sym_put(struct pysym_sym *sym)
{
	if (sym)
		entry_put((struct sym_entry *)sym);
}

/* Code addresses are the traced process's to choose: keyed, so they cannot collide at will. */
static unsigned int bucket_of(const struct pysym *s, pid_t pid, unsigned long long code)
{
	return (unsigned int)(keyhash_table2(code, (uint64_t)pid) & (s->nbuckets - 1));
}

static void lru_unlink(struct pysym *s, struct sym_entry *e)
{
	if (e->lprev)
		e->lprev->lnext = e->lnext;
	else
		s->lru_head = e->lnext;
	if (e->lnext)
		e->lnext->lprev = e->lprev;
	else
		s->lru_tail = e->lprev;
	e->lprev = e->lnext = NULL;
}

static void lru_push(struct pysym *s, struct sym_entry *e)
{
	e->lprev = NULL;
	e->lnext = s->lru_head;
	if (s->lru_head)
		s->lru_head->lprev = e;
	s->lru_head = e;
	if (!s->lru_tail)
		s->lru_tail = e;
}

/* The most recently used. */
static void lru_touch(struct pysym *s, struct sym_entry *e)
{
	if (s->lru_head != e) {
		lru_unlink(s, e);
		lru_push(s, e);
	}
}

/*
 * Out of the cache; stacks that still name the code object keep their reference, so what
 * they print stays what was true when they were resolved.
 */
static void entry_remove(struct pysym *s, struct sym_entry *e)
{
	struct sym_entry **pp = &s->buckets[bucket_of(s, e->pid, e->code)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink(s, e);
	e->cached = false;
	s->count--;
	entry_put(e);
}

void pysym_free(struct pysym *s)
{
	if (!s)
		return;
	while (s->lru_head)
		entry_remove(s, s->lru_head);
	free(s->buckets);
	free(s);
}

void pysym_forget_pid(struct pysym *s, pid_t pid)
{
	struct sym_entry *e = s->lru_head, *next;

	while (e) {
		next = e->lnext;
		if (e->pid == pid)
			entry_remove(s, e);
		e = next;
	}
}

void pysym_get_stats(const struct pysym *s, struct pysym_stats *out)
{
	*out = s->stats;
}

/* A copy of the string at @addr; *err is 0 (1 when it was cut to @max) or -errno. */
static char *dup_str(struct pysym *s, pid_t pid, const struct pyproc_info *info,
		     unsigned long long addr, size_t max, int *err)
{
	char *buf = malloc(max);

	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	*err = read_str(s, pid, info, addr, buf, max);
	if (*err < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int entry_fill(struct pysym *s, pid_t pid, const struct pyproc_info *info,
		      struct sym_entry *e)
{
	int err;

	e->name = dup_str(s, pid, info, e->id.name, PYSYM_NAME_MAX, &err);
	if (!e->name)
		return err;
	e->truncated |= err;
	if (e->id.qualname) {
		e->function = dup_str(s, pid, info, e->id.qualname, PYSYM_NAME_MAX, &err);
		if (!e->function)
			return err;
		e->truncated |= err;
	}
	e->file = dup_str(s, pid, info, e->id.filename, PYSYM_FILE_MAX, &err);
	if (!e->file)
		return err;
	e->truncated |= err;
	if (e->truncated)
		s->stats.truncated++;
	return read_bytes(pid, info, e->id.linetable, &e->table, &e->table_len);
}

static int entry_line(const struct sym_entry *e, int lasti, int *line)
{
	switch (e->lines) {
	case PY_LINES_LNOTAB:
		return pysym_line_lnotab(e->table, e->table_len, e->id.firstlineno, lasti, line);
	case PY_LINES_PEP626:
		return pysym_line_pep626(e->table, e->table_len, e->id.firstlineno, lasti, line);
	case PY_LINES_LOCATIONS:
		return pysym_line_locations(e->table, e->table_len, e->id.firstlineno, lasti, line);
	}
	return -EINVAL;
}

/*
 * The line of @lasti, decoded once per offset: a location table is walked from its start,
 * and a busy coroutine is seen at the same few await points over and over.
 */
static int entry_line_memo(struct pysym *s, struct sym_entry *e, int lasti, int *line)
{
	struct line_memo *m = NULL;
	int err;

	*line = 0;
	if (lasti < -1) {
		s->stats.unknown_offset++;
		return -ENODATA;
	}
	for (unsigned int i = 0; i < e->nmemo; i++) {
		if (e->memo[i].lasti == lasti) {
			m = &e->memo[i];
			break;
		}
	}
	if (!m) {
		if (e->nmemo < LINE_CACHE) {
			m = &e->memo[e->nmemo++];
		} else {
			m = &e->memo[e->next_memo];
			e->next_memo = (e->next_memo + 1) % LINE_CACHE;
		}
		m->lasti = lasti;
		m->line = 0;
		m->err = entry_line(e, lasti, &m->line);
	}
	err = m->err;
	if (err && err != -ENOENT)
		s->stats.no_line++;
	if (!err)
		*line = m->line;
	return err;
}

static struct sym_entry *entry_new(pid_t pid, unsigned long long code, const struct code_ident *id,
				   const struct pyproc_info *info)
{
	struct sym_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->pid = pid;
	e->code = code;
	e->id = *id;
	e->lines = info->layout.lines;
	return e;
}

/* Into the cache (its reference), named: @checked_ns as in struct pysym_sym. */
static void entry_insert(struct pysym *s, unsigned int b, struct sym_entry *e,
			 unsigned long long checked_ns)
{
	if (s->count >= s->max) {
		s->stats.evictions++;
		entry_remove(s, s->lru_tail);
	}
	e->pub.id = sym_next_id++;
	e->pub.function = e->function ? e->function : e->name;
	e->pub.name = e->name;
	e->pub.file = e->file;
	e->pub.truncated = e->truncated;
	e->pub.firstlineno = e->id.firstlineno;
	e->pub.argcount = e->id.argcount;
	e->pub.checked_ns = checked_ns;
	e->refs = 1;
	e->cached = true;
	e->hnext = s->buckets[b];
	s->buckets[b] = e;
	lru_push(s, e);
	s->count++;
}

static struct sym_entry *entry_find(struct pysym *s, unsigned int b, pid_t pid,
				    unsigned long long code)
{
	struct sym_entry *e;

	for (e = s->buckets[b]; e; e = e->hnext)
		if (e->pid == pid && e->code == code)
			break;
	return e;
}

/* @check: validate a cached entry against a header read now (from the prefetch, or not). */
/*
 * @check: validate a cached entry against a header read now (from the prefetch, or not).
 * @carried: the walk sent this code object's names (no PYF_UNNAMED): an entry made from its
 * names record (pysym_learn) names it without a read, the process alive or not.
 */
static int resolve(struct pysym *s, pid_t pid, const struct pyproc_info *info,
		   unsigned long long code, int lasti, struct pysym_hit *out, bool check,
		   bool carried)
{
	unsigned long long read_ns = 0;
	unsigned char hdr[HEADER_MAX];
	struct code_ident id;
	struct sym_entry *e;
	unsigned int b;
	int err;

	b = bucket_of(s, pid, code);
	if (!check || carried) {
		e = entry_find(s, b, pid, code);
		if (e && e->lines == info->layout.lines && !check) {
			s->stats.unchecked++;
			goto resolve;
		}
		if (e && e->lines == info->layout.lines && e->pub.recorded) {
			s->stats.recorded++;
			lru_touch(s, e);
			goto resolve;
		}
	}
	/* Unchecked, the prefetch may be another stack's, read before this walk: not used. */
	err = code_read_ident_pf(check ? &s->pf : NULL, pid, info, code, &id, hdr, &read_ns);
	if (err) {
		if (err == -ENOEXEC)
			s->stats.not_code++;
		else
			s->stats.read_errors++;
		return err;
	}
	e = entry_find(s, b, pid, code);
	if (e && !memcmp(&e->id, &id, sizeof(id)) && e->lines == info->layout.lines) {
		s->stats.hits++;
		if (read_ns > e->pub.checked_ns)
			e->pub.checked_ns = read_ns;
		lru_touch(s, e);
		goto resolve;
	}
	if (e) {
		/* The address now holds another code object: never reuse the old name. */
		s->stats.stale++;
		entry_remove(s, e);
	}
	s->stats.misses++;
	e = entry_new(pid, code, &id, info);
	if (!e)
		return -ENOMEM;
	err = entry_fill(s, pid, info, e);
	if (err) {
		s->stats.read_errors++;
		entry_clear(e);
		free(e);
		return err;
	}
	entry_insert(s, b, e, read_ns);

resolve:
	e->refs++;
	out->sym = &e->pub;
	out->line_err = entry_line_memo(s, e, lasti, &out->line);
	return 0;
}

int pysym_resolve(struct pysym *s, pid_t pid, const struct pyproc_info *info,
		  unsigned long long code, int lasti, struct pysym_hit *out)
{
	return resolve(s, pid, info, code, lasti, out, true, false);
}

int pysym_resolve_carried(struct pysym *s, pid_t pid, const struct pyproc_info *info,
			  unsigned long long code, int lasti, struct pysym_hit *out)
{
	return resolve(s, pid, info, code, lasti, out, true, true);
}

int pysym_resolve_unchecked(struct pysym *s, pid_t pid, const struct pyproc_info *info,
			    unsigned long long code, int lasti, struct pysym_hit *out)
{
	return resolve(s, pid, info, code, lasti, out, false, false);
}

/* A str of a names record to a new string in *@out: 1 when cut, 0, or -errno. */
static int learn_str(struct pysym *s, const struct pyproc_info *info, const struct names_obj *o,
		     const unsigned char *data, size_t cap, size_t outsz, char **out)
{
	size_t data_off, nchars;
	unsigned int kind;
	bool cut;
	int err;

	if (o->status != NAMES_OBJ_OK && o->status != NAMES_OBJ_CUT)
		return -EFAULT;
	if (info->layout.unicode_compact_data > NAMES_OBJ_HEAD)
		return -EINVAL;
	err = str_shape(info, o->head, &data_off, &nchars, &kind, &cut);
	if (err)
		return err;
	/* The walk copies from the same offset by the same rule; no more than it copied. */
	if (o->len > cap || o->len % kind)
		return -EINVAL;
	if (nchars > o->len / kind) {
		nchars = o->len / kind;
		cut = true;
	}
	*out = malloc(outsz);
	if (!*out)
		return -ENOMEM;
	err = str_decode(s, data, nchars, kind, cut, *out, outsz);
	if (err < 0) {
		free(*out);
		*out = NULL;
	}
	return err;
}

/* The strings and line table of a names record into @e: 0 or -errno. */
static int learn_fill(struct pysym *s, const struct pyproc_info *info,
		      const struct evt_code_names *r, struct sym_entry *e)
{
	const struct names_obj *t = &r->obj[NAMES_TABLE];
	long long size;
	int err;

	err = learn_str(s, info, &r->obj[NAMES_NAME], r->name, sizeof(r->name), PYSYM_NAME_MAX,
			&e->name);
	if (err < 0)
		return err;
	e->truncated |= err;
	if (e->id.qualname) {
		err = learn_str(s, info, &r->obj[NAMES_QUALNAME], r->qualname, sizeof(r->qualname),
				PYSYM_NAME_MAX, &e->function);
		if (err < 0)
			return err;
		e->truncated |= err;
	}
	err = learn_str(s, info, &r->obj[NAMES_FILE], r->file, sizeof(r->file), PYSYM_FILE_MAX,
			&e->file);
	if (err < 0)
		return err;
	e->truncated |= err;
	if (e->truncated)
		s->stats.truncated++;
	if ((t->status != NAMES_OBJ_OK && t->status != NAMES_OBJ_CUT) ||
	    info->layout.bytes_data > NAMES_OBJ_HEAD || t->len > NAMES_TABLE_MAX)
		return -EFAULT;
	if (info->bytes_type_addr &&
	    get_u64(t->head, info->off.object_type) != info->bytes_type_addr)
		return -EINVAL;
	memcpy(&size, t->head + info->layout.var_size, sizeof(size));
	if (size < 0 || (unsigned long long)size < t->len)
		return -EINVAL;
	/* A table cut to fit: the lines of the instructions past its end are not known. */
	if ((unsigned long long)size > t->len)
		s->stats.names_table_cut++;
	e->table = malloc(t->len ? t->len : 1);
	if (!e->table)
		return -ENOMEM;
	memcpy(e->table, r->table, t->len);
	e->table_len = t->len;
	return 0;
}

int pysym_learn(struct pysym *s, pid_t pid, const struct pyproc_info *info,
		const struct evt_code_names *r)
{
	unsigned int b = bucket_of(s, pid, r->code);
	struct code_ident id;
	struct sym_entry *e;
	int err;

	if (code_span(info) > NAMES_CODE_HEAD)
		err = -EINVAL;
	else
		err = code_ident_parse(info, r->code_head, &id);
	if (err)
		goto rejected;
	e = entry_find(s, b, pid, r->code);
	if (e && !memcmp(&e->id, &id, sizeof(id)) && e->lines == info->layout.lines) {
		/* Named already, by a read that found what the walk found. */
		e->pub.recorded = true;
		s->stats.names_learned++;
		return 0;
	}
	if (e) {
		s->stats.stale++;
		entry_remove(s, e);
	}
	e = entry_new(pid, r->code, &id, info);
	if (!e)
		return -ENOMEM;
	err = learn_fill(s, info, r, e);
	if (err) {
		entry_clear(e);
		free(e);
		goto rejected;
	}
	entry_insert(s, b, e, r->hdr.ts_ns);
	e->pub.recorded = true;
	s->stats.names_learned++;
	return 0;
rejected:
	s->stats.names_rejected++;
	return err;
}

int pysym_names_layout(const struct pyproc_info *info, unsigned int gen,
		       struct py_names_layout *out)
{
	const struct py_layout *l = &info->layout;
	unsigned int span = code_span(info);

	if (span > NAMES_CODE_HEAD || l->unicode_compact_data > NAMES_OBJ_HEAD ||
	    l->bytes_data > NAMES_OBJ_HEAD || l->var_size + 8 > NAMES_OBJ_HEAD ||
	    l->unicode_state + 4 > NAMES_OBJ_HEAD || l->unicode_length + 8 > NAMES_OBJ_HEAD)
		return -E2BIG;
	memset(out, 0, sizeof(*out));
	out->gen = gen;
	out->code_span = (__u16)span;
	out->code_filename = (__u16)l->code_filename;
	out->code_name = (__u16)l->code_name;
	out->code_qualname = (__u16)l->code_qualname;
	out->code_linetable = (__u16)l->code_linetable;
	out->code_firstlineno = (__u16)l->code_firstlineno;
	out->unicode_state = (__u16)l->unicode_state;
	out->unicode_length = (__u16)l->unicode_length;
	out->unicode_ascii_data = (__u16)l->unicode_ascii_data;
	out->unicode_compact_data = (__u16)l->unicode_compact_data;
	out->var_size = (__u16)l->var_size;
	out->bytes_data = (__u16)l->bytes_data;
	out->unicode_ascii_bit = l->unicode_ascii_bit;
	out->unicode_kind_shift = (__u8)l->unicode_kind_shift;
	return 0;
}

void pysym_prefetch_end(struct pysym *s)
{
	s->pf.n = 0;
}

int pysym_check(struct pysym *s, pid_t pid, const struct pyproc_info *info, unsigned long long code)
{
	unsigned long long read_ns;
	unsigned char hdr[HEADER_MAX];
	struct code_ident id;
	struct sym_entry *e;
	int err;

	e = entry_find(s, bucket_of(s, pid, code), pid, code);
	if (!e)
		return -ENOENT;
	err = code_read_ident_pf(NULL, pid, info, code, &id, hdr, &read_ns);
	if (err == -ENOEXEC || (!err && memcmp(&e->id, &id, sizeof(id)))) {
		s->stats.stale++;
		entry_remove(s, e);
		return -ESTALE;
	}
	if (!err && read_ns > e->pub.checked_ns)
		e->pub.checked_ns = read_ns;
	return err;
}

int pysym_lookup(struct pysym *s, pid_t pid, const struct pyproc_info *info,
		 unsigned long long code, int lasti, struct pysym_loc *out)
{
	struct pysym_hit hit;
	int err;

	err = pysym_resolve(s, pid, info, code, lasti, &hit);
	if (err)
		return err;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", hit.sym->name);
	snprintf(out->function, sizeof(out->function), "%s", hit.sym->function);
	snprintf(out->file, sizeof(out->file), "%s", hit.sym->file);
	out->truncated = hit.sym->truncated;
	out->firstlineno = hit.sym->firstlineno;
	out->argcount = hit.sym->argcount;
	out->line = hit.line;
	out->line_err = hit.line_err;
	pysym_sym_put(hit.sym);
	return 0;
}

/* --- method class ------------------------------------------------------------------------ */

static int read_cstr(pid_t pid, unsigned long long addr, char *buf, size_t len)
{
	size_t got = 0;

	if (!len)
		return -EINVAL;
	/* Page by page: a string near the end of a mapping must not fail the whole read. */
	while (got + 1 < len) {
		size_t chunk = PAGE_SZ - ((addr + got) & (PAGE_SZ - 1));
		char *nul;
		int err;

		if (chunk > len - 1 - got)
			chunk = len - 1 - got;
		err = pyproc_read(pid, addr + got, buf + got, chunk);
		if (err)
			return err;
		nul = memchr(buf + got, '\0', chunk);
		if (nul)
			return 0;
		got += chunk;
	}
	buf[got] = '\0';
	return -ENOSPC;
}

/* "self" -> 0, "cls" -> 1, else -ENOENT or -errno: the name of the code's first argument. */
static int receiver_kind(pid_t pid, const struct pyproc_info *info, unsigned long long code)
{
	const struct py_layout *l = &info->layout;
	unsigned char hdr[HEADER_MAX];
	struct code_ident id;
	struct pysym tmp = { 0 };
	unsigned long long names, name0;
	char argname[16];
	int err;

	err = code_read_ident(pid, info, code, &id, hdr);
	if (err)
		return err;
	if (id.argcount < 1)
		return -ENOENT;
	names = get_u64(hdr, l->code_varnames);
	err = pyproc_read(pid, names + l->tuple_item, &name0, sizeof(name0));
	if (err)
		return err;
	err = read_str(&tmp, pid, info, name0, argname, sizeof(argname));
	if (err < 0)
		return err;
	if (!strcmp(argname, "self"))
		return 0;
	if (!strcmp(argname, "cls"))
		return 1;
	return -ENOENT;
}

int pysym_local_slot(pid_t pid, const struct pyproc_info *info, unsigned long long code,
		     const char *name)
{
	const struct py_layout *l = &info->layout;
	unsigned char hdr[HEADER_MAX];
	unsigned long long names, items[PYSYM_SLOTS_MAX];
	struct pysym tmp = { 0 };
	struct code_ident id;
	char local[PYSYM_NAME_MAX];
	long long size;
	int err;

	err = code_read_ident(pid, info, code, &id, hdr);
	if (err)
		return err;
	names = get_u64(hdr, l->code_varnames);
	err = pyproc_read(pid, names + l->var_size, &size, sizeof(size));
	if (err)
		return err;
	if (size < 0)
		return -EINVAL;
	if (size > PYSYM_SLOTS_MAX)
		size = PYSYM_SLOTS_MAX;
	err = pyproc_read(pid, names + l->tuple_item, items, (size_t)size * sizeof(items[0]));
	if (err)
		return err;
	/* Arguments come first in the names, in the order of the localsplus slots. */
	for (long long i = 0; i < size; i++) {
		if (read_str(&tmp, pid, info, items[i], local, sizeof(local)) < 0)
			continue;
		if (!strcmp(local, name))
			return (int)i;
	}
	return -ENOENT;
}

int pysym_receiver_class(pid_t pid, const struct pyproc_info *info, unsigned long long code,
			 unsigned long long first_arg, char *buf, size_t len)
{
	return pysym_receiver_class_typed(pid, info, code, first_arg, 0, buf, len);
}

int pysym_receiver_class_typed(pid_t pid, const struct pyproc_info *info, unsigned long long code,
			       unsigned long long first_arg, unsigned long long first_type,
			       char *buf, size_t len)
{
	const struct py_layout *l = &info->layout;
	const struct py_offsets *o = &info->off;
	unsigned long long obj, type, name;
	char tname[PYSYM_NAME_MAX];
	const char *dot;
	int kind, err;

	kind = receiver_kind(pid, info, code);
	if (kind < 0)
		return kind;
	obj = first_arg & ~(unsigned long long)l->stackref_mask_bits;
	/* 3.9/3.10 keep an argument captured by a closure in another slot: this one is NULL. */
	if (!obj)
		return -ENOENT;
	/*
	 * The type read at walk time is the one to trust: by now the receiver may have been
	 * freed and its memory reused by another object.
	 */
	type = first_type;
	if (!type) {
		err = pyproc_read(pid, obj + o->object_type, &type, sizeof(type));
		if (err)
			return err;
	}
	if (info->cell_type_addr && type == info->cell_type_addr) {
		/* 3.11+ turn such an argument into a cell in place: ob_ref follows the header. */
		err = pyproc_read(pid, obj + o->object_type + 8, &obj, sizeof(obj));
		if (err)
			return err;
		if (!obj)
			return -ENOENT;
		err = pyproc_read(pid, obj + o->object_type, &type, sizeof(type));
		if (err)
			return err;
	}
	if (kind == 1)
		type = obj;
	err = pyproc_read(pid, type + l->type_name, &name, sizeof(name));
	if (err)
		return err;
	err = read_cstr(pid, name, tname, sizeof(tname));
	if (err)
		return err;
	/* Static types are named "module.Class"; __name__ is the part after the last dot. */
	dot = strrchr(tname, '.');
	snprintf(buf, len, "%s", dot ? dot + 1 : tname);
	return 0;
}

int pysym_method_class(pid_t pid, const struct pyproc_info *info, unsigned long long frame,
		       unsigned long long code, char *buf, size_t len)
{
	unsigned long long obj;
	int err;

	err = pyproc_read(pid, frame + info->off.frame_localsplus, &obj, sizeof(obj));
	if (err)
		return err;
	return pysym_receiver_class(pid, info, code, obj, buf, len);
}

int pysym_qualify(pid_t pid, const struct pyproc_info *info, unsigned long long code,
		  unsigned long long first_arg, struct pysym_loc *loc)
{
	return pysym_qualify_typed(pid, info, code, first_arg, 0, loc);
}

int pysym_qualify_typed(pid_t pid, const struct pyproc_info *info, unsigned long long code,
			unsigned long long first_arg, unsigned long long first_type,
			struct pysym_loc *loc)
{
	char cls[PYSYM_NAME_MAX], fn[PYSYM_NAME_MAX];
	int err;

	if (info->layout.code_qualname != PY_OFF_NONE)
		return 0;
	err = pysym_receiver_class_typed(pid, info, code, first_arg, first_type, cls, sizeof(cls));
	if (err)
		return err;
	if (snprintf(fn, sizeof(fn), "%s.%s", cls, loc->name) >= (int)sizeof(fn))
		return -ENOSPC;
	memcpy(loc->function, fn, sizeof(fn));
	return 0;
}

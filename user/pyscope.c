// SPDX-License-Identifier: GPL-2.0
/*
 * ASGI scopes read from a traced process.  See pyscope.h.
 *
 * By hand because nothing reads another process's Python objects: fields are taken by offset
 * from little-endian LP64 bytes (the layout pyproc_inspect found), never by casting the
 * traced process's bytes to a struct, and an object is used only once its ob_type is the
 * interpreter's type object for what it must be.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyscope.h"
#include "zhist.h"

/* Entries of a dict's table looked at on each side of "client" (a scope has about 15). */
#define SCOPE_NEIGHBOURS 32
/* A dict entry: (key, value) in 3.11+ tables of str keys, (hash, key, value) otherwise. */
static const unsigned int entry_strides[] = { 16, 24 };
#define BLOOM_BITS 20
#define PATH_MAX_CHARS 2048
#define CHUNK_OVERLAP 64

struct cand {
	uint64_t tuple;
	uint16_t port;
	char ip[PYSCOPE_IP_MAX + 1];
};

struct found {
	uint64_t entry; /* the "client" entry's value slot */
	bool conflict;
	struct pyscope_request *r;
};

struct pyscope_scan {
	struct pyscope_layout l;
	pyscope_read_fn read;
	void *ctx;
	uint64_t reads_left;
	const uint8_t *chunk;
	uint64_t chunk_addr;
	size_t chunk_len;
	struct cand *cands;
	size_t ncands;
	uint8_t *bloom;
	struct found *found;
	size_t nfound;
	struct pyscope_stats st;
};

static uint64_t u64_at(const uint8_t *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

static uint32_t u32_at(const uint8_t *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

int pyscope_layout_from(const struct pyproc_info *info, struct pyscope_layout *out)
{
	const struct py_layout *pl = &info->layout;

	memset(out, 0, sizeof(*out));
	if (!info->is_python || !info->tuple_type_addr || !info->long_type_addr ||
	    !info->unicode_type_addr || !info->bytes_type_addr || !info->list_type_addr)
		return -ENOTSUP;
	out->tuple_type = info->tuple_type_addr;
	out->long_type = info->long_type_addr;
	out->str_type = info->unicode_type_addr;
	out->bytes_type = info->bytes_type_addr;
	out->list_type = info->list_type_addr;
	out->obj_type = info->off.object_type;
	out->var_size = pl->var_size;
	out->tuple_item = pl->tuple_item;
	out->bytes_data = pl->bytes_data;
	out->list_items = pl->var_size + 8; /* PyListObject: ob_item right after ob_size */
	out->str_length = pl->unicode_length;
	out->str_state = pl->unicode_state;
	out->str_ascii_data = pl->unicode_ascii_data;
	out->str_compact_bit = pl->unicode_compact_bit;
	out->str_ascii_bit = pl->unicode_ascii_bit;
	out->long_tag = info->major == 3 && info->minor >= 12;
	out->refcnt_check = out->obj_type == 8;
	if (!out->var_size || !out->tuple_item || !out->bytes_data || !out->str_ascii_data ||
	    out->tuple_item > 64 || out->bytes_data > 64 || out->str_ascii_data > 128)
		return -ENOTSUP;
	return 0;
}

/* Reads from the chunk at hand when it holds the bytes, else from the process (counted). */
static int mem_read(struct pyscope_scan *s, uint64_t addr, void *buf, size_t len)
{
	if (addr >= s->chunk_addr && addr - s->chunk_addr <= s->chunk_len &&
	    len <= s->chunk_len - (addr - s->chunk_addr)) {
		memcpy(buf, s->chunk + (addr - s->chunk_addr), len);
		return 0;
	}
	if (!s->reads_left) {
		s->st.limited = true;
		return -E2BIG;
	}
	s->reads_left--;
	if (!addr || addr + len < addr)
		return -EFAULT;
	return s->read(s->ctx, addr, buf, len);
}

/* The object header fits the expected type: ob_type, and a live reference count. */
static bool header_ok(const struct pyscope_scan *s, const uint8_t *h, uint64_t type)
{
	if (u64_at(h, s->l.obj_type) != type)
		return false;
	if (s->l.refcnt_check) {
		uint64_t rc = u64_at(h, 0);

		/* a freed block holds the allocator's free-list pointer there */
		if (!rc || rc >= 1ull << 40)
			return false;
	}
	return true;
}

/* An ASCII str of at most max characters into out (NUL-terminated): its length or -errno. */
static int read_str(struct pyscope_scan *s, uint64_t addr, char *out, size_t max)
{
	uint8_t h[128];
	uint64_t len;
	uint32_t state;

	if (addr & 7 || mem_read(s, addr, h, s->l.str_ascii_data))
		return -EFAULT;
	if (!header_ok(s, h, s->l.str_type))
		return -EINVAL;
	len = u64_at(h, s->l.str_length);
	state = u32_at(h, s->l.str_state);
	if (!(state & s->l.str_compact_bit) || !(state & s->l.str_ascii_bit) || len > max)
		return -EINVAL;
	if (mem_read(s, addr + s->l.str_ascii_data, out, len))
		return -EFAULT;
	out[len] = 0;
	if (strlen(out) != len)
		return -EINVAL;
	return (int)len;
}

static bool str_is(struct pyscope_scan *s, uint64_t addr, const char *want)
{
	char buf[32];
	size_t n = strlen(want);

	return read_str(s, addr, buf, n < sizeof(buf) - 1 ? n : sizeof(buf) - 1) == (int)n &&
	       !strcmp(buf, want);
}

/* A port: an int of one digit in 1..65535. */
static int read_port(struct pyscope_scan *s, uint64_t addr)
{
	uint8_t h[32];
	uint64_t size;
	uint32_t digit;

	if (addr & 7 || mem_read(s, addr, h, 28))
		return -EFAULT;
	if (!header_ok(s, h, s->l.long_type))
		return -EINVAL;
	size = u64_at(h, s->l.var_size);
	if (size != (s->l.long_tag ? 1u << 3 : 1u))
		return -EINVAL;
	digit = u32_at(h, 24);
	if (!digit || digit > 65535)
		return -EINVAL;
	return (int)digit;
}

static bool ip_text(const char *ip)
{
	if (!*ip)
		return false;
	for (const char *p = ip; *p; p++) {
		if (!strchr("0123456789abcdefABCDEF.:", *p))
			return false;
	}
	return strchr(ip, '.') || strchr(ip, ':');
}

/* A tuple of exactly two items at addr: their addresses. */
static bool read_pair(struct pyscope_scan *s, uint64_t addr, uint64_t items[2])
{
	uint8_t h[96];
	size_t need = s->l.tuple_item + 16;

	if (addr & 7 || need > sizeof(h) || mem_read(s, addr, h, need))
		return false;
	if (!header_ok(s, h, s->l.tuple_type) || u64_at(h, s->l.var_size) != 2)
		return false;
	items[0] = u64_at(h, s->l.tuple_item);
	items[1] = u64_at(h, s->l.tuple_item + 8);
	return true;
}

/* Appends a bytes object to r->buf as a C string: its offset, or -errno. */
static long put_bytes(struct pyscope_scan *s, struct pyscope_request *r, uint64_t addr,
		      bool header_text)
{
	uint8_t h[96];
	uint64_t len;
	char *dst;

	if (addr & 7 || s->l.bytes_data > sizeof(h) || mem_read(s, addr, h, s->l.bytes_data))
		return -EFAULT;
	if (!header_ok(s, h, s->l.bytes_type))
		return -EINVAL;
	len = u64_at(h, s->l.var_size);
	if (len >= sizeof(r->buf) - r->used)
		return -E2BIG;
	dst = r->buf + r->used;
	if (mem_read(s, addr + s->l.bytes_data, dst, len))
		return -EFAULT;
	dst[len] = 0;
	/* a NUL would cut it, CR/LF would make it another header than the server parsed */
	if (memchr(dst, 0, len) ||
	    (header_text && (memchr(dst, '\r', len) || memchr(dst, '\n', len))))
		return -EINVAL;
	r->used += len + 1;
	return dst - r->buf;
}

static int put_text(struct pyscope_request *r, const char *a, const char *b, const char *c)
{
	int n = snprintf(r->buf + r->used, sizeof(r->buf) - r->used, "%s%s%s", a, b, c);

	if (n < 0 || (size_t)n >= sizeof(r->buf) - r->used)
		return -E2BIG;
	r->used += n + 1;
	return (int)(r->used - n - 1);
}

/* The scope's headers list into r: 0 or -errno. */
static int read_headers(struct pyscope_scan *s, uint64_t list, struct pyscope_request *r)
{
	long off[HTTP1_MAX_HEADERS][2];
	uint64_t items[HTTP1_MAX_HEADERS];
	uint8_t h[64];
	uint64_t n, ob_item;

	if (list & 7 || mem_read(s, list, h, s->l.list_items + 8))
		return -EFAULT;
	if (!header_ok(s, h, s->l.list_type))
		return -EINVAL;
	n = u64_at(h, s->l.var_size);
	ob_item = u64_at(h, s->l.list_items);
	if (n > HTTP1_MAX_HEADERS)
		return -E2BIG;
	if (n && mem_read(s, ob_item, items, n * 8))
		return -EFAULT;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t pair[2];

		if (!read_pair(s, items[i], pair))
			return -EINVAL;
		off[i][0] = put_bytes(s, r, pair[0], true);
		if (off[i][0] < 0)
			return (int)off[i][0];
		off[i][1] = put_bytes(s, r, pair[1], true);
		if (off[i][1] < 0)
			return (int)off[i][1];
	}
	/* pointers only now: buf does not move, but offsets are what was checked */
	r->req.nheaders = n;
	for (uint64_t i = 0; i < n; i++) {
		r->req.headers[i].name = r->buf + off[i][0];
		r->req.headers[i].value = r->buf + off[i][1];
	}
	return 0;
}

/*
 * The entry of the same table as "client" whose key is name: its value, or 0.  The table's
 * entries are contiguous and all keyed by str in a scope, so the walk stops, each way, at
 * the first slot whose key is not a str (the table's end, its index array, or a deleted
 * entry): it never reads on into the table of another dict next to it.
 */
static uint64_t neighbour(struct pyscope_scan *s, uint64_t client_val, unsigned int stride,
			  const char *name)
{
	char key[32];

	for (int dir = 1; dir >= -1; dir -= 2) {
		for (int k = 1; k <= SCOPE_NEIGHBOURS; k++) {
			uint64_t kv[2], at = client_val - 8 + (int64_t)dir * k * stride;

			if (mem_read(s, at, kv, sizeof(kv)) ||
			    read_str(s, kv[0], key, sizeof(key) - 1) < 0)
				break;
			if (!strcmp(key, name))
				return kv[1];
		}
	}
	return 0;
}

/* The scope whose "client" entry's value slot is at val: its request, or NULL. */
static struct pyscope_request *read_scope(struct pyscope_scan *s, uint64_t val,
					  const struct cand *c)
{
	struct pyscope_request *r;
	char path[PATH_MAX_CHARS + 1] = "/";
	uint64_t headers = 0, query, p;
	unsigned int stride = 0;
	long qoff = -1;
	int target, method, poff;

	for (size_t i = 0; i < sizeof(entry_strides) / sizeof(entry_strides[0]) && !headers; i++) {
		stride = entry_strides[i];
		headers = neighbour(s, val, stride, "headers");
	}
	if (!headers)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	snprintf(r->ip, sizeof(r->ip), "%s", c->ip);
	r->port = c->port;
	r->req.kind = HTTP1_REQUEST;
	r->req.version_minor = 1;
	if (read_headers(s, headers, r))
		goto bad;
	query = neighbour(s, val, stride, "query_string");
	if (query) {
		qoff = put_bytes(s, r, query, true);
		if (qoff < 0)
			goto bad;
	}
	p = neighbour(s, val, stride, "path");
	if (p && read_str(s, p, path, PATH_MAX_CHARS) < 0)
		snprintf(path, sizeof(path), "/"); /* not ASCII: no identity rule reads the path */
	target = put_text(r, path, qoff >= 0 && r->buf[qoff] ? "?" : "",
			  qoff >= 0 ? r->buf + qoff : "");
	method = put_text(r, "GET", "", "");
	poff = put_text(r, path, "", "");
	if (target < 0 || method < 0 || poff < 0)
		goto bad;
	r->req.target = r->buf + target;
	r->req.method = r->buf + method;
	r->req.path = r->buf + poff;
	r->req.query = qoff >= 0 ? r->buf + qoff : "";
	s->st.scopes++;
	return r;
bad:
	s->st.bad_scopes++;
	free(r);
	return NULL;
}

struct pyscope_scan *pyscope_scan_new(const struct pyscope_layout *l, pyscope_read_fn read,
				      void *ctx)
{
	struct pyscope_scan *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->l = *l;
	s->read = read;
	s->ctx = ctx;
	s->reads_left = PYSCOPE_READS_MAX;
	s->cands = calloc(PYSCOPE_CANDS_MAX, sizeof(*s->cands));
	s->bloom = calloc(1, (1u << BLOOM_BITS) / 8);
	s->found = calloc(PYSCOPE_FOUND_MAX, sizeof(*s->found));
	if (!s->cands || !s->bloom || !s->found) {
		pyscope_scan_free(s);
		return NULL;
	}
	return s;
}

void pyscope_scan_free(struct pyscope_scan *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nfound; i++)
		free(s->found[i].r);
	free(s->found);
	free(s->cands);
	free(s->bloom);
	free(s);
}

static uint32_t bloom_slot(uint64_t a)
{
	return (uint32_t)((a >> 3) ^ (a >> (3 + BLOOM_BITS))) & ((1u << BLOOM_BITS) - 1);
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	return x->tuple < y->tuple ? -1 : x->tuple > y->tuple;
}

void pyscope_scan_pass_done(struct pyscope_scan *s)
{
	size_t j = 0;

	qsort(s->cands, s->ncands, sizeof(*s->cands), cand_cmp);
	/* chunks overlap: a tuple may have been seen twice */
	for (size_t i = 0; i < s->ncands; i++) {
		if (j && s->cands[j - 1].tuple == s->cands[i].tuple)
			continue;
		s->cands[j++] = s->cands[i];
		s->bloom[bloom_slot(s->cands[i].tuple) / 8] |=
			1u << (bloom_slot(s->cands[i].tuple) % 8);
	}
	s->ncands = j;
	s->st.candidates = j;
}

static void pass_tuples(struct pyscope_scan *s, const uint8_t *b, size_t n, uint64_t addr)
{
	size_t span = s->l.tuple_item + 16;

	for (size_t i = 0; i + span <= n && s->ncands < PYSCOPE_CANDS_MAX && !s->st.limited;
	     i += 8) {
		struct cand *c = &s->cands[s->ncands];
		uint64_t items[2];
		int port;

		if (u64_at(b, i + s->l.obj_type) != s->l.tuple_type ||
		    u64_at(b, i + s->l.var_size) != 2)
			continue;
		if (!read_pair(s, addr + i, items))
			continue;
		port = read_port(s, items[1]);
		if (port <= 0 || read_str(s, items[0], c->ip, PYSCOPE_IP_MAX) <= 0 ||
		    !ip_text(c->ip))
			continue;
		c->tuple = addr + i;
		c->port = (uint16_t)port;
		s->ncands++;
	}
}

static void add_found(struct pyscope_scan *s, uint64_t val, const struct cand *c)
{
	struct pyscope_request *r;

	for (size_t i = 0; i < s->nfound; i++) {
		if (s->found[i].entry == val)
			return; /* seen in the overlap of two chunks */
	}
	if (s->nfound >= PYSCOPE_FOUND_MAX) {
		s->st.limited = true;
		return;
	}
	r = read_scope(s, val, c);
	if (!r)
		return;
	s->found[s->nfound].entry = val;
	s->found[s->nfound++].r = r;
}

static void pass_scopes(struct pyscope_scan *s, const uint8_t *b, size_t n, uint64_t addr)
{
	for (size_t i = 8; i + 8 <= n && !s->st.limited; i += 8) {
		uint64_t w = u64_at(b, i), slot = bloom_slot(w);
		struct cand key = { .tuple = w }, *c;

		if (!(s->bloom[slot / 8] & (1u << (slot % 8))))
			continue;
		c = bsearch(&key, s->cands, s->ncands, sizeof(*s->cands), cand_cmp);
		if (!c || !str_is(s, u64_at(b, i - 8), "client"))
			continue;
		add_found(s, addr + i, c);
	}
}

void pyscope_scan_chunk(struct pyscope_scan *s, int pass, const uint8_t *b, size_t n, uint64_t addr)
{
	s->chunk = b;
	s->chunk_addr = addr;
	s->chunk_len = n;
	if (addr % 8 == 0 && addr + n >= addr) {
		if (pass == 0)
			pass_tuples(s, b, n, addr);
		else
			pass_scopes(s, b, n, addr);
	}
	s->chunk = NULL;
	s->chunk_len = 0;
}

const struct pyscope_stats *pyscope_scan_stats(const struct pyscope_scan *s)
{
	return &s->st;
}

static bool same_request(const struct pyscope_request *a, const struct pyscope_request *b)
{
	return a->used == b->used && !memcmp(a->buf, b->buf, a->used);
}

const struct http1_message *pyscope_lookup(const struct pyscope_scan *s, const char *ip,
					   uint16_t port, int *err)
{
	const struct pyscope_request *hit = NULL;

	*err = -ENOENT;
	for (size_t i = 0; i < s->nfound; i++) {
		const struct pyscope_request *r = s->found[i].r;

		if (r->port != port || strcmp(r->ip, ip))
			continue;
		if (hit && !same_request(hit, r)) {
			*err = -EEXIST;
			return NULL;
		}
		hit = r;
	}
	if (hit)
		*err = 0;
	return hit ? &hit->req : NULL;
}

struct walk_ctx {
	struct pyscope_scan *s;
	int pass;
};

static bool walk_fn(void *ctx, const uint8_t *b, size_t n, uint64_t addr)
{
	struct walk_ctx *w = ctx;

	pyscope_scan_chunk(w->s, w->pass, b, n, addr);
	return !w->s->st.limited;
}

static int proc_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	return pyproc_read((pid_t)(intptr_t)ctx, addr, buf, len);
}

int pyscope_scan_process(struct pyscope_scan *s, pid_t pid)
{
	struct zhist_scan_result res;
	struct walk_ctx w = { .s = s };
	int err;

	s->read = proc_read;
	s->ctx = (void *)(intptr_t)pid;
	for (w.pass = 0; w.pass < 2; w.pass++) {
		err = zhist_walk(pid, CHUNK_OVERLAP, PYSCOPE_SCAN_BYTES_MAX, walk_fn, &w, &res);
		s->st.bytes_read += res.bytes_read;
		if (res.limited)
			s->st.limited = true;
		if (err)
			return err;
		if (w.pass == 0)
			pyscope_scan_pass_done(s);
	}
	return 0;
}

int pyscope_parse_peer(const char *peer, char ip[PYSCOPE_IP_MAX + 1], uint16_t *port)
{
	const char *colon = strrchr(peer, ':');
	const char *start = peer, *end = colon;
	char *e;
	long p;

	if (!colon)
		return -EINVAL;
	if (*peer == '[') {
		start++;
		if (colon == peer || colon[-1] != ']')
			return -EINVAL;
		end = colon - 1;
	}
	if (end <= start || (size_t)(end - start) > PYSCOPE_IP_MAX)
		return -EINVAL;
	p = strtol(colon + 1, &e, 10);
	if (*e || e == colon + 1 || p <= 0 || p > 65535)
		return -EINVAL;
	memcpy(ip, start, end - start);
	ip[end - start] = 0;
	*port = (uint16_t)p;
	return 0;
}

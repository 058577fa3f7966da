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

/* PyTypeObject fields, the same from 3.9 to 3.13 on LP64 (checked against each one's headers). */
#define TP_NAME 24
#define TP_BASICSIZE 32
#define TP_FLAGS 168
#define TP_DICT 264
#define TP_DICTOFFSET 288
#define TP_MRO 344
#define F_INLINE_VALUES (1ull << 2)
#define F_MANAGED_DICT (1ull << 4)
#define F_HEAPTYPE (1ull << 9)
#define F_READY (1ull << 12)
#define F_TUPLE_SUBCLASS (1ull << 26)
#define F_TYPE_SUBCLASS (1ull << 31)
/* PyMemberDescrObject.d_member; PyMemberDef's type and offset; T_OBJECT, T_OBJECT_EX */
#define DESCR_MEMBER 40
#define MEMBER_TYPE 8
#define MEMBER_OFFSET 16
#define T_OBJECT 6
#define T_OBJECT_EX 16
/* Bounds of the instance-attribute reader */
#define ENTRIES_MAX 512 /* entries of one dict table looked at */
#define MRO_MAX 32 /* classes of one MRO looked at for a slot */
#define FIELDS_MAX 32 /* fields of a parsed-request object looked at */
#define BASICSIZE_MAX 4096
#define TYPE_NAME_MAX 64
#define TYPE_HEAD (TP_MRO + 8) /* bytes of a class read */
#define CONN_TYPES_MAX 256

/* The classes whose instances hold a connection's request. */
enum conn_kind { KIND_NONE, KIND_AIOHTTP, KIND_WS_LEGACY, KIND_WS };

static const struct {
	const char *module, *name;
	enum conn_kind kind;
} conn_classes[] = {
	{ "aiohttp.web_request", "BaseRequest", KIND_AIOHTTP },
	{ "websockets.legacy.server", "WebSocketServerProtocol", KIND_WS_LEGACY },
	{ "websockets.server", "WebSocketServerProtocol", KIND_WS_LEGACY }, /* before 10.0 */
	{ "websockets.asyncio.server", "ServerConnection", KIND_WS },
};

/* The attribute and key names looked up (key_name). */
static const char *const attr_names[] = {
	"__module__", "transport", "_extra", "peername", "request_headers",	"request",
	"headers",    "_list",	   "path",   "_message", "_transport_peername",
};
#define ATTR_NAME_MAX 32
#define KEYS_SEEN 16384 /* str keys remembered per scan (a power of two) */

struct key_seen {
	uint64_t addr;
	int8_t name;
};

struct htype {
	uint64_t addr;
	uint64_t mro;
	enum conn_kind kind;
};

struct cand {
	uint64_t tuple;
	uint16_t port;
	char ip[PYSCOPE_IP_MAX + 1];
};

struct found {
	uint64_t entry; /* the "client" entry's value slot, or the connection object */
	bool object; /* a connection object, not a scope */
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
	struct key_seen *keys;
	struct htype *types; /* pass 0: heap types; then the connection classes, sorted */
	size_t ntypes, nconn;
	uint64_t conn_min, conn_max;
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
	out->refcnt_flags = info->major == 3 && info->minor >= 14;
	if (info->major == 3 && info->minor >= 9 && info->minor <= 14 && out->refcnt_check &&
	    info->type_type_addr && info->dict_type_addr && info->member_descr_type_addr) {
		/*
		 * sizeof(PyTypeObject) + the as_* structs + ht_name, ht_slots, ht_qualname: from
		 * each version's headers, 3.14 from a live Debian 3.14.10 (its heap types' tp_name
		 * is their ht_name's characters there, their shared keys right after).
		 */
		static const unsigned int cached_keys[] = { 864, 872, 872, 880, 880, 880 };
		static const unsigned int ht_name[] = { 840, 848, 848, 856, 856, 856 };
		static const enum pyscope_inst inst[] = {
			PYSCOPE_INST_DICT,   PYSCOPE_INST_DICT,	  PYSCOPE_INST_VALUES,
			PYSCOPE_INST_TAGGED, PYSCOPE_INST_INLINE, PYSCOPE_INST_INLINE
		};

		out->inst = inst[info->minor - 9];
		out->ht_cached_keys = cached_keys[info->minor - 9];
		out->ht_name = ht_name[info->minor - 9];
		out->type_type = info->type_type_addr;
		out->dict_type = info->dict_type_addr;
		out->member_descr_type = info->member_descr_type_addr;
	}
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
		/* 3.14: ob_flags (statically allocated, ...) above the count's 48 bits */
		uint64_t rc = u64_at(h, 0) & (s->l.refcnt_flags ? (1ull << 48) - 1 : ~0ull);

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

/* A tuple of min..max items at addr (exactly a tuple): their count, items in items[], or -1. */
static int read_items(struct pyscope_scan *s, uint64_t addr, uint64_t *items, unsigned int min,
		      unsigned int max)
{
	uint8_t h[96];
	uint64_t n;

	if (addr & 7 || s->l.tuple_item > 64 || mem_read(s, addr, h, s->l.tuple_item))
		return -1;
	if (!header_ok(s, h, s->l.tuple_type))
		return -1;
	n = u64_at(h, s->l.var_size);
	if (n < min || n > max || (n && mem_read(s, addr + s->l.tuple_item, items, n * 8)))
		return -1;
	return (int)n;
}

/* A tuple of exactly two items at addr: their addresses. */
static bool read_pair(struct pyscope_scan *s, uint64_t addr, uint64_t items[2])
{
	return read_items(s, addr, items, 2, 2) == 2;
}

/* A peer address tuple: (ip, port), or (ip, port, flowinfo, scope_id) for IPv6. */
static bool read_peer(struct pyscope_scan *s, uint64_t addr, char ip[PYSCOPE_IP_MAX + 1],
		      uint16_t *port)
{
	uint64_t items[4];
	int n = read_items(s, addr, items, 2, 4), p;

	if (n != 2 && n != 4)
		return false;
	p = read_port(s, items[1]);
	if (p <= 0 || read_str(s, items[0], ip, PYSCOPE_IP_MAX) <= 0 || !ip_text(ip))
		return false;
	*port = (uint16_t)p;
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

/* Appends an ASCII str object to r->buf as a C string: its offset, or -errno. */
static long put_str(struct pyscope_scan *s, struct pyscope_request *r, uint64_t addr)
{
	char *dst = r->buf + r->used;
	int len;

	if (r->used >= sizeof(r->buf))
		return -E2BIG;
	len = read_str(s, addr, dst, sizeof(r->buf) - r->used - 1);
	if (len < 0)
		return len;
	/* CR/LF would make it another header than the server parsed */
	if (memchr(dst, '\r', len) || memchr(dst, '\n', len))
		return -EINVAL;
	r->used += len + 1;
	return dst - r->buf;
}

/* A header's name or value: bytes as received (uvicorn, aiohttp), or str (websockets). */
static long put_header_text(struct pyscope_scan *s, struct pyscope_request *r, uint64_t addr)
{
	uint8_t h[16];

	if (addr & 7 || mem_read(s, addr, h, sizeof(h)))
		return -EFAULT;
	if (u64_at(h, s->l.obj_type) == s->l.str_type)
		return put_str(s, r, addr);
	return put_bytes(s, r, addr, true);
}

static int put_text(struct pyscope_request *r, const char *a, const char *b, const char *c)
{
	int n = snprintf(r->buf + r->used, sizeof(r->buf) - r->used, "%s%s%s", a, b, c);

	if (n < 0 || (size_t)n >= sizeof(r->buf) - r->used)
		return -E2BIG;
	r->used += n + 1;
	return (int)(r->used - n - 1);
}

/*
 * A request's headers into r: a list (uvicorn's scope, websockets' Headers._list) or a tuple
 * (aiohttp's raw_headers) of (name, value) 2-tuples of bytes or str.  0 or -errno; r->used is
 * left as it was on error.
 */
static int read_headers(struct pyscope_scan *s, uint64_t seq, struct pyscope_request *r)
{
	long off[HTTP1_MAX_HEADERS][2];
	uint64_t items[HTTP1_MAX_HEADERS];
	uint8_t h[64];
	uint64_t n, arr;
	size_t used = r->used;

	if (seq & 7 || mem_read(s, seq, h, s->l.list_items + 8))
		return -EFAULT;
	n = u64_at(h, s->l.var_size);
	if (header_ok(s, h, s->l.list_type))
		arr = u64_at(h, s->l.list_items);
	else if (header_ok(s, h, s->l.tuple_type))
		arr = seq + s->l.tuple_item;
	else
		return -EINVAL;
	if (n > HTTP1_MAX_HEADERS)
		return -E2BIG;
	if (n && mem_read(s, arr, items, n * 8))
		return -EFAULT;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t pair[2];

		if (!read_pair(s, items[i], pair))
			goto bad;
		off[i][0] = put_header_text(s, r, pair[0]);
		if (off[i][0] < 0)
			goto bad;
		off[i][1] = put_header_text(s, r, pair[1]);
		if (off[i][1] < 0)
			goto bad;
	}
	/* pointers only now: buf does not move, but offsets are what was checked */
	r->req.nheaders = n;
	for (uint64_t i = 0; i < n; i++) {
		r->req.headers[i].name = r->buf + off[i][0];
		r->req.headers[i].value = r->buf + off[i][1];
	}
	return 0;
bad:
	r->used = used;
	return -EINVAL;
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

/*
 * The request line of r from its path and its query (an offset into r->buf, or -1): the
 * method and target the identity rules read.  0 or -E2BIG.
 */
static int finish_request(struct pyscope_request *r, const char *path, long qoff)
{
	int target, method, poff;

	target = put_text(r, path, qoff >= 0 && r->buf[qoff] ? "?" : "",
			  qoff >= 0 ? r->buf + qoff : "");
	method = put_text(r, "GET", "", "");
	poff = put_text(r, path, "", "");
	if (target < 0 || method < 0 || poff < 0)
		return -E2BIG;
	r->req.target = r->buf + target;
	r->req.method = r->buf + method;
	r->req.path = r->buf + poff;
	r->req.query = qoff >= 0 ? r->buf + qoff : "";
	return 0;
}

static struct pyscope_request *new_request(const char *ip, uint16_t port)
{
	struct pyscope_request *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	snprintf(r->ip, sizeof(r->ip), "%s", ip);
	r->port = port;
	r->req.kind = HTTP1_REQUEST;
	r->req.version_minor = 1;
	return r;
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

	for (size_t i = 0; i < sizeof(entry_strides) / sizeof(entry_strides[0]) && !headers; i++) {
		stride = entry_strides[i];
		headers = neighbour(s, val, stride, "headers");
	}
	if (!headers)
		return NULL;
	r = new_request(c->ip, c->port);
	if (!r)
		return NULL;
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
	if (finish_request(r, path, qoff))
		goto bad;
	s->st.scopes++;
	return r;
bad:
	s->st.bad_scopes++;
	free(r);
	return NULL;
}

/*
 * Instance attributes, as the interpreter keeps them (CPython's Objects/dictobject.c and
 * Include/internal/pycore_object.h of each version).
 */

/* A dict table (PyDictKeysObject): where its entries are and how they are laid out. */
struct table {
	uint64_t entries, n;
	unsigned int stride, key, val;
};

static int read_table(struct pyscope_scan *s, uint64_t keys, struct table *t)
{
	uint8_t h[40];

	if (!keys || keys & 7 || mem_read(s, keys, h, sizeof(h)))
		return -EFAULT;
	if (s->l.inst == PYSCOPE_INST_DICT) {
		/* dk_refcnt, dk_size, dk_lookup, dk_usable, dk_nentries, dk_indices[] */
		uint64_t size = u64_at(h, 8);

		if (size < 8 || size > 1u << 16 || (size & (size - 1)))
			return -EINVAL;
		t->n = u64_at(h, 32);
		t->entries = keys + 40 + size * (size <= 0xff ? 1 : size <= 0xffff ? 2 : 4);
		t->stride = 24;
		t->key = 8;
		t->val = 16;
		return t->n <= size ? 0 : -EINVAL;
	}
	/* dk_refcnt, dk_log2_size, dk_log2_index_bytes, dk_kind, dk_version, dk_usable, ... */
	if (h[8] < 3 || h[8] > 16 || h[9] < h[8] || h[9] > h[8] + 3 || h[10] > 2)
		return -EINVAL;
	t->n = u64_at(h, 24);
	t->entries = keys + 32 + (1ull << h[9]);
	/* DICT_KEYS_GENERAL: (hash, key, value); UNICODE and SPLIT: (key, value) */
	t->stride = h[10] ? 16 : 24;
	t->key = h[10] ? 0 : 8;
	t->val = h[10] ? 8 : 16;
	return t->n <= 1ull << h[8] ? 0 : -EINVAL;
}

/*
 * Which of the names looked up the str key at addr is (-1: none), read once per scan: the
 * same interned keys are in every class's namespace and every instance's shared keys, and
 * reading them again at each lookup would cost hundreds of reads per connection.
 */
static int key_name(struct pyscope_scan *s, uint64_t addr)
{
	char buf[ATTR_NAME_MAX + 1];
	struct key_seen *k = NULL;
	int len, name = -1;

	for (unsigned int p = 0; p < 8; p++) {
		struct key_seen *c = &s->keys[((addr >> 3) + p) & (KEYS_SEEN - 1)];

		if (c->addr == addr)
			return c->name;
		if (!c->addr && !k)
			k = c;
	}
	len = read_str(s, addr, buf, ATTR_NAME_MAX);
	for (size_t i = 0; len > 0 && i < sizeof(attr_names) / sizeof(attr_names[0]); i++) {
		if (!strcmp(buf, attr_names[i]))
			name = (int)i;
	}
	if (!k)
		k = &s->keys[(addr >> 3) & (KEYS_SEEN - 1)];
	k->addr = addr;
	k->name = (int8_t)name;
	return name;
}

static int attr_name(const char *name)
{
	for (size_t i = 0; i < sizeof(attr_names) / sizeof(attr_names[0]); i++) {
		if (!strcmp(name, attr_names[i]))
			return (int)i;
	}
	return -1;
}

/* The index of t's entry whose key is the str name, with its value slot; or -1. */
static long table_find(struct pyscope_scan *s, const struct table *t, const char *name,
		       uint64_t *slot)
{
	uint8_t e[ENTRIES_MAX * 24];
	uint64_t n = t->n < ENTRIES_MAX ? t->n : ENTRIES_MAX;
	int want = attr_name(name);

	if (want < 0 || !n || mem_read(s, t->entries, e, n * t->stride))
		return -1;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t key = u64_at(e, i * t->stride + t->key);

		if (key && key_name(s, key) == want) {
			*slot = t->entries + i * t->stride + t->val;
			return (long)i;
		}
	}
	return -1;
}

/* The value of a split table's entry i: values[i], values being the instance's array. */
static uint64_t value_at(struct pyscope_scan *s, uint64_t values, long i)
{
	uint64_t v;

	if (i < 0 || !values || values & 7 || mem_read(s, values + 8 * (uint64_t)i, &v, 8))
		return 0;
	return v;
}

/* d[name] of the dict object at dict (a str key): the value's address, or 0. */
static uint64_t dict_get(struct pyscope_scan *s, uint64_t dict, const char *name)
{
	uint8_t h[48];
	struct table t;
	uint64_t slot, values, v;
	long i;

	if (!dict || dict & 7 || mem_read(s, dict, h, sizeof(h)) ||
	    !header_ok(s, h, s->l.dict_type) || read_table(s, u64_at(h, 32), &t))
		return 0;
	i = table_find(s, &t, name, &slot);
	if (i < 0)
		return 0;
	/* ma_values: a split table's values, 3.13's with a header of 8 bytes */
	values = u64_at(h, 40);
	if (values)
		return value_at(s, values + (s->l.inst == PYSCOPE_INST_INLINE ? 8 : 0), i);
	if (mem_read(s, slot, &v, 8))
		return 0;
	return v;
}

/* A class: its address and first bytes. */
struct cls {
	uint64_t addr;
	uint8_t b[TYPE_HEAD];
};

/* The value named name in an instance's values array laid out by its class's shared keys. */
static uint64_t values_get(struct pyscope_scan *s, const struct cls *c, uint64_t values,
			   const char *name)
{
	struct table t;
	uint64_t keys, slot;

	if (mem_read(s, c->addr + s->l.ht_cached_keys, &keys, 8) || read_table(s, keys, &t))
		return 0;
	return value_at(s, values, table_find(s, &t, name, &slot));
}

/* obj.name from obj's own attributes (its dict or values). */
static uint64_t own_attr(struct pyscope_scan *s, uint64_t obj, const struct cls *c,
			 const char *name)
{
	const uint8_t *type = c->b;
	uint64_t flags = u64_at(type, TP_FLAGS), w[2];
	int64_t off;

	switch (s->l.inst) {
	case PYSCOPE_INST_DICT:
		off = (int64_t)u64_at(type, TP_DICTOFFSET);
		if (off <= 0 || off > BASICSIZE_MAX || off & 7 || mem_read(s, obj + off, w, 8))
			return 0;
		return dict_get(s, w[0], name);
	case PYSCOPE_INST_VALUES:
		if (!(flags & F_MANAGED_DICT) || mem_read(s, obj - 32, w, 16))
			return 0;
		return w[0] ? values_get(s, c, w[0], name) : dict_get(s, w[1], name);
	case PYSCOPE_INST_TAGGED:
		if (!(flags & F_MANAGED_DICT) || mem_read(s, obj - 24, w, 8))
			return 0;
		return w[0] & 1 ? values_get(s, c, w[0] + 1, name) : dict_get(s, w[0], name);
	case PYSCOPE_INST_INLINE:
		if (flags & F_INLINE_VALUES) {
			uint64_t size = u64_at(type, TP_BASICSIZE);
			uint8_t vh[8];

			/* capacity, size, embedded, valid: not valid once a dict took them over */
			if (size < 16 || size > BASICSIZE_MAX || size & 7 ||
			    mem_read(s, obj + size, vh, sizeof(vh)))
				return 0;
			if (vh[3])
				return values_get(s, c, obj + size + 8, name);
		}
		if (!(flags & F_MANAGED_DICT) || mem_read(s, obj - 24, w, 8))
			return 0;
		return dict_get(s, w[0], name);
	default:
		return 0;
	}
}

/* obj.name from a slot (__slots__): a member descriptor of a class in obj's MRO. */
static uint64_t slot_attr(struct pyscope_scan *s, uint64_t obj, const uint8_t *type,
			  const char *name)
{
	uint64_t mro[MRO_MAX], size = u64_at(type, TP_BASICSIZE), def[3], v;
	int n = read_items(s, u64_at(type, TP_MRO), mro, 1, MRO_MAX);

	for (int i = 0; i < n; i++) {
		uint64_t dict, descr;
		uint8_t h[48];

		if (mem_read(s, mro[i] + TP_DICT, &dict, 8))
			return 0;
		descr = dict_get(s, dict, name);
		if (!descr)
			continue;
		/* the first class naming it decides, as attribute lookup does */
		if (descr & 7 || mem_read(s, descr, h, sizeof(h)) ||
		    !header_ok(s, h, s->l.member_descr_type) ||
		    mem_read(s, u64_at(h, DESCR_MEMBER), def, sizeof(def)))
			return 0;
		if (((uint32_t)def[1] != T_OBJECT && (uint32_t)def[1] != T_OBJECT_EX) ||
		    def[2] < 16 || def[2] + 8 > size || def[2] & 7 ||
		    mem_read(s, obj + def[2], &v, 8))
			return 0;
		return v;
	}
	return 0;
}

/*
 * The object whose first bytes are b is a class: an instance of type, or of a metaclass
 * (ABCMeta: a subclass of type that is itself an instance of type).
 */
static bool class_ok(struct pyscope_scan *s, const uint8_t *b)
{
	uint64_t meta = u64_at(b, s->l.obj_type);
	uint8_t m[TP_FLAGS + 8];

	if (header_ok(s, b, s->l.type_type))
		return true;
	if (!header_ok(s, b, meta) || meta & 7 || mem_read(s, meta, m, sizeof(m)))
		return false;
	return header_ok(s, m, s->l.type_type) && (u64_at(m, TP_FLAGS) & F_TYPE_SUBCLASS);
}

/* The class of obj: 0 or -errno. */
static int read_class(struct pyscope_scan *s, uint64_t obj, struct cls *c)
{
	uint8_t h[16];

	if (!obj || obj & 7 || mem_read(s, obj, h, sizeof(h)))
		return -EFAULT;
	c->addr = u64_at(h, s->l.obj_type);
	if (!header_ok(s, h, c->addr) || c->addr & 7 || mem_read(s, c->addr, c->b, TYPE_HEAD) ||
	    !class_ok(s, c->b))
		return -EINVAL;
	return 0;
}

/* obj.name, for an attribute that holds an object: its address, or 0. */
static uint64_t get_attr(struct pyscope_scan *s, uint64_t obj, const char *name)
{
	struct cls c;
	uint64_t v;

	if (read_class(s, obj, &c))
		return 0;
	v = own_attr(s, obj, &c, name);
	return v ? v : slot_attr(s, obj, c.b, name);
}

/*
 * The fields of aiohttp's parsed request (RawRequestMessage: a C extension class of fixed
 * fields, or a named tuple without it): its raw_headers are the one field that is a tuple of
 * (bytes, bytes) pairs, its path the one str that starts with "/".  Found by shape because
 * the C class keeps them at offsets no descriptor names.  The path (with its query) into
 * path; 0 or -errno.
 */
static int read_message(struct pyscope_scan *s, uint64_t msg, struct pyscope_request *r,
			char path[PATH_MAX_CHARS + 1])
{
	uint64_t f[FIELDS_MAX], n, at, flags, size;
	bool headers = false, have_path = false;
	uint8_t h[24];
	struct cls c;

	if (read_class(s, msg, &c))
		return -EINVAL;
	flags = u64_at(c.b, TP_FLAGS);
	size = u64_at(c.b, TP_BASICSIZE);
	if (flags & F_TUPLE_SUBCLASS) {
		if (mem_read(s, msg, h, sizeof(h)))
			return -EFAULT;
		n = u64_at(h, s->l.var_size);
		at = msg + s->l.tuple_item;
	} else {
		n = size >= 16 ? (size - 16) / 8 : 0;
		at = msg + 16;
	}
	if (!n || n > FIELDS_MAX || mem_read(s, at, f, n * 8))
		return -EINVAL;
	for (uint64_t i = 0; i < n && !(headers && have_path); i++) {
		if (!have_path && read_str(s, f[i], path, PATH_MAX_CHARS) > 0 && path[0] == '/') {
			have_path = true;
			continue;
		}
		if (!headers && !read_headers(s, f[i], r) && r->req.nheaders)
			headers = true;
	}
	return headers && have_path ? 0 : -ENOENT;
}

/*
 * The request and the peer of a connection object of the given kind (docs/adoption.md):
 *   aiohttp's Request: _message (the parsed request), _transport_peername;
 *   websockets' WebSocketServerProtocol: request_headers._list, path, transport;
 *   websockets' ServerConnection: request.headers._list, request.path, transport;
 * the transport's peer in its _extra dict, "peername".
 */
static struct pyscope_request *read_conn(struct pyscope_scan *s, uint64_t obj, enum conn_kind kind)
{
	char path[PATH_MAX_CHARS + 1], ip[PYSCOPE_IP_MAX + 1];
	struct pyscope_request *r;
	uint64_t peer, req = obj;
	uint16_t port;
	long qoff = -1;
	char *mark;

	if (kind == KIND_AIOHTTP)
		peer = get_attr(s, obj, "_transport_peername");
	else
		peer = dict_get(s, get_attr(s, get_attr(s, obj, "transport"), "_extra"),
				"peername");
	/*
	 * No peer: a word naming the class that is not an instance of it (or a connection on a
	 * transport that keeps no peer): nothing to tie a request to.
	 */
	if (!read_peer(s, peer, ip, &port))
		return NULL;
	r = new_request(ip, port);
	if (!r)
		return NULL;
	if (kind == KIND_AIOHTTP) {
		if (read_message(s, get_attr(s, obj, "_message"), r, path))
			goto bad;
	} else {
		if (kind == KIND_WS)
			req = get_attr(s, obj, "request");
		if (read_headers(s,
				 get_attr(s,
					  get_attr(s, req,
						   kind == KIND_WS ? "headers" : "request_headers"),
					  "_list"),
				 r) ||
		    read_str(s, get_attr(s, req, "path"), path, PATH_MAX_CHARS) <= 0 ||
		    path[0] != '/')
			goto bad;
	}
	/* the path as requested: the query after its "?" */
	mark = strchr(path, '?');
	if (mark) {
		*mark = 0;
		qoff = put_text(r, mark + 1, "", "");
		if (qoff < 0)
			goto bad;
	}
	if (finish_request(r, path, qoff))
		goto bad;
	s->st.objects++;
	return r;
bad:
	free(r);
	/* before the handshake, or after its close, or not within the bounds */
	s->st.bad_objects++;
	return NULL;
}

/* Pass 0: a class (heap type) at addr; whether it is one of the connection classes. */
static void note_type(struct pyscope_scan *s, uint64_t addr)
{
	uint8_t t[TP_MRO + 8];
	char name[TYPE_NAME_MAX + 1];
	struct htype *ty;
	uint64_t tn, n;

	if (mem_read(s, addr, t, sizeof(t)) || !class_ok(s, t))
		return;
	for (size_t i = 0; i < s->ntypes && i < 4; i++) {
		if (s->types[s->ntypes - 1 - i].addr == addr)
			return; /* seen in the overlap of two chunks */
	}
	if (s->ntypes >= PYSCOPE_TYPES_MAX) {
		/* the scopes are still looked for: only the classes past the bound are not */
		s->st.types_limited = true;
		return;
	}
	ty = &s->types[s->ntypes++];
	ty->addr = addr;
	ty->mro = u64_at(t, TP_MRO);
	ty->kind = KIND_NONE;
	/* tp_name: a C string, read no further than its page */
	tn = u64_at(t, TP_NAME);
	n = 4096 - (tn & 4095);
	if (n > TYPE_NAME_MAX)
		n = TYPE_NAME_MAX;
	if (!tn || mem_read(s, tn, name, n))
		return;
	name[n] = 0;
	for (size_t i = 0; i < sizeof(conn_classes) / sizeof(conn_classes[0]); i++) {
		if (strcmp(name, conn_classes[i].name))
			continue;
		if (str_is(s, dict_get(s, u64_at(t, TP_DICT), "__module__"),
			   conn_classes[i].module))
			ty->kind = conn_classes[i].kind;
	}
}

static int htype_cmp(const void *a, const void *b)
{
	const struct htype *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* After pass 0: the connection classes and their subclasses (by their MRO), sorted. */
static void conn_types_done(struct pyscope_scan *s)
{
	uint64_t bases[CONN_TYPES_MAX];
	enum conn_kind kinds[CONN_TYPES_MAX];
	size_t nb = 0, j = 0;

	for (size_t i = 0; i < s->ntypes && nb < CONN_TYPES_MAX; i++) {
		if (s->types[i].kind != KIND_NONE) {
			bases[nb] = s->types[i].addr;
			kinds[nb++] = s->types[i].kind;
		}
	}
	s->st.heap_types = s->ntypes;
	for (size_t i = 0; i < s->ntypes && nb; i++) {
		struct htype *ty = &s->types[i];
		uint64_t mro[MRO_MAX];
		int n;

		if (ty->kind == KIND_NONE) {
			n = read_items(s, ty->mro, mro, 2, MRO_MAX);
			for (int k = 1; k < n && ty->kind == KIND_NONE; k++) {
				for (size_t b = 0; b < nb; b++) {
					if (mro[k] == bases[b])
						ty->kind = kinds[b];
				}
			}
		}
		if (ty->kind != KIND_NONE && j < CONN_TYPES_MAX)
			s->types[j++] = *ty;
	}
	s->nconn = j;
	qsort(s->types, j, sizeof(*s->types), htype_cmp);
	s->conn_min = j ? s->types[0].addr : 1;
	s->conn_max = j ? s->types[j - 1].addr : 0;
	s->st.conn_types = j;
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
	if (l->inst != PYSCOPE_INST_NONE) {
		s->types = calloc(PYSCOPE_TYPES_MAX, sizeof(*s->types));
		s->keys = calloc(KEYS_SEEN, sizeof(*s->keys));
	} else {
		s->st.objects_unsupported = true;
	}
	if (!s->cands || !s->bloom || !s->found ||
	    (l->inst != PYSCOPE_INST_NONE && (!s->types || !s->keys))) {
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
	free(s->types);
	free(s->keys);
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
	if (s->types)
		conn_types_done(s);
}

/*
 * Whether a class defined in Python (a heap type) may start at b + i: ready, and its tp_name
 * the characters of its ht_name str, as type() sets them.  Its metaclass is not known yet
 * (ABCMeta may be met later in the walk), so it is not what finds it; note_type checks it.
 */
static bool heap_type_at(struct pyscope_scan *s, const uint8_t *b, size_t n, size_t i,
			 uint64_t addr)
{
	uint64_t rc, name, size, flags;

	/* first what the chunk holds: a live count, a type, a name, an object size */
	if (i + TP_BASICSIZE + 8 > n)
		return false;
	rc = u64_at(b, i) & (s->l.refcnt_flags ? (1ull << 48) - 1 : ~0ull);
	name = u64_at(b, i + TP_NAME);
	size = u64_at(b, i + TP_BASICSIZE);
	if (!rc || rc >= 1ull << 40 || !u64_at(b, i + s->l.obj_type) ||
	    u64_at(b, i + s->l.obj_type) & 7 || !name || name & 7 || size < 16 ||
	    size > BASICSIZE_MAX || size & 7)
		return false;
	if (i + TP_FLAGS + 8 <= n)
		flags = u64_at(b, i + TP_FLAGS);
	else if (mem_read(s, addr + i + TP_FLAGS, &flags, 8))
		return false;
	if ((flags & (F_HEAPTYPE | F_READY)) != (F_HEAPTYPE | F_READY))
		return false;
	if (i + s->l.ht_name + 8 <= n)
		rc = u64_at(b, i + s->l.ht_name);
	else if (mem_read(s, addr + i + s->l.ht_name, &rc, 8))
		return false;
	return rc && name == rc + s->l.str_ascii_data;
}

static void pass_tuples(struct pyscope_scan *s, const uint8_t *b, size_t n, uint64_t addr)
{
	size_t span = s->l.tuple_item + 16;

	for (size_t i = 0; i + span <= n && s->ncands < PYSCOPE_CANDS_MAX && !s->st.limited;
	     i += 8) {
		struct cand *c = &s->cands[s->ncands];
		uint64_t items[2];
		int port;

		if (s->types && heap_type_at(s, b, n, i, addr)) {
			note_type(s, addr + i);
			continue;
		}
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

/* A scope (c: its client) or a connection object of kind at val, read once. */
static void add_found(struct pyscope_scan *s, uint64_t val, const struct cand *c,
		      enum conn_kind kind)
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
	r = c ? read_scope(s, val, c) : read_conn(s, val, kind);
	if (!r)
		return;
	s->found[s->nfound].entry = val;
	s->found[s->nfound].object = !c;
	s->found[s->nfound++].r = r;
}

/* The kind of the connection class at addr, or KIND_NONE. */
static enum conn_kind conn_kind_of(const struct pyscope_scan *s, uint64_t addr)
{
	struct htype key = { .addr = addr }, *t;

	if (!s->nconn || addr < s->conn_min || addr > s->conn_max)
		return KIND_NONE;
	t = bsearch(&key, s->types, s->nconn, sizeof(*s->types), htype_cmp);
	return t ? t->kind : KIND_NONE;
}

static void pass_scopes(struct pyscope_scan *s, const uint8_t *b, size_t n, uint64_t addr)
{
	for (size_t i = 8; i + 8 <= n && !s->st.limited; i += 8) {
		uint64_t w = u64_at(b, i), slot = bloom_slot(w);
		struct cand key = { .tuple = w }, *c;

		enum conn_kind kind = conn_kind_of(s, w);

		/* an object of a connection class: w is its ob_type */
		if (kind != KIND_NONE && i >= s->l.obj_type)
			add_found(s, addr + i - s->l.obj_type, NULL, kind);
		if (!(s->bloom[slot / 8] & (1u << (slot % 8))))
			continue;
		c = bsearch(&key, s->cands, s->ncands, sizeof(*s->cands), cand_cmp);
		if (!c || !str_is(s, u64_at(b, i - 8), "client"))
			continue;
		add_found(s, addr + i, c, KIND_NONE);
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

	/*
	 * Scopes first, then connection objects: uvicorn's protocol is a websockets one too, and
	 * its request read both ways is the same request spelled twice (bytes and str).
	 */
	for (int object = 0; object < 2 && !hit; object++) {
		for (size_t i = 0; i < s->nfound; i++) {
			const struct pyscope_request *r = s->found[i].r;

			if (s->found[i].object != object || r->port != port || strcmp(r->ip, ip))
				continue;
			if (hit && !same_request(hit, r)) {
				*err = -EEXIST;
				return NULL;
			}
			hit = r;
		}
	}
	*err = hit ? 0 : -ENOENT;
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

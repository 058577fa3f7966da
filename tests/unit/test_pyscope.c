// SPDX-License-Identifier: GPL-2.0
/*
 * An adopted connection's request read back from an ASGI scope (user/pyscope.c), over a
 * synthetic memory image: uvicorn's scope dict as CPython 3.11 lays it out, with the things a
 * real heap holds around it (other scopes next to it, freed ones, hostile bytes).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pyscope.h"
#include "pyscope_image.h"

static struct img *img;
/* the layout under test: img_layout, with the instance layout of the CPython version tried */
static struct pyscope_layout lay;

static uint64_t alloc(size_t n)
{
	uint64_t at = IMG_BASE + img->top;

	img->top += (n + 15) & ~15ul;
	assert_true(img->top <= IMG_SIZE);
	return at;
}

static void put64(uint64_t addr, uint64_t v)
{
	memcpy(img->b + (addr - IMG_BASE), &v, 8);
}

static void header(uint64_t at, uint64_t type, uint64_t size)
{
	put64(at, 1);
	put64(at + 8, type);
	put64(at + 16, size);
}

static uint64_t mk_str(const char *s)
{
	size_t n = strlen(s);
	uint64_t at = alloc(40 + n + 1);

	header(at, img_layout.str_type, n);
	put64(at + 24, (uint64_t)-1);
	put64(at + 32, 0x20 | 0x40 | (1 << 2)); /* compact, ascii, kind 1 */
	memcpy(img->b + (at + 40 - IMG_BASE), s, n + 1);
	return at;
}

static uint64_t mk_int(uint32_t v)
{
	uint64_t at = alloc(32);

	header(at, img_layout.long_type, 1);
	memcpy(img->b + (at + 24 - IMG_BASE), &v, 4);
	return at;
}

static uint64_t mk_tuple(uint64_t a, uint64_t b)
{
	uint64_t at = alloc(40);

	header(at, img_layout.tuple_type, 2);
	put64(at + 24, a);
	put64(at + 32, b);
	return at;
}

static uint64_t mk_bytes(const char *s)
{
	size_t n = strlen(s);
	uint64_t at = alloc(32 + n + 1);

	header(at, img_layout.bytes_type, n);
	memcpy(img->b + (at + 32 - IMG_BASE), s, n + 1);
	return at;
}

static uint64_t mk_list(const uint64_t *items, size_t n)
{
	uint64_t at = alloc(40), arr = alloc(8 * (n ? n : 1));

	header(at, img_layout.list_type, n);
	put64(at + 24, arr);
	put64(at + 32, n);
	for (size_t i = 0; i < n; i++)
		put64(arr + 8 * i, items[i]);
	return at;
}

static uint64_t mk_headers(const char *const *kv, size_t n)
{
	uint64_t items[128];

	for (size_t i = 0; i < n; i++)
		items[i] = mk_tuple(mk_bytes(kv[2 * i]), mk_bytes(kv[2 * i + 1]));
	return mk_list(items, n);
}

/*
 * A scope's table as a 3.11 dict of str keys keeps it: an index array, then (key, value)
 * entries in insertion order, then unused (zeroed) entries.  Returns the tuple's address.
 */
static uint64_t mk_scope(const char *ip, uint32_t port, uint64_t headers, const char *query)
{
	const char *keys[] = { "type",	       "asgi",	    "scheme",	   "server",
			       "client",       "root_path", "path",	   "raw_path",
			       "query_string", "headers",   "subprotocols" };
	size_t n = sizeof(keys) / sizeof(keys[0]);
	uint64_t client = mk_tuple(mk_str(ip), mk_int(port)), vals[16], idx, entries;

	for (size_t i = 0; i < n; i++)
		vals[i] = mk_str("v");
	vals[4] = client;
	vals[6] = mk_str("/ws");
	vals[8] = mk_bytes(query);
	vals[9] = headers;
	idx = alloc(16);
	memset(img->b + (idx - IMG_BASE), 0xff, 16);
	entries = alloc(16 * (n + 4));
	for (size_t i = 0; i < n; i++) {
		put64(entries + 16 * i, mk_str(keys[i]));
		put64(entries + 16 * i + 8, vals[i]);
	}
	return client;
}

static struct pyscope_scan *scan(size_t chunk)
{
	struct pyscope_scan *s = pyscope_scan_new(&lay, img_read, img);

	assert_non_null(s);
	for (int pass = 0; pass < 2; pass++) {
		/* chunks overlap by 64 bytes, as the process walk's do */
		for (size_t off = 0; off < img->top; off += chunk - 64) {
			size_t n = img->top - off < chunk ? img->top - off : chunk;

			pyscope_scan_chunk(s, pass, img->b + off, n, IMG_BASE + off);
			if (off + n >= img->top)
				break;
		}
		if (!pass)
			pyscope_scan_pass_done(s);
	}
	return s;
}

static const char *const good[] = { "host", "127.0.0.1:8000", "sec-websocket-protocol",
				    "jwt.eyJhbGciOi, chat" };
static const char *const other[] = { "host", "127.0.0.1:8000", "sec-websocket-protocol",
				     "jwt.OTHER" };

static int setup(void **state)
{
	(void)state;
	lay = img_layout;
	img = calloc(1, sizeof(*img));
	return img ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(img);
	img = NULL;
	return 0;
}

static void test_request_read_back_from_scope(void **state)
{
	const struct http1_message *m;
	struct pyscope_scan *s;
	int err;

	(void)state;
	/* a scope of another peer right before: its headers must not be taken */
	mk_scope("127.0.0.1", 40000, mk_headers(other, 2), "");
	mk_scope("127.0.0.1", 40001, mk_headers(good, 2), "token=abc&x=1");
	mk_scope("::1", 40002, mk_headers(other, 2), "");
	for (size_t chunk = 256; chunk <= IMG_SIZE; chunk *= 8) {
		s = scan(chunk);
		m = pyscope_lookup(s, "127.0.0.1", 40001, &err);
		assert_int_equal(err, 0);
		assert_non_null(m);
		assert_int_equal(m->nheaders, 2);
		assert_string_equal(http1_header(m, "Sec-WebSocket-Protocol"),
				    "jwt.eyJhbGciOi, chat");
		assert_string_equal(m->query, "token=abc&x=1");
		assert_string_equal(m->target, "/ws?token=abc&x=1");
		assert_string_equal(m->path, "/ws");
		assert_string_equal(m->method, "GET");
		m = pyscope_lookup(s, "::1", 40002, &err);
		assert_non_null(m);
		assert_string_equal(http1_header(m, "sec-websocket-protocol"), "jwt.OTHER");
		assert_string_equal(m->target, "/ws");
		assert_null(pyscope_lookup(s, "127.0.0.1", 40003, &err));
		assert_int_equal(err, -ENOENT);
		assert_int_equal(pyscope_scan_stats(s)->scopes, 3);
		pyscope_scan_free(s);
	}
}

static void test_freed_scope_is_not_taken(void **state)
{
	struct pyscope_scan *s;
	uint64_t tuple;
	int err;

	(void)state;
	tuple = mk_scope("10.0.0.1", 5555, mk_headers(good, 2), "");
	/* pymalloc keeps its free list in the first word of a freed block */
	put64(tuple, IMG_BASE + 0x1230);
	s = scan(IMG_SIZE);
	assert_null(pyscope_lookup(s, "10.0.0.1", 5555, &err));
	assert_int_equal(err, -ENOENT);
	pyscope_scan_free(s);
}

static void test_two_requests_for_one_peer_are_neither(void **state)
{
	struct pyscope_scan *s;
	int err;

	(void)state;
	mk_scope("10.0.0.2", 6000, mk_headers(good, 2), "");
	mk_scope("10.0.0.2", 6000, mk_headers(other, 2), "");
	s = scan(IMG_SIZE);
	assert_null(pyscope_lookup(s, "10.0.0.2", 6000, &err));
	assert_int_equal(err, -EEXIST);
	pyscope_scan_free(s);
}

static void test_hostile_headers_are_refused(void **state)
{
	static const char *const crlf[] = { "x-a", "1\r\nsec-websocket-protocol: jwt.FORGED" };
	uint64_t many[HTTP1_MAX_HEADERS + 1], big;
	struct pyscope_scan *s;
	char *huge;
	int err;

	(void)state;
	mk_scope("10.0.0.3", 7000, mk_headers(crlf, 1), "");
	for (size_t i = 0; i < HTTP1_MAX_HEADERS + 1; i++)
		many[i] = mk_tuple(mk_bytes("a"), mk_bytes("b"));
	mk_scope("10.0.0.3", 7001, mk_list(many, HTTP1_MAX_HEADERS + 1), "");
	huge = malloc(PYSCOPE_REQ_MAX + 1);
	assert_non_null(huge);
	memset(huge, 'a', PYSCOPE_REQ_MAX);
	huge[PYSCOPE_REQ_MAX] = 0;
	big = mk_bytes(huge);
	free(huge);
	mk_scope("10.0.0.3", 7002, mk_list((uint64_t[]){ mk_tuple(mk_bytes("x"), big) }, 1), "");
	/* a header list whose item pointer leads out of the process */
	mk_scope("10.0.0.3", 7003, mk_list((uint64_t[]){ 0xdead0000ull }, 1), "");
	s = scan(IMG_SIZE);
	for (uint16_t port = 7000; port <= 7003; port++) {
		assert_null(pyscope_lookup(s, "10.0.0.3", port, &err));
		assert_int_equal(err, -ENOENT);
	}
	assert_int_equal(pyscope_scan_stats(s)->bad_scopes, 4);
	assert_int_equal(pyscope_scan_stats(s)->scopes, 0);
	pyscope_scan_free(s);
}

/*
 * Classes and their instances, as CPython 3.9 to 3.13 keep them (user/pyscope.c): a class is
 * a heap type whose tp_name is the characters of its ht_name str, tp_dict its namespace,
 * tp_mro a tuple starting with itself; an instance keeps its attributes in a dict (3.9,
 * 3.10), a values array laid out by the class's shared keys (3.11 at obj - 32, 3.12 tagged
 * at obj - 24) or inline after the object (3.13); a slot is a member descriptor's offset.
 */
#define TYPE_SIZE 1024
#define F_INLINE (1ull << 2)
#define F_MANAGED (1ull << 4)
#define F_HEAP_READY ((1ull << 9) | (1ull << 12))
#define F_TUPLE_SUB (1ull << 26)
#define F_TYPE_SUB (1ull << 31)

static uint64_t mk_tuple_n(const uint64_t *items, size_t n)
{
	uint64_t at = alloc(24 + 8 * (n ? n : 1));

	header(at, img_layout.tuple_type, n);
	for (size_t i = 0; i < n; i++)
		put64(at + 24 + 8 * i, items[i]);
	return at;
}

/* A table of str keys (values in its entries for a dict, or none: shared keys). */
static uint64_t mk_keys(const char *const *names, const uint64_t *vals, size_t n)
{
	uint64_t at = alloc(64 + 24 * 8), entries;

	assert_true(n <= 5);
	put64(at, 1);
	if (lay.inst == PYSCOPE_INST_DICT) {
		put64(at + 8, 8); /* dk_size */
		put64(at + 32, n); /* dk_nentries */
		entries = at + 40 + 8;
		for (size_t i = 0; i < n; i++) {
			put64(entries + 24 * i + 8, mk_str(names[i]));
			put64(entries + 24 * i + 16, vals ? vals[i] : 0);
		}
		return at;
	}
	img->b[at + 8 - IMG_BASE] = 3; /* log2 size */
	img->b[at + 9 - IMG_BASE] = 3; /* log2 index bytes */
	img->b[at + 10 - IMG_BASE] = vals ? 1 : 2; /* unicode, or split */
	put64(at + 24, n);
	entries = at + 32 + 8;
	for (size_t i = 0; i < n; i++) {
		uint64_t key = mk_str(names[i]);

		/* 3.14: interned keys are statically allocated, ob_flags above the count */
		if (lay.refcnt_flags)
			put64(key, 1 | (1ull << 50));
		put64(entries + 16 * i, key);
		put64(entries + 16 * i + 8, vals ? vals[i] : 0);
	}
	return at;
}

static uint64_t mk_dict(const char *const *names, const uint64_t *vals, size_t n)
{
	uint64_t at = alloc(48);

	header(at, img_layout.dict_type, 0);
	put64(at + 16, n);
	put64(at + 32, mk_keys(names, vals, n));
	return at;
}

/* A member descriptor for a slot at offset. */
static uint64_t mk_member(uint64_t offset)
{
	uint64_t at = alloc(48), def = alloc(40);

	header(at, img_layout.member_descr_type, 0);
	put64(at + 40, def);
	put64(def + 8, 16); /* T_OBJECT_EX */
	put64(def + 16, offset);
	return at;
}

/*
 * A class: its MRO is itself then bases; attrs, when given, are the instance attributes its
 * shared keys lay out; its namespace holds __module__ and the member descriptors given.
 */
static uint64_t mk_class(const char *name, const char *module, uint64_t meta, const uint64_t *bases,
			 size_t nbases, uint64_t flags, uint64_t basicsize,
			 const char *const *attrs, size_t nattrs, const char *slot,
			 uint64_t slot_at)
{
	uint64_t at = alloc(TYPE_SIZE), ns = mk_str(name), mro[4];
	const char *keys[2] = { "__module__", slot };
	uint64_t vals[2] = { mk_str(module), slot ? mk_member(slot_at) : 0 };

	header(at, meta ? meta : img_layout.type_type, 0);
	put64(at + 24, ns + 40);
	put64(at + 32, basicsize);
	put64(at + 168, flags | F_HEAP_READY);
	put64(at + 264, mk_dict(keys, vals, slot ? 2 : 1));
	if (lay.inst == PYSCOPE_INST_DICT && (flags & F_MANAGED))
		put64(at + 288, 16); /* tp_dictoffset */
	mro[0] = at;
	for (size_t i = 0; i < nbases; i++)
		mro[i + 1] = bases[i];
	put64(at + 344, mk_tuple_n(mro, nbases + 1));
	put64(at + lay.ht_name, ns);
	if (nattrs)
		put64(at + lay.ht_cached_keys, mk_keys(attrs, NULL, nattrs));
	return at;
}

static uint64_t class_flags(void)
{
	switch (lay.inst) {
	case PYSCOPE_INST_INLINE:
		return F_INLINE | F_MANAGED;
	default:
		return F_MANAGED;
	}
}

/* An instance of cls (basicsize 16) with the attributes cls's shared keys name, in order. */
static uint64_t mk_instance(uint64_t cls, const char *const *names, const uint64_t *vals, size_t n)
{
	uint64_t pre = alloc(32 + 16 + 8 + 8 * n), at = pre + 32, values;

	header(at, cls, 0);
	switch (lay.inst) {
	case PYSCOPE_INST_DICT:
		/* dict at tp_dictoffset 16 */
		at = alloc(24);
		header(at, cls, 0);
		put64(at + 16, mk_dict(names, vals, n));
		break;
	case PYSCOPE_INST_VALUES:
		values = alloc(8 * n);
		for (size_t i = 0; i < n; i++)
			put64(values + 8 * i, vals[i]);
		put64(at - 32, values);
		break;
	case PYSCOPE_INST_TAGGED:
		values = alloc(8 * n);
		for (size_t i = 0; i < n; i++)
			put64(values + 8 * i, vals[i]);
		put64(at - 24, values - 1);
		break;
	case PYSCOPE_INST_INLINE:
		img->b[at + 16 + 2 - IMG_BASE] = 1; /* embedded */
		img->b[at + 16 + 3 - IMG_BASE] = 1; /* valid */
		for (size_t i = 0; i < n; i++)
			put64(at + 16 + 8 + 8 * i, vals[i]);
		break;
	default:
		fail();
	}
	return at;
}

/*
 * WSAUDIT_PYSCOPE_SEEDS=DIR: the image under test is written to DIR/name as a seed of
 * fuzz_pyscope (its input: the peer's length, the peer, then the image), for the 3.11 layout
 * the harness reads.
 */
static void dump_seed(const char *name, const char *peer)
{
	const char *dir = getenv("WSAUDIT_PYSCOPE_SEEDS");
	char path[4096];
	uint8_t n = (uint8_t)strlen(peer);
	FILE *f;

	if (!dir || lay.inst != img_layout.inst)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(&n, 1, 1, f);
	fwrite(peer, 1, n, f);
	fwrite(img->b, 1, img->top, f);
	fclose(f);
}

static const char *const ws_headers[] = { "Host", "127.0.0.1:8000", "Sec-WebSocket-Protocol",
					  "jwt.eyJhbGciOi, chat" };

/* asyncio's transport: _extra a slot of its base class, {"peername": (ip, port)}. */
static uint64_t mk_transport(uint64_t base, const char *ip, uint32_t port)
{
	static const char *const peer_key[] = { "peername" };
	uint64_t cls = mk_class("_SelectorSocketTransport", "asyncio.selector_events", 0, &base, 1,
				0, 24, NULL, 0, NULL, 0);
	uint64_t t = alloc(24), peer = mk_tuple(mk_str(ip), mk_int(port));

	header(t, cls, 0);
	put64(t + 16, mk_dict(peer_key, &peer, 1));
	return t;
}

/* websockets' Headers: __slots__ _dict, _list (list of (str, str)). */
static uint64_t mk_ws_headers(uint64_t cls, const char *const *kv, size_t n)
{
	uint64_t items[8], at = alloc(32);

	for (size_t i = 0; i < n; i++)
		items[i] = mk_tuple(mk_str(kv[2 * i]), mk_str(kv[2 * i + 1]));
	header(at, cls, 0);
	put64(at + 24, mk_list(items, n));
	return at;
}

static void ws_legacy_at(enum pyscope_inst inst, unsigned int cached_keys, unsigned int ht_name,
			 bool refcnt_flags)
{
	static const char *const attrs[] = { "transport", "path", "request_headers" };
	const struct http1_message *m;
	struct pyscope_scan *s;
	uint64_t base_t, hdr_cls, proto, sub, vals[3];
	int err;

	memset(img, 0, sizeof(*img));
	lay.inst = inst;
	lay.ht_cached_keys = cached_keys;
	lay.ht_name = ht_name;
	lay.refcnt_flags = refcnt_flags;
	base_t = mk_class("BaseTransport", "asyncio.transports", 0, NULL, 0, 0, 24, NULL, 0,
			  "_extra", 16);
	hdr_cls = mk_class("Headers", "websockets.datastructures", 0, NULL, 0, 0, 32, NULL, 0,
			   "_list", 24);
	proto = mk_class("WebSocketServerProtocol", "websockets.legacy.server", 0, NULL, 0,
			 class_flags(), 16, attrs, 3, NULL, 0);
	/* the server's own subclass, as the test app and uvicorn make */
	sub = mk_class("Proto", "__main__", 0, &proto, 1, class_flags(), 16, attrs, 3, NULL, 0);
	vals[0] = mk_transport(base_t, "127.0.0.1", 41000);
	vals[1] = mk_str("/ws?token=abc");
	vals[2] = mk_ws_headers(hdr_cls, ws_headers, 2);
	mk_instance(sub, attrs, vals, 3);
	/* a class of the same name in another module is not a connection class */
	proto = mk_class("WebSocketServerProtocol", "elsewhere", 0, NULL, 0, class_flags(), 16,
			 attrs, 3, NULL, 0);
	vals[0] = mk_transport(base_t, "127.0.0.1", 41001);
	mk_instance(proto, attrs, vals, 3);
	dump_seed("websockets", "127.0.0.1:41000");
	for (size_t chunk = 256; chunk <= IMG_SIZE; chunk *= 8) {
		s = scan(chunk);
		m = pyscope_lookup(s, "127.0.0.1", 41000, &err);
		assert_int_equal(err, 0);
		assert_non_null(m);
		assert_int_equal(m->nheaders, 2);
		assert_string_equal(http1_header(m, "sec-websocket-protocol"),
				    "jwt.eyJhbGciOi, chat");
		assert_string_equal(m->path, "/ws");
		assert_string_equal(m->query, "token=abc");
		assert_string_equal(m->target, "/ws?token=abc");
		assert_null(pyscope_lookup(s, "127.0.0.1", 41001, &err));
		assert_int_equal(pyscope_scan_stats(s)->objects, 1);
		assert_int_equal(pyscope_scan_stats(s)->conn_types, 2);
		pyscope_scan_free(s);
	}
}

static void test_websockets_request_per_layout(void **state)
{
	(void)state;
	ws_legacy_at(PYSCOPE_INST_DICT, 864, 840, false); /* 3.9 */
	ws_legacy_at(PYSCOPE_INST_VALUES, 872, 848, false); /* 3.11 */
	ws_legacy_at(PYSCOPE_INST_TAGGED, 880, 856, false); /* 3.12 */
	ws_legacy_at(PYSCOPE_INST_INLINE, 880, 856, false); /* 3.13 */
	ws_legacy_at(PYSCOPE_INST_INLINE, 880, 856, true); /* 3.14 */
}

/*
 * aiohttp: Request (a subclass of BaseRequest, whose metaclass is ABCMeta) with _message, the
 * parsed request (a named tuple here: raw_headers its fifth field), and _transport_peername.
 */
static uint64_t mk_aiohttp(uint64_t req_cls, uint64_t msg_cls, const char *ip, uint32_t port,
			   const char *const *kv, size_t n)
{
	static const char *const attrs[] = { "_message", "_transport_peername" };
	uint64_t raw[8], f[6], msg, vals[2];

	for (size_t i = 0; i < n; i++)
		raw[i] = mk_tuple(mk_bytes(kv[2 * i]), mk_bytes(kv[2 * i + 1]));
	f[0] = mk_str("GET");
	f[1] = mk_str("/ws");
	f[2] = mk_tuple(mk_int(1), mk_int(1));
	f[3] = mk_str("headers");
	f[4] = mk_tuple_n(raw, n);
	f[5] = mk_int(0);
	msg = mk_tuple_n(f, 6);
	put64(msg + 8, msg_cls);
	vals[0] = msg;
	vals[1] = mk_tuple_n((uint64_t[]){ mk_str(ip), mk_int(port), mk_int(0), mk_int(0) }, 4);
	return mk_instance(req_cls, attrs, vals, 2);
}

static void test_aiohttp_request(void **state)
{
	static const char *const attrs[] = { "_message", "_transport_peername" };
	static const char *const crlf[] = { "x-a", "1\r\nsec-websocket-protocol: jwt.FORGED" };
	const struct http1_message *m;
	uint64_t meta, base, req, msg_cls;
	struct pyscope_scan *s;
	int err;

	(void)state;
	meta = mk_class("ABCMeta", "abc", 0, NULL, 0, F_TYPE_SUB, TYPE_SIZE, NULL, 0, NULL, 0);
	base = mk_class("BaseRequest", "aiohttp.web_request", meta, NULL, 0, class_flags(), 16,
			attrs, 2, NULL, 0);
	req = mk_class("Request", "aiohttp.web_request", meta, &base, 1, class_flags(), 16, attrs,
		       2, NULL, 0);
	msg_cls = mk_class("RawRequestMessage", "aiohttp.http_parser", 0, NULL, 0, F_TUPLE_SUB, 24,
			   NULL, 0, NULL, 0);
	mk_aiohttp(req, msg_cls, "::1", 42000, ws_headers, 2);
	mk_aiohttp(req, msg_cls, "::1", 42001, crlf, 1);
	dump_seed("aiohttp", "[::1]:42000");
	s = scan(4096);
	m = pyscope_lookup(s, "::1", 42000, &err);
	assert_non_null(m);
	assert_string_equal(http1_header(m, "Sec-WebSocket-Protocol"), "jwt.eyJhbGciOi, chat");
	assert_string_equal(m->target, "/ws");
	/* a header that would read as another one: refused, and counted */
	assert_null(pyscope_lookup(s, "::1", 42001, &err));
	assert_int_equal(err, -ENOENT);
	assert_int_equal(pyscope_scan_stats(s)->objects, 1);
	assert_int_equal(pyscope_scan_stats(s)->bad_objects, 1);
	pyscope_scan_free(s);
}

/* Hostile objects: attributes that lead nowhere, loops, huge counts; nothing is taken. */
static void test_hostile_instances(void **state)
{
	static const char *const attrs[] = { "transport", "path", "request_headers" };
	uint64_t base_t, hdr_cls, proto, vals[3], o, keys, values;
	struct pyscope_scan *s;
	int err;

	(void)state;
	base_t = mk_class("BaseTransport", "asyncio.transports", 0, NULL, 0, 0, 24, NULL, 0,
			  "_extra", 16);
	hdr_cls = mk_class("Headers", "websockets.datastructures", 0, NULL, 0, 0, 32, NULL, 0,
			   "_list", 24);
	proto = mk_class("WebSocketServerProtocol", "websockets.legacy.server", 0, NULL, 0,
			 class_flags(), 16, attrs, 3, NULL, 0);
	vals[0] = mk_transport(base_t, "10.1.0.1", 1000);
	vals[1] = mk_str("/ws");
	vals[2] = mk_ws_headers(hdr_cls, ws_headers, 2);
	/* values pointing out of the process */
	o = mk_instance(proto, attrs, vals, 3);
	put64(o - 32, 0xdead0000ull);
	/* request headers that are the object itself */
	vals[0] = mk_transport(base_t, "10.1.0.1", 1001);
	o = mk_instance(proto, attrs, vals, 3);
	memcpy(&values, img->b + (o - 32 - IMG_BASE), 8);
	put64(values + 16, o);
	/* a slot whose descriptor's offset is past the object */
	hdr_cls = mk_class("Headers", "websockets.datastructures", 0, NULL, 0, 0, 32, NULL, 0,
			   "_list", 4096);
	vals[0] = mk_transport(base_t, "10.1.0.1", 1002);
	vals[2] = mk_ws_headers(hdr_cls, ws_headers, 2);
	mk_instance(proto, attrs, vals, 3);
	/* shared keys claiming more entries than their table holds */
	proto = mk_class("WebSocketServerProtocol", "websockets.legacy.server", 0, NULL, 0,
			 class_flags(), 16, attrs, 3, NULL, 0);
	memcpy(&keys, img->b + (proto + lay.ht_cached_keys - IMG_BASE), 8);
	put64(keys + 24, 1u << 20);
	vals[0] = mk_transport(base_t, "10.1.0.1", 1003);
	mk_instance(proto, attrs, vals, 3);
	s = scan(IMG_SIZE);
	for (uint16_t port = 1000; port <= 1003; port++) {
		assert_null(pyscope_lookup(s, "10.1.0.1", port, &err));
		assert_int_equal(err, -ENOENT);
	}
	assert_int_equal(pyscope_scan_stats(s)->objects, 0);
	pyscope_scan_free(s);
}

/* No instance layout for the interpreter: said, so the connection's reason can say it. */
static void test_unknown_layout_is_said(void **state)
{
	struct pyscope_scan *s;

	(void)state;
	lay.inst = PYSCOPE_INST_NONE;
	s = scan(IMG_SIZE);
	assert_true(pyscope_scan_stats(s)->objects_unsupported);
	pyscope_scan_free(s);
}

static void test_peer_text(void **state)
{
	char ip[PYSCOPE_IP_MAX + 1];
	uint16_t port;

	(void)state;
	assert_int_equal(pyscope_parse_peer("1.2.3.4:5", ip, &port), 0);
	assert_string_equal(ip, "1.2.3.4");
	assert_int_equal(port, 5);
	assert_int_equal(pyscope_parse_peer("[::1]:65535", ip, &port), 0);
	assert_string_equal(ip, "::1");
	assert_int_equal(port, 65535);
	assert_int_equal(pyscope_parse_peer("1.2.3.4:0", ip, &port), -EINVAL);
	assert_int_equal(pyscope_parse_peer("1.2.3.4:65536", ip, &port), -EINVAL);
	assert_int_equal(pyscope_parse_peer("unknown", ip, &port), -EINVAL);
	assert_int_equal(pyscope_parse_peer(":80", ip, &port), -EINVAL);
	assert_int_equal(pyscope_parse_peer("[::1:80", ip, &port), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_request_read_back_from_scope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_freed_scope_is_not_taken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_requests_for_one_peer_are_neither, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile_headers_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_websockets_request_per_layout, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_aiohttp_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_instances, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_layout_is_said, setup, teardown),
		cmocka_unit_test(test_peer_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

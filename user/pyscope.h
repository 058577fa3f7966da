/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The upgrade request of a connection opened before the trace (adopted), read back from the
 * server's own connection object in its memory: uvicorn keeps each WebSocket connection's
 * ASGI scope, a dict holding "client": (peer ip, peer port), "headers": [(name, value), ...]
 * as bytes and "query_string".  Found from the socket's peer address: a (str, int) 2-tuple
 * equal to it, then the dict entry whose key is "client" and whose value is that tuple, then
 * the entries next to it in the same table.  The request rebuilt from them goes to the same
 * identity rules as a seen handshake (identity_from_request).
 *
 * The servers of the websockets library and aiohttp keep the request in attributes of their
 * connection objects instead (WebSocketServerProtocol.request_headers,
 * ServerConnection.request, aiohttp's Request._message): those objects are found by their
 * class (a heap type of that name and module, or a subclass of one), their attributes read
 * as the interpreter keeps them (an instance dict, the 3.11/3.12 values array, the 3.13+
 * inline values, a slot), and the peer from the transport's "peername" (aiohttp keeps it on
 * the Request).
 *
 * Everything read is the traced process's memory: untrusted.  Every read is bounded in size
 * and in number, every object's type is checked against the interpreter's type objects
 * before a field of it is used, and a request that does not fit the bounds is refused with a
 * reason, never cut.
 */
#ifndef WSAUDIT_PYSCOPE_H
#define WSAUDIT_PYSCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http1.h"
#include "pyproc.h"

#define PYSCOPE_IP_MAX 45 /* characters of a peer address (IPv6 text) */
#define PYSCOPE_REQ_MAX HTTP1_MAX_HEAD /* bytes of the rebuilt request's strings */
#define PYSCOPE_CANDS_MAX 65536 /* (str, int) 2-tuples kept from one scan */
#define PYSCOPE_FOUND_MAX 4096 /* scopes kept from one scan */
#define PYSCOPE_READS_MAX 2000000 /* reads outside the chunk at hand, per scan */
#define PYSCOPE_SCAN_BYTES_MAX (1ull << 30)
#define PYSCOPE_TYPES_MAX 65536 /* heap types kept from one scan */

/* Where the objects are and how they are laid out (from pyproc_inspect). */
struct pyscope_layout {
	uint64_t tuple_type, long_type, str_type, bytes_type, list_type;
	unsigned int obj_type; /* ob_type offset */
	unsigned int var_size, tuple_item, bytes_data, list_items;
	unsigned int str_length, str_state, str_ascii_data, str_compact_bit, str_ascii_bit;
	bool long_tag; /* 3.12+: lv_tag (digits << 3 | sign) in place of ob_size */
	bool refcnt_check; /* ob_refcnt is the first word (not the free-threaded header) */
	bool refcnt_flags; /* 3.14+: that word's top 16 bits are ob_flags, not the count's */
	/* Instance attributes: PYSCOPE_INST_NONE when this interpreter's layout is not known. */
	enum pyscope_inst {
		PYSCOPE_INST_NONE,
		PYSCOPE_INST_DICT, /* 3.9, 3.10: a dict at tp_dictoffset, 24-byte entries */
		PYSCOPE_INST_VALUES, /* 3.11: values array at obj - 32, dict at obj - 24 */
		PYSCOPE_INST_TAGGED, /* 3.12: obj - 24 holds the dict, or the values - 1 */
		PYSCOPE_INST_INLINE, /* 3.13, 3.14: values inline at obj + tp_basicsize */
	} inst;
	uint64_t type_type, dict_type, member_descr_type;
	unsigned int ht_cached_keys; /* PyHeapTypeObject.ht_cached_keys */
	unsigned int ht_name; /* PyHeapTypeObject.ht_name */
};

/* 0, or -ENOTSUP when a type object or a field is not known for this interpreter. */
int pyscope_layout_from(const struct pyproc_info *info, struct pyscope_layout *out);

/* Reads len bytes at addr of the traced process: 0 or -errno (unit tests give their own). */
typedef int (*pyscope_read_fn)(void *ctx, uint64_t addr, void *buf, size_t len);

/* The request a scope holds, rebuilt: req's strings point into buf. */
struct pyscope_request {
	char ip[PYSCOPE_IP_MAX + 1];
	uint16_t port;
	struct http1_message req;
	size_t used;
	char buf[PYSCOPE_REQ_MAX];
};

struct pyscope_stats {
	uint64_t bytes_read;
	bool limited; /* a byte or read bound stopped the scan */
	uint64_t candidates; /* (str, int) 2-tuples */
	uint64_t scopes; /* dicts whose "client" is one of them, headers read */
	uint64_t bad_scopes; /* "client" found, but the headers could not be read within bounds */
	uint64_t heap_types; /* classes seen */
	uint64_t conn_types; /* of them, a connection class (or a subclass of one) */
	uint64_t objects; /* connection objects whose request and peer were read */
	uint64_t bad_objects; /* connection objects whose request or peer could not be read */
	bool objects_unsupported; /* no instance-attribute layout for this interpreter */
	bool types_limited; /* more classes than PYSCOPE_TYPES_MAX: the rest not looked at */
};

/* What the scans of a session found, for its stats record and metrics. */
struct pyscope_totals {
	uint64_t scans;
	uint64_t scan_bytes;
	uint64_t scans_limited; /* a byte or read bound stopped one */
	uint64_t scan_errors; /* the process could not be read, or is not a known CPython */
	uint64_t scopes; /* connection scopes read */
	uint64_t bad_scopes; /* found, but not readable within the bounds */
	uint64_t objects; /* websockets / aiohttp connection objects read */
	uint64_t bad_objects; /* found, but their request or peer not readable within the bounds */
	uint64_t recovered; /* adopted connections whose request was read back */
	uint64_t not_found; /* adopted connections with no scope for their peer */
	uint64_t conflicts; /* two scopes for one peer with different requests */
};

/* What one scan found. */
struct pyscope_scan;

/*
 * One scan of the objects in memory given chunk by chunk (both passes over the same chunks,
 * in the same order): pass 0 collects the 2-tuples and the classes, pass 1 the scopes holding
 * the tuples and the instances of the connection classes.  The chunks may overlap by up to
 * 64 bytes.  read serves every read outside the chunk at hand.
 */
struct pyscope_scan *pyscope_scan_new(const struct pyscope_layout *l, pyscope_read_fn read,
				      void *ctx);
void pyscope_scan_chunk(struct pyscope_scan *s, int pass, const uint8_t *b, size_t n,
			uint64_t addr);
/* Pass 0 is done: sorts what it found for pass 1. */
void pyscope_scan_pass_done(struct pyscope_scan *s);
void pyscope_scan_free(struct pyscope_scan *s);
const struct pyscope_stats *pyscope_scan_stats(const struct pyscope_scan *s);

/*
 * The request of the scope whose client is (ip, port): NULL when none was found; -EEXIST in
 * *err when two scopes name that peer with different requests (a stale one of an earlier
 * connection from the same address: neither is trusted), else -ENOENT.
 */
const struct http1_message *pyscope_lookup(const struct pyscope_scan *s, const char *ip,
					   uint16_t port, int *err);

/* Both passes over pid's heap and anonymous writable mappings (zhist_walk). */
int pyscope_scan_process(struct pyscope_scan *s, pid_t pid);

/* "1.2.3.4:5" or "[::1]:5" into ip and port; -EINVAL otherwise. */
int pyscope_parse_peer(const char *peer, char ip[PYSCOPE_IP_MAX + 1], uint16_t *port);

#endif /* WSAUDIT_PYSCOPE_H */

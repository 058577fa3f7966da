/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What identity (user/identity.c) and the JWT codec (user/jwt.c) share: the reasons a value
 * could not be had, and the bounded JSON reader of untrusted text.  Its own module, so that
 * the codec does not include its caller's header (identity.h documents how values are read:
 * dotted paths, integers as their decimal text, null as ABSENT, Python's JSON dialect).
 */
#ifndef WSAUDIT_IDJSON_H
#define WSAUDIT_IDJSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define IDENTITY_MAX_VALUE 256 /* bytes of a user id, type or ownership value */
#define IDENTITY_MAX_TOKEN 8192 /* bytes of a token in a handshake (JWTs are ~1 KiB) */
#define IDENTITY_MAX_MESSAGE (4u << 20) /* bytes of a message parsed for its fields */
/*
 * JSON nesting accepted: Python's json reads up to its recursion limit (1000 by default), so
 * a service can send that deep; jansson alone stops at 2048.
 */
#define IDENTITY_MAX_DEPTH 1000

/*
 * Every way of not getting a value, X(NAME, "name"): the one list behind the enum and the
 * names of identity_reason_name().
 *   ABSENT           the header, parameter, subprotocol entry or field is not there
 *   PREFIX_MISMATCH  the header is there but does not start with the prefix
 *   TOO_LONG         token over IDENTITY_MAX_TOKEN, or message over _MAX_MESSAGE
 *   BAD_BASE64       not base64url (jwt_b64 wrapper or a JWT segment)
 *   NOT_JWT          not three dot-separated base64url segments
 *   BAD_JSON         JWT payload or message is not JSON (or not UTF-8)
 *   TOO_DEEP         nested deeper than IDENTITY_MAX_DEPTH
 *   NOT_OBJECT       the JSON is not an object, or a path crosses a non-container
 *   NOT_STRING       the value is not a string or an integer
 *   HAS_NUL          the value contains a NUL character
 *   EMPTY            the value is the empty string
 *   VALUE_TOO_LONG   the value is over IDENTITY_MAX_VALUE (or the caller's buffer)
 *   BINARY           binary message: not read for identity
 *   CONTROL          close, ping, pong or continuation: not a message
 *   NOT_A_USER       equals the rule's unless_equals field (a thread id in user_id)
 *   AMBIGUOUS        the request names more than one user: see identity_conn.ambiguous
 */
#define IDENTITY_REASONS(X)                   \
	X(OK, "ok")                           \
	X(ABSENT, "absent")                   \
	X(PREFIX_MISMATCH, "prefix_mismatch") \
	X(TOO_LONG, "too_long")               \
	X(BAD_BASE64, "bad_base64")           \
	X(NOT_JWT, "not_jwt")                 \
	X(BAD_JSON, "bad_json")               \
	X(TOO_DEEP, "too_deep")               \
	X(NOT_OBJECT, "not_object")           \
	X(NOT_STRING, "not_string")           \
	X(HAS_NUL, "has_nul")                 \
	X(EMPTY, "empty")                     \
	X(VALUE_TOO_LONG, "value_too_long")   \
	X(BINARY, "binary")                   \
	X(CONTROL, "control")                 \
	X(NOT_A_USER, "not_a_user")           \
	X(NO_MEMORY, "no_memory")             \
	X(AMBIGUOUS, "ambiguous")

#define IDENTITY_REASON_ENUM(name, str) IDENTITY_##name,
enum identity_reason {
	IDENTITY_REASONS(IDENTITY_REASON_ENUM) IDENTITY__COUNT,
};
#undef IDENTITY_REASON_ENUM

/* A short stable name for counters and logs ("bad_base64"). */
const char *identity_reason_name(enum identity_reason r);

/*
 * Parses JSON text bounded in size (IDENTITY_MAX_MESSAGE) and depth (IDENTITY_MAX_DEPTH,
 * checked on the text before jansson allocates anything); any top-level value.  Strings may
 * hold \u0000: the value reader reports HAS_NUL for the ones it is asked for.
 */
enum identity_reason identity_json_parse(const void *buf, size_t len, json_t **out);
/*
 * The value at a dotted path (identity.h says how values are read), as a NUL-terminated
 * string in out[size]; size at least 2.
 */
enum identity_reason identity_json_get(const json_t *root, const char *path, char *out,
				       size_t size);

/*
 * A text message's values at a few dotted paths, read as identity_json_parse and then
 * identity_json_get on each path read them, but in one pass over the text that builds no
 * tree: only the spans of the values the paths lead to are kept (the message's other values
 * are checked, not stored).  Text the pass cannot read exactly as jansson would (an
 * exponent, an integer past 18 digits, a key with escapes where a path may go, anything
 * jansson refuses) is handed to jansson whole, with identity_json_parse's bounds and
 * dialect: the result is the same either way, only the cost differs.
 */
#define IDJSON_MAX_NODES 128 /* path segments of one document; more: jansson reads it */

struct idjson_node {
	const char *seg; /* this segment, in its path (not NUL-terminated) */
	size_t slen;
	long index; /* the array index the segment names (identity.h), -1 if none */
	int child, next; /* first child, next sibling in nodes[]; -1 */
	/* The value last met at this path in the text (a later duplicate key replaces it). */
	bool set;
	bool escaped; /* a string with backslash escapes */
	json_type type;
	const unsigned char *v; /* string: between the quotes; number: its token */
	size_t vlen;
};

struct idjson_doc {
	bool jansson; /* the text was handed to jansson */
	json_t *root; /* then its tree (NULL when it refused the text) */
	unsigned int nnodes;
	struct idjson_node nodes[IDJSON_MAX_NODES]; /* [0]: the document */
};

/*
 * Reads buf[len] for paths[n]: OK when it is a JSON object (then idjson_get answers for
 * those paths), else the reason (TOO_LONG, TOO_DEEP, BAD_JSON, NOT_OBJECT, NO_MEMORY), as
 * identity_json_parse and a check for an object give.  idjson_close after any result.
 */
enum identity_reason idjson_open(struct idjson_doc *d, const void *buf, size_t len,
				 const char *const *paths, size_t n);
/* identity_json_get(root, path, out, size) for one of the paths given to idjson_open. */
enum identity_reason idjson_get(const struct idjson_doc *d, const char *path, char *out,
				size_t size);
void idjson_close(struct idjson_doc *d);

#endif /* WSAUDIT_IDJSON_H */

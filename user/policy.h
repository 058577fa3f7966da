/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The audit policy: which Python functions are the service's bridge, which files are
 * transport, where identities come from.  Loaded from YAML (libyaml) and validated
 * completely at load, so a bad policy is refused before anything is traced; an error names
 * the file, line, column, the key path and the reason.  The shape is the contract of
 * DESIGN.md "Policy"; policies/default.yaml is the built-in default, byte for byte.
 *
 * A loaded policy is read-only and may be shared by threads.  Omitted keys are empty lists,
 * except bridge.opcodes, which defaults to [text, binary] (the data frames).
 */
#ifndef WSAUDIT_POLICY_H
#define WSAUDIT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds keep every per-frame loop over the policy short and every buffer sized. */
#define POLICY_MAX_FILE (1u << 20) /* bytes of YAML */
#define POLICY_MAX_LIST 64 /* entries of any list */
#define POLICY_MAX_STRING 256 /* bytes of any string (glob, name, prefix, path) */
#define POLICY_MAX_PATH_DEPTH 8 /* segments of a dotted JSON path */
/*
 * Nested collections in the YAML (the policy needs 4).  libyaml's scanner costs O(depth) per
 * token, so unbounded nesting makes a parse quadratic: checked while the events stream by,
 * before the document is built.
 */
#define POLICY_MAX_NESTING 16
/* Nodes (scalars and collections): a full policy has a few hundred; the loader builds them all. */
#define POLICY_MAX_NODES 4096
#define POLICY_ERR_LEN 512 /* enough for any load error */

struct policy_list {
	char **v;
	size_t n;
};

enum policy_source {
	POLICY_FROM_SUBPROTOCOL, /* an entry of Sec-WebSocket-Protocol that starts with prefix */
	POLICY_FROM_HEADER, /* header `name`, after prefix (case-insensitive, e.g. "Bearer ") */
	POLICY_FROM_QUERY, /* query parameter `name`, percent-decoded */
};

enum policy_decode {
	POLICY_DECODE_NONE, /* the value is the user id */
	POLICY_DECODE_JWT, /* the value is a JWT; the user id is its claim */
	POLICY_DECODE_JWT_B64, /* the value is base64url(JWT), as browsers put it in subprotocols */
};

struct policy_conn_rule {
	enum policy_source from;
	enum policy_decode decode;
	char *name; /* header or query parameter; NULL for subprotocol */
	char *prefix; /* "" when none */
	char *claim; /* dotted path into the JWT payload; NULL when decode is none */
};

struct policy_msg_rule {
	char *json; /* dotted path of the field that names the user */
	/*
	 * NULL, or a dotted path: the value is not a user when it equals this field of the same
	 * message (a service that puts a thread id in user_id, as netra's bridge does).
	 */
	char *unless_equals;
};

struct policy_ctx_rule {
	char *function; /* qualname glob of a bridge function */
	char *arg; /* its parameter that names the user */
};

/*
 * queues[]: a hand-off function whose callers produce what the queue's consumer sends later
 * (an application's enqueue, engine.io's AsyncSocket.send).  The queued object is the
 * hand-off's parameter `arg`; a send whose stack holds that object (in a frame of `consumer`,
 * when given) is linked to the stack that called the hand-off, which names its origin.
 */
struct policy_queue_rule {
	char *function; /* qualname glob of the hand-off */
	char *arg; /* its parameter that holds the queued object */
	char *consumer; /* qualname glob of the consumer's frame; NULL: any frame of the send */
};

/*
 * runs: the events of one agent run, told apart by a key (run_id), followed per connection
 * (user/runs.h).  A run starts with a start type, ends with an end type, and must carry
 * every required type in between.
 */
#define POLICY_RUNS_TIMEOUT_DEFAULT_S 300
#define POLICY_RUNS_TIMEOUT_MAX_S (24u * 3600u) /* a day: longer is a typo, not a run */

/* How a kind of finding counts in `wsaudit run` (unjudged, runs, delivery .severity). */
enum policy_severity {
	POLICY_SEVERITY_WARNING = 0, /* reported, counted, exported; `run` passes */
	POLICY_SEVERITY_ERROR, /* ... and `run` fails on it */
};

struct policy_runs {
	bool on; /* the policy has a runs section */
	struct policy_list key; /* dotted JSON paths of the run's key, tried in order */
	struct policy_list start, end, required; /* message types, disjoint */
	unsigned int timeout_s; /* a run silent this long without its end is incomplete */
	enum policy_severity severity; /* runs.severity: of its findings, error by default */
};

struct policy {
	char *source; /* file name, or "<built-in>" */
	struct policy_list exe; /* targets.exe: executable path globs (agent mode) */
	struct policy_list bridge_functions; /* qualname globs */
	struct policy_list bridge_files; /* file globs */
	uint32_t bridge_opcodes; /* bit n set: RFC 6455 opcode n is subject to the bridge rule */
	struct policy_list transport_files; /* file globs skipped when naming the origin */
	struct policy_conn_rule *conn; /* identity.connection, tried in order */
	size_t nconn;
	struct policy_msg_rule *message; /* identity.message, tried in order */
	size_t nmessage;
	struct policy_ctx_rule *ctx; /* identity.context */
	size_t nctx;
	struct policy_list ownership; /* identity.ownership: dotted JSON paths */
	struct policy_list type_fields; /* messages.type: dotted JSON paths, tried in order */
	/*
	 * messages.known_types: type values shown as they are; any other value is chosen by
	 * the traffic and shown as a keyed hash ("t#...") unless identities are shown.
	 */
	struct policy_list known_types;
	struct policy_queue_rule *queues; /* queues: hand-off functions, first match wins */
	size_t nqueues;
	struct policy_runs runs;
	enum policy_severity unjudged_severity; /* unjudged.severity, warning by default */
	/* delivery.severity: delivery_failed, abnormal_close, after_close; error by default */
	enum policy_severity delivery_severity;
};

/*
 * Loads and validates a policy file.  NULL on failure, with errno set and err holding
 * "FILE:LINE:COL: key.path: reason" (or "FILE: reason" when there is no position).
 */
struct policy *policy_load(const char *path, char *err, size_t errlen);
/* The same from bytes in memory; name is used in messages. */
struct policy *policy_load_mem(const char *name, const void *buf, size_t len, char *err,
			       size_t errlen);
/* The built-in default policy (a fresh copy; NULL with errno only when out of memory). */
struct policy *policy_default(void);
/* A command's policy: the file at path, or the built-in default when path is NULL. */
struct policy *policy_open(const char *path, char *err, size_t errlen);
/* The text of the built-in default, identical to policies/default.yaml. */
extern const char policy_default_yaml[];
void policy_free(struct policy *p);

/*
 * fnmatch(@glob, @s, 0) == 0, the way every glob of a policy is matched ('*' spans '/'),
 * faster for the usual pattern with a literal head.
 */
bool policy_glob_match(const char *glob, const char *s);
/* A stack frame is a bridge frame when its qualname or its file matches. */
bool policy_is_bridge_frame(const struct policy *p, const char *function, const char *file);
bool policy_is_transport_file(const struct policy *p, const char *file);
/* Whether frames with this RFC 6455 opcode (0..15) are subject to the bridge rule. */
bool policy_bridge_opcode(const struct policy *p, unsigned int opcode);
bool policy_exe_match(const struct policy *p, const char *exe);
/* Whether a message type value is one of messages.known_types. */
bool policy_known_type(const struct policy *p, const char *type);
/* What a message type is to runs: */
enum policy_run_event {
	POLICY_RUN_OTHER, /* not named by runs (or no runs section) */
	POLICY_RUN_START,
	POLICY_RUN_END,
	POLICY_RUN_REQUIRED,
};

enum policy_run_event policy_run_event(const struct policy *p, const char *type);
/* The user argument configured for a bridge function (first match), or NULL. */
const char *policy_context_arg(const struct policy *p, const char *function);
/* The queues rule whose hand-off function matches (first match), or NULL. */
const struct policy_queue_rule *policy_queue_handoff(const struct policy *p, const char *function);

const char *policy_opcode_name(unsigned int opcode); /* "text", ...; NULL when reserved */
const char *policy_source_name(enum policy_source s);
const char *policy_decode_name(enum policy_decode d);
const char *policy_severity_name(enum policy_severity s);

#endif /* WSAUDIT_POLICY_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The two findings (DESIGN.md): bridge_bypass, a data frame whose writer's stack holds no
 * bridge frame, and isolation_breach, a frame whose identities disagree — the user who owns
 * the connection (handshake), the user the message names, and the owner learned for an
 * ownership key (run_id, thread_id: first seen on user A's connection, later sent to B's).
 * Pure: it judges what it is given and keeps only the bounded ownership table.
 */
#ifndef WSAUDIT_RULES_H
#define WSAUDIT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attrib.h"
#include "causal.h"
#include "identity.h"
#include "policy.h"

/*
 * The rules, X(RULE, "name"): the one list behind the enum, the names in the output, the
 * metrics' rule label and the policy.
 *   identity_ambiguous, identity_unknown: a data frame on a connection whose user cannot be
 *     judged: its request head names several users, or was not read whole.  Isolation is not
 *     judged on it, and that is a finding of its own, not a silent pass.
 *   message_unreadable: a message that names a user field but cannot be read (not JSON even
 *     leniently).
 *   delivery_failed, abnormal_close, after_close (docs/delivery.md): a frame that did not
 *     leave the process (its write failed or sent part, and the connection ended first); a
 *     close with 1011, or a connection closed without a close frame; a frame written after
 *     the close frame.
 *   unjudged: a data frame whose producer could not be named: no application function on
 *     the send's stack nor on any creation it was linked to (docs/causal.md).  The bridge
 *     rule cannot judge it; said with the reason and the best origin known, never only
 *     counted.
 */
#define RULE_NAMES(X)                                    \
	X(RULE_BRIDGE_BYPASS, "bridge_bypass")           \
	X(RULE_ISOLATION_BREACH, "isolation_breach")     \
	X(RULE_IDENTITY_AMBIGUOUS, "identity_ambiguous") \
	X(RULE_IDENTITY_UNKNOWN, "identity_unknown")     \
	X(RULE_MESSAGE_UNREADABLE, "message_unreadable") \
	X(RULE_DELIVERY_FAILED, "delivery_failed")       \
	X(RULE_ABNORMAL_CLOSE, "abnormal_close")         \
	X(RULE_AFTER_CLOSE, "after_close")               \
	X(RULE_UNJUDGED, "unjudged")

#define RULE_ENUM(name, str) name,
enum rule_kind {
	RULE_NAMES(RULE_ENUM) RULE__COUNT,
};
#undef RULE_ENUM

const char *rule_name(enum rule_kind r);

/* Which identities disagreed, for isolation_breach. */
enum identity_kind {
	ID_CONNECTION, /* from the upgrade request */
	ID_MESSAGE, /* a field of the message */
	ID_OWNER, /* the owner learned for an ownership key */
	ID_CONTEXT, /* the user argument of the bridge call on the stack */
	ID__COUNT,
};

const char *identity_kind_name(enum identity_kind k);

#define RULES_MAX_VIOLATIONS 6
#define RULES_DETAIL_LEN 1600

struct violation {
	enum rule_kind rule;
	/* isolation_breach: the two identities and their (possibly redacted) values */
	enum identity_kind a, b;
	char a_value[IDENTITY_MAX_VALUE + 1];
	char b_value[IDENTITY_MAX_VALUE + 1];
	char key[64]; /* ID_OWNER: the ownership key ("run_id") */
	/* unjudged: why (an "unattributed" reason), and the best origin known or NULL */
	const char *reason;
	const char *severity; /* unjudged: the policy's unjudged.severity */
	const struct attrib_frame *best;
	char detail[RULES_DETAIL_LEN];
};

struct rules_input {
	unsigned int opcode; /* of the frame; continuation frames are not judged by the bridge rule */
	const char *conn_user; /* NULL when the handshake named no user */
	/* Why the handshake's user cannot be told (struct ct_conn), or NULL. */
	const char *conn_user_ambiguous;
	const char *conn_user_unknown;
	const struct identity_message *msg; /* NULL unless this frame completes a message */
	/* Why a message that names a user field could not be read ("bad_json"), or NULL. */
	const char *msg_unreadable;
	const struct attrib_stack *stack; /* the writer's stack; origin < 0 when unattributed */
	/* The stacks that created the work that wrote (user/causal.c), or NULL. */
	const struct causal_link *link;
	const char *ctx_user; /* identity.context: the bridge call's user argument, or NULL */
	const char *ctx_function; /* the bridge function it was read from */
	/* The frame did not leave (ct_frame.lost): lost_err is its write's errno, 0: partial. */
	bool lost;
	int lost_err;
	bool after_close; /* written after the connection's close frame */
	int close_code; /* of a close frame; 0 otherwise, -1 when it has none */
};

struct rules_verdict {
	int via_bridge; /* 1, 0, or -1 when the stack is unknown (not judged) */
	size_t nviolations;
	struct violation v[RULES_MAX_VIOLATIONS];
};

struct rules_stats {
	uint64_t violations[RULE__COUNT];
	uint64_t bridge_unjudged; /* data frames without a stack to judge */
	uint64_t unjudged[UNATTR__COUNT]; /* unjudged violations, by reason */
	uint64_t owners; /* ownership keys remembered now */
	uint64_t owner_evictions; /* forgotten, oldest first, past the bound */
};

struct rules;

/* show_identities: values in details as they are; otherwise their keyed display. */
struct rules *rules_new(const struct policy *p, bool show_identities, size_t max_owners);
void rules_free(struct rules *r);
void rules_judge(struct rules *r, const struct rules_input *in, struct rules_verdict *out);
/* Whether a frame is a bridge frame (remembered per code object). */
bool rules_frame_is_bridge(struct rules *r, const struct attrib_frame *f);
const struct rules_stats *rules_stats(const struct rules *r);
/* A finding judged outside rules_judge (a connection closed abruptly), counted with the rest. */
void rules_count(struct rules *r, enum rule_kind rule);
/* keyhash_identity_display() of value, or value itself when identities are shown. */
void rules_redact(const struct rules *r, const char *value, char *out, size_t size);
/* A message type: itself when known to the policy or identities are shown, else "t#...". */
void rules_redact_type(const struct rules *r, const char *type, char *out, size_t size);
/*
 * A Sec-WebSocket-Protocol value with every entry that carries a credential (a policy
 * subprotocol source such as "jwt.", or a JWT) cut to its prefix and "[redacted]", unless
 * identities are shown.  A value cut short by size ends at its last whole entry.
 */
void rules_redact_subprotocol(const struct rules *r, const char *value, char *out, size_t size);

#endif /* WSAUDIT_RULES_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Who a connection and a message belong to, by the policy's identity rules.
 *
 * Connection identity comes from the upgrade request: a Sec-WebSocket-Protocol entry with a
 * prefix, a header after a prefix, or a query parameter, optionally a JWT whose claim names
 * the user.  JWT signatures are NOT verified: the claim is read to name the user the service
 * believes it is talking to, not to authenticate anyone; a forged token names whoever its
 * author chose.
 *
 * Message identity comes from the JSON of a text message (after inflate): the user field,
 * the message type and the ownership keys, each by a dotted path ("data.user_id"; a segment
 * of digits indexes an array: "items.0.user_id").
 *
 * Values are strings.  A JSON integer is taken as its decimal text (some issuers put numeric
 * user ids in sub, and a service may send {"user_id": 42}); JSON null is ABSENT (services
 * send "user_id": null for "nobody"); every other non-string (real, boolean, object, array)
 * is refused with IDENTITY_NOT_STRING, so 42 and "42" name the same user but 42.0 none.
 * JSON is read at least as leniently as Python's json module, which the services use to
 * write it: NaN, Infinity and -Infinity (taken as reals), integers past 64 bits (taken as
 * their decimal text, like every integer), lone surrogate escapes (taken as U+FFFD), a
 * leading byte order mark, nesting to IDENTITY_MAX_DEPTH.
 *
 * Every way of not getting a value is a named reason, so the caller can count it.  Nothing
 * here logs: values are user data.
 */
#ifndef WSAUDIT_IDENTITY_H
#define WSAUDIT_IDENTITY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "http1.h"
#include "idjson.h"
#include "policy.h"

/*
 * Whether a message that could not be read mentions, as a JSON key, a field the policy reads
 * the message's user from: such a message is a finding, not a silent pass.  Bounded: one
 * search per identity.message path over at most IDENTITY_MAX_MESSAGE bytes.
 */
bool identity_message_names_user(const struct policy *p, const void *data, size_t len);

/* Connection identity: the result of the policy's identity.connection rules. */
struct identity_conn {
	enum identity_reason reason; /* OK, AMBIGUOUS, else the first failure, else ABSENT */
	int rule; /* index of the rule that gave user, -1 when none */
	/*
	 * Why the request names no single user (reason AMBIGUOUS): "duplicate_subprotocol",
	 * "duplicate_header", "duplicate_query" (one source given twice with different values),
	 * "sources_disagree" (two rules name different users).  NULL otherwise.
	 */
	const char *ambiguous;
	char user[IDENTITY_MAX_VALUE + 1];
	/* Each rule's outcome, for counting; rules past POLICY_MAX_LIST cannot exist. */
	enum identity_reason rules[POLICY_MAX_LIST];
};

/*
 * Tries every rule.  A rule whose source is present but undecodable does not stop the next
 * one (that is how a service that accepts either a base64url-wrapped or a raw JWT under one
 * prefix is described), but its failure is kept in rules[] and, when no rule succeeds, in
 * reason.  The user is the value of the first rule that yields one, unless the request is
 * ambiguous: frameworks disagree on which occurrence of a repeated source counts (Starlette
 * takes the first header but the last query parameter, aiohttp the first of both, websockets
 * refuses a repeated header), and a service reads one source of its own choosing, so a
 * source given twice with different values, or two rules naming different users, leave
 * user empty with reason AMBIGUOUS rather than guess which one the service believed
 * (docs/identity.md).  Returns 0, -ENOMEM, or -EINVAL when req is not a request.
 */
int identity_from_request(const struct policy *p, const struct http1_message *req,
			  struct identity_conn *out);

struct identity_field {
	enum identity_reason reason;
	const char *path; /* the policy path that gave value, or that failed first; NULL */
	char value[IDENTITY_MAX_VALUE + 1];
};

struct identity_message {
	enum identity_reason reason; /* OK when the message was read as a JSON object */
	struct identity_field user; /* first identity.message path with a value */
	struct identity_field type; /* first messages.type path with a value */
	struct identity_field run; /* first runs.key path with a value */
	size_t nowners;
	/* One per identity.ownership path, in policy order; key is the path's last segment,
	 * so "thread_id" and "payload.thread_id" share the key "thread_id". */
	struct identity_owner {
		const char *key;
		struct identity_field f;
	} owners[POLICY_MAX_LIST];
};

/*
 * Reads a whole message (opcode 1 text or 2 binary, after inflate and reassembly).  Binary
 * and control messages are skipped with reason BINARY or CONTROL; otherwise reason says why
 * the message could not be read (TOO_LONG, BAD_JSON, TOO_DEEP, NOT_OBJECT), and each field
 * has its own reason (ABSENT when no path is present).  Returns 0, -ENOMEM.
 */
int identity_from_message(const struct policy *p, unsigned int opcode, const void *data, size_t len,
			  struct identity_message *out);

#endif /* WSAUDIT_IDENTITY_H */

// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "htable.h"
#include "keyhash.h"
#include "pysym.h"
#include "rules.h"

/* Bridge verdicts of symbols lately seen, by symbol id (ids are never reused). */
#define BRIDGE_MEMO 4096

struct owner {
	char *key; /* "run_id=<value>" */
	char *user;
	UT_hash_handle hh;
};

struct rules {
	const struct policy *policy;
	bool show_identities;
	size_t max_owners;
	/* By key (keyed hashing: keys come from the traffic), oldest first, for eviction. */
	struct owner *owners;
	struct {
		unsigned long long id; /* 0: empty */
		bool bridge;
	} bridge_memo[BRIDGE_MEMO];
	struct rules_stats stats;
};

#define RULE_STRING(name, str) [name] = str,
static const char *const rule_names[RULE__COUNT] = { RULE_NAMES(RULE_STRING) };
#undef RULE_STRING

static const char *const identity_kind_names[ID__COUNT] = {
	[ID_CONNECTION] = "connection",
	[ID_MESSAGE] = "message",
	[ID_OWNER] = "owner",
	[ID_CONTEXT] = "context",
};

const char *rule_name(enum rule_kind r)
{
	return r < RULE__COUNT ? rule_names[r] : "unknown";
}

const char *identity_kind_name(enum identity_kind k)
{
	return k < ID__COUNT ? identity_kind_names[k] : "unknown";
}

void rules_redact(const struct rules *r, const char *value, char *out, size_t size)
{
	char shown[KEYHASH_DISPLAY_LEN];

	if (r->show_identities) {
		snprintf(out, size, "%s", value);
		return;
	}
	keyhash_identity_display(value, shown);
	snprintf(out, size, "%s", shown);
}

void rules_redact_type(const struct rules *r, const char *type, char *out, size_t size)
{
	/* Traffic chooses the value: only the policy's known types are shown as they are. */
	if (r->show_identities || policy_known_type(r->policy, type))
		snprintf(out, size, "%s", type);
	else
		keyhash_identity_display_as("t", type, out, size);
}

/*
 * Whether a subprotocol entry carries a credential: the prefix of one of the policy's
 * subprotocol identity sources, or a JWT or base64url JSON ("eyJ" is base64 of '{"').
 * keep: the bytes before the credential, which are shown.
 */
static bool subprotocol_secret(const struct policy *p, const char *e, size_t n, size_t *keep)
{
	bool found = false;

	/* The earliest credential decides: nothing of any of them is kept. */
	*keep = n;
	for (size_t i = 0; i < p->nconn; i++) {
		const char *pre = p->conn[i].prefix;
		size_t pn = strlen(pre);
		const char *at = pn ? memmem(e, n, pre, pn) : NULL;

		/* Anywhere in the entry: a malformed entry may still carry a real token. */
		if (p->conn[i].from == POLICY_FROM_SUBPROTOCOL && at &&
		    (size_t)(at - e) + pn <= *keep) {
			*keep = (size_t)(at - e) + pn;
			found = true;
		}
	}
	for (size_t i = 0; i + 3 <= n && i < *keep; i++) {
		if (!strncmp(e + i, "eyJ", 3)) {
			*keep = i;
			return true;
		}
	}
	return found;
}

void rules_redact_subprotocol(const struct rules *r, const char *value, char *out, size_t size)
{
	size_t used = 0;
	const char *e = value;

	if (!size)
		return;
	out[0] = '\0';
	if (r->show_identities) {
		snprintf(out, size, "%s", value);
		return;
	}
	while (*e && used + 1 < size) {
		size_t n = strcspn(e, ","), keep;
		const char *sep = e[n] ? "," : "";
		int w;

		size_t ws = strspn(e, " \t") < n ? strspn(e, " \t") : n;

		if (subprotocol_secret(r->policy, e + ws, n - ws, &keep))
			w = snprintf(out + used, size - used, "%.*s[redacted]%s", (int)(ws + keep),
				     e, sep);
		else
			w = snprintf(out + used, size - used, "%.*s%s", (int)n, e, sep);
		if (w < 0 || (size_t)w >= size - used) {
			out[used] = '\0';
			break;
		}
		used += (size_t)w;
		e += n + (e[n] ? 1 : 0);
	}
}

struct rules *rules_new(const struct policy *p, bool show_identities, size_t max_owners)
{
	struct rules *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->policy = p;
	r->show_identities = show_identities;
	r->max_owners = max_owners ? max_owners : 100000;
	return r;
}

static void owner_free(struct owner *o)
{
	free(o->key);
	free(o->user);
	free(o);
}

void rules_free(struct rules *r)
{
	struct owner *o, *next;

	if (!r)
		return;
	HASH_ITER(hh, r->owners, o, next) {
		HASH_DEL(r->owners, o);
		owner_free(o);
	}
	free(r);
}

static struct owner *owner_find(struct rules *r, const char *key)
{
	struct owner *o;

	HASH_FIND_STR(r->owners, key, o);
	return o;
}

/* Remembers user as the owner of key; false when out of memory. */
static bool owner_add(struct rules *r, const char *key, const char *user)
{
	struct owner *o;

	if (r->stats.owners >= r->max_owners && r->owners) {
		o = r->owners;
		HASH_DEL(r->owners, o);
		owner_free(o);
		r->stats.owners--;
		r->stats.owner_evictions++;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return false;
	o->key = strdup(key);
	o->user = strdup(user);
	if (!o->key || !o->user) {
		owner_free(o);
		return false;
	}
	HASH_ADD_KEYPTR(hh, r->owners, o->key, strlen(o->key), o);
	if (!htable_added(o)) {
		owner_free(o);
		return false;
	}
	r->stats.owners++;
	return true;
}

static struct violation *add_violation(struct rules *r, struct rules_verdict *out,
				       enum rule_kind rule)
{
	struct violation *v;

	if (out->nviolations == RULES_MAX_VIOLATIONS)
		return NULL;
	v = &out->v[out->nviolations++];
	memset(v, 0, sizeof(*v));
	v->rule = rule;
	r->stats.violations[rule]++;
	return v;
}

/*
 * Whether a frame is a bridge frame, matched once per code object: the verdict depends only
 * on its function and file, and a stack repeats the same few code objects frame after frame.
 */
bool rules_frame_is_bridge(struct rules *r, const struct attrib_frame *f)
{
	unsigned long long id;
	size_t i;

	/* A 3.9/3.10 "Class.name" belongs to the frame, not to its symbol. */
	if (!f->sym || f->function != f->sym->function || f->file != f->sym->file)
		return policy_is_bridge_frame(r->policy, f->function, f->file);
	id = f->sym->id;
	i = (size_t)(id % BRIDGE_MEMO);
	if (r->bridge_memo[i].id != id) {
		r->bridge_memo[i].bridge = policy_is_bridge_frame(r->policy, f->function, f->file);
		r->bridge_memo[i].id = id;
	}
	return r->bridge_memo[i].bridge;
}

static bool stack_has_bridge(struct rules *r, const struct attrib_stack *s)
{
	for (size_t i = 0; i < s->nframes; i++) {
		if (rules_frame_is_bridge(r, &s->frames[i]))
			return true;
	}
	return false;
}

/* The innermost named frame of the send, else of its nearest creation: what is known. */
static const struct attrib_frame *best_known(const struct attrib_stack *s,
					     const struct causal_link *l)
{
	for (size_t i = 0; s && i < s->nframes; i++) {
		if (s->frames[i].function)
			return &s->frames[i];
	}
	for (size_t k = 0; l && k < l->n; k++) {
		for (size_t i = 0; i < l->creators[k]->nframes; i++) {
			if (l->creators[k]->frames[i].function)
				return &l->creators[k]->frames[i];
		}
	}
	return NULL;
}

/*
 * A data frame whose producer is unknown.  Not when attribution is off (trace --capture-only)
 * or the writer is no Python process: there is no producer to link then.
 */
static void judge_unjudged(struct rules *r, const struct attrib_stack *s,
			   const struct causal_link *l, struct rules_verdict *out)
{
	const struct attrib_frame *best;
	struct violation *v;

	/* No stack given: the caller judges identities only. */
	if (!s || s->why == UNATTR_DISABLED || s->why == UNATTR_NOT_PYTHON ||
	    s->why >= UNATTR__COUNT)
		return;
	v = add_violation(r, out, RULE_UNJUDGED);
	if (!v)
		return;
	r->stats.unjudged[s->why]++;
	best = best_known(s, l);
	v->reason = unattributed_name(s->why);
	v->severity = policy_severity_name(r->policy->unjudged_severity);
	v->best = best;
	if (best)
		snprintf(v->detail, sizeof(v->detail),
			 "no application function produced this frame that could be linked (%s): "
			 "the bridge rule cannot judge it; best origin known: %s (%s:%d)",
			 v->reason, best->function, best->file ? best->file : "?", best->line);
	else
		snprintf(v->detail, sizeof(v->detail),
			 "no application function produced this frame that could be linked (%s): "
			 "the bridge rule cannot judge it",
			 v->reason);
}

/*
 * A frame is produced under the bridge when a bridge frame is on the send's stack or on the
 * stack of any creation its work was linked to (a task, callback or thread the bridge
 * started).
 */
static void judge_bridge(struct rules *r, const struct rules_input *in, struct rules_verdict *out)
{
	const struct attrib_stack *s = in->stack;
	const struct causal_link *l = in->link;
	const struct attrib_frame *o;
	enum causal_via via;
	struct violation *v;

	out->via_bridge = -1;
	if (!policy_bridge_opcode(r->policy, in->opcode))
		return;
	o = s ? causal_origin(s, l, &via) : NULL;
	/* Without the producer's stack there is nothing to judge: say so, do not guess. */
	if (!o) {
		r->stats.bridge_unjudged++;
		judge_unjudged(r, s, l, out);
		return;
	}
	if (stack_has_bridge(r, s)) {
		out->via_bridge = 1;
		return;
	}
	for (size_t i = 0; l && i < l->n; i++) {
		if (stack_has_bridge(r, l->creators[i])) {
			out->via_bridge = 1;
			return;
		}
	}
	out->via_bridge = 0;
	v = add_violation(r, out, RULE_BRIDGE_BYPASS);
	if (!v)
		return;
	if (via == VIA_NONE)
		snprintf(v->detail, sizeof(v->detail),
			 "%s (%s:%d) sent without a bridge frame on the stack", o->function,
			 o->file, o->line);
	else
		snprintf(v->detail, sizeof(v->detail),
			 "%s (%s:%d) sent through a %s without a bridge frame on the stack of "
			 "the send or of its creation",
			 o->function, o->file, o->line, causal_via_name(via));
}

/*
 * One disagreement between two identities.  A frame gets one isolation_breach: the first
 * disagreement found names it (between, values); later ones are added to its detail.
 */
static void breach(struct rules *r, struct rules_verdict *out, enum identity_kind a,
		   const char *a_value, enum identity_kind b, const char *b_value, const char *key,
		   const char *function)
{
	char detail[RULES_DETAIL_LEN], av[IDENTITY_MAX_VALUE + 1], bv[IDENTITY_MAX_VALUE + 1];
	struct violation *v = NULL;
	size_t used;

	rules_redact(r, a_value, av, sizeof(av));
	rules_redact(r, b_value, bv, sizeof(bv));
	if (b == ID_OWNER)
		snprintf(detail, sizeof(detail),
			 "%s first seen for user %s was sent to user %s's connection", key, bv, av);
	else if (b == ID_CONTEXT)
		snprintf(detail, sizeof(detail),
			 "%s of user %s carried a frame %s sent for user %s",
			 a == ID_CONNECTION ? "connection" : "message", av, function, bv);
	else
		snprintf(detail, sizeof(detail),
			 "connection of user %s received a message for user %s", av, bv);
	for (size_t i = 0; i < out->nviolations; i++) {
		if (out->v[i].rule == RULE_ISOLATION_BREACH)
			v = &out->v[i];
	}
	if (v) {
		used = strlen(v->detail);
		snprintf(v->detail + used, sizeof(v->detail) - used, "; %s", detail);
		return;
	}
	v = add_violation(r, out, RULE_ISOLATION_BREACH);
	if (!v)
		return;
	v->a = a;
	v->b = b;
	memcpy(v->a_value, av, sizeof(v->a_value));
	memcpy(v->b_value, bv, sizeof(v->b_value));
	if (key)
		snprintf(v->key, sizeof(v->key), "%s", key);
	memcpy(v->detail, detail, sizeof(v->detail));
}

/* The bridge call's user against the connection's and the message's. */
static void judge_context(struct rules *r, const struct rules_input *in, struct rules_verdict *out)
{
	const struct identity_message *m = in->msg;
	const char *fn = in->ctx_function ? in->ctx_function : "the bridge";

	if (!in->ctx_user)
		return;
	if (in->conn_user && strcmp(in->conn_user, in->ctx_user))
		breach(r, out, ID_CONNECTION, in->conn_user, ID_CONTEXT, in->ctx_user, NULL, fn);
	if (m && m->reason == IDENTITY_OK && m->user.reason == IDENTITY_OK &&
	    strcmp(m->user.value, in->ctx_user))
		breach(r, out, ID_MESSAGE, m->user.value, ID_CONTEXT, in->ctx_user, NULL, fn);
}

/* The message's user, and the owners of its ownership keys, against the connection's. */
static void judge_message(struct rules *r, const struct rules_input *in, struct rules_verdict *out)
{
	const struct identity_message *m = in->msg;
	char key[64 + IDENTITY_MAX_VALUE + 2];
	struct owner *o;

	if (!m || m->reason != IDENTITY_OK || !in->conn_user)
		return;
	if (m->user.reason == IDENTITY_OK && strcmp(m->user.value, in->conn_user))
		breach(r, out, ID_CONNECTION, in->conn_user, ID_MESSAGE, m->user.value, NULL, NULL);
	for (size_t i = 0; i < m->nowners; i++) {
		if (m->owners[i].f.reason != IDENTITY_OK)
			continue;
		snprintf(key, sizeof(key), "%s=%s", m->owners[i].key, m->owners[i].f.value);
		o = owner_find(r, key);
		if (!o) {
			owner_add(r, key, in->conn_user);
			continue;
		}
		if (strcmp(o->user, in->conn_user))
			breach(r, out, ID_CONNECTION, in->conn_user, ID_OWNER, o->user,
			       m->owners[i].key, NULL);
	}
}

/* A data frame on a connection whose user cannot be told: a finding, with the reason. */
static void judge_conn_identity(struct rules *r, const struct rules_input *in,
				struct rules_verdict *out)
{
	const char *why = in->conn_user_ambiguous ? in->conn_user_ambiguous : in->conn_user_unknown;
	struct violation *v;

	if (!why || (in->opcode != 1 && in->opcode != 2))
		return;
	/*
	 * A connection open before tracing began (adopted, or its request read before) is a gap
	 * of the trace's start, counted per connection, not something its client did.
	 */
	if (!strcmp(why, "adopted") || !strcmp(why, "head_not_seen"))
		return;
	v = add_violation(
		r, out, in->conn_user_ambiguous ? RULE_IDENTITY_AMBIGUOUS : RULE_IDENTITY_UNKNOWN);
	if (!v)
		return;
	snprintf(v->detail, sizeof(v->detail),
		 "the connection's user is %s (%s): isolation is not judged on its frames",
		 in->conn_user_ambiguous ? "ambiguous" : "unknown", why);
}

/* "F (file:line)" of the writer's origin, or "an unattributed writer". */
static void origin_text(const struct rules_input *in, char *buf, size_t size)
{
	enum causal_via via = VIA_NONE;
	const struct attrib_frame *o = in->stack ? causal_origin(in->stack, in->link, &via) : NULL;

	if (!o) {
		snprintf(buf, size, "an unattributed writer");
		return;
	}
	snprintf(buf, size, "%s (%s:%d)", o->function, o->file, o->line);
}

static void judge_delivery(struct rules *r, const struct rules_input *in, struct rules_verdict *out)
{
	struct violation *v;
	char origin[1200];

	if (!in->lost && !in->after_close && in->close_code != 1011)
		return;
	origin_text(in, origin, sizeof(origin));
	if (in->lost && (v = add_violation(r, out, RULE_DELIVERY_FAILED)))
		snprintf(v->detail, sizeof(v->detail),
			 "never left the process: written by %s, its write %s, then the "
			 "connection ended",
			 origin, in->lost_err ? "failed" : "sent only part of it");
	if (in->lost)
		return;
	if (in->close_code == 1011 && (v = add_violation(r, out, RULE_ABNORMAL_CLOSE)))
		snprintf(v->detail, sizeof(v->detail), "closed with 1011 (internal error) by %s",
			 origin);
	if (in->after_close && (v = add_violation(r, out, RULE_AFTER_CLOSE)))
		snprintf(v->detail, sizeof(v->detail),
			 "written by %s after the connection's close frame: never delivered",
			 origin);
}

void rules_judge(struct rules *r, const struct rules_input *in, struct rules_verdict *out)
{
	struct violation *v;

	memset(out, 0, sizeof(*out));
	judge_delivery(r, in, out);
	judge_conn_identity(r, in, out);
	if (in->msg_unreadable && (v = add_violation(r, out, RULE_MESSAGE_UNREADABLE)))
		snprintf(v->detail, sizeof(v->detail),
			 "the message names a user field but cannot be read (%s): isolation is "
			 "not judged on it",
			 in->msg_unreadable);
	judge_bridge(r, in, out);
	judge_message(r, in, out);
	judge_context(r, in, out);
}

void rules_count(struct rules *r, enum rule_kind rule)
{
	if (rule < RULE__COUNT)
		r->stats.violations[rule]++;
}

const struct rules_stats *rules_stats(const struct rules *r)
{
	return &r->stats;
}

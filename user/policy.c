// SPDX-License-Identifier: GPL-2.0
/*
 * Policy loading and matching.  libyaml composes the document (so every node keeps its line
 * and column); this file walks it against a fixed schema.  The walk never recurses deeper
 * than the schema (four levels), so aliases, even recursive ones, cannot make it loop.
 * libyaml rather than libcyaml: cyaml's schema errors name the key but not always the line,
 * and its messages cannot be checked and worded by us; the schema here is small.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "policy.h"
#include "ws_frame.h"

/*
 * The built-in default, compiled in so that wsaudit works without any file installed: the
 * bytes of policies/default.yaml, which the Makefile turns into a list of byte values.
 */
const char policy_default_yaml[] = {
#include "policy_default.inc"
	'\0'
};

struct loader {
	const char *name;
	yaml_document_t *doc;
	char *err;
	size_t errlen;
};

/* Every error goes through here: "NAME:LINE:COL: PATH: REASON".  Returns -EINVAL. */
__attribute__((format(printf, 4, 5))) static int fail(struct loader *l, const yaml_node_t *n,
						      const char *path, const char *fmt, ...)
{
	char reason[POLICY_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (n)
		snprintf(l->err, l->errlen, "%s:%zu:%zu: %s%s%s", l->name, n->start_mark.line + 1,
			 n->start_mark.column + 1, path, *path ? ": " : "", reason);
	else
		snprintf(l->err, l->errlen, "%s: %s%s%s", l->name, path, *path ? ": " : "", reason);
	return -EINVAL;
}

const char *policy_opcode_name(unsigned int opcode)
{
	return ws_opcode_assigned(opcode) ? ws_opcode_name(opcode) : NULL;
}

static const char *const source_names[] = {
	[POLICY_FROM_SUBPROTOCOL] = "subprotocol",
	[POLICY_FROM_HEADER] = "header",
	[POLICY_FROM_QUERY] = "query",
};

static const char *const decode_names[] = {
	[POLICY_DECODE_NONE] = "none",
	[POLICY_DECODE_JWT] = "jwt",
	[POLICY_DECODE_JWT_B64] = "jwt_b64",
};

const char *policy_source_name(enum policy_source s)
{
	return (unsigned int)s < 3 ? source_names[s] : "?";
}

const char *policy_decode_name(enum policy_decode d)
{
	return (unsigned int)d < 3 ? decode_names[d] : "?";
}

/* --- scalars -------------------------------------------------------------------------------- */

/*
 * A plain (unquoted) scalar that YAML's core schema reads as null, a boolean or a number is
 * not a string: `prefix:` with nothing after it must not silently become "".  Quote it to
 * mean the text.
 */
static const char *plain_type(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
	static const char *const bools[] = { "true", "True", "TRUE", "false", "False", "FALSE" };
	size_t i = 0, digits = 0;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return NULL;
	for (size_t k = 0; k < sizeof(nulls) / sizeof(nulls[0]); k++)
		if (!strcmp(s, nulls[k]))
			return "null";
	for (size_t k = 0; k < sizeof(bools) / sizeof(bools[0]); k++)
		if (!strcmp(s, bools[k]))
			return "a boolean";
	if (!strcmp(s, ".inf") || !strcmp(s, "-.inf") || !strcmp(s, ".nan"))
		return "a number";
	if (s[i] == '+' || s[i] == '-')
		i++;
	if (s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'o') && s[i + 2]) {
		for (i += 2; i < len && strchr("0123456789abcdefABCDEF", s[i]); i++)
			;
		return i == len ? "an integer" : NULL;
	}
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i == len)
		return digits ? "an integer" : NULL;
	if (s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (digits && i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (s[i] == '+' || s[i] == '-')
			i++;
		if (i == len || s[i] < '0' || s[i] > '9')
			return NULL;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
	}
	return digits && i == len ? "a number" : NULL;
}

static const char *kind_name(const yaml_node_t *n)
{
	const char *t;

	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a sequence";
	case YAML_SCALAR_NODE:
		t = plain_type(n);
		return t ? t : "a string";
	default:
		return "nothing";
	}
}

/* Quotes a value for a message: cut, with anything unprintable shown as '?'. */
static const char *shown(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	for (; *s && o + 4 < size; s++)
		buf[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	if (*s) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static bool is_string(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE && !plain_type(n);
}

/* A string value: a scalar that is not null/bool/number, bounded, without NUL bytes. */
static int get_string(struct loader *l, const yaml_node_t *n, const char *path, char **out)
{
	size_t len;

	if (!is_string(n))
		return fail(l, n, path, "expected a string, got %s%s", kind_name(n),
			    n->type == YAML_SCALAR_NODE ? " (quote it to mean the text)" : "");
	len = n->data.scalar.length;
	if (len > POLICY_MAX_STRING)
		return fail(l, n, path, "longer than %u bytes", POLICY_MAX_STRING);
	if (strlen((const char *)n->data.scalar.value) != len)
		return fail(l, n, path, "contains a NUL character");
	*out = strdup((const char *)n->data.scalar.value);
	return *out ? 0 : -ENOMEM;
}

/* --- value checks ---------------------------------------------------------------------------- */

/*
 * fnmatch(3) takes an unmatched '[' literally; in a policy that is a typo that would make the
 * glob match nothing, so it is refused.
 */
static int check_glob(struct loader *l, const yaml_node_t *n, const char *path, const char *g)
{
	char buf[64];

	if (!*g)
		return fail(l, n, path, "empty glob");
	for (const char *s = g; *s; s++) {
		if (*s == '\\') {
			if (!s[1])
				return fail(l, n, path, "glob '%s' ends with '\\'",
					    shown(g, buf, sizeof(buf)));
			s++;
		} else if (*s == '[') {
			const char *e = s + 1;

			if (*e == '!' || *e == '^')
				e++;
			if (*e == ']')
				e++;
			e = strchr(e, ']');
			if (!e)
				return fail(l, n, path, "glob '%s' has an unterminated '['",
					    shown(g, buf, sizeof(buf)));
			s = e;
		}
	}
	return 0;
}

static int check_json_path(struct loader *l, const yaml_node_t *n, const char *path, const char *p)
{
	char buf[64];
	size_t segs = 1;

	if (!*p)
		return fail(l, n, path, "empty JSON path");
	if (*p == '.' || p[strlen(p) - 1] == '.' || strstr(p, ".."))
		return fail(l, n, path, "empty segment in JSON path '%s'",
			    shown(p, buf, sizeof(buf)));
	for (const char *s = p; *s; s++)
		segs += *s == '.';
	if (segs > POLICY_MAX_PATH_DEPTH)
		return fail(l, n, path, "JSON path '%s' has more than %u segments",
			    shown(p, buf, sizeof(buf)), POLICY_MAX_PATH_DEPTH);
	return 0;
}

static int check_identifier(struct loader *l, const yaml_node_t *n, const char *path, const char *s)
{
	char buf[64];
	bool ok = *s && !(*s >= '0' && *s <= '9');

	for (const char *c = s; ok && *c; c++)
		ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		     (*c >= '0' && *c <= '9') || *c == '_';
	if (!ok)
		return fail(l, n, path, "'%s' is not a Python identifier",
			    shown(s, buf, sizeof(buf)));
	return 0;
}

/* RFC 9110 token: what a header name may be. */
static int check_header_name(struct loader *l, const yaml_node_t *n, const char *path,
			     const char *s)
{
	char buf[64];
	bool ok = *s;

	for (const char *c = s; ok && *c; c++)
		ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		     (*c >= '0' && *c <= '9') || strchr("!#$%&'*+-.^_`|~", *c);
	if (!ok)
		return fail(l, n, path, "'%s' is not a header name", shown(s, buf, sizeof(buf)));
	return 0;
}

/* --- lists ----------------------------------------------------------------------------------- */

typedef int (*check_fn)(struct loader *l, const yaml_node_t *n, const char *path, const char *s);

static int get_list(struct loader *l, const yaml_node_t *n, const char *path,
		    struct policy_list *out, check_fn check)
{
	yaml_node_item_t *it;
	size_t count;
	int err;

	if (n->type != YAML_SEQUENCE_NODE)
		return fail(l, n, path, "expected a sequence of strings, got %s", kind_name(n));
	count = n->data.sequence.items.top - n->data.sequence.items.start;
	if (count > POLICY_MAX_LIST)
		return fail(l, n, path, "more than %u entries", POLICY_MAX_LIST);
	out->v = calloc(count ? count : 1, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		const yaml_node_t *e = yaml_document_get_node(l->doc, *it);

		err = get_string(l, e, path, &out->v[out->n]);
		if (err)
			return err;
		out->n++;
		err = check ? check(l, e, path, out->v[out->n - 1]) : 0;
		if (err)
			return err;
	}
	return 0;
}

static int check_opcode(struct loader *l, const yaml_node_t *n, const char *path, const char *s)
{
	char buf[64];

	for (unsigned int op = 0; op < 16; op++)
		if (ws_opcode_assigned(op) && !strcmp(s, ws_opcode_name(op)))
			return 0;
	return fail(l, n, path,
		    "unknown opcode '%s' (text, binary, continuation, close, ping, pong)",
		    shown(s, buf, sizeof(buf)));
}

/* --- mappings -------------------------------------------------------------------------------- */

/*
 * A key of a mapping: parsed by its function, or, as data, a string or a list of strings
 * stored at an offset of the mapping's struct and checked by check (NULL: any string).
 */
struct field {
	const char *key;
	int (*parse)(struct loader *l, const yaml_node_t *v, const char *path, void *ctx);
	size_t at;
	bool list;
	check_fn check;
	bool required; /* its absence is an error ("missing 'key'") */
};

#define STRING_FIELD(name, type, member, chk)                           \
	{                                                               \
		.key = name, .at = offsetof(type, member), .check = chk \
	}
#define REQUIRED_STRING_FIELD(name, type, member, chk)                                    \
	{                                                                                 \
		.key = name, .at = offsetof(type, member), .check = chk, .required = true \
	}
#define LIST_FIELD(name, type, member, chk)                                           \
	{                                                                             \
		.key = name, .at = offsetof(type, member), .list = true, .check = chk \
	}

static int set_field(struct loader *l, const struct field *f, const yaml_node_t *v,
		     const char *path, void *ctx)
{
	char **str = (char **)((char *)ctx + f->at);
	int err;

	if (f->parse)
		return f->parse(l, v, path, ctx);
	if (f->list)
		return get_list(l, v, path, (struct policy_list *)((char *)ctx + f->at), f->check);
	err = get_string(l, v, path, str);
	return err || !f->check ? err : f->check(l, v, path, *str);
}

/*
 * Walks a mapping against its fields: unknown and repeated keys are errors.  *seen gets bit i
 * for field i present.
 */
static int parse_map(struct loader *l, const yaml_node_t *n, const char *path,
		     const struct field *fields, size_t nfields, void *ctx, unsigned int *seen)
{
	char sub[POLICY_ERR_LEN / 2], names[256], buf[64];
	yaml_node_pair_t *pr;
	int err;

	*seen = 0;
	if (n->type != YAML_MAPPING_NODE)
		return fail(l, n, path, "expected a mapping, got %s", kind_name(n));
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		const yaml_node_t *k = yaml_document_get_node(l->doc, pr->key);
		const yaml_node_t *v = yaml_document_get_node(l->doc, pr->value);
		const char *key;
		size_t i;

		if (!is_string(k))
			return fail(l, k, path, "expected a string key, got %s", kind_name(k));
		key = (const char *)k->data.scalar.value;
		for (i = 0; i < nfields && strcmp(key, fields[i].key); i++)
			;
		if (i == nfields) {
			size_t o = 0;

			names[0] = '\0';
			for (size_t j = 0; j < nfields && o < sizeof(names); j++)
				o += snprintf(names + o, sizeof(names) - o, "%s%s", j ? ", " : "",
					      fields[j].key);
			return fail(l, k, path, "unknown key '%s' (%s)",
				    shown(key, buf, sizeof(buf)), names);
		}
		if (*seen & (1u << i))
			return fail(l, k, path, "key '%s' given twice", key);
		*seen |= 1u << i;
		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
		err = set_field(l, &fields[i], v, sub, ctx);
		if (err)
			return err;
	}
	for (size_t i = 0; i < nfields; i++) {
		if (fields[i].required && !(*seen & (1u << i)))
			return fail(l, n, path, "missing '%s'", fields[i].key);
	}
	return 0;
}

/* A key of a list entry that must be there. */
static int need(struct loader *l, const yaml_node_t *n, const char *path, unsigned int seen,
		unsigned int bit, const char *what)
{
	return (seen & bit) ? 0 : fail(l, n, path, "missing '%s'", what);
}

/* Sequences of mappings: path[i] in messages. */
static int parse_entries(struct loader *l, const yaml_node_t *n, const char *path, void *arr,
			 size_t *count, size_t size,
			 int (*one)(struct loader *, const yaml_node_t *, const char *, void *))
{
	char sub[POLICY_ERR_LEN / 2];
	yaml_node_item_t *it;
	size_t total;
	void **a = arr;
	int err;

	if (n->type != YAML_SEQUENCE_NODE)
		return fail(l, n, path, "expected a sequence of mappings, got %s", kind_name(n));
	total = n->data.sequence.items.top - n->data.sequence.items.start;
	if (total > POLICY_MAX_LIST)
		return fail(l, n, path, "more than %u entries", POLICY_MAX_LIST);
	*a = calloc(total ? total : 1, size);
	if (!*a)
		return -ENOMEM;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		snprintf(sub, sizeof(sub), "%s[%zu]", path, *count);
		err = one(l, yaml_document_get_node(l->doc, *it), sub, (char *)*a + *count * size);
		(*count)++; /* counted even when it failed, so policy_free sees its strings */
		if (err)
			return err;
	}
	return 0;
}

/* targets */

static const struct field targets_fields[] = { LIST_FIELD("exe", struct policy, exe, check_glob) };

static int p_targets(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	unsigned int seen;

	return parse_map(l, v, path, targets_fields, 1, ctx, &seen);
}

/* bridge */

static int p_opcodes(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	struct policy *p = ctx;
	struct policy_list ops = { 0 };
	int err;

	err = get_list(l, v, path, &ops, check_opcode);
	p->bridge_opcodes = 0;
	for (size_t i = 0; !err && i < ops.n; i++)
		for (unsigned int op = 0; op < 16; op++)
			if (ws_opcode_assigned(op) && !strcmp(ops.v[i], ws_opcode_name(op)))
				p->bridge_opcodes |= 1u << op;
	for (size_t i = 0; i < ops.n; i++)
		free(ops.v[i]);
	free(ops.v);
	return err;
}

static const struct field bridge_fields[] = {
	LIST_FIELD("functions", struct policy, bridge_functions, check_glob),
	LIST_FIELD("files", struct policy, bridge_files, check_glob),
	{ .key = "opcodes", .parse = p_opcodes },
};

static int p_bridge(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	struct policy *p = ctx;
	unsigned int seen;
	int err;

	err = parse_map(l, v, path, bridge_fields, 3, ctx, &seen);
	if (err)
		return err;
	if (!p->bridge_functions.n && !p->bridge_files.n)
		return fail(l, v, path,
			    "no functions or files: every data frame would be a bypass");
	return 0;
}

/* transport */

static const struct field transport_fields[] = {
	LIST_FIELD("files", struct policy, transport_files, check_glob),
};

static int p_transport(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	unsigned int seen;

	return parse_map(l, v, path, transport_fields, 1, ctx, &seen);
}

/* identity.connection[] */

static int c_from(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	struct policy_conn_rule *r = ctx;
	char *s = NULL, buf[64];
	int err;

	err = get_string(l, v, path, &s);
	if (err)
		return err;
	for (unsigned int i = 0; i < 3; i++) {
		if (!strcmp(s, source_names[i])) {
			r->from = i;
			free(s);
			return 0;
		}
	}
	err = fail(l, v, path, "unknown source '%s' (subprotocol, header, query)",
		   shown(s, buf, sizeof(buf)));
	free(s);
	return err;
}

static int c_decode(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	struct policy_conn_rule *r = ctx;
	char *s = NULL, buf[64];
	int err;

	err = get_string(l, v, path, &s);
	if (err)
		return err;
	for (unsigned int i = 0; i < 3; i++) {
		if (!strcmp(s, decode_names[i])) {
			r->decode = i;
			free(s);
			return 0;
		}
	}
	err = fail(l, v, path, "unknown decode '%s' (jwt_b64, jwt, none)",
		   shown(s, buf, sizeof(buf)));
	free(s);
	return err;
}

enum { C_FROM = 1, C_NAME = 2, C_PREFIX = 4, C_DECODE = 8, C_CLAIM = 16 };

static const struct field conn_fields[] = {
	{ .key = "from", .parse = c_from },
	STRING_FIELD("name", struct policy_conn_rule, name, NULL),
	STRING_FIELD("prefix", struct policy_conn_rule, prefix, NULL),
	{ .key = "decode", .parse = c_decode },
	STRING_FIELD("claim", struct policy_conn_rule, claim, check_json_path),
};

static int one_conn(struct loader *l, const yaml_node_t *n, const char *path, void *out)
{
	struct policy_conn_rule *r = out;
	char sub[POLICY_ERR_LEN / 2];
	unsigned int seen;
	int err;

	err = parse_map(l, n, path, conn_fields, 5, r, &seen);
	if (err)
		return err;
	if (!(seen & C_FROM))
		return fail(l, n, path, "missing 'from' (subprotocol, header, query)");
	if (r->from == POLICY_FROM_SUBPROTOCOL) {
		if (seen & C_NAME)
			return fail(l, n, path, "'name' is not used with from: subprotocol");
		if (!(seen & C_PREFIX) || !*r->prefix)
			return fail(l, n, path,
				    "from: subprotocol needs a non-empty 'prefix' (e.g. \"jwt.\")");
	} else {
		err = need(l, n, path, seen, C_NAME, "name");
		if (err)
			return err;
		if (r->from == POLICY_FROM_HEADER) {
			snprintf(sub, sizeof(sub), "%s.name", path);
			err = check_header_name(l, n, sub, r->name);
			if (err)
				return err;
		} else if (!*r->name) {
			return fail(l, n, path, "empty query parameter name");
		}
	}
	if (!r->prefix) {
		r->prefix = strdup("");
		if (!r->prefix)
			return -ENOMEM;
	}
	if (r->decode != POLICY_DECODE_NONE && !r->claim)
		return fail(l, n, path,
			    "missing 'claim' (decode: %s needs the claim that names "
			    "the user, e.g. sub)",
			    decode_names[r->decode]);
	if (r->decode == POLICY_DECODE_NONE && r->claim)
		return fail(l, n, path, "'claim' needs decode: jwt or jwt_b64");
	return 0;
}

/* identity.message[] */

static const struct field message_fields[] = {
	REQUIRED_STRING_FIELD("json", struct policy_msg_rule, json, check_json_path),
	STRING_FIELD("unless_equals", struct policy_msg_rule, unless_equals, check_json_path),
};

static int one_message(struct loader *l, const yaml_node_t *n, const char *path, void *out)
{
	unsigned int seen;

	return parse_map(l, n, path, message_fields, 2, out, &seen);
}

/* identity.context[] */

static const struct field context_fields[] = {
	REQUIRED_STRING_FIELD("function", struct policy_ctx_rule, function, check_glob),
	REQUIRED_STRING_FIELD("arg", struct policy_ctx_rule, arg, check_identifier),
};

static int one_context(struct loader *l, const yaml_node_t *n, const char *path, void *out)
{
	unsigned int seen;

	return parse_map(l, n, path, context_fields, 2, out, &seen);
}

/* identity */

static int i_connection(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	struct policy *p = ctx;

	return parse_entries(l, v, path, &p->conn, &p->nconn, sizeof(*p->conn), one_conn);
}

static int i_message(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	struct policy *p = ctx;

	return parse_entries(l, v, path, &p->message, &p->nmessage, sizeof(*p->message),
			     one_message);
}

static int i_context(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	struct policy *p = ctx;

	return parse_entries(l, v, path, &p->ctx, &p->nctx, sizeof(*p->ctx), one_context);
}

static const struct field identity_fields[] = {
	{ .key = "connection", .parse = i_connection },
	{ .key = "message", .parse = i_message },
	{ .key = "context", .parse = i_context },
	LIST_FIELD("ownership", struct policy, ownership, check_json_path),
};

static int p_identity(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	unsigned int seen;

	return parse_map(l, v, path, identity_fields, 4, ctx, &seen);
}

/* messages */

static int check_type_value(struct loader *l, const yaml_node_t *n, const char *path, const char *s)
{
	if (!*s)
		return fail(l, n, path, "empty message type");
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return fail(l, n, path, "control character in a message type");
	}
	return 0;
}

static const struct field messages_fields[] = {
	LIST_FIELD("type", struct policy, type_fields, check_json_path),
	LIST_FIELD("known_types", struct policy, known_types, check_type_value),
};

static int p_messages(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	unsigned int seen;

	return parse_map(l, v, path, messages_fields, 2, ctx, &seen);
}

/* queues[] */

static const struct field queue_fields[] = {
	REQUIRED_STRING_FIELD("function", struct policy_queue_rule, function, check_glob),
	REQUIRED_STRING_FIELD("arg", struct policy_queue_rule, arg, check_identifier),
	STRING_FIELD("consumer", struct policy_queue_rule, consumer, check_glob),
};

static int one_queue(struct loader *l, const yaml_node_t *n, const char *path, void *out)
{
	unsigned int seen;

	return parse_map(l, n, path, queue_fields, 3, out, &seen);
}

static int p_queues(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	struct policy *p = ctx;

	return parse_entries(l, v, path, &p->queues, &p->nqueues, sizeof(*p->queues), one_queue);
}

/* runs */

/* key: one dotted JSON path, or a list of them tried in order. */
static int r_key(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	struct policy_list *key = &((struct policy *)ctx)->runs.key;

	if (v->type == YAML_SEQUENCE_NODE)
		return get_list(l, v, path, key, check_json_path);
	key->v = calloc(1, sizeof(*key->v));
	if (!key->v)
		return -ENOMEM;
	if (get_string(l, v, path, &key->v[0]))
		return -EINVAL;
	key->n = 1;
	return check_json_path(l, v, path, key->v[0]);
}

/*
 * timeout: seconds, as an integer or with a unit ("300s", "5m", "1h"), from 1 s to
 * POLICY_RUNS_TIMEOUT_MAX_S.
 */
static int r_timeout(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	const char *s = (const char *)v->data.scalar.value, *t;
	unsigned long long n = 0, mult = 1;
	char buf[64];

	if (v->type != YAML_SCALAR_NODE || (plain_type(v) && strcmp(plain_type(v), "an integer")))
		return fail(l, v, path, "expected seconds (300, \"300s\", \"5m\", \"1h\"), got %s",
			    kind_name(v));
	for (t = s; *t >= '0' && *t <= '9' && n <= POLICY_RUNS_TIMEOUT_MAX_S; t++)
		n = n * 10 + (unsigned long long)(*t - '0');
	if (t != s && *t >= '0' && *t <= '9')
		n = POLICY_RUNS_TIMEOUT_MAX_S + 1ULL; /* too many digits: out of range below */
	else if (!strcmp(t, "m"))
		mult = 60;
	else if (!strcmp(t, "h"))
		mult = 3600;
	else if (t == s || (*t && strcmp(t, "s")))
		return fail(l, v, path, "'%s' is not a duration (300, \"300s\", \"5m\", \"1h\")",
			    shown(s, buf, sizeof(buf)));
	if (n == 0 || n * mult > POLICY_RUNS_TIMEOUT_MAX_S)
		return fail(l, v, path, "'%s' is out of range (1s to %us)",
			    shown(s, buf, sizeof(buf)), POLICY_RUNS_TIMEOUT_MAX_S);
	((struct policy *)ctx)->runs.timeout_s = (unsigned int)(n * mult);
	return 0;
}

static int parse_severity(struct loader *l, const yaml_node_t *v, const char *path,
			  enum policy_severity *out);

static int r_severity(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	return parse_severity(l, v, path, &((struct policy *)ctx)->runs.severity);
}

static const struct field runs_fields[] = {
	{ .key = "key", .parse = r_key },
	LIST_FIELD("start", struct policy, runs.start, check_type_value),
	LIST_FIELD("end", struct policy, runs.end, check_type_value),
	LIST_FIELD("required", struct policy, runs.required, check_type_value),
	{ .key = "timeout", .parse = r_timeout },
	{ .key = "severity", .parse = r_severity },
};

/* A type in two roles would make a run end where it starts, or require its own end. */
static int runs_disjoint(struct loader *l, const yaml_node_t *v, const struct policy_runs *r)
{
	const struct {
		const char *name;
		const struct policy_list *l;
	} roles[] = { { "start", &r->start }, { "end", &r->end }, { "required", &r->required } };
	char buf[64];

	for (size_t a = 0; a < 3; a++)
		for (size_t i = 0; i < roles[a].l->n; i++)
			for (size_t b = a; b < 3; b++)
				for (size_t j = b == a ? i + 1 : 0; j < roles[b].l->n; j++)
					if (!strcmp(roles[a].l->v[i], roles[b].l->v[j]))
						return fail(
							l, v, "runs", "type '%s' is in %s%s%s",
							shown(roles[a].l->v[i], buf, sizeof(buf)),
							roles[a].name, a == b ? " twice" : " and ",
							a == b ? "" : roles[b].name);
	return 0;
}

static int p_runs(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	struct policy_runs *r = &((struct policy *)ctx)->runs;
	unsigned int seen;
	int err;

	r->on = true;
	r->timeout_s = POLICY_RUNS_TIMEOUT_DEFAULT_S;
	err = parse_map(l, v, path, runs_fields, 6, ctx, &seen);
	if (err)
		return err;
	if ((err = need(l, v, path, seen, 1u << 0, "key")) ||
	    (err = need(l, v, path, seen, 1u << 1, "start")) ||
	    (err = need(l, v, path, seen, 1u << 2, "end")))
		return err;
	if (!r->key.n)
		return fail(l, v, "runs.key", "no JSON path");
	if (!r->start.n || !r->end.n)
		return fail(l, v, !r->start.n ? "runs.start" : "runs.end",
			    "no message type: a run needs one to start and one to end");
	return runs_disjoint(l, v, r);
}

/* How a kind of finding counts in `wsaudit run`: warning or error. */
static int parse_severity(struct loader *l, const yaml_node_t *v, const char *path,
			  enum policy_severity *out)
{
	char *s = NULL;
	int err = get_string(l, v, path, &s);

	if (err)
		return err;
	if (!strcmp(s, "warning"))
		*out = POLICY_SEVERITY_WARNING;
	else if (!strcmp(s, "error"))
		*out = POLICY_SEVERITY_ERROR;
	else
		err = fail(l, v, path, "unknown severity '%s' (warning or error)", s);
	free(s);
	return err;
}

/* unjudged: frames whose producer could not be named (docs/causal.md) */

static int u_severity(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	return parse_severity(l, v, path, &((struct policy *)ctx)->unjudged_severity);
}

static const struct field unjudged_fields[] = { { .key = "severity", .parse = u_severity } };

static int p_unjudged(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	unsigned int seen;

	return parse_map(l, v, path, unjudged_fields, 1, ctx, &seen);
}

const char *policy_severity_name(enum policy_severity s)
{
	return s == POLICY_SEVERITY_ERROR ? "error" : "warning";
}

/* delivery: frames that never reached their user (docs/delivery.md) */

static int d_severity(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	return parse_severity(l, v, path, &((struct policy *)ctx)->delivery_severity);
}

static const struct field delivery_fields[] = { { .key = "severity", .parse = d_severity } };

static int p_delivery(struct loader *l, const yaml_node_t *v, const char *path, void *ctx)
{
	unsigned int seen;

	return parse_map(l, v, path, delivery_fields, 1, ctx, &seen);
}

static const struct field top_fields[] = {
	{ .key = "targets", .parse = p_targets },     { .key = "bridge", .parse = p_bridge },
	{ .key = "transport", .parse = p_transport }, { .key = "identity", .parse = p_identity },
	{ .key = "messages", .parse = p_messages },   { .key = "runs", .parse = p_runs },
	{ .key = "queues", .parse = p_queues },	      { .key = "unjudged", .parse = p_unjudged },
	{ .key = "delivery", .parse = p_delivery },
};

/* --- load ------------------------------------------------------------------------------------ */

static void list_free(struct policy_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	free(p->source);
	list_free(&p->exe);
	list_free(&p->bridge_functions);
	list_free(&p->bridge_files);
	list_free(&p->transport_files);
	for (size_t i = 0; i < p->nconn; i++) {
		free(p->conn[i].name);
		free(p->conn[i].prefix);
		free(p->conn[i].claim);
	}
	free(p->conn);
	for (size_t i = 0; p->message && i < p->nmessage; i++) {
		free(p->message[i].json);
		free(p->message[i].unless_equals);
	}
	free(p->message);
	for (size_t i = 0; i < p->nctx; i++) {
		free(p->ctx[i].function);
		free(p->ctx[i].arg);
	}
	free(p->ctx);
	list_free(&p->ownership);
	list_free(&p->type_fields);
	list_free(&p->known_types);
	for (size_t i = 0; i < p->nqueues; i++) {
		free(p->queues[i].function);
		free(p->queues[i].arg);
		free(p->queues[i].consumer);
	}
	free(p->queues);
	list_free(&p->runs.key);
	list_free(&p->runs.start);
	list_free(&p->runs.end);
	list_free(&p->runs.required);
	free(p);
}

static int syntax_error(struct loader *l, const yaml_parser_t *y)
{
	if (y->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (y->error == YAML_READER_ERROR) {
		snprintf(l->err, l->errlen, "%s: YAML syntax error: %s at byte %zu", l->name,
			 y->problem ? y->problem : "unreadable input", y->problem_offset);
		return -EINVAL;
	}
	snprintf(l->err, l->errlen, "%s:%zu:%zu: YAML syntax error: %s%s%s", l->name,
		 y->problem_mark.line + 1, y->problem_mark.column + 1,
		 y->problem ? y->problem : "invalid YAML", y->context ? " " : "",
		 y->context ? y->context : "");
	return -EINVAL;
}

/*
 * A first pass over the events, cheap while the nesting is shallow: stops at the first
 * collection nested deeper than POLICY_MAX_NESTING (200 KB of '[' cost 17.7 s in libyaml,
 * quadratic in the depth) and past POLICY_MAX_NODES nodes (a document of 1 MiB of them costs
 * 0.2 s to build).  Aliases pass: the walk after follows the schema's fixed shape, so they
 * cannot multiply its work.  Syntax errors are left to the loader, which says them the same
 * way.
 */
static int check_shape(struct loader *l, const void *buf, size_t len)
{
	unsigned int depth = 0, nodes = 0;
	yaml_parser_t y;
	yaml_event_t e;
	bool end = false;
	int err = 0;

	if (!yaml_parser_initialize(&y))
		return -ENOMEM;
	yaml_parser_set_input_string(&y, buf, len);
	while (!end && !err) {
		if (!yaml_parser_parse(&y, &e)) {
			if (y.error == YAML_MEMORY_ERROR)
				err = -ENOMEM;
			break;
		}
		if ((e.type == YAML_SCALAR_EVENT || e.type == YAML_SEQUENCE_START_EVENT ||
		     e.type == YAML_MAPPING_START_EVENT) &&
		    ++nodes > POLICY_MAX_NODES) {
			snprintf(l->err, l->errlen, "%s:%zu:%zu: more than %d YAML nodes", l->name,
				 e.start_mark.line + 1, e.start_mark.column + 1, POLICY_MAX_NODES);
			err = -EINVAL;
		}
		switch (err ? YAML_NO_EVENT : e.type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > POLICY_MAX_NESTING) {
				snprintf(l->err, l->errlen,
					 "%s:%zu:%zu: collections nested deeper than %d levels",
					 l->name, e.start_mark.line + 1, e.start_mark.column + 1,
					 POLICY_MAX_NESTING);
				err = -EINVAL;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_STREAM_END_EVENT:
			end = true;
			break;
		default:
			break;
		}
		yaml_event_delete(&e);
	}
	yaml_parser_delete(&y);
	return err;
}

static int load_doc(struct loader *l, yaml_parser_t *y, struct policy *p)
{
	yaml_document_t doc, extra;
	const yaml_node_t *root;
	unsigned int seen;
	int err;

	if (!yaml_parser_load(y, &doc))
		return syntax_error(l, y);
	l->doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (!root) {
		err = fail(l, NULL, "", "empty policy (it needs at least bridge.functions)");
		goto out_doc;
	}
	err = parse_map(l, root, "", top_fields, sizeof(top_fields) / sizeof(top_fields[0]), p,
			&seen);
	if (err)
		goto out_doc;
	if (!(seen & 2)) {
		err = fail(l, root, "", "missing 'bridge'");
		goto out_doc;
	}
	/* A second document would be ignored by the loader: refuse it instead. */
	if (!yaml_parser_load(y, &extra)) {
		err = syntax_error(l, y);
		goto out_doc;
	}
	root = yaml_document_get_root_node(&extra);
	if (root)
		err = fail(l, root, "", "more than one YAML document");
	yaml_document_delete(&extra);
out_doc:
	yaml_document_delete(&doc);
	l->doc = NULL; /* it pointed into this frame */
	return err;
}

struct policy *policy_load_mem(const char *name, const void *buf, size_t len, char *err,
			       size_t errlen)
{
	struct loader l = { .name = name, .err = err, .errlen = errlen };
	struct policy *p = NULL;
	yaml_parser_t y;
	int ret;

	if (errlen)
		err[0] = '\0';
	if (len > POLICY_MAX_FILE) {
		ret = fail(&l, NULL, "", "larger than %u bytes", POLICY_MAX_FILE);
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->source = strdup(name))) {
		ret = -ENOMEM;
		goto out;
	}
	p->bridge_opcodes = 1u << 1 | 1u << 2;
	/* Lost frames, abnormal closes and incomplete runs fail `wsaudit run` unless relaxed. */
	p->delivery_severity = POLICY_SEVERITY_ERROR;
	p->runs.severity = POLICY_SEVERITY_ERROR;
	if (!yaml_parser_initialize(&y)) {
		ret = -ENOMEM;
		goto out;
	}
	ret = check_shape(&l, buf, len);
	if (ret) {
		yaml_parser_delete(&y);
		goto out;
	}
	yaml_parser_set_input_string(&y, buf, len);
	ret = load_doc(&l, &y, p);
	yaml_parser_delete(&y);
out:
	if (ret == -ENOMEM && errlen)
		snprintf(err, errlen, "%s: out of memory", name);
	if (ret) {
		policy_free(p);
		errno = -ret;
		return NULL;
	}
	return p;
}

struct policy *policy_load(const char *path, char *err, size_t errlen)
{
	struct policy *p = NULL;
	char *buf = NULL;
	size_t len = 0;
	struct stat sb;
	FILE *f;
	int e, fd;

	errno = 0;
	/*
	 * A FIFO or a device would block the agent's loop in the read (a reload runs there):
	 * opened without blocking, and only a regular file is read.
	 */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb))
		e = errno;
	else if (S_ISDIR(sb.st_mode))
		e = EISDIR;
	else if (!S_ISREG(sb.st_mode))
		e = EINVAL;
	else
		e = 0;
	if (e) {
		snprintf(err, errlen, "%s: %s", path,
			 e == EINVAL ? "not a regular file" : strerror(e));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	f = fdopen(fd, "r");
	if (!f) {
		e = errno;
		close(fd);
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		goto out;
	}
	/* One byte more than the bound, so an over-long file is seen as such. */
	buf = malloc(POLICY_MAX_FILE + 1);
	if (!buf) {
		e = ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out_close;
	}
	len = fread(buf, 1, POLICY_MAX_FILE + 1, f);
	if (ferror(f)) {
		e = errno ? errno : EIO; /* EISDIR for a directory */
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		goto out_close;
	}
	p = policy_load_mem(path, buf, len, err, errlen);
	e = p ? 0 : errno;
out_close:
	fclose(f);
out:
	free(buf);
	errno = e;
	return p;
}

struct policy *policy_default(void)
{
	char err[POLICY_ERR_LEN];

	return policy_load_mem("<built-in>", policy_default_yaml, sizeof(policy_default_yaml) - 1,
			       err, sizeof(err));
}

struct policy *policy_open(const char *path, char *err, size_t errlen)
{
	struct policy *p = path ? policy_load(path, err, errlen) : policy_default();

	if (!p && !path)
		snprintf(err, errlen, "failed to load the built-in policy");
	return p;
}

/* --- matching -------------------------------------------------------------------------------- */

bool policy_glob_match(const char *glob, const char *s)
{
	const char *g = glob;

	/*
	 * Without flags a literal character matches only itself, so the pattern's literal head
	 * is compared here: most names differ in their first bytes, and fnmatch is left the
	 * rest.  Stops at any character fnmatch gives a meaning to.
	 */
	while (*g && *g != '*' && *g != '?' && *g != '[' && *g != '\\') {
		if (*g != *s)
			return false;
		g++;
		s++;
	}
	if (!*g)
		return !*s;
	return !fnmatch(g, s, 0);
}

/* No FNM_PATHNAME: '*' spans '/' so "*\/site-packages/\*" matches at any depth. */
static bool list_match(const struct policy_list *l, const char *s)
{
	if (!s)
		return false;
	for (size_t i = 0; i < l->n; i++)
		if (policy_glob_match(l->v[i], s))
			return true;
	return false;
}

bool policy_is_bridge_frame(const struct policy *p, const char *function, const char *file)
{
	return list_match(&p->bridge_functions, function) || list_match(&p->bridge_files, file);
}

bool policy_is_transport_file(const struct policy *p, const char *file)
{
	return list_match(&p->transport_files, file);
}

bool policy_bridge_opcode(const struct policy *p, unsigned int opcode)
{
	return opcode < 16 && (p->bridge_opcodes & (1u << opcode));
}

bool policy_exe_match(const struct policy *p, const char *exe)
{
	return list_match(&p->exe, exe);
}

bool policy_known_type(const struct policy *p, const char *type)
{
	for (size_t i = 0; i < p->known_types.n; i++) {
		if (!strcmp(p->known_types.v[i], type))
			return true;
	}
	return false;
}

const char *policy_context_arg(const struct policy *p, const char *function)
{
	if (!function)
		return NULL;
	for (size_t i = 0; i < p->nctx; i++)
		if (policy_glob_match(p->ctx[i].function, function))
			return p->ctx[i].arg;
	return NULL;
}

const struct policy_queue_rule *policy_queue_handoff(const struct policy *p, const char *function)
{
	if (!function)
		return NULL;
	for (size_t i = 0; i < p->nqueues; i++)
		if (policy_glob_match(p->queues[i].function, function))
			return &p->queues[i];
	return NULL;
}

enum policy_run_event policy_run_event(const struct policy *p, const char *type)
{
	if (!p->runs.on)
		return POLICY_RUN_OTHER;
	for (size_t i = 0; i < p->runs.start.n; i++)
		if (!strcmp(p->runs.start.v[i], type))
			return POLICY_RUN_START;
	for (size_t i = 0; i < p->runs.end.n; i++)
		if (!strcmp(p->runs.end.v[i], type))
			return POLICY_RUN_END;
	for (size_t i = 0; i < p->runs.required.n; i++)
		if (!strcmp(p->runs.required.v[i], type))
			return POLICY_RUN_REQUIRED;
	return POLICY_RUN_OTHER;
}

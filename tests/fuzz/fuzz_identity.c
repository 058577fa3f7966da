// SPDX-License-Identifier: GPL-2.0
/*
 * Identity extraction on hostile bytes: the input as a JWT (raw and base64url-wrapped), as
 * a text message, as the token of every connection source in an upgrade request, as a whole
 * upgrade request, and (one input in four) as a policy; the one-pass reader of message fields
 * must agree with jansson's tree on every input.  Every value that comes out must be
 * a non-empty bounded string without NULs, and every reason must have a name.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "identity.h"
#include "jwt.h"
#include "policy.h"

static const char fuzz_policy[] =
	"bridge: {functions: [\"B.*\"]}\n"
	"identity:\n"
	"  connection:\n"
	"    - {from: subprotocol, prefix: \"jwt.\", decode: jwt_b64, claim: sub}\n"
	"    - {from: subprotocol, prefix: \"jwt.\", decode: jwt, claim: sub}\n"
	"    - {from: header, name: Authorization, prefix: \"Bearer \", decode: jwt, claim: "
	"user.id}\n"
	"    - {from: query, name: token, decode: jwt, claim: sub}\n"
	"    - {from: query, name: user_id}\n"
	"    - {from: header, name: X-User, decode: none}\n"
	"  message: [{json: user_id}, {json: data.user_id}, {json: items.0.user_id}]\n"
	"  ownership: [run_id, payload.thread_id]\n"
	"messages:\n  type: [type, event]\n";

static struct policy *policy;

static void check_value(enum identity_reason r, const char *v)
{
	if (!identity_reason_name(r) || !strcmp(identity_reason_name(r), "unknown"))
		abort();
	if (r == IDENTITY_OK && (!v[0] || strlen(v) > IDENTITY_MAX_VALUE))
		abort();
	if (r != IDENTITY_OK && v[0])
		abort();
}

static void check_jwt(const uint8_t *data, size_t size, bool wrapped)
{
	char out[IDENTITY_MAX_VALUE + 1];
	json_t *p = NULL;
	enum identity_reason r;

	r = jwt_payload((const char *)data, size, wrapped, &p);
	if ((r == IDENTITY_OK) != (p != NULL) || (p && !json_is_object(p)))
		abort();
	if (p) {
		check_value(identity_json_get(p, "sub", out, sizeof(out)), out);
		check_value(identity_json_get(p, "a.0.b", out, sizeof(out)), out);
		json_decref(p);
	}
}

static void check_message(const uint8_t *data, size_t size)
{
	struct identity_message m;

	if (identity_from_message(policy, 1, data, size, &m))
		return;
	if (m.reason != IDENTITY_OK && (m.user.reason != IDENTITY_ABSENT || m.nowners))
		abort();
	check_value(m.user.reason, m.user.value);
	check_value(m.type.reason, m.type.value);
	for (size_t i = 0; i < m.nowners; i++)
		check_value(m.owners[i].f.reason, m.owners[i].f.value);
	identity_message_names_user(policy, data, size);
}

/*
 * The one-pass reader of message fields against jansson's tree: the same reason for the
 * document and, for every path, the same reason and the same bytes out.
 */
static void check_one_pass(const uint8_t *data, size_t size)
{
	static const char *const paths[] = {
		"user_id", "data.user_id", "items.0.user_id", "type", "event", "a.0.b", "a.1", "0",
		""
	};
	enum identity_reason want, got;
	struct idjson_doc d;
	json_t *root = NULL;

	want = identity_json_parse(data, size, &root);
	if (want == IDENTITY_OK && !json_is_object(root))
		want = IDENTITY_NOT_OBJECT;
	got = idjson_open(&d, data, size, paths, sizeof(paths) / sizeof(paths[0]));
	if (got != want)
		abort();
	for (size_t k = 0; want == IDENTITY_OK && k < sizeof(paths) / sizeof(paths[0]); k++) {
		char a[IDENTITY_MAX_VALUE + 1], b[IDENTITY_MAX_VALUE + 1];

		for (size_t n = 2; n <= sizeof(a); n += sizeof(a) - 2) {
			memset(a, 'A', sizeof(a));
			memset(b, 'A', sizeof(b));
			if (identity_json_get(root, paths[k], a, n) !=
				    idjson_get(&d, paths[k], b, n) ||
			    memcmp(a, b, n))
				abort();
		}
	}
	idjson_close(&d);
	json_decref(root);
}

static void check_request(const char *head, size_t len)
{
	struct http1_parser *hp = http1_parser_new(HTTP1_REQUEST);
	const struct http1_message *m = NULL;
	struct identity_conn c;
	size_t used;

	if (!hp)
		return;
	if (http1_parser_feed(hp, head, len, &m, &used) == HTTP1_DONE &&
	    !identity_from_request(policy, m, &c)) {
		check_value(c.reason, c.user);
		if ((c.reason == IDENTITY_OK) != (c.rule >= 0) || c.rule >= (int)policy->nconn)
			abort();
		/* Ambiguous names nobody, and always says why. */
		if ((c.reason == IDENTITY_AMBIGUOUS) != (c.ambiguous != NULL) ||
		    (c.ambiguous && c.user[0]))
			abort();
	}
	http1_parser_free(hp);
}

/* The input as the token of every source at once; CR and LF would end the header. */
static void check_sources(const uint8_t *data, size_t size)
{
	static char head[HTTP1_MAX_HEAD];
	size_t n = size > 3000 ? 3000 : size;
	char tok[3001];
	int len;

	for (size_t i = 0; i < n; i++)
		tok[i] = (data[i] == '\r' || data[i] == '\n' || !data[i]) ? ' ' : (char)data[i];
	tok[n] = '\0';
	len = snprintf(head, sizeof(head),
		       "GET /ws?token=%s&user_id=%s HTTP/1.1\r\nHost: h\r\n"
		       "Sec-WebSocket-Protocol: jwt-auth, jwt.%s\r\n"
		       "Authorization: Bearer %s\r\nX-User: %s\r\n\r\n",
		       tok, tok, tok, tok, tok);
	if (len > 0 && (size_t)len < sizeof(head))
		check_request(head, (size_t)len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[POLICY_ERR_LEN];

	if (!policy) {
		policy =
			policy_load_mem("fuzz", fuzz_policy, strlen(fuzz_policy), err, sizeof(err));
		if (!policy)
			abort();
	}
	check_jwt(data, size, false);
	check_jwt(data, size, true);
	check_message(data, size);
	check_one_pass(data, size);
	check_sources(data, size);
	check_request((const char *)data, size);
	if (size && data[0] % 4 == 0) {
		struct policy *p = policy_load_mem("p.yaml", data, size, err, sizeof(err));

		if (!p && !err[0])
			abort();
		policy_free(p);
	}
	return 0;
}

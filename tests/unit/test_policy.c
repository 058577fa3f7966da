// SPDX-License-Identifier: GPL-2.0
/*
 * Policy loading: the shipped policies load, the built-in default is policies/default.yaml
 * byte for byte, every error message is checked word for word, and the matchers.
 */
#include <errno.h>
#include <fnmatch.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "commands.h"
#include "policy.h"

/* From the source path as the Makefile passes it: relative to the repository root. */
static const char *repo_path(const char *rel)
{
	static char buf[4096];
	const char *me = __FILE__;
	const char *tail = strstr(me, "tests/unit/test_policy.c");

	snprintf(buf, sizeof(buf), "%.*s%s", (int)(tail - me), me, rel);
	return buf;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;

	assert_non_null(f);
	buf = malloc(1 << 20);
	assert_non_null(buf);
	*len = fread(buf, 1, 1 << 20, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static void test_default_is_the_file(void **state)
{
	size_t len;
	char *text = read_file(repo_path("policies/default.yaml"), &len);

	assert_int_equal(len, strlen(policy_default_yaml));
	assert_memory_equal(text, policy_default_yaml, len);
	free(text);
}

static void test_default_contents(void **state)
{
	struct policy *p = policy_default();

	assert_non_null(p);
	assert_string_equal(p->source, "<built-in>");
	assert_true(policy_bridge_opcode(p, 1));
	assert_true(policy_bridge_opcode(p, 2));
	assert_false(policy_bridge_opcode(p, 0));
	assert_false(policy_bridge_opcode(p, 8));
	assert_false(policy_bridge_opcode(p, 9));
	assert_false(policy_bridge_opcode(p, 10));
	assert_false(policy_bridge_opcode(p, 99));
	assert_true(policy_is_bridge_frame(p, "AgentWebSocketBridge.notify_agent_started", NULL));
	assert_true(policy_is_bridge_frame(p, "WebSocketNotifier.send_agent_thinking", "/a.py"));
	assert_false(policy_is_bridge_frame(p, "WebSocketNotifier._emit_with_retry", "/a.py"));
	assert_false(policy_is_bridge_frame(p, NULL, NULL));
	assert_true(policy_is_transport_file(
		p, "/usr/lib/python3/dist-packages/websockets/legacy/protocol.py"));
	assert_true(policy_is_transport_file(p, "/usr/lib/python3.11/asyncio/events.py"));
	assert_true(policy_is_transport_file(p, "<frozen importlib._bootstrap>"));
	assert_false(policy_is_transport_file(p, "/srv/app/agents/registry.py"));
	assert_true(policy_exe_match(p, "/usr/bin/python3.11"));
	assert_false(policy_exe_match(p, "/usr/bin/node"));
	assert_string_equal(policy_context_arg(p, "AgentWebSocketBridge.notify_custom"), "user_id");
	assert_null(policy_context_arg(p, "Manager.send_to_user"));
	assert_int_equal(p->nconn, 3);
	assert_int_equal(p->conn[0].from, POLICY_FROM_SUBPROTOCOL);
	assert_int_equal(p->conn[0].decode, POLICY_DECODE_JWT_B64);
	assert_string_equal(p->conn[0].prefix, "jwt.");
	assert_null(p->conn[0].name);
	assert_string_equal(p->conn[0].claim, "sub");
	assert_int_equal(p->conn[1].from, POLICY_FROM_HEADER);
	assert_string_equal(p->conn[1].name, "Authorization");
	assert_string_equal(p->conn[1].prefix, "Bearer ");
	assert_int_equal(p->conn[2].from, POLICY_FROM_QUERY);
	assert_string_equal(p->conn[2].prefix, "");
	assert_int_equal(p->nmessage, 2);
	assert_string_equal(p->message[1].json, "data.user_id");
	assert_null(p->message[1].unless_equals);
	assert_int_equal(p->ownership.n, 2);
	assert_int_equal(p->type_fields.n, 2);
	policy_free(p);
}

static void test_netra(void **state)
{
	char err[POLICY_ERR_LEN];
	struct policy *p = policy_load(repo_path("policies/netra.yaml"), err, sizeof(err));

	if (!p)
		fail_msg("%s", err);
	assert_true(policy_is_bridge_frame(p, "AgentWebSocketBridge.notify_agent_started", NULL));
	assert_true(policy_is_bridge_frame(p, "UnifiedWebSocketEmitter._emit_critical", NULL));
	assert_true(policy_is_bridge_frame(p, "WebSocketBridgeAdapter.emit_thinking", NULL));
	assert_true(policy_is_bridge_frame(p, "safe_websocket_send",
					   "/app/netra_backend/app/websocket_core/utils.py"));
	assert_false(policy_is_bridge_frame(p, "safe_websocket_send",
					    "/app/netra_backend/app/core/fallback_utils.py"));
	assert_false(
		policy_is_bridge_frame(p, "_UnifiedWebSocketManagerImplementation.send_to_user",
				       "/app/netra_backend/app/websocket_core/unified_manager.py"));
	assert_false(policy_is_bridge_frame(p, "ThreadService._send_agent_started_event",
					    "/app/netra_backend/app/services/thread_service.py"));
	assert_true(policy_is_transport_file(
		p, "/app/netra_backend/app/websocket_core/unified_manager.py"));
	assert_false(
		policy_is_transport_file(p, "/app/netra_backend/app/services/thread_service.py"));
	assert_int_equal(p->nconn, 12);
	assert_string_equal(p->conn[11].name, "X-E2E-User-Id");
	assert_int_equal(p->conn[11].decode, POLICY_DECODE_NONE);
	assert_null(p->conn[11].claim);
	assert_int_equal(p->ownership.n, 4);
	/* The golden path's five events, keyed by run_id. */
	assert_true(p->runs.on);
	assert_int_equal(p->runs.key.n, 2);
	assert_string_equal(p->runs.key.v[1], "payload.run_id");
	assert_int_equal(p->runs.timeout_s, 300);
	assert_int_equal(policy_run_event(p, "agent_started"), POLICY_RUN_START);
	assert_int_equal(policy_run_event(p, "agent_completed"), POLICY_RUN_END);
	assert_int_equal(policy_run_event(p, "agent_error"), POLICY_RUN_END);
	assert_int_equal(policy_run_event(p, "agent_thinking"), POLICY_RUN_REQUIRED);
	assert_int_equal(policy_run_event(p, "tool_executing"), POLICY_RUN_REQUIRED);
	assert_int_equal(policy_run_event(p, "tool_completed"), POLICY_RUN_REQUIRED);
	assert_int_equal(policy_run_event(p, "ping"), POLICY_RUN_OTHER);
	policy_free(p);
}

static void test_minimal_file(void **state)
{
	char err[POLICY_ERR_LEN];
	struct policy *p =
		policy_load(repo_path("tests/data/policies/minimal.yaml"), err, sizeof(err));

	assert_non_null(p);
	/* Omitted opcodes: the data frames. */
	assert_int_equal(p->bridge_opcodes, 1u << 1 | 1u << 2);
	assert_int_equal(p->nconn, 0);
	assert_int_equal(p->exe.n, 0);
	assert_int_equal(p->transport_files.n, 0);
	assert_false(policy_is_transport_file(p, "/x.py"));
	policy_free(p);
}

/* Loads text that must fail and checks the whole message. */
static void expect_error(const char *yaml, const char *msg)
{
	char err[POLICY_ERR_LEN];
	struct policy *p;

	errno = 0;
	p = policy_load_mem("policy.yaml", yaml, strlen(yaml), err, sizeof(err));
	if (p) {
		policy_free(p);
		fail_msg("loaded: %s", yaml);
	}
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, msg);
}

static void expect_file_error(const char *rel, const char *msg)
{
	char err[POLICY_ERR_LEN], want[POLICY_ERR_LEN];
	const char *path = repo_path(rel);
	struct policy *p = policy_load(path, err, sizeof(err));

	assert_null(p);
	snprintf(want, sizeof(want), "%s%s", path, msg);
	assert_string_equal(err, want);
}

#define BRIDGE "bridge:\n  functions: [\"B.*\"]\n"

static void test_error_files(void **state)
{
	expect_file_error("tests/data/policies/bad_opcode.yaml",
			  ":7:7: bridge.opcodes: unknown opcode 'txt' "
			  "(text, binary, continuation, close, ping, pong)");
	expect_file_error("tests/data/policies/unknown_key.yaml",
			  ":6:3: identity: unknown key 'messages' "
			  "(connection, message, context, ownership)");
	expect_file_error("tests/data/policies/syntax.yaml",
			  ":3:3: YAML syntax error: did not find expected ',' or ']' "
			  "while parsing a flow sequence");
	expect_file_error("tests/data/policies/no-such-file.yaml", ": No such file or directory");
}

static void test_unknown_keys(void **state)
{
	expect_error(
		BRIDGE "bridges: {}\n",
		"policy.yaml:3:1: unknown key 'bridges' "
		"(targets, bridge, transport, identity, messages, runs, queues, unjudged, delivery)");
	expect_error("bridge:\n  functions: [a]\n  function: [b]\n",
		     "policy.yaml:3:3: bridge: unknown key 'function' (functions, files, opcodes)");
	expect_error(BRIDGE "identity:\n  connection:\n    - {from: header, nme: X}\n",
		     "policy.yaml:5:22: identity.connection[0]: unknown key 'nme' "
		     "(from, name, prefix, decode, claim)");
	expect_error(BRIDGE "bridge:\n  files: [a]\n", "policy.yaml:3:1: key 'bridge' given twice");
	expect_error(BRIDGE "? [a]\n: b\n",
		     "policy.yaml:3:3: expected a string key, got a sequence");
}

static void test_bad_types(void **state)
{
	expect_error("bridge:\n  functions: AgentWebSocketBridge.*\n",
		     "policy.yaml:2:14: bridge.functions: expected a sequence of strings, "
		     "got a string");
	expect_error("bridge: [a]\n",
		     "policy.yaml:1:9: bridge: expected a mapping, got a sequence");
	expect_error("- bridge\n", "policy.yaml:1:1: expected a mapping, got a sequence");
	expect_error("bridge:\n  functions: [a, {b: c}]\n",
		     "policy.yaml:2:18: bridge.functions: expected a string, got a mapping");
	expect_error("bridge:\n  functions: [a, 12]\n",
		     "policy.yaml:2:18: bridge.functions: expected a string, got an integer "
		     "(quote it to mean the text)");
	expect_error("bridge:\n  functions: [a, 1.5e3]\n",
		     "policy.yaml:2:18: bridge.functions: expected a string, got a number "
		     "(quote it to mean the text)");
	expect_error("bridge:\n  functions: [true]\n",
		     "policy.yaml:2:15: bridge.functions: expected a string, got a boolean "
		     "(quote it to mean the text)");
	expect_error(BRIDGE "identity:\n  connection:\n    - {from: header, name: A, prefix: ~}\n",
		     "policy.yaml:5:39: identity.connection[0].prefix: expected a string, got null "
		     "(quote it to mean the text)");
	expect_error(BRIDGE "identity:\n  connection:\n    - from: header\n      name:\n",
		     "policy.yaml:6:12: identity.connection[0].name: expected a string, got null "
		     "(quote it to mean the text)");
	expect_error(BRIDGE "identity:\n  connection: {from: header}\n",
		     "policy.yaml:4:15: identity.connection: expected a sequence of mappings, "
		     "got a mapping");
	expect_error(BRIDGE "identity:\n  message: [user_id]\n",
		     "policy.yaml:4:13: identity.message[0]: expected a mapping, got a string");
	expect_error(BRIDGE "messages: [type]\n",
		     "policy.yaml:3:11: messages: expected a mapping, got a sequence");
	expect_error(BRIDGE "targets:\n  exe: \"*/python3*\"\n",
		     "policy.yaml:4:8: targets.exe: expected a sequence of strings, got a string");
	/* Quoted, the same text is a string. */
	{
		static const char ok[] = "bridge:\n  functions: [\"12\", 'true', \"\\x41*\"]\n";
		char err[POLICY_ERR_LEN];
		struct policy *p = policy_load_mem("p", ok, sizeof(ok) - 1, err, sizeof(err));

		assert_non_null(p);
		assert_string_equal(p->bridge_functions.v[2], "A*");
		policy_free(p);
	}
	expect_error("bridge:\n  functions: [\"a\\0b\"]\n",
		     "policy.yaml:2:15: bridge.functions: contains a NUL character");
}

static void test_bad_values(void **state)
{
	expect_error("bridge:\n  functions: [a]\n  opcodes: [text, txt]\n",
		     "policy.yaml:3:19: bridge.opcodes: unknown opcode 'txt' "
		     "(text, binary, continuation, close, ping, pong)");
	expect_error("bridge:\n  functions: [\"\"]\n",
		     "policy.yaml:2:15: bridge.functions: empty glob");
	expect_error("bridge:\n  functions: [a]\ntransport:\n  files: [\"*/lib[/*\"]\n",
		     "policy.yaml:4:11: transport.files: glob '*/lib[/*' has an unterminated '['");
	expect_error("bridge:\n  files: ['a\\']\n",
		     "policy.yaml:2:11: bridge.files: glob 'a\\' ends with '\\'");
	expect_error("bridge:\n  functions: []\n  files: []\n",
		     "policy.yaml:2:3: bridge: no functions or files: every data frame would be a "
		     "bypass");
	expect_error("targets:\n  exe: [a]\n", "policy.yaml:1:1: missing 'bridge'");
	expect_error("", "policy.yaml: empty policy (it needs at least bridge.functions)");
	expect_error("# only a comment\n",
		     "policy.yaml: empty policy (it needs at least bridge.functions)");
	expect_error(BRIDGE "---\nbridge: {}\n", "policy.yaml:4:1: more than one YAML document");
}

static void test_connection_rules(void **state)
{
#define CONN BRIDGE "identity:\n  connection:\n    - "
	expect_error(CONN "{from: subprotocol, prefix: jwt., decode: jwt64, claim: sub}\n",
		     "policy.yaml:5:49: identity.connection[0].decode: unknown decode 'jwt64' "
		     "(jwt_b64, jwt, none)");
	expect_error(CONN "{from: subprotocol, prefix: jwt., decode: jwt_b64}\n",
		     "policy.yaml:5:7: identity.connection[0]: missing 'claim' (decode: jwt_b64 "
		     "needs the claim that names the user, e.g. sub)");
	expect_error(CONN "{from: query, name: user_id, claim: sub}\n",
		     "policy.yaml:5:7: identity.connection[0]: 'claim' needs decode: jwt or "
		     "jwt_b64");
	expect_error(CONN "{from: cookie, name: s}\n",
		     "policy.yaml:5:14: identity.connection[0].from: unknown source 'cookie' "
		     "(subprotocol, header, query)");
	expect_error(
		CONN "{name: token, decode: none}\n",
		"policy.yaml:5:7: identity.connection[0]: missing 'from' (subprotocol, header, "
		"query)");
	expect_error(CONN "{from: header, decode: none}\n",
		     "policy.yaml:5:7: identity.connection[0]: missing 'name'");
	expect_error(
		CONN "{from: header, name: \"Bad Name\"}\n",
		"policy.yaml:5:7: identity.connection[0].name: 'Bad Name' is not a header name");
	expect_error(CONN "{from: query, name: \"\"}\n",
		     "policy.yaml:5:7: identity.connection[0]: empty query parameter name");
	expect_error(CONN "{from: subprotocol, decode: none}\n",
		     "policy.yaml:5:7: identity.connection[0]: from: subprotocol needs a non-empty "
		     "'prefix' (e.g. \"jwt.\")");
	expect_error(CONN "{from: subprotocol, prefix: a, name: x}\n",
		     "policy.yaml:5:7: identity.connection[0]: 'name' is not used with from: "
		     "subprotocol");
	expect_error(CONN "{from: query, name: t}\n    - {from: header, name: A, decode: jwt, "
			  "claim: a..b}\n",
		     "policy.yaml:6:51: identity.connection[1].claim: empty segment in JSON path "
		     "'a..b'");
#undef CONN
}

static void test_identity_lists(void **state)
{
	expect_error(BRIDGE "identity:\n  message:\n    - {json: \"\"}\n",
		     "policy.yaml:5:14: identity.message[0].json: empty JSON path");
	expect_error(BRIDGE "identity:\n  message:\n    - {}\n",
		     "policy.yaml:5:7: identity.message[0]: missing 'json'");
	expect_error(BRIDGE "identity:\n  message:\n    - {json: a.b.c.d.e.f.g.h.i}\n",
		     "policy.yaml:5:14: identity.message[0].json: JSON path 'a.b.c.d.e.f.g.h.i' "
		     "has more than 8 segments");
	expect_error(BRIDGE "identity:\n  context:\n    - {function: \"B.*\"}\n",
		     "policy.yaml:5:7: identity.context[0]: missing 'arg'");
	expect_error(BRIDGE "identity:\n  context:\n    - {function: \"\", arg: u}\n",
		     "policy.yaml:5:18: identity.context[0].function: empty glob");
	expect_error(BRIDGE "identity:\n  context:\n    - {function: f, arg: user-id}\n",
		     "policy.yaml:5:26: identity.context[0].arg: 'user-id' is not a Python "
		     "identifier");
	expect_error(BRIDGE "identity:\n  ownership: [run_id, .thread_id]\n",
		     "policy.yaml:4:23: identity.ownership: empty segment in JSON path "
		     "'.thread_id'");
	expect_error(BRIDGE "messages:\n  type: [type, \"\"]\n",
		     "policy.yaml:4:16: messages.type: empty JSON path");
}

/* queues: hand-off functions whose callers produce what the queue's consumer sends. */
static void test_queues(void **state)
{
	static const char ok[] = BRIDGE
		"queues:\n"
		"  - {function: \"*.enqueue\", arg: message}\n"
		"  - {function: AsyncSocket.send, arg: pkt, consumer: \"*writer\"}\n";
	char err[POLICY_ERR_LEN], *yaml;
	struct policy *p = policy_load_mem("p", ok, sizeof(ok) - 1, err, sizeof(err));
	const struct policy_queue_rule *q;
	size_t o;

	if (!p)
		fail_msg("%s", err);
	assert_int_equal(p->nqueues, 2);
	q = policy_queue_handoff(p, "SendQueue.enqueue");
	assert_non_null(q);
	assert_string_equal(q->arg, "message");
	assert_null(q->consumer);
	q = policy_queue_handoff(p, "AsyncSocket.send");
	assert_non_null(q);
	assert_string_equal(q->arg, "pkt");
	assert_string_equal(q->consumer, "*writer");
	assert_null(policy_queue_handoff(p, "AsyncSocket.send_later"));
	assert_null(policy_queue_handoff(p, NULL));
	policy_free(p);

	/* None by default: no function is a hand-off. */
	p = policy_default();
	assert_non_null(p);
	assert_int_equal(p->nqueues, 0);
	assert_null(policy_queue_handoff(p, "SendQueue.enqueue"));
	policy_free(p);

	expect_error(BRIDGE "queues:\n  - {arg: m}\n",
		     "policy.yaml:4:5: queues[0]: missing 'function'");
	expect_error(BRIDGE "queues:\n  - {function: f}\n",
		     "policy.yaml:4:5: queues[0]: missing 'arg'");
	expect_error(BRIDGE "queues:\n  - {function: f, arg: 1m}\n",
		     "policy.yaml:4:24: queues[0].arg: '1m' is not a Python identifier");
	expect_error(BRIDGE "queues:\n  - {function: \"[f\", arg: m}\n",
		     "policy.yaml:4:16: queues[0].function: glob '[f' has an unterminated '['");
	expect_error(BRIDGE "queues:\n  - {function: f, arg: m, consumer: \"\"}\n",
		     "policy.yaml:4:37: queues[0].consumer: empty glob");
	expect_error(BRIDGE "queues:\n  - {function: f, arg: m, queue: q}\n",
		     "policy.yaml:4:27: queues[0]: unknown key 'queue' (function, arg, consumer)");
	expect_error(BRIDGE "queues: {function: f, arg: m}\n",
		     "policy.yaml:3:9: queues: expected a sequence of mappings, got a mapping");
	expect_error(BRIDGE "queues:\n  - [f, m]\n",
		     "policy.yaml:4:5: queues[0]: expected a mapping, got a sequence");

	/* Bounded like every list: at most POLICY_MAX_LIST hand-offs. */
	yaml = malloc(64 * (POLICY_MAX_LIST + 2) + sizeof(BRIDGE));
	assert_non_null(yaml);
	o = (size_t)sprintf(yaml, BRIDGE "queues:\n");
	for (int i = 0; i <= POLICY_MAX_LIST; i++)
		o += (size_t)sprintf(yaml + o, "  - {function: f%d, arg: m}\n", i);
	expect_error(yaml, "policy.yaml:4:3: queues: more than 64 entries");
	free(yaml);
}

#define RUNS BRIDGE "runs:\n"

static struct policy *load_ok(const char *yaml)
{
	char err[POLICY_ERR_LEN];
	struct policy *p = policy_load_mem("policy.yaml", yaml, strlen(yaml), err, sizeof(err));

	if (!p)
		fail_msg("%s", err);
	return p;
}

static void test_runs(void **state)
{
	struct policy *p;

	/* No section: no runs followed. */
	p = load_ok(BRIDGE);
	assert_false(p->runs.on);
	assert_int_equal(policy_run_event(p, "agent_started"), POLICY_RUN_OTHER);
	policy_free(p);

	/* The shape: one key, the default timeout, required optional. */
	p = load_ok(RUNS "  key: run_id\n  start: [s]\n  end: [e, x]\n");
	assert_true(p->runs.on);
	assert_int_equal(p->runs.key.n, 1);
	assert_string_equal(p->runs.key.v[0], "run_id");
	assert_int_equal(p->runs.timeout_s, POLICY_RUNS_TIMEOUT_DEFAULT_S);
	assert_int_equal(p->runs.required.n, 0);
	assert_int_equal(policy_run_event(p, "x"), POLICY_RUN_END);
	policy_free(p);

	static const struct {
		const char *t;
		unsigned int s;
	} ok[] = { { "300", 300 }, { "300s", 300 },  { "\"45\"", 45 }, { "5m", 300 },
		   { "2h", 7200 }, { "24h", 86400 }, { "1s", 1 } };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char y[256];

		snprintf(y, sizeof(y), RUNS "  key: r\n  start: [s]\n  end: [e]\n  timeout: %s\n",
			 ok[i].t);
		p = load_ok(y);
		assert_int_equal(p->runs.timeout_s, ok[i].s);
		policy_free(p);
	}
}

static void test_runs_errors(void **state)
{
	expect_error(RUNS "  start: [s]\n  end: [e]\n", "policy.yaml:4:3: runs: missing 'key'");
	expect_error(RUNS "  key: r\n  end: [e]\n", "policy.yaml:4:3: runs: missing 'start'");
	expect_error(RUNS "  key: r\n  start: [s]\n", "policy.yaml:4:3: runs: missing 'end'");
	expect_error(RUNS "  key: r\n  start: []\n  end: [e]\n",
		     "policy.yaml:4:3: runs.start: no message type: a run needs one to start and "
		     "one to end");
	expect_error(RUNS "  key: []\n  start: [s]\n  end: [e]\n",
		     "policy.yaml:4:3: runs.key: no JSON path");
	expect_error(RUNS "  key: .r\n  start: [s]\n  end: [e]\n",
		     "policy.yaml:4:8: runs.key: empty segment in JSON path '.r'");
	expect_error(RUNS "  key: {a: b}\n  start: [s]\n  end: [e]\n",
		     "policy.yaml:4:8: runs.key: expected a string, got a mapping");
	expect_error(RUNS "  key: r\n  start: [s]\n  end: [e, s]\n",
		     "policy.yaml:4:3: runs: type 's' is in start and end");
	expect_error(RUNS "  key: r\n  start: [s]\n  end: [e]\n  required: [t, e]\n",
		     "policy.yaml:4:3: runs: type 'e' is in end and required");
	expect_error(RUNS "  key: r\n  start: [s]\n  end: [e]\n  required: [t, t]\n",
		     "policy.yaml:4:3: runs: type 't' is in required twice");
	expect_error(RUNS "  key: r\n  start: [s]\n  end: [\"\"]\n",
		     "policy.yaml:6:9: runs.end: empty message type");
	expect_error(RUNS "  key: r\n  start: [s]\n  end: [e]\n  timeout: 0\n",
		     "policy.yaml:7:12: runs.timeout: '0' is out of range (1s to 86400s)");
	expect_error(RUNS "  key: r\n  start: [s]\n  end: [e]\n  timeout: 25h\n",
		     "policy.yaml:7:12: runs.timeout: '25h' is out of range (1s to 86400s)");
	expect_error(RUNS "  key: r\n  start: [s]\n  end: [e]\n  timeout: 99999999999999999999\n",
		     "policy.yaml:7:12: runs.timeout: '99999999999999999999' is out of range (1s "
		     "to 86400s)");
	expect_error(RUNS "  key: r\n  start: [s]\n  end: [e]\n  timeout: 5 min\n",
		     "policy.yaml:7:12: runs.timeout: '5 min' is not a duration (300, \"300s\", "
		     "\"5m\", \"1h\")");
	expect_error(RUNS "  key: r\n  start: [s]\n  end: [e]\n  timeout: -5\n",
		     "policy.yaml:7:12: runs.timeout: '-5' is not a duration (300, \"300s\", "
		     "\"5m\", \"1h\")");
	expect_error(RUNS "  key: r\n  start: [s]\n  end: [e]\n  timeout: 1.5\n",
		     "policy.yaml:7:12: runs.timeout: expected seconds (300, \"300s\", \"5m\", "
		     "\"1h\"), got a number");
	expect_error(RUNS "  key: r\n  start: [s]\n  end: [e]\n  timeout: [1]\n",
		     "policy.yaml:7:12: runs.timeout: expected seconds (300, \"300s\", \"5m\", "
		     "\"1h\"), got a sequence");
	expect_error(RUNS "  key: r\n  start: [s]\n  end: [e]\n  timeout:\n",
		     "policy.yaml:7:11: runs.timeout: expected seconds (300, \"300s\", \"5m\", "
		     "\"1h\"), got null");
	expect_error(RUNS "  key: r\n  start: [s]\n  end: [e]\n  timout: 5\n",
		     "policy.yaml:7:3: runs: unknown key 'timout' (key, start, end, required, "
		     "timeout, severity)");
	expect_error(BRIDGE "runs: [a]\n",
		     "policy.yaml:3:7: runs: expected a mapping, got a sequence");
}

static void test_yaml_syntax(void **state)
{
	expect_error("bridge:\n  functions: [a\n",
		     "policy.yaml:3:1: YAML syntax error: did not find expected ',' or ']' while "
		     "parsing a flow sequence");
	expect_error("bridge:\n  functions: [a]\n opcodes: [text]\n",
		     "policy.yaml:3:2: YAML syntax error: did not find expected key while parsing "
		     "a block mapping");
	expect_error("bridge:\n\tfunctions: [a]\n",
		     "policy.yaml:2:1: YAML syntax error: found character that cannot start any "
		     "token while scanning for the next token");
	expect_error("bridge: *nope\n",
		     "policy.yaml:1:9: YAML syntax error: found undefined alias");
	expect_error(
		"bridge:\n  functions: [\"\x01\"]\n",
		"policy.yaml: YAML syntax error: control characters are not allowed at byte 23");
}

static void test_limits(void **state)
{
	char *yaml = malloc(POLICY_MAX_FILE + 2);
	char err[POLICY_ERR_LEN];
	size_t o;

	assert_non_null(yaml);
	memset(yaml, '#', POLICY_MAX_FILE + 1);
	assert_null(policy_load_mem("big.yaml", yaml, POLICY_MAX_FILE + 1, err, sizeof(err)));
	assert_string_equal(err, "big.yaml: larger than 1048576 bytes");
	o = (size_t)sprintf(yaml, "bridge:\n  functions: [");
	for (int i = 0; i <= POLICY_MAX_LIST; i++)
		o += (size_t)sprintf(yaml + o, "f%d, ", i);
	sprintf(yaml + o, "g]\n");
	expect_error(yaml, "policy.yaml:2:14: bridge.functions: more than 64 entries");
	o = (size_t)sprintf(yaml, "bridge:\n  functions: [\"");
	memset(yaml + o, 'a', POLICY_MAX_STRING + 1);
	sprintf(yaml + o + POLICY_MAX_STRING + 1, "\"]\n");
	expect_error(yaml, "policy.yaml:2:15: bridge.functions: longer than 256 bytes");
	/* Deep nesting is refused before libyaml's scanner goes quadratic in it. */
	memset(yaml, '[', 200000);
	yaml[200000] = '\0';
	expect_error(yaml, "policy.yaml:1:17: collections nested deeper than 16 levels");
	o = (size_t)sprintf(yaml, "bridge:\n  functions:\n");
	for (int i = 0; i < POLICY_MAX_NODES; i++)
		o += (size_t)sprintf(yaml + o, "   - f\n");
	expect_error(yaml, "policy.yaml:4094:6: more than 4096 YAML nodes");
	free(yaml);
}

/* Aliases resolve to the anchored node; the schema's fixed depth makes loops harmless. */
static void test_aliases(void **state)
{
	static const char ok[] = "bridge:\n  functions: &f [\"B.*\"]\n  files: *f\n";
	char err[POLICY_ERR_LEN];
	struct policy *p = policy_load_mem("p", ok, sizeof(ok) - 1, err, sizeof(err));

	assert_non_null(p);
	assert_string_equal(p->bridge_files.v[0], "B.*");
	policy_free(p);
	expect_error("&a {bridge: *a}\n", "policy.yaml:1:5: bridge: unknown key 'bridge' "
					  "(functions, files, opcodes)");
}

static void test_names(void **state)
{
	assert_string_equal(policy_opcode_name(0), "continuation");
	assert_string_equal(policy_opcode_name(10), "pong");
	assert_null(policy_opcode_name(3));
	assert_null(policy_opcode_name(16));
	assert_string_equal(policy_source_name(POLICY_FROM_QUERY), "query");
	assert_string_equal(policy_decode_name(POLICY_DECODE_JWT_B64), "jwt_b64");
}

/* wsaudit check-policy: exit codes (its output goes to the test log). */
static void test_check_policy(void **state)
{
	static char cmd[] = "check-policy", opt[] = "--bogus";
	char good[4096], bad[4096];
	char *ok_argv[] = { cmd, good, NULL };
	char *bad_argv[] = { cmd, bad, NULL };
	char *none_argv[] = { cmd, NULL };
	char *two_argv[] = { cmd, good, bad, NULL };
	char *opt_argv[] = { cmd, opt, good, NULL };

	snprintf(good, sizeof(good), "%s", repo_path("policies/default.yaml"));
	snprintf(bad, sizeof(bad), "%s", repo_path("tests/data/policies/bad_opcode.yaml"));
	assert_int_equal(cmd_check_policy(2, ok_argv), EXIT_OK);
	assert_int_equal(cmd_check_policy(2, bad_argv), EXIT_USAGE);
	assert_int_equal(cmd_check_policy(1, none_argv), EXIT_USAGE);
	assert_int_equal(cmd_check_policy(3, two_argv), EXIT_USAGE);
	assert_int_equal(cmd_check_policy(3, opt_argv), EXIT_USAGE);
}

/* The glob matcher agrees with fnmatch(3) without flags on every pair. */
static void test_glob_match_is_fnmatch(void **state)
{
	static const char *const globs[] = {
		"AgentWebSocketBridge.*",
		"WebSocketNotifier.send_*",
		"*/site-packages/*",
		"*/lib/python3*/*",
		"run",
		"*_run_once",
		"Handle._run",
		"a?c",
		"a[bc]d",
		"a\\*b",
		"",
		"*",
		"/srv/app/x.py",
		"/srv/*/x.py",
		"Bridge.send",
	};
	static const char *const names[] = {
		"AgentWebSocketBridge.notify",
		"AgentWebSocketBridge",
		"WebSocketNotifier.send_text",
		"/usr/lib/python3/dist-packages/x.py",
		"/usr/lib/python3.11/asyncio/events.py",
		"/srv/app/x.py",
		"/srv/app/y/x.py",
		"run",
		"runner",
		"BaseEventLoop._run_once",
		"Handle._run",
		"abc",
		"abd",
		"acd",
		"a*b",
		"axb",
		"",
		"Bridge.send",
		"Bridge.sen",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(globs) / sizeof(globs[0]); i++)
		for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); j++)
			assert_int_equal(policy_glob_match(globs[i], names[j]),
					 !fnmatch(globs[i], names[j], 0));
}

/* unjudged.severity: warning unless the policy says error; anything else is refused. */
static void test_unjudged_severity(void **state)
{
	static const char error[] = "bridge:\n  functions: [B.*]\nunjudged:\n  severity: error\n";
	static const char bad[] = "bridge:\n  functions: [B.*]\nunjudged:\n  severity: fatal\n";
	char err[POLICY_ERR_LEN];
	struct policy *p;

	(void)state;
	p = policy_load_mem("p", error, sizeof(error) - 1, err, sizeof(err));
	assert_non_null(p);
	assert_int_equal(p->unjudged_severity, POLICY_SEVERITY_ERROR);
	assert_string_equal(policy_severity_name(p->unjudged_severity), "error");
	policy_free(p);
	p = policy_default();
	assert_non_null(p);
	assert_int_equal(p->unjudged_severity, POLICY_SEVERITY_WARNING);
	policy_free(p);
	assert_null(policy_load_mem("p", bad, sizeof(bad) - 1, err, sizeof(err)));
	assert_non_null(strstr(err, "unknown severity 'fatal' (warning or error)"));
}

/* runs.severity and delivery.severity: error unless the policy says warning. */
static void test_runs_and_delivery_severity(void **state)
{
	static const char warn[] = "bridge:\n  functions: [B.*]\ndelivery:\n  severity: warning\n"
				   "runs:\n  key: r\n  start: [s]\n  end: [e]\n"
				   "  severity: warning\n";
	static const char bad[] = "bridge:\n  functions: [B.*]\ndelivery:\n  severity: fatal\n";
	static const char unknown[] = "bridge:\n  functions: [B.*]\ndelivery:\n  level: error\n";
	char err[POLICY_ERR_LEN];
	struct policy *p;

	(void)state;
	p = policy_default();
	assert_non_null(p);
	assert_int_equal(p->delivery_severity, POLICY_SEVERITY_ERROR);
	assert_int_equal(p->runs.severity, POLICY_SEVERITY_ERROR);
	policy_free(p);
	p = policy_load_mem("p", warn, sizeof(warn) - 1, err, sizeof(err));
	assert_non_null(p);
	assert_int_equal(p->delivery_severity, POLICY_SEVERITY_WARNING);
	assert_int_equal(p->runs.severity, POLICY_SEVERITY_WARNING);
	policy_free(p);
	assert_null(policy_load_mem("p", bad, sizeof(bad) - 1, err, sizeof(err)));
	assert_non_null(
		strstr(err, "delivery.severity: unknown severity 'fatal' (warning or error)"));
	assert_null(policy_load_mem("p", unknown, sizeof(unknown) - 1, err, sizeof(err)));
	assert_non_null(strstr(err, "delivery: unknown key 'level' (severity)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_is_the_file),
		cmocka_unit_test(test_default_contents),
		cmocka_unit_test(test_netra),
		cmocka_unit_test(test_minimal_file),
		cmocka_unit_test(test_error_files),
		cmocka_unit_test(test_unjudged_severity),
		cmocka_unit_test(test_runs_and_delivery_severity),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_bad_types),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_connection_rules),
		cmocka_unit_test(test_identity_lists),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_runs_errors),
		cmocka_unit_test(test_yaml_syntax),
		cmocka_unit_test(test_queues),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_aliases),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_check_policy),
		cmocka_unit_test(test_glob_match_is_fnmatch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
/* The two findings, judged on hand-made stacks and messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "rules.h"

static const char POLICY[] = "bridge:\n"
			     "  functions: [\"AgentWebSocketBridge.*\"]\n"
			     "identity:\n"
			     "  message:\n"
			     "    - {json: user_id, unless_equals: thread_id}\n"
			     "  ownership: [run_id]\n"
			     "messages:\n"
			     "  type: [type]\n";

struct fixture {
	struct policy *policy;
	struct rules *rules;
};

static int setup(void **state)
{
	static struct fixture fx;
	char err[POLICY_ERR_LEN];

	fx.policy = policy_load_mem("test.yaml", POLICY, strlen(POLICY), err, sizeof(err));
	if (!fx.policy) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	fx.rules = rules_new(fx.policy, true, 2);
	*state = &fx;
	return fx.rules ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	rules_free(fx->rules);
	policy_free(fx->policy);
	return 0;
}

static struct attrib_stack *make_stack(const char *const *fns, size_t n, int origin)
{
	struct attrib_stack *s = calloc(1, sizeof(*s) + n * sizeof(s->frames[0]));

	s->refs = 1;
	s->origin = origin;
	s->nframes = n;
	for (size_t i = 0; i < n; i++) {
		s->frames[i].function = strdup(fns[i]);
		s->frames[i].file = strdup("/srv/app/x.py");
		s->frames[i].line = 10 + (int)i;
	}
	return s;
}

static void test_bridge_frame_passes_bypass_flagged(void **state)
{
	struct fixture *fx = *state;
	const char *via[] = { "Manager.send_to_user", "AgentWebSocketBridge.notify_agent_started",
			      "DataAgent.run" };
	const char *bypass[] = { "Manager.send_to_user", "DataAgent.run" };
	struct attrib_stack *a = make_stack(via, 3, 0), *b = make_stack(bypass, 2, 1);
	struct rules_input in = { .opcode = 1, .stack = a };
	struct rules_verdict v;

	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.via_bridge, 1);
	assert_int_equal(v.nviolations, 0);
	in.stack = b;
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.via_bridge, 0);
	assert_int_equal(v.nviolations, 1);
	assert_int_equal(v.v[0].rule, RULE_BRIDGE_BYPASS);
	assert_string_equal(
		v.v[0].detail,
		"DataAgent.run (/srv/app/x.py:11) sent without a bridge frame on the stack");
	/* Control frames are not subject to the bridge rule. */
	in.opcode = 9;
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.via_bridge, -1);
	assert_int_equal(v.nviolations, 0);
	attrib_stack_put(a);
	attrib_stack_put(b);
}

static void test_unattributed_frame_is_unjudged(void **state)
{
	struct fixture *fx = *state;
	const char *lib[] = { "WebSocketCommonProtocol.send" };
	struct attrib_stack *s = make_stack(lib, 1, -1);
	struct rules_input in = { .opcode = 1, .stack = s };
	struct rules_verdict v;
	uint64_t before = rules_stats(fx->rules)->bridge_unjudged;

	/* Not judged by the bridge rule, and said: a finding with the reason and what is known. */
	s->why = UNATTR_DETACHED_TASK;
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.via_bridge, -1);
	assert_int_equal(v.nviolations, 1);
	assert_int_equal(v.v[0].rule, RULE_UNJUDGED);
	assert_string_equal(v.v[0].reason, "detached_task");
	assert_string_equal(v.v[0].severity, "warning");
	assert_ptr_equal(v.v[0].best, &s->frames[0]);
	assert_int_equal(rules_stats(fx->rules)->bridge_unjudged, before + 1);
	assert_int_equal(rules_stats(fx->rules)->unjudged[UNATTR_DETACHED_TASK], 1);
	/* Attribution switched off, or no Python writer: nothing to link, no finding. */
	s->why = UNATTR_DISABLED;
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.nviolations, 0);
	s->why = UNATTR_NOT_PYTHON;
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.nviolations, 0);
	attrib_stack_put(s);
}

/* A frame sent by a task the bridge created is produced under the bridge. */
static void test_creator_under_bridge(void **state)
{
	struct fixture *fx = *state;
	const char *lib[] = { "WebSocketCommonProtocol.send" };
	const char *bridged[] = { "BaseEventLoop.create_task", "AgentWebSocketBridge.notify",
				  "DataAgent.run" };
	const char *bypass[] = { "BaseEventLoop.create_task", "DataAgent.run" };
	struct attrib_stack *s = make_stack(lib, 1, -1), *b = make_stack(bridged, 3, 1),
			    *p = make_stack(bypass, 2, 1);
	struct causal_link l = {
		.n = 1, .creators = { b }, .vias = { VIA_TASK }, .origin_level = 0
	};
	struct rules_input in = { .opcode = 1, .stack = s, .link = &l };
	struct rules_verdict v;

	s->why = UNATTR_DETACHED_TASK;
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.via_bridge, 1);
	assert_int_equal(v.nviolations, 0);
	l.creators[0] = p;
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.via_bridge, 0);
	assert_int_equal(v.nviolations, 1);
	assert_int_equal(v.v[0].rule, RULE_BRIDGE_BYPASS);
	assert_string_equal(v.v[0].detail,
			    "DataAgent.run (/srv/app/x.py:11) sent through a task without a bridge "
			    "frame on the stack of the send or of its creation");
	attrib_stack_put(s);
	attrib_stack_put(b);
	attrib_stack_put(p);
}

static void message(struct fixture *fx, const char *json, struct identity_message *m)
{
	assert_int_equal(identity_from_message(fx->policy, 1, json, strlen(json), m), 0);
	assert_int_equal(m->reason, IDENTITY_OK);
}

static void test_message_user_disagrees_with_connection(void **state)
{
	struct fixture *fx = *state;
	struct identity_message m;
	struct rules_input in = { .opcode = 1, .conn_user = "alice", .msg = &m };
	struct rules_verdict v;

	message(fx, "{\"type\":\"agent_started\",\"user_id\":\"alice\"}", &m);
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.nviolations, 0);
	message(fx, "{\"type\":\"agent_started\",\"user_id\":\"bob\"}", &m);
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.nviolations, 1);
	assert_int_equal(v.v[0].rule, RULE_ISOLATION_BREACH);
	assert_int_equal(v.v[0].a, ID_CONNECTION);
	assert_int_equal(v.v[0].b, ID_MESSAGE);
	assert_string_equal(v.v[0].a_value, "alice");
	assert_string_equal(v.v[0].b_value, "bob");
}

/* A connection whose user cannot be told, and a message whose user cannot be read. */
static void test_unjudgeable_identity_is_a_finding(void **state)
{
	struct fixture *fx = *state;
	struct rules_input in = { .opcode = 1, .conn_user_ambiguous = "duplicate_query" };
	struct rules_verdict v;

	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.nviolations, 1);
	assert_int_equal(v.v[0].rule, RULE_IDENTITY_AMBIGUOUS);
	assert_non_null(strstr(v.v[0].detail, "duplicate_query"));
	in.conn_user_ambiguous = NULL;
	in.conn_user_unknown = "head_too_large";
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.v[0].rule, RULE_IDENTITY_UNKNOWN);
	/* A gap of the trace's start, not of the client's doing: counted per connection only. */
	in.conn_user_unknown = "adopted";
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.nviolations, 0);
	/* Control frames carry no user. */
	in.conn_user_unknown = "head_gap";
	in.opcode = 8;
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.nviolations, 0);
	in = (struct rules_input){ .opcode = 1,
				   .conn_user = "alice",
				   .msg_unreadable = "bad_json" };
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.nviolations, 1);
	assert_int_equal(v.v[0].rule, RULE_MESSAGE_UNREADABLE);
	assert_string_equal(rule_name(RULE_MESSAGE_UNREADABLE), "message_unreadable");
}

static void test_thread_id_in_user_id_is_not_a_user(void **state)
{
	struct fixture *fx = *state;
	struct identity_message m;
	struct rules_input in = { .opcode = 1, .conn_user = "alice", .msg = &m };
	struct rules_verdict v;

	message(fx, "{\"type\":\"agent_thinking\",\"user_id\":\"t9\",\"thread_id\":\"t9\"}", &m);
	assert_int_equal(m.user.reason, IDENTITY_NOT_A_USER);
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.nviolations, 0);
}

static void test_bridge_call_for_another_user(void **state)
{
	struct fixture *fx = *state;
	struct identity_message m;
	struct rules_input in = { .opcode = 1,
				  .conn_user = "alice",
				  .ctx_user = "bob",
				  .ctx_function = "AgentWebSocketBridge._send_with_retry" };
	struct rules_verdict v;

	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.nviolations, 1);
	assert_int_equal(v.v[0].a, ID_CONNECTION);
	assert_int_equal(v.v[0].b, ID_CONTEXT);
	assert_string_equal(v.v[0].detail,
			    "connection of user alice carried a frame "
			    "AgentWebSocketBridge._send_with_retry sent for user bob");
	/* Several disagreements on one frame make one violation naming the first. */
	message(fx, "{\"type\":\"tool_completed\",\"user_id\":\"carol\"}", &m);
	in.msg = &m;
	in.ctx_user = "alice";
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.nviolations, 1);
	assert_int_equal(v.v[0].b, ID_MESSAGE);
	assert_non_null(strstr(v.v[0].detail, "; message of user carol carried a frame"));
}

static void test_ownership_key_crossing_users(void **state)
{
	struct fixture *fx = *state;
	struct identity_message m;
	struct rules_input in = { .opcode = 1, .msg = &m };
	struct rules_verdict v;

	message(fx, "{\"type\":\"agent_thinking\",\"run_id\":\"r1\"}", &m);
	in.conn_user = "alice";
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.nviolations, 0);
	in.conn_user = "bob";
	rules_judge(fx->rules, &in, &v);
	assert_int_equal(v.nviolations, 1);
	assert_int_equal(v.v[0].b, ID_OWNER);
	assert_string_equal(v.v[0].key, "run_id");
	assert_string_equal(v.v[0].detail,
			    "run_id first seen for user alice was sent to user bob's connection");
}

static void test_owner_table_is_bounded(void **state)
{
	struct fixture *fx = *state;
	struct identity_message m;
	struct rules_input in = { .opcode = 1, .conn_user = "carol", .msg = &m };
	struct rules_verdict v;
	const char *runs[] = { "{\"run_id\":\"a\"}", "{\"run_id\":\"b\"}", "{\"run_id\":\"c\"}" };

	for (int i = 0; i < 3; i++) {
		message(fx, runs[i], &m);
		rules_judge(fx->rules, &in, &v);
	}
	assert_int_equal(rules_stats(fx->rules)->owners, 2);
	assert_true(rules_stats(fx->rules)->owner_evictions >= 1);
}

static void test_redaction_is_stable_and_hides(void **state)
{
	struct fixture *fx = *state;
	struct rules *hidden = rules_new(fx->policy, false, 0);
	char a[64], b[64], c[64];

	rules_redact(hidden, "auth_user_1732_0_abcd1234", a, sizeof(a));
	rules_redact(hidden, "auth_user_1732_0_abcd1234", b, sizeof(b));
	rules_redact(hidden, "auth_user_1732_1_abcd1234", c, sizeof(c));
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_null(strstr(a, "auth_user"));
	assert_int_equal(strlen(a), 14);
	rules_free(hidden);
}

static void test_subprotocol_and_type_redaction(void **state)
{
	static const char pol[] =
		"bridge:\n"
		"  functions: [\"Bridge.*\"]\n"
		"identity:\n"
		"  connection:\n"
		"    - {from: subprotocol, prefix: \"jwt.\", decode: jwt_b64, claim: sub}\n"
		"messages:\n"
		"  type: [type]\n"
		"  known_types: [agent_update]\n";
	char err[POLICY_ERR_LEN], out[128];
	struct policy *p = policy_load_mem("t.yaml", pol, strlen(pol), err, sizeof(err));
	struct rules *hidden, *shown;

	if (!p)
		fail_msg("%s", err);
	hidden = rules_new(p, false, 0);
	shown = rules_new(p, true, 0);
	rules_redact_subprotocol(hidden, "chat, jwt.ZXlKaGJHY2lP.x,v2", out, sizeof(out));
	assert_string_equal(out, "chat, jwt.[redacted],v2");
	/* a bare JWT in another entry too */
	rules_redact_subprotocol(hidden, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig", out,
				 sizeof(out));
	assert_string_equal(out, "[redacted]");
	/* cut short: ends at the last whole entry, never inside a token */
	rules_redact_subprotocol(hidden, "chat,jwt.ZXlKaGJHY2lP", out, 12);
	assert_string_equal(out, "chat,");
	rules_redact_subprotocol(shown, "jwt.ZXlK", out, sizeof(out));
	assert_string_equal(out, "jwt.ZXlK");
	rules_redact_type(hidden, "agent_update", out, sizeof(out));
	assert_string_equal(out, "agent_update");
	rules_redact_type(hidden, "user4711@example.com", out, sizeof(out));
	assert_int_equal(strncmp(out, "t#", 2), 0);
	assert_int_equal(strlen(out), 14);
	rules_redact_type(shown, "user4711@example.com", out, sizeof(out));
	assert_string_equal(out, "user4711@example.com");
	rules_free(hidden);
	rules_free(shown);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bridge_frame_passes_bypass_flagged),
		cmocka_unit_test(test_creator_under_bridge),
		cmocka_unit_test(test_unattributed_frame_is_unjudged),
		cmocka_unit_test(test_message_user_disagrees_with_connection),
		cmocka_unit_test(test_unjudgeable_identity_is_a_finding),
		cmocka_unit_test(test_thread_id_in_user_id_is_not_a_user),
		cmocka_unit_test(test_bridge_call_for_another_user),
		cmocka_unit_test(test_ownership_key_crossing_users),
		cmocka_unit_test(test_owner_table_is_bounded),
		cmocka_unit_test(test_redaction_is_stable_and_hides),
		cmocka_unit_test(test_subprotocol_and_type_redaction),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

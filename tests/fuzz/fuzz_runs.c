// SPDX-License-Identifier: GPL-2.0
/*
 * What user/runs.c makes of the events a traced service sends: the service chooses the run
 * ids, the types and their order, the connections and the losses.  Each input byte pair is
 * one step (a message, a lost message, a close, a clock turn) on one of four connections.
 * Whatever the sequence, the runs followed stay within their bounds, every report names a
 * rule that matches its reason, and closing every connection lets go of every run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runs.h"

#define MAX_RUNS 100

static const char POLICY[] = "bridge:\n"
			     "  functions: [\"B.*\"]\n"
			     "runs:\n"
			     "  key: run_id\n"
			     "  start: [agent_started]\n"
			     "  end: [agent_completed, agent_error]\n"
			     "  required: [agent_thinking, tool_executing, tool_completed]\n"
			     "  timeout: 5s\n";
static const char *const TYPES[8] = { "agent_started",	 "agent_thinking",  "tool_executing",
				      "tool_completed",	 "agent_completed", "agent_error",
				      "progress_update", "t#0123456789ab" };
static const char *const CONNS[4] = { "c0", "c1", "c2", "c3" };

static void on_report(void *ctx, const struct run_report *rep)
{
	(void)ctx;
	if (rep->rule != run_reason_rule(rep->reason) || !rep->conn || !rep->key ||
	    !rep->last_type || rep->nmissing > POLICY_MAX_LIST)
		abort();
	for (size_t i = 0; i < rep->nmissing; i++)
		if (!rep->missing[i])
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy *policy;
	uint64_t now = 1, lost[4] = { 0 };
	char err[POLICY_ERR_LEN], key[RUNS_VALUE_MAX + 64];
	struct runs *r;

	if (!policy) {
		policy = policy_load_mem("fuzz.yaml", POLICY, strlen(POLICY), err, sizeof(err));
		if (!policy)
			abort();
	}
	r = runs_new(policy, MAX_RUNS, on_report, NULL);
	if (!r)
		return 0;
	for (size_t i = 0; i + 1 < size; i += 2) {
		unsigned int op = data[i] >> 6, conn = data[i] >> 4 & 3, arg = data[i + 1];
		struct run_msg m = {
			.conn = CONNS[conn],
			.pid = 1,
			.comm = "python3",
			.peer = "127.0.0.1:1",
			.whole = data[i] & 8,
			.user = data[i] & 4 ? "u#0123456789ab" : NULL,
			.type = TYPES[data[i] & 7],
			.function = arg & 1 ? "Agent.run" : NULL,
			.file = "/srv/agent.py",
			.line = 7,
		};

		now += (uint64_t)(arg & 0xf) * 100000000ULL;
		switch (op) {
		case 0:
		case 1:
			/* Keys from a small set, so runs recur; now and then one past the kept length. */
			if (arg == 0xff) {
				memset(key, 'k', sizeof(key) - 1);
				key[sizeof(key) - 1] = '\0';
			} else {
				snprintf(key, sizeof(key), "run-%u", arg >> 1);
			}
			m.key = key;
			m.type_shown = m.type;
			m.lost = lost[conn];
			m.ts_ns = now;
			runs_message(r, &m);
			break;
		case 2:
			if (arg & 0x80)
				lost[conn] += arg;
			else
				runs_gap(r, CONNS[conn]);
			break;
		default:
			if (arg & 0x80)
				runs_tick(r, now);
			else
				runs_conn_closed(r, CONNS[conn], arg & 0x40, lost[conn], now);
		}
		if (runs_stats(r)->open > MAX_RUNS)
			abort();
	}
	for (unsigned int c = 0; c < 4; c++)
		runs_conn_closed(r, CONNS[c], true, lost[c], now);
	if (runs_stats(r)->open)
		abort();
	runs_free(r);
	return 0;
}

# SPDX-License-Identifier: GPL-2.0
"""Run completeness on the stand-in of the reference service (docs/runs.md), with the netra
policy's runs section (the five events of the golden path, keyed by run_id), each case
reproduced for real by the service's --fault switches (tests/apps/standin):

  no_completed   the run sends everything but agent_completed; its user gives up and
                 closes: incomplete_run (conn_closed), naming the function of the last event;
  out_of_order   the run's agent_completed goes out before its agent_started:
                 out_of_order (start_after_end), naming the function that sent the start;
  missing_event  the run skips its tools: missing_event, tool_executing and tool_completed.

With the same service and no fault, 200 runs (20 users, 10 runs each) give no run record,
and all 200 are counted as completed.
"""

import os
import re

from harness import ROOT, final_stats
from test_delivery import run_standin

STANDIN_APP = os.path.join(ROOT, "tests", "apps", "standin", "netra_backend", "app")


def run_records(recs):
    return [r for r in recs if r["type"] == "run"]


def user_frames(recs, user):
    return [r for r in recs if r["type"] == "frame" and r["opcode"] == "text"
            and (r.get("conn") or {}).get("user") == user]


def test_run_findings(procs, tmp_path):
    faults = ("no_completed", "out_of_order", "missing_event")
    out, recs = run_standin(procs, tmp_path, users=3, runs=2, seed=5, faults=faults)
    fault_user = dict(re.findall(r"client: fault (\w+) user=(\S+)", out))
    assert set(fault_user) == set(faults), out
    stats = final_stats(recs)
    assert stats["drops_total"] == 0, stats["drops"]
    runs = run_records(recs)
    for r in runs:
        print(r["rule"], r["reason"], r["user"], r["run"], r["last_type"], r["origin"],
              r.get("event"), r.get("missing"), r["detail"])
    by_user = {r["user"]: r for r in runs}
    # One record per faulty run, none for the clean users' six runs.
    assert len(runs) == 3 and set(by_user) == set(fault_user.values())
    assert len({r["run"] for r in runs}) == 3
    for r in runs:
        assert r["run"].startswith("run_thread_ws_"), r  # --show-identities: the run id
        assert r["conn"]["id"] and r["pid"] > 0
        assert r["origin"]["file"].startswith(STANDIN_APP) and r["origin"]["line"] > 0

    # no_completed: the last event seen of the run is the last frame its user received.
    inc = by_user[fault_user["no_completed"]]
    assert (inc["rule"], inc["reason"]) == ("incomplete_run", "conn_closed")
    last = user_frames(recs, fault_user["no_completed"])[-1]
    assert inc["last_type"] == last["message"]["type"] == "progress_update"
    assert inc["origin"] == last["origin"]
    assert inc["origin"]["function"] == "AgentWebSocketBridge.notify_progress_update"
    assert inc["start_seen"] and "no end event" in inc["detail"]
    assert not any(f["message"]["type"] == "agent_completed"
                   for f in user_frames(recs, fault_user["no_completed"]))

    # out_of_order: the start came after the end, sent by ThreadService (a legacy sender,
    # run_id under payload: the policy's second key path).
    ooo = by_user[fault_user["out_of_order"]]
    assert (ooo["rule"], ooo["reason"], ooo["event"]) == ("out_of_order", "start_after_end",
                                                         "agent_started")
    assert ooo["origin"]["function"] == "ThreadService._send_agent_started_event"
    assert ooo["origin"]["file"].endswith("services/thread_service.py")
    types = [f["message"]["type"] for f in user_frames(recs, fault_user["out_of_order"])]
    assert types.index("agent_completed") < types.index("agent_started")

    # missing_event: ended by the bridge's agent_completed without the tools' events.
    mis = by_user[fault_user["missing_event"]]
    assert (mis["rule"], mis["reason"]) == ("missing_event", "required_absent")
    assert mis["missing"] == ["tool_executing", "tool_completed"]
    assert mis["last_type"] == "agent_completed"
    assert mis["origin"]["function"] == "AgentWebSocketBridge.emit_agent_event"

    s = stats["runs"]
    assert (s["conn_closed"], s["start_after_end"], s["required_absent"]) == (1, 1, 1)
    assert (s["timeout"], s["after_end"], s["evicted"], s["message_unreadable"],
            s["fragment"]) == (0, 0, 0, 0, 0)
    assert s["completed"] == 3 * 2 + 2 and s["open"] == 0


def test_clean_runs_have_no_run_findings(procs, tmp_path):
    out, recs = run_standin(procs, tmp_path, users=20, runs=10, seed=13)
    done = sum(int(n) for n in re.findall(r"client: \S+ frames=\d+ runs=(\d+)/10", out))
    assert done == 200, out
    stats = final_stats(recs)
    assert stats["drops_total"] == 0, stats["drops"]
    s = stats["runs"]
    print(f"clean: {done} runs, runs record counts {s}, "
          f"{len(run_records(recs))} run records")
    assert run_records(recs) == []
    assert s["completed"] == 200 and s["open"] == 0
    assert all(v == 0 for k, v in s.items() if k not in ("completed", "open")), s

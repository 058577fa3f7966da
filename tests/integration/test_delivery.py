# SPDX-License-Identifier: GPL-2.0
"""Delivery findings on the stand-in of the reference service (docs/delivery.md), each fault
reproduced for real by the service's --fault switches (tests/apps/standin):

  epipe        the client resets its connection after agent_started and an agent keeps
               writing its steps: every write fails (ECONNRESET, EPIPE); wsaudit reports each
               frame as a `lost` record with delivery_failed, the agent's function, the
               message type and the user, and the socket's close without a close frame as
               abnormal_close naming the function that closed it;
  raise        the run raises and the route closes the connection with 1011: abnormal_close
               on the close frame, with its code and reason length;
  after_close  agent_completed written right after the close frame: after_close.

With the same service and no fault, 200 runs (20 users, 10 runs each) give none of these.
"""

import json
import os
import re
import subprocess

from harness import PY, ROOT, Trace, final_stats, read_line

STANDIN = os.path.join(ROOT, "tests", "apps", "standin")
POLICY = os.path.join(ROOT, "policies", "netra.yaml")
DELIVERY = ("delivery_failed", "abnormal_close", "after_close")
CLOSE_REASON = "Internal error: agent failed"


def run_standin(procs, tmp_path, users, runs, seed, faults=()):
    go = tmp_path / "go"
    argv = [PY, os.path.join(STANDIN, "run.py"), "--port", "0", "--users", str(users),
            "--runs", str(runs), "--seed", str(seed), "--go-file", str(go), "--timeout", "120"]
    for f in faults:
        argv += ["--fault", f]
    runner = procs.start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    line = read_line(runner, 30, "stand-in")
    assert line.startswith("SERVER pid="), line
    pid = int(line.split()[1].split("=")[1])
    trace = Trace(procs, str(tmp_path), ["-p", pid, "-c", POLICY, "-o", "json",
                                         "--show-identities", "--stack"])
    go.touch()
    out, _ = runner.communicate(timeout=180)
    out = out.decode(errors="replace")
    assert runner.returncode == 0, out
    assert trace.stop() == 0, trace.stderr()
    return out, trace.records()


def findings(rec):
    """The delivery findings of a frame, lost or conn_close record (stats count them apart)."""
    if rec.get("type") not in ("frame", "lost", "conn_close"):
        return []
    return [v["rule"] for v in rec.get("violations") or [] if v["rule"] in DELIVERY]


def test_delivery_faults(procs, tmp_path):
    out, recs = run_standin(procs, tmp_path, users=3, runs=1, seed=7,
                            faults=("epipe", "raise", "after_close"))
    fault_user = dict(re.findall(r"client: fault (\w+) user=(\S+)", out))
    assert set(fault_user) == {"epipe", "raise", "after_close"}, out
    m = re.search(r"stream user=(\S+) run=\S+ sent=(\d+) failed=(\d+) error=(\w+)", out)
    assert m and m.group(1) == fault_user["epipe"], out
    failed = int(m.group(3))
    stats = final_stats(recs)
    assert stats["drops_total"] == 0, stats["drops"]

    def user(r):
        return (r.get("conn") or {}).get("user")

    flagged = [r for r in recs if findings(r)]
    for r in flagged:
        print(r["type"], r.get("opcode"), r.get("error"), r.get("close_code"), user(r),
              (r.get("message") or {}).get("type"), r.get("origin") or r.get("unattributed"),
              findings(r))

    # epipe: every failed write is a lost frame of the agent that wrote it, for its user.
    lost = [r for r in recs if r["type"] == "lost"]
    assert failed >= 1
    assert len(lost) == failed, out
    for r in lost:
        assert findings(r) == ["delivery_failed"]
        assert r["error"] in ("EPIPE", "ECONNRESET")
        assert r["origin"]["function"] == "ProgressStreamer.stream_steps"
        assert r["origin"]["file"].endswith("netra_backend/app/agents/progress_stream.py")
        assert r["origin"]["line"] > 0
        assert user(r) == fault_user["epipe"]
        assert r["message"] == {"msg_type": "agent_thinking", "type": "agent_thinking",
                                "user": fault_user["epipe"]}
    closes = [r for r in recs if r["type"] == "conn_close" and findings(r)]
    assert [user(r) for r in closes] == [fault_user["epipe"]]
    assert closes[0]["close_code"] is None and closes[0]["lost_frames"] == failed
    # Closed by the agent's own socket (its finally), which close(2) walked.
    assert closes[0]["closed_by"]["function"] == "ProgressStreamer.stream_steps"
    assert "ProgressStreamer.stream_steps" in closes[0]["violations"][0]["detail"]

    # raise: the close frame with 1011.
    abnormal = [r for r in recs if r["type"] == "frame" and "abnormal_close" in findings(r)]
    assert len(abnormal) == 1
    c = abnormal[0]
    assert (c["opcode"], c["close_code"], c["close_reason_len"]) == ("close", 1011,
                                                                     len(CLOSE_REASON))
    assert user(c) == fault_user["raise"]

    # after_close: agent_completed after the close frame (1000, not abnormal).
    late = [r for r in recs if "after_close" in findings(r)]
    assert len(late) == 1
    assert late[0]["message"] == {"msg_type": "agent_completed", "type": "agent_completed",
                                  "user": fault_user["after_close"]}
    assert late[0]["origin"]["function"] == "ProgressStreamer.finish_after_close"
    assert user(late[0]) == fault_user["after_close"]
    before = [r for r in recs if r["type"] == "frame" and r["opcode"] == "close"
              and user(r) == fault_user["after_close"]]
    assert [r["close_code"] for r in before] == [1000]

    # Nothing else: the users without a fault have no delivery finding.
    assert {user(r) for r in flagged} == set(fault_user.values())
    assert len(flagged) == failed + 1 + 1 + 1
    v = stats["violations"]
    assert (v["delivery_failed"], v["abnormal_close"], v["after_close"]) == (failed, 2, 1)
    assert stats["delivery"]["lost_frames"] == failed

    # The close frame is written in a task websockets creates for it (wait_for): its function
    # is named through the task's creator (docs/causal.md).
    assert c["origin"]["function"] == "WebSocketSSOTRouter._close_on_agent_error"
    assert c["origin"]["file"].endswith("netra_backend/app/routes/websocket_ssot.py")
    assert "WebSocketSSOTRouter._close_on_agent_error" in c["violations"][0]["detail"]


def test_clean_runs_have_no_delivery_findings(procs, tmp_path):
    out, recs = run_standin(procs, tmp_path, users=20, runs=10, seed=11)
    runs = sum(int(n) for n in re.findall(r"client: \S+ frames=\d+ runs=(\d+)/10", out))
    assert runs == 200, out
    stats = final_stats(recs)
    flagged = [r for r in recs if findings(r)]
    closes = [r for r in recs if r["type"] == "conn_close"]
    print(f"clean: {runs} runs, {len(closes)} connections closed, "
          f"{sum(1 for r in recs if r['type'] == 'frame')} frames, {len(flagged)} delivery "
          f"findings, unsent writes {stats['delivery']['unsent_writes']}")
    assert stats["drops_total"] == 0, stats["drops"]
    assert len(closes) == 20
    assert flagged == []
    assert not [r for r in recs if r["type"] == "lost"]
    assert all(r["close_code"] == 1000 for r in closes)
    v = stats["violations"]
    assert (v["delivery_failed"], v["abnormal_close"], v["after_close"]) == (0, 0, 0)

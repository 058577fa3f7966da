# SPDX-License-Identifier: GPL-2.0
"""The two findings on the stand-in of the reference service (tests/apps/standin): FastAPI,
uvicorn, uvloop, permessage-deflate, the JWT in Sec-WebSocket-Protocol, a bridge, planted
bypasses and a switchable cross-user leak.  wsaudit traces it with policies/netra.yaml and
the service's own ground-truth log scores the findings: every planted bypass reported with
its originating function and line, every leaked frame reported as isolation_breach naming
both users, no bridge frame flagged, no breach with the leak off.
"""

import json
import os
import subprocess

import pytest

from harness import PY, ROOT, Trace, data_drops, final_stats, read_line

STANDIN = os.path.join(ROOT, "tests", "apps", "standin")
POLICY = os.path.join(ROOT, "policies", "netra.yaml")


def run_standin(procs, tmp_path, leak, users, runs, seed, extra=()):
    """extra: more arguments of run.py (--ssl-keyfile K --ssl-certfile C: wss://)."""
    truth = tmp_path / "truth.jsonl"
    go = tmp_path / "go"
    argv = [PY, os.path.join(STANDIN, "run.py"), "--port", "0", "--users", str(users),
            "--runs", str(runs), "--seed", str(seed), "--truth", str(truth),
            "--go-file", str(go), "--timeout", "60"]
    if leak:
        argv.append("--leak")
    argv += list(extra)
    runner = procs.start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    line = read_line(runner, 30, "stand-in")
    assert line.startswith("SERVER pid="), line
    pid = int(line.split()[1].split("=")[1])
    trace = Trace(procs, str(tmp_path), ["-p", pid, "-c", POLICY, "-o", "json",
                                         "--show-identities", "--stack"])
    go.touch()
    out, _ = runner.communicate(timeout=90)
    assert runner.returncode == 0, out.decode(errors="replace")
    assert trace.stop() == 0, trace.stderr()
    recs = trace.records()
    trace_path = tmp_path / "trace.jsonl"
    with open(trace_path, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    return truth, trace_path, recs


def score(truth, trace_path):
    p = subprocess.run([PY, os.path.join(STANDIN, "score.py"), "--truth", str(truth),
                        "--trace", str(trace_path), "--verbose"],
                       capture_output=True, text=True, timeout=60)
    print(p.stdout + p.stderr)
    return p.returncode


@pytest.mark.parametrize("leak,seed", [(False, 3), (True, 4)], ids=["leak-off", "leak-on"])
def test_findings_on_standin(procs, tmp_path, leak, seed):
    truth, trace_path, recs = run_standin(procs, tmp_path, leak, users=5, runs=2, seed=seed)
    stats = final_stats(recs)
    frames = [r for r in recs if r.get("type") == "frame"]
    breaches = sum(1 for f in frames for v in f["violations"] if v["rule"] == "isolation_breach")
    bypasses = sum(1 for f in frames for v in f["violations"] if v["rule"] == "bridge_bypass")
    print(f"standin leak={'on' if leak else 'off'}: {len(frames)} frames, {bypasses} bypass, "
          f"{breaches} breach findings; drops {stats['drops_total']}")
    assert not data_drops(stats), stats["drops"]
    if not leak:
        assert breaches == 0
    assert score(truth, trace_path) == 0

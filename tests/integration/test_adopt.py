# SPDX-License-Identifier: GPL-2.0
"""Connections open before the trace (adopted): their compression history is recovered from
the server's zlib compressor (docs/adoption.md).

A server (FastAPI on uvicorn + uvloop, websockets, aiohttp: tests/apps/ws_adopt.py) with
permessage-deflate and context takeover, the JWT in the subprotocol, 20 connections sending
JSON messages every 20 ms, one in ten on half of them a planted breach naming another user;
the trace starts once every connection has exchanged messages.  The server's log of every
message sent is the truth each decoded message is checked against: a message decoded with
the wrong history would name the wrong user, which is worse than not decoding it.
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest

from harness import APPS, PY, ROOT, WSAUDIT, Trace, final_stats, peer_port, read_line

ADOPT = os.path.join(APPS, "ws_adopt.py")
EXE_NAME = "wsx-adopt-python3"
CONNS = 20
# Servers whose connection objects give back the upgrade request (docs/adoption.md).
USER_FROM_MEMORY = {"fastapi", "websockets", "aiohttp"}
TRACE_SECONDS = 20


def truth_of(path):
    truth = {}
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            truth[(t["port"], t["type"])] = t
    return truth


def start_agent(procs, tmp, exe):
    """An agent that follows the server's executable, started after its connections opened."""
    with open(os.path.join(ROOT, "policies", "default.yaml")) as f:
        text = re.sub(r'(?m)^  exe: .*$', f'  exe: ["*/{EXE_NAME}"]', f.read(), count=1)
    policy = os.path.join(tmp, "policy.yaml")
    with open(policy, "w") as f:
        f.write(text)
    sock, err_path = os.path.join(tmp, "agent.sock"), os.path.join(tmp, "agent.err")
    agent = procs.start([WSAUDIT, "agent", "-c", policy, "--metrics-addr", "none", "--log",
                         os.path.join(tmp, "violations.jsonl"), "--socket", sock],
                        stdout=subprocess.DEVNULL, stderr=open(err_path, "w"), cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and agent.poll() is None:
        if "agent following" in open(err_path).read():
            break
        time.sleep(0.1)
    assert agent.poll() is None and os.path.exists(sock), open(err_path).read()
    return sock


@pytest.mark.parametrize("framework,through", [("fastapi", "standalone"),
                                               ("websockets", "standalone"),
                                               ("aiohttp", "standalone"),
                                               ("fastapi", "agent"),
                                               ("websockets", "agent"),
                                               ("aiohttp", "agent")])
def test_adopted_connections_decode_from_the_servers_history(procs, tmp_path, framework, through):
    truth_path, go, stop = tmp_path / "truth.jsonl", tmp_path / "go", tmp_path / "stop"
    exe, env = PY, None
    if through == "agent":
        exe = os.path.join(str(tmp_path), EXE_NAME)
        shutil.copy(os.path.realpath(PY), exe)
        env = dict(os.environ, PYTHONHOME="/usr")
    server = procs.start([exe, ADOPT, "server", "--framework", framework, "--truth",
                          str(truth_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=env)
    line = read_line(server, 30, framework)
    assert line.startswith("READY"), line
    pid, port = (int(kv.split("=")[1]) for kv in line.split()[1:])
    procs.start([PY, ADOPT, "clients", "--port", str(port), "--conns", str(CONNS),
                 "--go-file", str(go), "--stop-file", str(stop)])
    deadline = time.monotonic() + 60
    while not go.exists():
        assert time.monotonic() < deadline, "clients did not open their connections"
        time.sleep(0.1)
    if through == "agent":
        # The agent adopts the connections; the trace takes its records from it.
        how = ["--agent-socket", start_agent(procs, str(tmp_path), exe)]
    else:
        how = ["--standalone"]
    trace = Trace(procs, str(tmp_path), [*how, "-p", pid, "-o", "json", "--show-identities",
                                         "-d", TRACE_SECONDS])
    assert trace.wait(TRACE_SECONDS + 120) == 0, trace.stderr()
    stop.touch()
    recs = trace.records()
    truth = truth_of(truth_path)

    conn_users = {}
    for t in truth.values():
        conn_users[t["port"]] = t["conn_user"]
    opens = [r for r in recs if r.get("type") == "conn_open"]
    assert len(opens) == CONNS, f"{len(opens)} connections opened"
    users_known = 0
    for r in opens:
        # Nothing of the handshake was seen: said, not silently passed.
        assert r["conn"]["adopted"] is True, r
        assert r["conn"]["history_unknown"] is True, r
        if framework in USER_FROM_MEMORY:
            # The request read back from the server's connection object names the user the
            # server took from the token: the one its messages are judged against.
            assert r["conn"]["user_unknown"] is False, r
            assert r["conn"]["identity_from"] == "process_memory", r
            assert r["conn"]["user"] == conn_users[peer_port(r["conn"])], r
            users_known += 1
        else:
            # Not recovered: said, with the reason.
            assert r["conn"]["user_unknown"] is True, r
            assert r["conn"]["user"] == {"unknown": "adopted_scope_not_found"}, r

    frames = [r for r in recs if r.get("type") == "frame" and r["opcode"] == "text"]
    by_conn, wrong, decoded, planted, flagged, false_flags = {}, [], 0, 0, 0, []
    for f in frames:
        by_conn.setdefault(f["conn"]["id"], []).append(f)
        assert f["conn"]["adopted"] is True, f
        m = f.get("message")
        if f.get("message_status", "ok") != "ok" or not m or not m.get("type"):
            assert f["conn"]["history_unknown"] is True, f  # said on the frame itself
            continue
        decoded += 1
        t = truth.get((peer_port(f["conn"]), m["type"]))
        if not t or t["user"] != m.get("user"):
            wrong.append((f["conn"]["peer"], m, t))
            continue
        breach = any(v["rule"] == "isolation_breach" for v in f.get("violations", []))
        planted += t["breach"]
        flagged += t["breach"] and breach
        if breach and not t["breach"]:
            false_flags.append((f["conn"]["peer"], m["type"]))
    # A message decoded with another connection's history names the wrong user.
    assert not wrong, f"{len(wrong)} messages decoded to what was not sent: {wrong[:3]}"

    stats = final_stats(recs)
    adoption = stats["adoption"]
    ratio = decoded / len(frames)
    print(f"\n[adopt {framework} {through}] {len(frames)} text frames on {len(by_conn)} adopted "
          f"connections, {decoded} decoded ({ratio:.2%}); adoption={json.dumps(adoption)}; "
          f"drops_total={stats['drops_total']}")
    late = 0
    for cid, fs in by_conn.items():
        first = next((i for i, f in enumerate(fs) if not f["conn"]["history_unknown"]), None)
        assert first is not None, f"connection {cid}: history never recovered ({len(fs)} frames)"
        # From the recovery on, every message decodes: the context is never lost again.
        after = fs[first:]
        assert all(f.get("message_status", "ok") == "ok" and f.get("message") for f in after), \
            f"connection {cid}: a message after the recovery did not decode"
        late += first
    print(f"[adopt {framework} {through}] {late} frames before recovery "
          f"(mean {late / len(by_conn):.1f} per connection); connection users known: "
          f"{users_known} of {CONNS}; planted breaches decoded: {planted}, flagged "
          f"isolation_breach: {flagged}")

    assert adoption["conns"] == CONNS and adoption["history_recovered"] == CONNS, adoption
    # The acceptance: at least 99% of the frames written after the start decoded.
    assert ratio >= 0.99, f"{ratio:.2%} decoded"
    assert adoption["history_unknown"] == 0, adoption
    if framework in USER_FROM_MEMORY:
        assert adoption["user_unknown"] == 0 and adoption["user_recovered"] == CONNS, adoption
        assert adoption["user_memory"]["recovered"] == CONNS, adoption
        # Every planted breach that decoded is found, and nothing else is.
        assert planted > 0 and flagged == planted, (planted, flagged)
        assert not false_flags, false_flags[:3]
    else:
        assert adoption["user_unknown"] == CONNS, adoption
        assert adoption["user_memory"]["not_found"] == CONNS, adoption
    assert stats["messages"]["inflate_error"] == 0, stats["messages"]
    assert stats["messages"]["undecodable_gap"] == len(frames) - decoded, stats["messages"]

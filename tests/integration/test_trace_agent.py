# SPDX-License-Identifier: GPL-2.0
"""`wsaudit trace` through the node's agent (issue 11).

The agent follows a FastAPI + uvicorn + uvloop service (permessage-deflate with context
takeover, a JWT in the subprotocol) from its start; 20 connections open and exchange
messages; then `trace -p SERVER` starts and takes its records from the agent's socket: it
loads nothing, and since the agent decoded those connections from their handshake, every
later frame comes with the connection's user, the message's user and type, and the planted
isolation breaches are found. A client of the socket that never reads loses records whole,
is told how many (a `dropped` record), and never holds up the agent or the other trace.
Without an agent, or with --standalone, the trace loads its own programs and says so.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import time

import jsonschema

from harness import APPS, PY, ROOT, WSAUDIT, Trace, free_port, read_line, trace_frames

EXE_NAME = "wsx-held-python3"


def start_agent(procs, tmp, sock):
    exe = os.path.join(tmp, EXE_NAME)
    shutil.copy(os.path.realpath(PY), exe)
    with open(os.path.join(ROOT, "policies", "default.yaml")) as f:
        text = re.sub(r'(?m)^  exe: .*$', f'  exe: ["*/{EXE_NAME}"]', f.read(), count=1)
    policy = os.path.join(tmp, "policy.yaml")
    with open(policy, "w") as f:
        f.write(text)
    err_path = os.path.join(tmp, "agent.err")
    agent = procs.start([WSAUDIT, "agent", "-c", policy, "--metrics-addr", "none", "--log",
                         os.path.join(tmp, "violations.jsonl"), "--socket", sock, "-v"],
                        stdout=subprocess.DEVNULL, stderr=open(err_path, "w"), cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and agent.poll() is None:
        if "agent following" in open(err_path).read():
            break
        time.sleep(0.1)
    assert agent.poll() is None and os.path.exists(sock), open(err_path).read()
    assert oct(os.stat(sock).st_mode & 0o777) == "0o600"
    return agent, exe, err_path


def start_service(procs, exe, port):
    env = dict(os.environ, PYTHONHOME="/usr")
    srv = procs.start([exe, os.path.join(APPS, "ws_held.py"), "--port", str(port)],
                      stdout=subprocess.PIPE, env=env)
    line = read_line(srv, 30, "ws_held server")
    assert line.startswith("READY pid="), line
    return srv


def test_trace_through_agent_sees_open_connections(procs, tmp_path):
    tmp = str(tmp_path)
    sock = os.path.join(tmp, "run", "agent.sock")
    agent, exe, agent_err = start_agent(procs, tmp, sock)
    port = free_port()
    srv = start_service(procs, exe, port)
    cli = procs.start([PY, os.path.join(APPS, "ws_held_client.py"), "--port", str(port),
                       "-n", "20", "--before", "5", "--after", "20", "--leak", "2"],
                      stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    assert read_line(cli, 60, "held client") == "OPEN"

    # A socket client that asks for everything and never reads.
    slow = socket.socket(socket.AF_UNIX)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(sock)
    slow.sendall(json.dumps({"v": 1, "pids": [srv.pid], "format": "json", "stack": True,
                             "payload": True}).encode() + b"\n")

    trace = Trace(procs, tmp, ["-p", srv.pid, "-o", "json", "--agent-socket", sock])
    banner = trace.stderr()
    cli.stdin.write(b"go\n")
    cli.stdin.flush()
    report = json.loads(read_line(cli, 120, "held client report"))
    # More traffic while the slow client still does not read: its queue overflows.
    cli2 = subprocess.run([PY, os.path.join(APPS, "ws_held_client.py"), "--port", str(port),
                           "-n", "10", "--before", "400", "--after", "1", "--leak", "0"],
                          input=b"\n", capture_output=True, timeout=180)
    assert cli2.returncode == 0, cli2.stderr
    assert trace.stop() == 0, trace.stderr()
    recs = trace.records()
    print(f"\n[agent trace] {banner}")

    assert "through the agent" in banner and "nothing loaded" in banner, banner
    assert "20 WebSocket connection(s) already open" in banner, banner
    assert recs[0]["type"] == "selfcheck" and recs[0]["ok"], recs[0]
    opened = [r for r in recs if r.get("type") == "conn_open"]
    assert len(opened) >= 20
    by_port = trace_frames(recs, srv.pid, port)
    texts_total = breaches = 0
    type_shown = {}
    for conn in report:
        frames = by_port.get(conn["port"], [])
        texts = [r for r in frames if r["opcode"] == "text"]
        want = conn["messages"]
        # Every message sent after the trace started, in order, decoded, with its user and
        # type (shown as keyed hashes: one per type, the same on every connection).
        got = [(r.get("message") or {}).get("type") for r in texts]
        assert len(got) == len(want) and all(got), (conn["port"], [r.get("message") for r in texts[:3]])
        for g, (t, _) in zip(got, want):
            assert type_shown.setdefault(t, g) == g, (t, g, type_shown)
        assert all(r["conn"]["user"] for r in texts), texts[0]["conn"]
        assert all((r.get("message") or {}).get("user") for r in texts)
        assert [r["opcode"] for r in frames][-1] == "close"
        texts_total += len(texts)
        breaches += sum(any(v["rule"] == "isolation_breach" for v in r["violations"])
                        for r in texts)
    assert texts_total == 20 * 20 + 2
    assert len(set(type_shown.values())) == 2, type_shown
    assert breaches == 2, breaches
    # The slow reader lost records, and was told how many; the agent kept serving.
    slow.settimeout(10)
    data = b""
    slow.shutdown(socket.SHUT_WR)
    while True:
        chunk = slow.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    lines = []
    for i, x in enumerate(data.splitlines()):
        try:
            lines.append(json.loads(x))
        except ValueError:
            raise AssertionError(f"slow reader: record {i} is not JSON; agent: "
                                 f"{open(agent_err).read()[-2000:]}")
    dropped = [r for r in lines if r.get("type") == "dropped"]
    print(f"[agent trace] {texts_total} text frames, {breaches} breaches; slow reader: "
          f"{len(lines)} records read, dropped notices {dropped}")
    assert lines[0]["type"] == "agent_hello" and lines[0]["ok"], lines[0]
    assert dropped and sum(r["records"] for r in dropped) > 0, lines[-3:]
    # The record the trace passes on to its own output: its contract (docs/schemas/).
    with open(os.path.join(ROOT, "docs", "schemas", "dropped.schema.json")) as f:
        validator = jsonschema.Draft202012Validator(json.load(f))
    for r in dropped:
        errors = list(validator.iter_errors(r))
        assert not errors, (r, errors[0].message)
    assert lines[-1]["type"] == "stats", lines[-1]
    assert agent.poll() is None


def test_trace_standalone_when_no_agent_or_forced(procs, tmp_path):
    idle = procs.start([PY, "-c", "import time; time.sleep(60)"])
    missing = os.path.join(str(tmp_path), "nothing.sock")
    t = Trace(procs, str(tmp_path), ["-p", idle.pid, "-d", "0.3", "--agent-socket", missing])
    assert t.wait() == 0
    assert "standalone, no agent on this node" in t.stderr(), t.stderr()
    sock = os.path.join(str(tmp_path), "run", "agent.sock")
    start_agent(procs, str(tmp_path), sock)
    t = Trace(procs, str(tmp_path), ["-p", idle.pid, "-d", "0.3", "--agent-socket", sock,
                                     "--standalone"])
    assert t.wait() == 0
    assert "standalone, --standalone" in t.stderr(), t.stderr()
    print(f"\n[standalone] {t.stderr()}")

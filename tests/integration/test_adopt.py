# SPDX-License-Identifier: GPL-2.0
"""Connections open before the trace (adopted): their compression history is recovered from
the server's zlib compressor, their user from the server's connection objects (the ASGI scope,
websockets' protocol, aiohttp's Request) in its memory (docs/adoption.md).

A server (FastAPI on uvicorn + uvloop, websockets, aiohttp: tests/apps/ws_adopt.py) with
permessage-deflate and context takeover, the JWT in the subprotocol, 20 connections sending
JSON messages every 20 ms, one in ten on half of them a planted breach naming another user;
the trace starts once every connection has exchanged messages.  The server's log of every
message sent is the truth each decoded message is checked against: a message decoded with
the wrong history would name the wrong user, which is worse than not decoding it.
"""

import glob
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
# Servers whose connection objects give back the upgrade request (docs/adoption.md): the
# others' connection users are said unknown, with the reason.
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


# Other interpreters: pyenv's builds with Debian's websockets 10.4 and aiohttp 3.8.4 sources
# (their C extensions are built for 3.11: the pure-Python fallbacks run, aiohttp's parsed
# request a named tuple), and the Debian roots of tests/pythons (bullseye: websockets 8.1,
# trixie: websockets 15's asyncio server, sid: 3.14).
PYENV = "/root/.pyenv/versions"
DIST_PACKAGES = "/usr/lib/python3/dist-packages"
RUN_IN_ROOT = os.path.join(ROOT, "tests", "pythons", "run-in-root.sh")
ROOTS = os.environ.get("WSAUDIT_ROOTS", "/var/cache/wsaudit/roots")


def pyenv_python(minor):
    paths = sorted(glob.glob(os.path.join(PYENV, minor + ".*", "bin", "python" + minor)))
    return paths[-1] if paths else None


def start_server(procs, tmp_path, framework, through, interp):
    """The server under interp ("debian-3.11", "pyenv-3.X", "root-SUITE"): (pid, port)."""
    truth_path = tmp_path / "truth.jsonl"
    exe, env = PY, None
    if interp.startswith("pyenv-"):
        exe = pyenv_python(interp[len("pyenv-"):])
        if not exe:
            pytest.skip("no pyenv build of %s under %s" % (interp, PYENV))
        env = dict(os.environ, PYTHONPATH=DIST_PACKAGES)
    if through == "agent":
        exe = os.path.join(str(tmp_path), EXE_NAME)
        shutil.copy(os.path.realpath(PY), exe)
        env = dict(os.environ, PYTHONHOME="/usr")
    argv = [exe, ADOPT, "server", "--framework", framework, "--truth", str(truth_path)]
    if interp.startswith("root-"):
        suite = interp[len("root-"):]
        if not os.path.exists(os.path.join(ROOTS, suite, ".wsaudit-root")):
            pytest.skip("no %s root under %s (tests/pythons/provision.sh)" % (suite, ROOTS))
        # the repository is /wsaudit inside; the spawned PID is the interpreter's
        argv = [RUN_IN_ROOT, "--bind", "%s:/adopt" % tmp_path, suite, "/usr/bin/python3",
                "/wsaudit/tests/apps/ws_adopt.py", "server", "--framework", framework,
                "--truth", "/adopt/truth.jsonl"]
    server = procs.start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    line = read_line(server, 30, framework)
    assert line.startswith("READY"), line
    return (int(kv.split("=")[1]) for kv in line.split()[1:])


@pytest.mark.parametrize("framework,through", [("fastapi", "standalone"),
                                               ("websockets", "standalone"),
                                               ("aiohttp", "standalone"),
                                               ("fastapi", "agent"),
                                               ("websockets", "agent"),
                                               ("aiohttp", "agent")])
def test_adopted_connections_decode_from_the_servers_history(procs, tmp_path, framework, through):
    adopt_run(procs, tmp_path, framework, through, "debian-3.11")


# One row per instance-attribute layout the other interpreters have, and a cause the user of
# an adopted connection is not recovered, made to happen.
@pytest.mark.parametrize("interp,framework,users", [
    ("root-bullseye", "websockets", "recovered"),  # 3.9: instance dict; websockets 8.1
    ("pyenv-3.10", "aiohttp", "recovered"),  # 3.10: instance dict; aiohttp's named tuple
    ("pyenv-3.12", "websockets", "recovered"),  # 3.12: tagged values pointer
    ("pyenv-3.12", "aiohttp", "recovered"),
    ("root-trixie", "websockets-asyncio", "recovered"),  # 3.13: inline values; ServerConnection
    ("pyenv-3.13", "aiohttp", "recovered"),
    ("root-sid", "websockets", "recovered"),  # 3.14: inline values, ob_flags in the count
    # uvloop's transport keeps no _extra: the peer of websockets' protocol is not in memory
    ("debian-3.11", "websockets-uvloop", "adopted_scope_not_found"),
])
def test_adopted_users_on_other_interpreters(procs, tmp_path, interp, framework, users):
    adopt_run(procs, tmp_path, framework, "standalone", interp, users)


def adopt_run(procs, tmp_path, framework, through, interp, users=None):
    """users: "recovered", or the reason every connection's user is said unknown with."""
    if users is None:
        users = "recovered" if framework in USER_FROM_MEMORY else "adopted_scope_not_found"
    truth_path, go, stop = tmp_path / "truth.jsonl", tmp_path / "go", tmp_path / "stop"
    pid, port = start_server(procs, tmp_path, framework, through, interp)
    procs.start([PY, ADOPT, "clients", "--port", str(port), "--conns", str(CONNS),
                 "--go-file", str(go), "--stop-file", str(stop)])
    deadline = time.monotonic() + 60
    while not go.exists():
        assert time.monotonic() < deadline, "clients did not open their connections"
        time.sleep(0.1)
    if through == "agent":
        # The agent adopts the connections; the trace takes its records from it.
        how = ["--agent-socket", start_agent(procs, str(tmp_path), os.path.join(str(tmp_path),
                                                                                EXE_NAME))]
    else:
        how = ["--standalone"]
    trace = Trace(procs, str(tmp_path), [*how, "-p", pid, "-o", "json", "--show-identities",
                                         "-d", TRACE_SECONDS])
    assert trace.wait(TRACE_SECONDS + 120) == 0, trace.stderr()
    stop.touch()
    recs = trace.records()
    truth = truth_of(truth_path)
    framework = "%s %s" % (framework, interp) if interp != "debian-3.11" else framework

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
        if users == "recovered":
            # The request read back from the server's connection object names the user the
            # server took from the token: the one its messages are judged against.
            assert r["conn"]["user_unknown"] is False, r
            assert r["conn"]["identity_from"] == "process_memory", r
            assert r["conn"]["user"] == conn_users[peer_port(r["conn"])], r
            users_known += 1
        else:
            # Not recovered: said, with the reason.
            assert r["conn"]["user_unknown"] is True, r
            assert r["conn"]["user"] == {"unknown": users}, r

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
    if users == "recovered":
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

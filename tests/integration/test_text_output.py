# SPDX-License-Identifier: GPL-2.0
"""trace's text output for a terminal, on real traffic: a header, HH:MM:SS.mmm, a user column
that is always the keyed hash, files relative to the service's code root, every line within
120 columns (what a terminal shows without wrapping); --wide keeps every field whole.

Two services are traced at once: the websockets test server (every opcode, long stacks with
--stack, bridge_bypass findings) and a service whose clients present a JWT (a user per
connection, typed messages).
"""

import base64
import json
import os
import re
import subprocess

from harness import APPS, PY, SERVERS, WSAUDIT, Trace, free_port, read_line, run_clients
from test_hostile import jwt, ws_read_all

USER = "user4711@example.com"
WIDTH = 120


def start(procs, argv):
    p = procs.start([PY, *argv], stdout=subprocess.PIPE)
    assert read_line(p, 60, argv[0]).startswith("READY pid=")
    return p


def traffic(procs, tmp):
    key = os.path.join(tmp, "identity.key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    values = os.path.join(tmp, "types")
    with open(values, "w") as f:
        f.write("\n".join(["hello", "update"] * 3) + "\n")
    ws_port, typed_port = free_port(), free_port()
    ws = start(procs, [SERVERS["websockets"], "--port", str(ws_port), "--log",
                       os.path.join(tmp, "ws.log")])
    typed = start(procs, [os.path.join(APPS, "ws_hostile_server.py"), "--port", str(typed_port),
                          "--attack", "values", "--values", values, "--type-field"])
    return key, ws, ws_port, typed, typed_port


def run(procs, tmp, extra):
    key, ws, ws_port, typed, typed_port = traffic(procs, tmp)
    trace = Trace(procs, tmp, ["-p", ws.pid, "-p", typed.pid, "--identity-key", key, *extra])
    run_clients(procs, ws_port, n=1)
    ws_read_all(typed_port, headers=[f"Authorization: Bearer {jwt(USER)}"])
    assert trace.stop() == 0, trace.stderr()
    display = subprocess.run([WSAUDIT, "hash-user", "--identity-key", key, USER],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    with open(trace.out_path, encoding="utf-8") as f:
        return f.read().splitlines(), display


def test_text_fits_a_terminal(procs, tmp_path):
    lines, display = run(procs, str(tmp_path), ["--stack"])
    widths = [len(l) for l in lines]
    print(f"\n[text] {len(lines)} lines, widest {max(widths)} columns; first lines:\n" +
          "\n".join(lines[:6]))
    over = [l for l in lines if len(l) > WIDTH]
    assert not over, f"{len(over)} lines over {WIDTH} columns, first: {over[0]!r}"
    header = [i for i, l in enumerate(lines) if l.startswith("TIME(UTC)")]
    assert len(header) == 1, header
    assert lines[header[0]].split()[:6] == ["TIME(UTC)", "PID", "USER", "OP", "LEN", "PEER"]
    frames = [l for l in lines if re.match(r"\d\d:\d\d:\d\d\.\d{3} \d+ +\S+ +(text|bin|cont|close|ping|pong)\+? ", l)]
    assert len(frames) > 20, lines[:20]
    # The user column: the keyed hash of the JWT's subject, never the id itself.
    users = {l.split()[2] for l in frames}
    assert display in users and "-" in users, users
    assert all(USER not in l for l in lines)
    assert all(re.fullmatch(r"u#[0-9a-f]{12}|-|unknown|ambiguous", u) for u in users), users
    # Files relative to each service's code root, said once per process.
    roots = [l for l in lines if " code root " in l]
    assert any(l.split(" code root ")[1].startswith(APPS + "/") for l in roots), roots
    assert any(" ws_mix.py:" in l for l in frames)
    assert not any(APPS in l for l in frames)
    # Every record's time is HH:MM:SS.mmm.
    assert all(not re.match(r"\d{4}-\d\d-\d\dT", l) for l in lines)


def test_text_wide_keeps_everything(procs, tmp_path):
    lines, display = run(procs, str(tmp_path), ["--wide"])
    frames = [l for l in lines if " len=" in l]
    print(f"\n[wide] {len(lines)} lines, widest {max(len(l) for l in lines)} columns; "
          f"e.g.\n{frames[0]}")
    assert frames
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", l) for l in frames)
    assert any(os.path.join(APPS, "ws_mix.py") in l for l in frames)
    assert any(f"user={display}" in l for l in frames)
    assert all(USER not in l for l in lines)
    assert max(len(l) for l in lines) > WIDTH

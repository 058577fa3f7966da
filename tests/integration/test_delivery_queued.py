# SPDX-License-Identifier: GPL-2.0
"""Writes still queued in a transport when the connection ends (docs/delivery.md, "Writes
still queued at close"), made for real with tests/apps/ws_stalled.py under uvloop:

  stall  the client stops reading after the handshake; the server's produce() sends 200
         frames (their sends do not wait: the transport's flow control is set past them),
         then aborts the connection.  The first frames leave, one write fails part-way
         (lost records), and every other frame is still in uvloop's queue at the abort:
         each is a `queued` record with delivery_failed, produce() as origin and its length.
         Every frame is accounted for exactly once: sent + lost + queued = 200.
  clean  the client reads everything and the server closes: no queued record, while the
         transport was linked to its connection (the check ran).

A queued write whose producer the trace did not see leave is never named after another
function: every queued record names produce() or says why not.

Under asyncio's selector loop the same stall is not followed (its transport buffers in pure
Python, with nothing to hook): the connection's close says `buffered_unseen`.
"""

import base64
import json
import os
import socket
import subprocess

import pytest

from harness import PY, ROOT, Trace, final_stats, read_line

APP = os.path.join(ROOT, "tests", "apps", "ws_stalled.py")
FRAMES = 200
SIZE = 1000
# A server frame of SIZE payload bytes: 2 header bytes and a 16-bit length.
WIRE = SIZE + 4


def upgrade(port, rcvbuf):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(1)
        assert b, "the server closed before its handshake response"
        head += b
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def run(procs, tmp_path, mode, loop="uvloop"):
    server = procs.start([PY, APP, "--port", "0", "--loop", loop, "--mode", mode,
                          "--frames", str(FRAMES), "--size", str(SIZE)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    line = read_line(server, 30, "ws_stalled")
    assert line.startswith("READY"), line
    port = int(line.split("port=")[1])
    trace = Trace(procs, str(tmp_path), ["-p", server.pid, "-o", "json", "--stack"])
    s = upgrade(port, 4096)
    assert read_line(server, 60, "ws_stalled").startswith("SENT"), "no SENT line"
    if mode == "clean":
        n = 0
        while True:
            d = s.recv(65536)
            if not d:
                break
            n += len(d)
        assert n >= FRAMES * WIRE
    s.close()
    assert trace.stop() == 0, trace.stderr()
    recs = trace.records()
    stats = final_stats(recs)
    assert stats["drops_total"] == 0, stats["drops"]
    return recs, stats


def origin_name(r):
    return (r.get("origin") or {}).get("function")


def test_queued_at_close_uvloop(procs, tmp_path):
    recs, stats = run(procs, tmp_path, "stall")
    sent = [r for r in recs if r["type"] == "frame" and r["opcode"] == "text"]
    lost = [r for r in recs if r["type"] == "lost"]
    queued = [r for r in recs if r["type"] == "queued"]
    closes = [r for r in recs if r["type"] == "conn_close"]
    print(f"\n[queued] sent {len(sent)} lost {len(lost)} queued {len(queued)}; "
          f"delivery {stats['delivery']}")
    assert len(closes) == 1, closes
    # Most of the frames never left: the client read nothing.
    assert queued, "no queued record"
    assert len(sent) + len(lost) + len(queued) == FRAMES
    # Each queued write is one frame of produce(), with its length.
    assert {r["bytes"] for r in queued} == {WIRE}
    assert {origin_name(r) for r in queued} == {"produce"}
    assert all(r["origin"]["file"] == APP for r in queued)
    for r in queued:
        assert r["error"] == "queued_at_close"
        assert [v["rule"] for v in r["violations"]] == ["delivery_failed"]
        assert r["conn"]["id"] == closes[0]["conn"]["id"]
        assert any(f["function"] == "produce" for f in r["stack"])
    assert {origin_name(r) for r in sent + lost} == {"produce"}
    assert closes[0]["queued_at_close"] == len(queued)
    assert "buffered_unseen" not in closes[0]
    d = stats["delivery"]
    assert d["queued_at_close_writes"] == len(queued)
    assert d["queued_at_close_bytes"] == WIRE * len(queued)
    assert d["transports_linked"] == 1 and d["handed_unplaced_writes"] == 0
    assert stats["violations"]["delivery_failed"] == len(lost) + len(queued)

    jsonschema = pytest.importorskip("jsonschema", reason="python3-jsonschema is missing")
    with open(os.path.join(ROOT, "docs", "schemas", "queued.schema.json")) as f:
        v = jsonschema.Draft202012Validator(json.load(f))
    for r in queued:
        errors = list(v.iter_errors(r))
        assert not errors, errors[0].message


def test_queued_none_when_read_uvloop(procs, tmp_path):
    recs, stats = run(procs, tmp_path, "clean")
    sent = [r for r in recs if r["type"] == "frame" and r["opcode"] == "text"]
    assert len(sent) == FRAMES
    assert not [r for r in recs if r["type"] in ("queued", "lost")]
    d = stats["delivery"]
    assert d["transports_linked"] == 1
    assert d["queued_at_close_writes"] == 0
    assert stats["violations"]["delivery_failed"] == 0
    assert d["buffered_unseen_conns"] == 0


def test_buffered_unseen_said_asyncio(procs, tmp_path):
    """asyncio's selector transport buffers later writes in pure Python: not followed, said."""
    recs, stats = run(procs, tmp_path, "stall", loop="asyncio")
    sent = [r for r in recs if r["type"] == "frame" and r["opcode"] == "text"]
    lost = [r for r in recs if r["type"] == "lost"]
    closes = [r for r in recs if r["type"] == "conn_close"]
    print(f"\n[queued] asyncio: sent {len(sent)} lost {len(lost)}; delivery {stats['delivery']}")
    assert len(closes) == 1 and lost
    # The frames the transport buffered and dropped are not seen: the connection says so.
    assert len(sent) + len(lost) < FRAMES
    assert not [r for r in recs if r["type"] == "queued"]
    assert closes[0]["buffered_unseen"] is True and closes[0]["queued_at_close"] == 0
    assert stats["delivery"]["buffered_unseen_conns"] == 1
    assert {origin_name(r) for r in sent + lost} == {"produce"}

# SPDX-License-Identifier: GPL-2.0
"""Start-up of `wsaudit trace` (issue 11): what it follows from the first second and the
self-check that proves it is not blind.

- `trace -p MASTER` on `uvicorn --workers 2`, whose workers were spawned before the trace,
  follows both workers (descendants found in /proc) and sees every frame each one sends;
  the banner names them (`pid comm`) and says how long the start took.
- The self-check: before `tracing` the instance sees a write of its own probe through its
  own programs (a `selfcheck` record, ok); run where its programs cannot see its probe (in a
  PID namespace of its own, where the pids it traces are not the kernel's), it exits 1 with
  the reason instead of tracing blind.
"""

import base64
import json
import os
import socket
import struct
import subprocess
import time

from harness import APPS, PY, Trace, WSAUDIT, free_port, trace_frames


def ws_read(port, timeout=30):
    """Connects to /ws, upgrades and reads the server's frames until its close:
    [(opcode, payload)]."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, "connection closed during the handshake"
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    frames = []
    while True:
        if len(buf) >= 2:
            n, hdr = buf[1] & 0x7F, 2
            if n == 126 and len(buf) >= 4:
                n, hdr = struct.unpack("!H", buf[2:4])[0], 4
            if (n < 126 or hdr > 2) and len(buf) >= hdr + n:
                frames.append((buf[0] & 0x0F, buf[hdr:hdr + n]))
                buf = buf[hdr + n:]
                if frames[-1][0] == 8:
                    # Answer the close so the server's side ends cleanly.
                    s.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
                    s.close()
                    return frames
                continue
        chunk = s.recv(65536)
        assert chunk, "connection closed before the close frame"
        buf += chunk


def wait_workers(port, n, timeout=60):
    """Connects until n distinct workers have answered: {worker pid: [frames]} so far."""
    seen = {}
    deadline = time.monotonic() + timeout
    while len(seen) < n and time.monotonic() < deadline:
        try:
            frames = ws_read(port, timeout=5)
        except OSError:
            time.sleep(0.2)
            continue
        worker = json.loads(frames[0][1])["worker"]
        seen.setdefault(worker, []).append(frames)
    assert len(seen) >= n, f"only workers {sorted(seen)} answered within {timeout}s"
    return seen


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def test_trace_master_follows_existing_workers(procs, tmp_path):
    port = free_port()
    master = procs.start(
        [PY, "-m", "uvicorn", "ws_workers:app", "--app-dir", APPS, "--workers", "2",
         "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
         "--ws-per-message-deflate", "false", "--log-level", "warning"],
        env={**os.environ, "WS_WORKERS_FRAMES": "10"})
    # Both workers up (and forked) before the trace starts.
    before = wait_workers(port, 2)
    workers = sorted(before)
    trace = Trace(procs, str(tmp_path), ["-p", master.pid, "-o", "json"])
    banner = trace.stderr()
    # Clients until each worker has served at least 3 connections under the trace.
    served = {w: [] for w in workers}
    for _ in range(200):
        frames = ws_read(port)
        served[json.loads(frames[0][1])["worker"]].append(frames)
        if all(len(v) >= 3 for v in served.values()):
            break
    assert trace.stop() == 0, trace.stderr()
    recs = trace.records()
    print(f"\n[workers] master {master.pid}, workers {workers} (children {children(master.pid)}); "
          f"connections served {({w: len(v) for w, v in served.items()})}\n{banner}")
    for w in workers:
        assert f"wsaudit:   {w} python3 host (descendant of {master.pid})\n" in banner, banner
    assert "wsaudit: started in " in banner, banner
    for w in workers:
        sent = [f for conn in served[w] for f in conn]
        seen = [r for conns in trace_frames(recs, w, port).values() for r in conns]
        texts = [r for r in seen if r["opcode"] == "text"]
        print(f"[workers] worker {w}: sent {len(sent)} frames on {len(served[w])} connections, "
              f"wsaudit saw {len(seen)} ({len(texts)} text)")
        assert len(served[w]) >= 3, f"worker {w} served {len(served[w])} connections"
        assert len(seen) == len(sent), (w, len(seen), len(sent))
        assert len(texts) == 10 * len(served[w])


def test_selfcheck_record_before_tracing(procs, tmp_path):
    idle = procs.start([PY, "-c", "import time; time.sleep(60)"])
    trace = Trace(procs, str(tmp_path), ["-p", idle.pid, "-o", "json", "-d", "0.5"])
    assert trace.wait() == 0, trace.stderr()
    recs = trace.records()
    checks = [r for r in recs if r.get("type") == "selfcheck"]
    print(f"\n[selfcheck] {checks}\n{trace.stderr()}")
    assert len(checks) == 1 and checks[0]["ok"] is True, checks
    assert recs[0]["type"] == "selfcheck", recs[0]
    assert "self-check passed" in trace.stderr()
    # The probe is the instance's own: never reported as a traced process or connection.
    assert not [r for r in recs if r.get("type") in ("conn_open", "process_exit", "frame")], recs
    assert recs[-1]["processes"] == 1, recs[-1]


def test_selfcheck_fails_when_blind(procs, tmp_path):
    """In a PID namespace of its own, the pids wsaudit traces are not the ones its programs
    see (they run with the kernel's pids): its probe's write never comes back. That is an
    error with the reason, exit 1, and never a `tracing` line."""
    out = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", WSAUDIT, "trace", "--standalone", "-p", "1", "-o", "json",
         "-d", "5"],
        capture_output=True, text=True, timeout=60)
    print(f"\n[blind] exit {out.returncode}\nstdout: {out.stdout}stderr: {out.stderr}")
    assert out.returncode == 1, out
    assert "self-check failed: nothing of the probe's write came back" in out.stderr
    assert "wsaudit: tracing" not in out.stderr
    rec = json.loads(out.stdout.splitlines()[0])
    assert rec["type"] == "selfcheck" and rec["ok"] is False and "reason" in rec, rec

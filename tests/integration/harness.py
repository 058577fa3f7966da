# SPDX-License-Identifier: GPL-2.0
"""Helpers of the integration suite: real BPF programs in the running kernel,
real Python servers and clients (Debian's /usr/bin/python3), tshark as the
independent oracle. Every process started here is killed at teardown; every
wait is bounded.
"""

import collections
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APPS = os.path.join(ROOT, "tests", "apps")
# WSAUDIT=/path/to/wsaudit runs the suite against another build (before/after figures).
WSAUDIT = os.environ.get("WSAUDIT", os.path.join(ROOT, "wsaudit"))
PY = "/usr/bin/python3"
SERVERS = {
    "websockets": os.path.join(APPS, "ws_server_websockets.py"),
    "fastapi": os.path.join(APPS, "ws_server_fastapi.py"),
}
CLIENT = os.path.join(APPS, "ws_client.py")

sys.path.insert(0, HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procs:
    """Processes started by one test; all killed (process group) at teardown."""

    def __init__(self):
        self.procs = []

    def start(self, argv, **kw):
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def kill_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    pass


# Waits for processes to start are multiplied by this: a guest under emulation (tests/kernels)
# imports FastAPI or starts tshark in tens of seconds.  Nothing asserts on durations.
START_SCALE = float(os.environ.get("WSAUDIT_START_SCALE", "1"))


def read_line(proc, timeout, what):
    """First stdout line of proc, within timeout (times START_SCALE)."""
    timeout *= START_SCALE
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            if b"\n" in buf:
                return buf.split(b"\n", 1)[0].decode()
        elif proc.poll() is not None:
            break
    raise RuntimeError(f"{what}: no line within {timeout}s (exit {proc.poll()}): {buf!r}")


class Server:
    def __init__(self, procs, kind, port, log, python=PY, env=None):
        self.kind, self.port, self.log = kind, port, log
        self.proc = procs.start(
            [python, SERVERS[kind], "--port", str(port), "--log", log],
            stdout=subprocess.PIPE, env=env,
        )
        line = read_line(self.proc, 30, f"{kind} server")
        assert line.startswith("READY pid="), line
        self.pid = int(line.split()[1].split("=")[1])
        assert self.pid == self.proc.pid

    def frames(self):
        return server_log(self.log)


def server_log(path):
    """The server's own log: {client_port: [(opcode, fin, payload_len, close_code)]}."""
    out = collections.defaultdict(list)
    if os.path.exists(path):
        for line in open(path):
            r = json.loads(line)
            out[r["port"]].append((r["opcode"], r["fin"], r["payload_len"], r.get("close_code")))
    return dict(out)


class Trace:
    """./wsaudit trace ARGS; started() once it printed `wsaudit: tracing`."""

    def __init__(self, procs, tmp, args, wait_ready=True, timeout=60):
        self.out_path = os.path.join(tmp, f"wsaudit.{len(procs.procs)}.out")
        self.err_path = self.out_path[:-4] + ".err"
        self.out = open(self.out_path, "w")
        self.err = open(self.err_path, "w")
        args = [str(a) for a in args]
        # A test's trace loads its own programs unless it names an agent's socket: an agent
        # that another test (or someone else) runs on the node must not serve it.
        if "--agent-socket" not in args and "--standalone" not in args:
            args.append("--standalone")
        self.argv = [WSAUDIT, "trace", *args]
        self.proc = procs.start(self.argv, stdout=self.out, stderr=self.err, cwd=ROOT)
        self.rc = None
        if wait_ready:
            # Loading and verifying the programs is the slow part under emulation.
            timeout *= START_SCALE
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if "wsaudit: tracing" in self.stderr():
                    return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
            raise RuntimeError(
                f"{' '.join(self.argv)}: no 'wsaudit: tracing' line within {timeout}s "
                f"(exit {self.proc.poll()}); stderr:\n{self.stderr()}"
            )

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def wait(self, timeout=60):
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"wsaudit did not exit within {timeout}s; stderr:\n{self.stderr()}")
        return self.rc

    def stop(self, timeout=60):
        """SIGINT: wsaudit drains what is queued, prints final stats, exits 0."""
        # Give the ring buffer consumer a moment to catch up with the traffic.
        time.sleep(1.0)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def records(self):
        recs, bad = [], []
        with open(self.out_path) as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    recs.append(json.loads(line))
                except ValueError:
                    bad.append(line)
        assert not bad, f"wsaudit printed {len(bad)} non-JSON lines, first: {bad[0]!r}"
        return recs


def _port(addr):
    """Port of "ip:port" / "[ip6]:port"; None when wsaudit could not tell
    ("unknown")."""
    host, sep, port = (addr or "").rpartition(":")
    return int(port) if sep and port.isdigit() else None


def peer_port(conn):
    return _port(conn.get("peer"))


def local_port(conn):
    return _port(conn.get("local"))


def trace_frames(recs, pid, server_port=None):
    """wsaudit frame records of pid by client port (conn.peer)."""
    out = collections.defaultdict(list)
    for r in recs:
        if r.get("type") != "frame" or r.get("pid") != pid:
            continue
        if server_port is not None and local_port(r["conn"]) not in (server_port, None):
            continue
        out[peer_port(r["conn"])].append(r)
    return dict(out)


def frame_key(r):
    return (r["opcode"], r["fin"], r["payload_len"], r.get("close_code"))


def final_stats(recs):
    stats = [r for r in recs if r.get("type") == "stats"]
    assert stats, "wsaudit printed no stats record"
    return stats[-1]


def data_drops(stats):
    """The drops that lost data, by reason.  kernel_skipped counts runs of wsaudit's programs
    the kernel skipped (another BPF program held the CPU), and no_entry the exits whose entry
    ran before the attach or was skipped: counted and said, and whatever such a write carried
    on a followed connection shows as unseen_write or as a frame the test's own comparison
    misses."""
    return {k: v for k, v in stats["drops"].items() if v and k not in ("kernel_skipped", "no_entry")}


def run_clients(procs, port, n=3, batches=1, timeout=90, expect_code=1011, hold=None):
    """Start `batches` client processes of n concurrent connections each, wait
    for all; return their per-connection results."""
    argv = [PY, CLIENT, "--port", str(port), "-n", str(n), "--expect-code", str(expect_code),
            "--timeout", str(timeout - 5)]
    if hold is not None:
        argv += ["--hold", str(hold)]
    ps = [procs.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(batches)]
    results = []
    for p in ps:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            raise AssertionError(f"client did not finish within {timeout}s")
        rs = [json.loads(l) for l in out.decode().splitlines() if l.strip()]
        assert p.returncode == 0, f"client failed ({p.returncode}): {rs} {err.decode()[-2000:]}"
        results += rs
    return results


def diff_sequences(name_a, a, name_b, b, limit=8):
    """Human-readable first differences of two frame sequences."""
    lines = [f"{name_a}: {len(a)} frames, {name_b}: {len(b)} frames"]
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x != y:
            lines.append(f"  #{i}: {name_a}={x} {name_b}={y}")
            if len(lines) > limit:
                lines.append("  ...")
                break
    return "\n".join(lines)

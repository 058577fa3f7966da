# SPDX-License-Identifier: GPL-2.0
"""trace's filters on a real service: --type, --function, --peer, -n, with the unfiltered
trace of the same traffic as the reference; durations with units (-d 1500ms); the agent's
--metrics-addr as :PORT and localhost:PORT.

The service (tests/apps/ws_hostile_server.py --type-field) sends each client the same typed
JSON messages, all written by its function serve_values; the clients connect from source
ports the test chose, so each connection's peer is known before it opens.
"""

import base64
import collections
import os
import signal
import socket
import subprocess
import time

from harness import APPS, PY, WSAUDIT, Trace, free_port, read_line
from test_agent import scrape, wait_for

SERVER = os.path.join(APPS, "ws_hostile_server.py")
TYPES = ["alpha", "beta", "gamma"] * 4


def ws_read_from(port, sport, timeout=60):
    """A bare-socket client bound to 127.0.0.1:sport: handshake, read until the close."""
    key = base64.b64encode(os.urandom(16)).decode()
    head = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                  source_address=("127.0.0.1", sport)) as s:
        s.sendall(head.encode())
        while s.recv(1 << 16):
            pass


def frames(trace):
    return [r for r in trace.records() if r.get("type") == "frame"]


def test_filters(procs, tmp_path):
    tmp = str(tmp_path)
    key = os.path.join(tmp, "identity.key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    values = os.path.join(tmp, "types")
    with open(values, "w") as f:
        f.write("\n".join(TYPES) + "\n")
    port = free_port()
    server = procs.start([PY, SERVER, "--port", str(port), "--attack", "values", "--values",
                          values, "--type-field"], stdout=subprocess.PIPE)
    assert read_line(server, 60, "server").startswith("READY")
    base = ["-p", server.pid, "-o", "json", "--identity-key", key]
    sport_a, sport_b = free_port(), free_port()
    traces = {
        "all": Trace(procs, tmp, base),
        "type": Trace(procs, tmp, base + ["--type", "beta"]),
        "function": Trace(procs, tmp, base + ["--function", "serve_*"]),
        "function-none": Trace(procs, tmp, base + ["--function", "Bridge.*"]),
        "peer": Trace(procs, tmp, base + ["--peer", f"127.0.0.1:{sport_a}"]),
        "peer-port": Trace(procs, tmp, base + ["--peer", f":{sport_b}"]),
        "count": Trace(procs, tmp, base + ["-n", "5"]),
    }
    ws_read_from(port, sport_a)
    ws_read_from(port, sport_b)
    # -n ends the trace by itself once it printed its frames.
    assert traces["count"].wait(60) == 0, traces["count"].stderr()
    for name, t in traces.items():
        if name != "count":
            assert t.stop() == 0, t.stderr()
    got = {name: frames(t) for name, t in traces.items()}
    print("\n[filters] frames per trace: " + ", ".join(f"{k} {len(v)}" for k, v in got.items()))

    everything = got["all"]
    text = [r for r in everything if r["opcode"] == "text"]
    assert len(text) == 2 * len(TYPES), len(text)
    shown = collections.Counter(r["message"]["msg_type"] for r in text)
    assert len(shown) == 3 and set(shown.values()) == {8}, shown

    # --type: the frames of one type's messages, as the unfiltered trace shows them.
    typed = got["type"]
    assert len(typed) == 8, typed
    assert len({r["message"]["msg_type"] for r in typed}) == 1
    assert "beta" not in open(traces["type"].out_path).read()

    # --function: a glob on the originating function.
    origins = collections.Counter((r.get("origin") or {}).get("function") for r in everything)
    print(f"[filters] origins {dict(origins)}")
    assert got["function"] and len(got["function"]) == origins["serve_values"]
    assert all(r["origin"]["function"] == "serve_values" for r in got["function"])
    assert got["function-none"] == []

    # --peer: one client's connection, by address and port or by port alone.
    for name, sport in (("peer", sport_a), ("peer-port", sport_b)):
        mine = [r for r in everything if r["conn"]["peer"] == f"127.0.0.1:{sport}"]
        assert len(mine) == len(everything) // 2
        assert [(r["opcode"], r["payload_len"]) for r in got[name]] == \
            [(r["opcode"], r["payload_len"]) for r in mine]
        opens = [r for r in traces[name].records() if r.get("type") == "conn_open"]
        assert [r["conn"]["peer"] for r in opens] == [f"127.0.0.1:{sport}"], opens

    # -n: exactly that many frames, the first ones.
    def key(r):
        return r["conn"]["peer"], r["opcode"], r["payload_len"], (r.get("message") or {}).get("msg_type")
    assert [key(r) for r in got["count"]] == [key(r) for r in everything[:5]]


def test_duration_units(procs, tmp_path):
    idle = procs.start([PY, "-c", "import time; time.sleep(120)"])
    trace = Trace(procs, str(tmp_path), ["-p", idle.pid, "-o", "json", "-d", "1500ms"])
    assert trace.wait(60) == 0, trace.stderr()
    stats = [r for r in trace.records() if r.get("type") == "stats"]
    assert stats and stats[-1].get("final"), stats
    r = subprocess.run([WSAUDIT, "trace", "-p", str(idle.pid), "-d", "5 minutes"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "invalid duration '5 minutes'" in r.stderr, r.stderr


def test_metrics_addr_forms(procs, tmp_path):
    """`--metrics-addr :PORT` listens on every IPv4 address, `localhost:PORT` on 127.0.0.1."""
    for form in (":{}", "localhost:{}"):
        mport = free_port()
        err = os.path.join(tmp_path, f"agent.{mport}.err")
        agent = procs.start([WSAUDIT, "agent", "--socket", "none", "--metrics-addr",
                             form.format(mport), "--log", os.path.join(tmp_path, "v.jsonl"),
                             "--stats-interval", "0"],
                            stdout=subprocess.DEVNULL, stderr=open(err, "w"))
        wait_for(lambda: "wsaudit: agent following" in open(err).read()
                 or agent.poll() is not None, 60, "agent start")
        assert agent.poll() is None, open(err).read()
        text = scrape(mport)
        assert "wsaudit_build_info" in text
        # The agent's own process, as client libraries name it.
        own = {l.split()[0]: float(l.split()[1]) for l in text.splitlines()
               if l.startswith("process_")}
        print(f"[metrics-addr] {own}")
        assert own["process_resident_memory_bytes"] > 1 << 20
        assert own["process_open_fds"] > 3 and own["process_max_fds"] >= own["process_open_fds"]
        assert abs(own["process_start_time_seconds"] - time.time()) < 600
        assert own["process_cpu_seconds_total"] > 0
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{mport}"], capture_output=True,
                                   text=True).stdout
        print(f"[metrics-addr] {form.format(mport)}: {listening.split()[3:4]}")
        assert ("0.0.0.0:" if form.startswith(":") else "127.0.0.1:") + str(mport) in listening
        agent.send_signal(signal.SIGTERM)
        agent.wait(90)

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""What wsaudit costs a realistic service at a fixed rate (issue 19).

Production is not saturation: many connections, each frame its own write, at a steady rate.
The service is this file run with --server: FastAPI 0.92 on uvicorn 0.17.6 (ws="websockets",
uvloop, permessage-deflate on), one process, pinned to CPU 0.  Each client connection is one
user's; an agent task per connection produces ~1 KB JSON events built from nested dicts at
RATE events/s, several calls deep (Agent.run -> Agent.step -> Agent.report), and sends them
through a bridge class (EventBridge.publish) -> a manager (ConnectionManager.send_to_user) ->
WebSocket.send_text.  The client (this file with --client, one process on CPU 1, raw sockets,
permessage-deflate offered and inflated) reads every frame and takes its latency from the send
time in the event (CLOCK_MONOTONIC, taken in the bridge) to the moment it has it inflated.

Configurations, one batch each per round, order rotated each round, a fresh server per batch:
  none     no tracer
  capture  wsaudit trace --capture-only -p SERVER -o json
  full     wsaudit trace -p SERVER -o json -c POLICY (full attribution; the policy names the
           bridge, the message's user and type, so that identity and the rules run per frame)
  base     with --baseline WSAUDIT: full attribution by another build (before and after a
           change, side by side in one run)
Per batch, over the client's run (the handshakes included; they are 20 of 20,000 frames):
  - the service's CPU: sum_exec_runtime of its threads (/proc/PID/task/*/schedstat, ns), which
    holds the time wsaudit's uprobes and BPF programs take on them, per frame received;
  - wsaudit's BPF programs: bpf_stats' run time and run count (kernel.bpf_stats_enabled=1)
    per program, over the frames (a tail-called program's time is its caller's; the syscall
    exits also run for every other process of the machine, a little noise);
  - send-to-receive latency p50 / p99 over all frames of the batch;
  - wsaudit's CPU (utime+stime once it is idle) per frame it printed, and its stats record:
    frames, drops, attributed and unattributed frames by reason.
Markdown on stdout: median / min / max over the rounds; what tracing adds is the difference
of the medians.  Progress on stderr.

usage: realistic_cost.py [-r ROUNDS] [-c CONNS] [--rate EVENTS_PER_S_PER_CONN]
                         [-n EVENTS_PER_CONN] [--configs none,capture,full] [-w WSAUDIT]
                         [--baseline WSAUDIT] [--quick]
"""

import argparse
import asyncio
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

from tracer import (bpf_prog_stats, cpu_when_quiet, free_port, proc_cpu, start_trace,
                    stop_processes, stop_trace, ws_frame_header)

PYTHON = "/usr/bin/python3"
HERE = os.path.abspath(__file__)
CPU_SERVER = "0"
CPU_CLIENT = "1"
POLICY = """\
bridge:
  functions: ["EventBridge.*"]
transport:
  files: ["*/site-packages/*", "*/dist-packages/*", "*/lib/python3*/*", "<frozen *>"]
identity:
  connection:
    - {from: query, name: user}
  message:
    - {json: user_id}
messages:
  type: [type]
"""

# ---------------------------------------------------------------- server


def build_event(user, seq):
    """~1 KB of nested dicts, as an agent service streams: a run, its messages, tool calls,
    metrics.  Values change with seq so that deflate has work to do."""
    return {
        "run": {"id": f"run-{user}-{seq // 50}", "step": seq, "status": "running",
                "agent": {"name": "planner", "model": "large-2026-11", "temperature": 0.2,
                          "tools": ["search", "fetch", "calculator"]}},
        "messages": [
            {"role": "assistant", "index": i, "tokens": 40 + (seq * 7 + i) % 90,
             "content": f"Step {seq}.{i}: looking at the results of the previous call and "
                        f"deciding what to do next for {user}.",
             "tool_calls": [{"id": f"call-{seq}-{i}", "name": "search",
                             "arguments": {"query": f"item {seq * 31 % 997}", "k": 5,
                                           "filters": {"lang": "en", "fresh": True}}}]}
            for i in range(3)
        ],
        "metrics": {"latency_ms": (seq * 13) % 250 + 0.5, "tokens": {"in": 900 + seq % 300,
                                                                       "out": 120 + seq % 80},
                    "cost": {"usd": round(seq * 0.00013 % 1, 6), "budget_left": 0.75}},
    }


class ConnectionManager:
    """The service's registry of live connections, one per user."""

    def __init__(self):
        self.active = {}

    async def connect(self, user, websocket):
        await websocket.accept()
        self.active[user] = websocket

    def disconnect(self, user):
        self.active.pop(user, None)

    async def send_to_user(self, user, message):
        websocket = self.active.get(user)
        if websocket is not None:
            await websocket.send_text(json.dumps(message))


class EventBridge:
    """The one way events reach the clients (the policy's bridge)."""

    def __init__(self, manager):
        self.manager = manager

    async def publish(self, user_id, event_type, payload):
        await self.manager.send_to_user(user_id, {"t": time.monotonic_ns(), "type": event_type,
                                                  "user_id": user_id, "data": payload})


class Agent:
    """One user's work: steps at a steady rate, each reporting an event."""

    def __init__(self, bridge, user):
        self.bridge = bridge
        self.user = user

    async def report(self, seq):
        await self.bridge.publish(self.user, "agent_update", build_event(self.user, seq))

    async def step(self, seq):
        await self.report(seq)

    async def run(self, n, rate):
        clock = time.monotonic_ns
        period = int(1e9 / rate)
        due = clock()
        for seq in range(n):
            now = clock()
            if now < due:
                await asyncio.sleep((due - now) / 1e9)
            await self.step(seq)
            due += period


def server_main(args):
    import uvicorn
    from fastapi import FastAPI, WebSocket

    manager = ConnectionManager()
    bridge = EventBridge(manager)
    app = FastAPI()

    @app.websocket("/events")
    async def events(websocket: WebSocket):
        q = websocket.query_params
        user = q.get("user", "u")
        await manager.connect(user, websocket)
        try:
            await Agent(bridge, user).run(int(q.get("n", "100")), float(q.get("rate", "100")))
        finally:
            manager.disconnect(user)
        await websocket.close()

    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, loop="uvloop",
                            ws="websockets", ws_per_message_deflate=True, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    print(f"READY pid={os.getpid()}", flush=True)
    server.run()


# ---------------------------------------------------------------- client


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.up = False
        self.done = False
        self.frames = 0
        self.inflate = zlib.decompressobj(-15)


def client_run(port, conns_n, n, rate):
    """Opens conns_n connections, reads until each is closed; returns figures."""
    sel = selectors.DefaultSelector()
    conns = []
    for i in range(conns_n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall((f"GET /events?user=u{i}&n={n}&rate={rate} HTTP/1.1\r\n"
                   f"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   f"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                   f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        s.setblocking(False)
        c = Conn(s)
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    lat = []
    clock = time.monotonic_ns
    open_ = conns_n
    deflated = 0
    wire = 0
    deadline = time.monotonic() + n / rate + 60
    while open_ and time.monotonic() < deadline:
        for key, _ in sel.select(1.0):
            c = key.data
            try:
                data = c.sock.recv(1 << 18)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(c.sock)
                c.sock.close()
                open_ -= 1
                c.done = True
                continue
            b = c.buf
            b += data
            if not c.up:
                i = b.find(b"\r\n\r\n")
                if i < 0:
                    continue
                head = bytes(b[:i]).decode()
                if not head.startswith("HTTP/1.1 101"):
                    raise RuntimeError("upgrade refused: " + head[:40])
                if "permessage-deflate" not in head:
                    raise RuntimeError("permessage-deflate not accepted")
                del b[:i + 4]
                c.up = True
            pos, ln = 0, len(b)
            while (f := ws_frame_header(b, pos)) is not None:
                op, p0, plen = f
                b0, hdr = b[pos], p0 - pos
                if op == 1:
                    wire += hdr + plen
                    payload = bytes(b[p0:p0 + plen])
                    if b0 & 0x40:
                        deflated += 1
                        payload = c.inflate.decompress(payload + b"\x00\x00\xff\xff")
                    now = clock()
                    # {"t": SEND_NS, ...
                    lat.append(now - int(payload[5:payload.index(b",", 5)]))
                    c.frames += 1
                elif op == 8:
                    sel.unregister(c.sock)
                    c.sock.close()
                    open_ -= 1
                    c.done = True
                    pos = ln
                    break
                pos = p0 + plen
            if not c.done:
                del b[:pos]
    for c in conns:
        if not c.done:
            sel.unregister(c.sock)
            c.sock.close()
    res = {"frames": sum(c.frames for c in conns), "deflated": deflated,
           "wire_bytes_per_frame": wire / max(1, sum(c.frames for c in conns)),
           "unfinished": sum(1 for c in conns if not c.done)}
    if lat:
        lat.sort()
        res["p50_us"] = lat[len(lat) // 2] / 1000
        res["p99_us"] = lat[min(len(lat) - 1, len(lat) * 99 // 100)] / 1000
    return res


# ---------------------------------------------------------------- driver


def run_ns(pid):
    """CPU time of every thread of pid, ns (the scheduler's sum_exec_runtime)."""
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def run_batch(args, cfg, policy):
    port = free_port()
    srv = subprocess.Popen(["taskset", "-c", CPU_SERVER, PYTHON, HERE, "--server", "--port",
                            str(port)], stdout=subprocess.PIPE, text=True,
                           stderr=subprocess.DEVNULL)
    ws = None
    out = tempfile.TemporaryFile()
    try:
        if not srv.stdout.readline().startswith("READY"):
            sys.exit("realistic_cost: the server did not start")
        # Listening means uvloop is loaded: wsaudit sets its uprobes on it when it attaches.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        if cfg != "none":
            cmd = [args.baseline if cfg == "base" else args.wsaudit, "trace", "--standalone", "-p", str(srv.pid), "-o", "json",
                   "--stats-interval", "0"]
            cmd += ["--capture-only"] if cfg == "capture" else ["-c", policy]
            ws = start_trace(cmd, out, f"realistic_cost ({cfg})")
            bpf0 = bpf_prog_stats(ws.pid)
            cpu0 = proc_cpu(ws.pid)
        srv0 = run_ns(srv.pid)
        cli = subprocess.run(["taskset", "-c", CPU_CLIENT, PYTHON, HERE, "--client", "--port",
                              str(port), "-c", str(args.conns), "-n", str(args.events),
                              "--rate", str(args.rate)],
                             capture_output=True, text=True,
                             timeout=args.events / args.rate + 120)
        srv1 = run_ns(srv.pid)
        if cli.returncode != 0:
            sys.exit(f"realistic_cost: client failed: {cli.stderr[-2000:]}")
        r = json.loads(cli.stdout.strip().splitlines()[-1])
        r["service_us"] = (srv1 - srv0) / 1e3 / max(1, r["frames"])
        if ws:
            r["wsaudit_s"] = cpu_when_quiet(proc_cpu, ws.pid) - cpu0
            bpf1 = bpf_prog_stats(ws.pid)
            r["bpf"] = {k: [v[0] - bpf0.get(k, [0, 0])[0], v[1] - bpf0.get(k, [0, 0])[1]]
                        for k, v in bpf1.items()}
            stats, printed = stop_trace(ws, out, f"realistic_cost ({cfg})")
            ws = None
            r["printed"] = printed
            r["wsaudit_us"] = r["wsaudit_s"] * 1e6 / max(1, printed)
            r["stats_frames"] = stats["frames"]
            r["drops"] = {k: v for k, v in stats["drops"].items() if v}
            r["attributed"] = stats["attribution"]["attributed"]
            r["unattributed"] = {k: v for k, v in stats["attribution"]["unattributed"].items()
                                 if v}
            r["origins"] = origins(out) if cfg != "capture" else {}
        return r
    finally:
        stop_processes(ws, srv)
        out.close()


def origins(out):
    """Frames by originating function and via_bridge, from wsaudit's output."""
    out.seek(0)
    n = {}
    for line in out:
        if b'"type":"frame"' not in line:
            continue
        f = json.loads(line)
        o = f.get("origin") or {}
        k = f"{o.get('function', f.get('unattributed', '-'))} via_bridge={f.get('via_bridge')}"
        n[k] = n.get(k, 0) + 1
    return n


def mmm(v, p=2):
    if not v:
        return "—"
    return (f"{statistics.median(v):.{p}f} / {min(v):.{p}f} / {max(v):.{p}f}")


def med(v):
    return statistics.median(v) if v else 0.0


def report(args, cfgs, res):
    names = {"none": "no tracer", "capture": "capture only (`--capture-only`)",
             "full": "full attribution", "base": f"full attribution, {args.baseline}"}
    frames = args.conns * args.events
    print(f"## realistic_cost: a FastAPI service at a fixed rate (issue 19)\n")
    print(f"FastAPI 0.92 + uvicorn 0.17.6 (ws=websockets, uvloop, permessage-deflate) under "
          f"`/usr/bin/python3`, pinned to CPU {CPU_SERVER}; {args.conns} connections × "
          f"{args.rate:g} events/s × {args.events} events = {frames} frames per batch "
          f"({frames / args.conns / args.rate:g} s), ~1 KB JSON of nested dicts sent by "
          f"Agent.report → EventBridge.publish → ConnectionManager.send_to_user → "
          f"`send_text`; the client on CPU {CPU_CLIENT}, wsaudit not pinned.  {args.rounds} "
          f"rounds, configurations interleaved, a fresh server per batch; median / min / max "
          f"over the rounds.\n")
    print("| configuration | service CPU µs/frame | added µs/frame | added % | p50 µs | "
          "p99 µs | wsaudit CPU µs/frame | frames received | wire B/frame |")
    print("|---|---|---|---|---|---|---|---|---|")
    base = med([r["service_us"] for r in res["none"]]) if res.get("none") else 0
    for c in cfgs:
        rs = res[c]
        svc = [r["service_us"] for r in rs]
        add = med(svc) - base if base and c != "none" else None
        print(f"| {names[c]} | {mmm(svc)} | {'—' if add is None else f'{add:.2f}'} | "
              f"{'—' if add is None else f'{100 * add / base:.1f}'} | "
              f"{mmm([r.get('p50_us', 0) for r in rs], 0)} | "
              f"{mmm([r.get('p99_us', 0) for r in rs], 0)} | "
              f"{mmm([r['wsaudit_us'] for r in rs if 'wsaudit_us' in r])} | "
              f"{', '.join(str(r['frames']) for r in rs)} | "
              f"{med([r['wire_bytes_per_frame'] for r in rs]):.0f} |")
    if res.get("none"):
        p99 = {c: med([r.get("p99_us", 0) for r in res[c]]) for c in cfgs}
        worst = {c: max(r.get("p99_us", 0) for r in res[c]) for c in cfgs}
        for c in cfgs:
            if c != "none":
                print(f"\n- {names[c]}: p99 {p99[c] - p99['none']:+.0f} µs over no tracer "
                      f"(medians), worst round {worst[c]:.0f} µs against "
                      f"{worst['none']:.0f} µs.", end="")
        print()
    for c in cfgs:
        if c == "none":
            continue
        bpf = {}
        for r in res[c]:
            for prog, (ns, runs) in r["bpf"].items():
                bpf.setdefault(prog, []).append((ns, runs, r["frames"]))
        print(f"\n### BPF programs, {names[c]} (bpf_stats; per frame received; medians over "
              f"the rounds)\n")
        print("| program | µs per run | runs per frame | µs per frame |")
        print("|---|---|---|---|")
        total = [0.0] * len(res[c])
        rows = []
        for prog, v in bpf.items():
            runs = med([n / f for _, n, f in v])
            if not runs:
                continue
            per = med([ns / n / 1e3 for ns, n, _ in v if n])
            pf = med([ns / f / 1e3 for ns, _, f in v])
            for i, (ns, _, f) in enumerate(v):
                total[i] += ns / f / 1e3
            rows.append((pf, prog, per, runs))
        for pf, prog, per, runs in sorted(rows, reverse=True):
            print(f"| {prog} | {per:.2f} | {runs:.3f} | {pf:.2f} |")
        print(f"| all | | | {med(total):.2f} |")
    for c in cfgs:
        if c == "none":
            continue
        rs = res[c]
        drops, un, ori = {}, {}, {}
        for r in rs:
            for src, dst in ((r["drops"], drops), (r["unattributed"], un),
                             (r["origins"], ori)):
                for k, v in src.items():
                    dst[k] = dst.get(k, 0) + v
        print(f"\n- {names[c]}: frames received {sum(r['frames'] for r in rs)}, printed "
              f"{sum(r['printed'] for r in rs)}, in stats {sum(r['stats_frames'] for r in rs)}, "
              f"attributed {sum(r['attributed'] for r in rs)}; drops {json.dumps(drops)}; "
              f"unattributed {json.dumps(un)}"
              + (f"; origins {json.dumps(ori)}" if ori else ""))
    if res.get("none") and res.get("full"):
        add = med([r["service_us"] for r in res["full"]]) - base
        p99 = max(r.get("p99_us", 0) for r in res["full"]) - med(
            [r.get("p99_us", 0) for r in res["none"]])
        col = med([r["wsaudit_us"] for r in res["full"]])
        print(f"\nGoals (issue 19), full attribution: added service CPU {add:.2f} µs/frame "
              f"(goal ≤ 2), {100 * add / base:.1f}% of the service's (goal ≤ 2%); added p99 in "
              f"the worst round {p99:+.0f} µs over the median without tracer (goal ≤ 100); "
              f"collector {col:.2f} µs/frame (goal ≤ 8).")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("-c", "--conns", type=int, default=20)
    ap.add_argument("--rate", type=float, default=100, help="events/s per connection")
    ap.add_argument("-n", "--events", type=int, default=1000, help="events per connection")
    ap.add_argument("--configs", default="none,capture,full")
    ap.add_argument("-w", "--wsaudit", default=os.path.join(os.path.dirname(HERE), "..",
                                                            "wsaudit"))
    ap.add_argument("--baseline", metavar="WSAUDIT",
                    help="add config base: full attribution by this other build")
    ap.add_argument("--quick", action="store_true", help="2 rounds of 300 events per connection")
    args = ap.parse_args()
    if args.server:
        return server_main(args)
    if args.client:
        print(json.dumps(client_run(args.port, args.conns, args.events, args.rate)), flush=True)
        return 0
    if args.quick:
        args.rounds, args.events = 2, 300
    if os.geteuid() != 0:
        sys.exit("realistic_cost: must run as root")
    cfgs = [c for c in args.configs.split(",") if c]
    if args.baseline and "base" not in cfgs:
        cfgs.append("base")
    if any(c not in ("none", "capture", "full", "base") for c in cfgs) or (
            "base" in cfgs and not args.baseline):
        sys.exit("realistic_cost: --configs takes none, capture, full (base with --baseline)")
    res = {c: [] for c in cfgs}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="realistic.") as pf:
        pf.write(POLICY)
        pf.flush()
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            was = f.read().strip()
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        try:
            for rnd in range(args.rounds):
                for cfg in cfgs[rnd % len(cfgs):] + cfgs[:rnd % len(cfgs)]:
                    r = run_batch(args, cfg, pf.name)
                    res[cfg].append(r)
                    print(f"realistic_cost: round {rnd} {cfg}: service "
                          f"{r['service_us']:.2f} µs/frame, p50 {r.get('p50_us', 0):.0f} µs, "
                          f"p99 {r.get('p99_us', 0):.0f} µs, frames {r['frames']}"
                          + (f", wsaudit {r['wsaudit_us']:.2f} µs/frame, unattributed "
                             f"{r['unattributed']}, drops {r['drops']}" if cfg != "none"
                             else ""), file=sys.stderr)
        finally:
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write(was)
    report(args, cfgs, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())

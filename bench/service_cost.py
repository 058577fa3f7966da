#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Cost to the audited service (issue 7 section 1).

The service is this file run with --server: FastAPI 0.92 on uvicorn 0.17.6 (ws="websockets", the
legacy implementation uvicorn picks in production) with uvloop, one worker, under Debian's
/usr/bin/python3.  Each client of /stream gets JSON frames {"t":SEND_NS,"seq":N,"user":...,
"pad":...} written by `stream_frames` with WebSocket.send_text: as fast as the connection takes
them (saturation) or at a fixed rate per client.  SEND_NS is CLOCK_MONOTONIC just before the send;
the client (this file with --client, one process, raw sockets and a selector, no extension
offered) takes CLOCK_MONOTONIC when it has read the frame, so the latency is send to receive.

With WSBENCH_TRACEBACK=1 in its environment, the server wraps WebSocket.send_text so that each
frame records traceback.extract_stack() (kept in a bounded deque, as an in-process audit would
before shipping it): the in-process alternative to wsaudit.

Configurations, one batch each per repetition, order rotated:
  none       no tracer
  full       wsaudit trace -p SERVER -o json (full attribution; output to a file)
  capture    wsaudit trace --capture-only -p SERVER -o json
  floor      .output/bench/bench_uprobe_floor -p SERVER: an empty BPF program on the uprobes
             wsaudit sets on uvloop's transport writes, the floor of hooking each write
  traceback  no tracer, WSBENCH_TRACEBACK=1
A batch starts a fresh server (CPU 0), attaches wsaudit if any (not pinned), then runs the client
(CPU 1) at saturation for -s seconds and at a fixed total rate for -s seconds, each on N fresh
connections; wsaudit's CPU (utime+stime of /proc/PID/stat) over the batch, divided by the frames
its stats record counts, gives its CPU per 1,000 frames.  Markdown report on stdout.

usage: service_cost.py [-r REPS] [-n CLIENTS] [-s SECONDS] [--rate FRAMES_PER_S] [--quick]
                       [--perf FILE]   (perf profile of wsaudit, full attribution, fixed rate)
                       [--bpf-stats]   (run time of wsaudit's BPF programs per frame)
"""

import argparse
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from tracer import (bpf_prog_stats, cpu_when_quiet, free_port, proc_cpu, start_floor, start_trace,
                    stop_processes, stop_trace, ws_frame_header)

PYTHON = "/usr/bin/python3"
HERE = os.path.abspath(__file__)
FLOOR = os.path.join(os.path.dirname(HERE), "..", ".output", "bench", "bench_uprobe_floor")
CPU_SERVER = "0"
CPU_CLIENT = "1"
# What each frame carries besides its timestamp: a small event as the services audited stream.
DATA = {"run_id": "r-0001", "step": "thinking", "progress": 0.5, "text": "x" * 64}

# ---------------------------------------------------------------- server


def server_main(args):
    import collections
    import traceback

    import uvicorn
    from fastapi import FastAPI, WebSocket

    audit = collections.deque(maxlen=10000)
    if os.environ.get("WSBENCH_TRACEBACK") == "1":
        plain_send_text = WebSocket.send_text

        async def audited_send_text(self, data):
            audit.append(traceback.extract_stack())
            return await plain_send_text(self, data)

        WebSocket.send_text = audited_send_text

    app = FastAPI()
    dumps = json.dumps

    async def stream_frames(websocket, user, seconds, rate):
        clock = time.monotonic_ns
        end = clock() + int(seconds * 1e9)
        seq = 0
        if rate:
            period = int(1e9 / rate)
            due = clock()
            while due < end:
                now = clock()
                if now < due:
                    await asyncio_sleep((due - now) / 1e9)
                await websocket.send_text(dumps({"t": clock(), "seq": seq, "user": user,
                                                 "event": "agent_update", "data": DATA}))
                seq += 1
                due += period
        else:
            while True:
                now = clock()
                if now >= end:
                    break
                await websocket.send_text(dumps({"t": now, "seq": seq, "user": user,
                                                 "event": "agent_update", "data": DATA}))
                seq += 1
        return seq

    import asyncio

    asyncio_sleep = asyncio.sleep

    @app.websocket("/stream")
    async def stream(websocket: WebSocket):
        q = websocket.query_params
        await websocket.accept()
        await stream_frames(websocket, q.get("user", "u"), float(q.get("seconds", "1")),
                            float(q.get("rate", "0")))
        await websocket.send_text('{"end":1}')
        await websocket.close()

    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, loop="uvloop",
                            ws="websockets", ws_per_message_deflate=False, log_level="warning",
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


def client_run(port, n, seconds, rate):
    """Opens n connections, reads until each got its end frame; returns figures."""
    sel = selectors.DefaultSelector()
    conns = []
    per = rate / n if rate else 0
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall((f"GET /stream?user=u{i}&seconds={seconds}&rate={per} HTTP/1.1\r\n"
                   f"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        s.setblocking(False)
        c = Conn(s)
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    lat = []
    clock = time.monotonic_ns
    first = last = None
    open_ = n
    deadline = time.monotonic() + seconds + 30
    while open_ and time.monotonic() < deadline:
        for key, _ in sel.select(1.0):
            c = key.data
            try:
                data = c.sock.recv(1 << 18)
            except BlockingIOError:
                continue
            now = clock()
            if not data:
                sel.unregister(c.sock)
                open_ -= 1
                c.done = True
                continue
            b = c.buf
            b += data
            if not c.up:
                i = b.find(b"\r\n\r\n")
                if i < 0:
                    continue
                if not b.startswith(b"HTTP/1.1 101"):
                    raise RuntimeError("upgrade refused: " + bytes(b[:40]).decode())
                del b[:i + 4]
                c.up = True
            if not rate:
                # Saturation: count the frames at C speed (the marker of each frame) so that the
                # client outruns the server; a marker cut by a read is kept for the next one.
                k = b.count(b'"seq"')
                c.frames += k
                if k:
                    if first is None:
                        first = now
                    last = now
                if b.find(b'"end"') >= 0:
                    c.sock.close()
                    sel.unregister(c.sock)
                    open_ -= 1
                    c.done = True
                    continue
                # Keep at most 4 bytes: a partial '"seq"' (5 bytes) cannot be counted twice.
                del b[:max(0, len(b) - 4)]
                continue
            pos = 0
            ln = len(b)
            while (f := ws_frame_header(b, pos)) is not None:
                op, p0, plen = f
                if op == 1 and b[p0 + 2] == 0x74:  # {"t":
                    comma = b.index(b",", p0)
                    sent = int(b[p0 + 5:comma])
                    if rate:
                        lat.append(now - sent)
                    c.frames += 1
                    if first is None:
                        first = now
                    last = now
                elif op == 8:
                    c.sock.close()
                    sel.unregister(c.sock)
                    open_ -= 1
                    c.done = True
                    pos = ln
                    break
                pos = p0 + plen
            if not c.done:
                del b[:pos]
    for c in conns:
        if not c.done:
            try:
                sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.sock.close()
    frames = sum(c.frames for c in conns)
    res = {"frames": frames, "unfinished": sum(1 for c in conns if not c.done)}
    span = (last - first) / 1e9 if first and last and last > first else 0
    res["fps"] = frames / span if span else 0
    if lat:
        lat.sort()
        res["p50_us"] = lat[len(lat) // 2] / 1000
        res["p99_us"] = lat[min(len(lat) - 1, len(lat) * 99 // 100)] / 1000
    return res


def client_main(args):
    rate = args.rate if args.phase == "rate" else 0
    print(json.dumps(client_run(args.port, args.clients, args.seconds, rate)), flush=True)


# ---------------------------------------------------------------- driver


def wsaudit_start(wsaudit, pid, capture_only, outfile):
    cmd = [wsaudit, "trace", "--standalone", "-p", str(pid), "-o", "json", "--stats-interval", "0"]
    if capture_only:
        cmd.append("--capture-only")
    return start_trace(cmd, outfile, "service_cost")


def run_batch(args, cfg):
    port = free_port()
    env = dict(os.environ)
    env["WSBENCH_TRACEBACK"] = "1" if cfg == "traceback" else "0"
    srv = subprocess.Popen(["taskset", "-c", CPU_SERVER, PYTHON, HERE, "--server", "--port",
                            str(port)], stdout=subprocess.PIPE, text=True, env=env,
                           # The saturation clients close once they have the end frame, without
                           # the closing handshake, which the server logs with a traceback.
                           stderr=subprocess.DEVNULL)
    ws = floor = None
    cli = None
    out = tempfile.TemporaryFile()
    try:
        if not srv.stdout.readline().startswith("READY"):
            sys.exit("service_cost: the server did not start")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        if cfg in ("full", "capture"):
            ws = wsaudit_start(args.wsaudit, srv.pid, cfg == "capture", out)
        elif cfg == "floor":
            # An empty program where wsaudit hooks uvloop's writes in the server.
            floor = start_floor([FLOOR, "-p", str(srv.pid)], "service_cost")
        res = {}
        for phase in ("sat", "rate"):
            cpu0 = proc_cpu(ws.pid) if ws else 0
            srv_cpu0 = proc_cpu(srv.pid)
            perf = None
            if args.perf and cfg == "full" and phase == "rate":
                perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "1000",
                                         "--call-graph", "dwarf,16384",
                                         "-p", str(ws.pid), "-o", args.perf, "--", "sleep",
                                         str(args.seconds)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
            cli = subprocess.run(["taskset", "-c", CPU_CLIENT, PYTHON, HERE, "--client",
                                  "--phase", phase, "--port", str(port), "-n", str(args.clients),
                                  "-s", str(args.seconds), "--rate", str(args.rate)],
                                 capture_output=True, text=True, timeout=2 * args.seconds + 60)
            if cli.returncode != 0:
                sys.exit(f"service_cost: client failed: {cli.stderr[-2000:]}")
            res[phase] = json.loads(cli.stdout.strip().splitlines()[-1])
            res[phase]["srv_cpu_s"] = proc_cpu(srv.pid) - srv_cpu0
            if perf:
                perf.wait(args.seconds + 30)
            if ws:
                res[phase]["ws_cpu_s"] = cpu_when_quiet(proc_cpu, ws.pid) - cpu0
                out.flush()
                out.seek(0)
                res[phase]["ws_frames"] = sum(1 for line in out if b'"type":"frame"' in line)
                out.seek(0, 2)
        if ws:
            res["rate"]["ws_frames"] -= res["sat"]["ws_frames"]
            if args.bpf_stats:
                res["ws_bpf"] = bpf_prog_stats(ws.pid)
            stats, _ = stop_trace(ws, out, "service_cost")
            res["ws_frames"] = stats["frames"]
            res["ws_drops"] = {k: v for k, v in stats["drops"].items() if v}
            res["ws_attributed"] = stats["attribution"]["attributed"]
            res["ws_unattributed"] = {k: v for k, v in
                                      stats["attribution"]["unattributed"].items() if v}
        return res
    finally:
        stop_processes(ws, floor, srv)
        out.close()


def mmm(v, fmt="{:.0f}"):
    if not v:
        return "-"
    return f"{fmt.format(statistics.median(v))} / {fmt.format(min(v))} / {fmt.format(max(v))}"


def bpf_stats(on):
    """Run-time counters of BPF programs (wsaudit's stats record reports them)."""
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1" if on else "0")
    except OSError as e:
        print(f"service_cost: cannot switch BPF run-time stats: {e}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--phase", choices=("sat", "rate"), default="sat", help=argparse.SUPPRESS)
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("-n", "--clients", type=int, default=10)
    ap.add_argument("-s", "--seconds", type=float, default=3.0)
    ap.add_argument("--rate", type=float, default=2000, help="total frames/s of the fixed-rate phase")
    ap.add_argument("-w", "--wsaudit", default="./wsaudit")
    ap.add_argument("--quick", action="store_true", help="1 repetition, 2 s phases")
    ap.add_argument("--bpf-stats", action="store_true",
                    help="switch on kernel.bpf_stats_enabled and report wsaudit's programs")
    ap.add_argument("--perf", metavar="FILE",
                    help="perf record wsaudit during the fixed-rate phase of full attribution")
    args = ap.parse_args()
    if args.server:
        return server_main(args)
    if args.client:
        return client_main(args)
    if args.quick:
        args.reps, args.seconds = 1, 2.0
    if os.geteuid() != 0:
        sys.exit("service_cost: must run as root")
    cfgs = ["none", "full", "capture", "floor", "traceback"]
    res = {c: [] for c in cfgs}
    if args.bpf_stats:
        bpf_stats(True)
    try:
        for rep in range(args.reps):
            order = cfgs[rep % len(cfgs):] + cfgs[:rep % len(cfgs)]
            for cfg in order:
                r = run_batch(args, cfg)
                res[cfg].append(r)
                print(f"service_cost: rep {rep} {cfg}: {json.dumps(r)}", file=sys.stderr)
    finally:
        if args.bpf_stats:
            bpf_stats(False)
    report(args, cfgs, res)
    if args.perf:
        perf_report(args)
    return 0


def perf_lines(text):
    """perf report lines without comments and without unsymbolised addresses."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if not f or line.startswith("#"):
            continue
        sym = f[-3] if len(f) >= 3 and f[-1] == "-" else f[-1]
        if sym.startswith("0x") or set(sym) <= set("0"):
            continue
        out.append(line.rstrip(" -"))
    return out


def perf_report(args):
    print(f"\n### perf profile of wsaudit (full attribution, fixed-rate phase of the last "
          f"repetition, {args.rate:g} frames/s; `perf record -e cpu-clock -F 1000 --call-graph "
          f"dwarf -p WSAUDIT`)\n")
    for title, extra in (("Self time, symbols above 1.5%", ["--no-children", "--percent-limit",
                                                             "1.5"]),
                         ("With callees (children), above 5%", ["--children", "--percent-limit",
                                                                 "5"])):
        rep = subprocess.run(["perf", "report", "-i", args.perf, "--stdio", "--sort", "symbol",
                              "-g", "none"] + extra, capture_output=True, text=True, timeout=300)
        print(f"{title}:\n\n```")
        print("\n".join(perf_lines(rep.stdout)))
        print("```\n")


def report(args, cfgs, res):
    names = {"none": "no tracer", "full": "`wsaudit trace` (full attribution)",
             "capture": "`wsaudit trace --capture-only`",
             "floor": "floor: an empty BPF program on uvloop's write uprobes",
             "traceback": "in-process `traceback.extract_stack()` per send"}
    print("## service_cost: what wsaudit costs the audited service (issue 7)\n")
    print(f"FastAPI 0.92 + uvicorn 0.17.6 (ws=websockets, uvloop, no permessage-deflate) under "
          f"`/usr/bin/python3`, pinned to CPU {CPU_SERVER}; {args.clients} clients in one process "
          f"on CPU {CPU_CLIENT}; wsaudit not pinned (it shares the two CPUs).  Frames are "
          f"~190 B JSON text written by an application coroutine with `WebSocket.send_text`.  "
          f"Per batch: saturation for {args.seconds:g} s (frames/s the clients received, first "
          f"to last frame), then {args.rate:g} frames/s in total for {args.seconds:g} s "
          f"(send-to-receive latency from CLOCK_MONOTONIC in the payload).  {args.reps} "
          f"repetitions, configurations interleaved; a fresh server per batch.  Figures: median "
          f"/ min / max over the repetitions.\n")
    print("| configuration | saturation frames/s | ratio to no tracer | p50 latency us | "
          "p99 latency us |")
    print("|---|---|---|---|---|")
    base = statistics.median([r["sat"]["fps"] for r in res["none"]])
    cost = {}
    for c in cfgs:
        rs = res[c]
        fps = [r["sat"]["fps"] for r in rs]
        ratio = [f / base for f in fps]
        cost[c] = 1 - statistics.median(fps) / base
        p50 = [r["rate"].get("p50_us", 0) for r in rs]
        p99 = [r["rate"].get("p99_us", 0) for r in rs]
        print(f"| {names[c]} | {mmm(fps)} | {mmm(ratio, '{:.3f}')} | {mmm(p50, '{:.0f}')} | "
              f"{mmm(p99, '{:.0f}')} |")
    print("\nThe service's own CPU (utime+stime of the server process, which holds the time "
          "wsaudit's BPF programs and uprobes take on its threads) per frame the clients "
          "received, at saturation.  On a CPU of its own, the service's throughput would be "
          "the inverse: the ratio to no tracer is the throughput it would keep, whatever "
          "CPU wsaudit's user space takes elsewhere.\n")
    print("| configuration | service CPU us per frame | throughput kept on its own CPU |")
    print("|---|---|---|")
    per = {c: [1e6 * r["sat"]["srv_cpu_s"] / max(1, r["sat"]["frames"]) for r in res[c]]
           for c in cfgs}
    base_cpu = statistics.median(per["none"])
    own = {}
    for c in cfgs:
        kept = [base_cpu / v if v else 0 for v in per[c]]
        own[c] = 1 - base_cpu / statistics.median(per[c])
        print(f"| {names[c]} | {mmm(per[c], '{:.2f}')} | {mmm(kept, '{:.3f}')} |")
    print("\nwsaudit itself: frames it printed and the CPU it used (utime+stime) per phase, per "
          "1,000 frames printed; totals over the repetitions from its final stats records "
          "(drops leave out `no_entry`, a call in flight when it attaches).\n")
    print("| configuration | phase | frames sent (clients received) | frames printed by wsaudit "
          "| wsaudit CPU ms per 1,000 frames printed |")
    print("|---|---|---|---|---|")
    for c in ("full", "capture"):
        for ph in ("sat", "rate"):
            rs = res[c]
            got = sum(r[ph]["frames"] for r in rs)
            pr = sum(r[ph]["ws_frames"] for r in rs)
            cpu = [1e6 * r[ph]["ws_cpu_s"] / max(1, r[ph]["ws_frames"]) for r in rs]
            print(f"| {names[c]} | {'saturation' if ph == 'sat' else 'fixed rate'} | {got} | "
                  f"{pr} | {mmm(cpu, '{:.1f}')} |")
    print()
    for c in ("full", "capture"):
        drops, un = {}, {}
        for r in res[c]:
            for k, v in r["ws_drops"].items():
                drops[k] = drops.get(k, 0) + v
            for k, v in r.get("ws_unattributed", {}).items():
                un[k] = un.get(k, 0) + v
        print(f"- {names[c]}: frames in stats {sum(r['ws_frames'] for r in res[c])}, attributed "
              f"{sum(r['ws_attributed'] for r in res[c])}; drops {json.dumps(drops)}; "
              f"unattributed {json.dumps(un)}")
    bpf = {}
    for r in res["full"]:
        for prog, (ns, runs) in r.get("ws_bpf", {}).items():
            t = bpf.setdefault(prog, [0, 0])
            t[0] += ns
            t[1] += runs
    frames = sum(r["sat"]["frames"] + r["rate"]["frames"] for r in res["full"])
    if any(runs for _, runs in bpf.values()):
        print(f"\nwsaudit's BPF programs with full attribution (kernel.bpf_stats_enabled=1), over "
              f"both phases, {frames} frames: run time per run, runs per frame sent, and ns "
              f"per frame sent (a tail-called program's time is in its caller's).\n")
        print("| program | ns per run | runs per frame | ns per frame |")
        print("|---|---|---|---|")
        total = 0
        for prog, (ns, runs) in sorted(bpf.items(), key=lambda kv: -kv[1][0]):
            if runs:
                total += ns
                print(f"| {prog} | {ns / runs:.0f} | {runs / frames:.3f} | {ns / frames:.0f} |")
        print(f"| all | | | {total / frames:.0f} |")
    full = cost["full"]
    tb = cost["traceback"]
    print(f"\nThroughput lost at saturation (1 - median/median of no tracer): full attribution "
          f"{100 * full:.1f}%, capture-only {100 * cost['capture']:.1f}%, floor (empty uprobe) "
          f"{100 * cost['floor']:.1f}%, in-process traceback "
          f"{100 * tb:.1f}%.")
    print(f"Service CPU per frame added at saturation (the service on a CPU of its own): full "
          f"attribution {100 * own['full']:.1f}%, capture-only {100 * own['capture']:.1f}%, "
          f"floor (empty uprobe) {100 * own['floor']:.1f}%, "
          f"in-process traceback {100 * own['traceback']:.1f}%.")
    print(f"\n- Goal: full attribution costs at most 5% of throughput: "
          f"**{'met' if full <= 0.05 else 'not met'}** ({100 * full:.1f}% on the shared CPUs; "
          f"{100 * own['full']:.1f}% of the service's own CPU per frame).")
    print(f"- Goal: less than a tenth of the in-process traceback's cost: "
          f"**{'met' if tb > 0 and full < tb / 10 else 'not met'}** "
          f"({100 * full:.1f}% vs {100 * tb:.1f}%).")

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Collector capacity (issue 7 section 3): the frame rate wsaudit follows with zero drops.

bench_loadgen (.output/bench/bench_loadgen, a C process, CPU 0) writes WebSocket frames on many
loopback connections to itself; `wsaudit trace -p LOADGEN -o json --stats-interval 0` (CPU 1,
its output to a file) traces it from before the handshakes.  For each rate of a step list the
run is repeated (interleaved over the rates, low to high and back), and wsaudit's final stats
record gives drops (by reason) and the frames it parsed.  Then the memory per connection: wsaudit's
VmRSS with 10 and with 1000 connections open (after their handshakes and frames), and the CPU
wsaudit used per 1,000 frames (utime+stime of its /proc/PID/stat).  With --perf, a perf profile
(cpu-clock, call graphs) of wsaudit's user space during a run at --perf-rate.

A C process has no Python stack: the figures are capture-only unless --mode full is given (full
attribution then looks for a Python thread, finds none and counts the frames as not_python,
which is the cheap path; the cost of the walk is that of bench/walk_cost.py and
bench/service_cost.py).

usage: capacity.py [-r REPS] [-d SECONDS] [--rates R,R,...] [--conns N] [--mode capture|full|both]
                   [--batch K] [--batch-rates R,R,...] [--perf] [--perf-rate R] [--quick]

A second series (capture-only) writes K frames per write() (--batch, default 16), as an event loop
flushing its buffer does: the collector's parser then gets many more frames per second than
the per-frame capture path can produce on one CPU, which finds where drops start.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from tracer import proc_cpu, start_trace, stop_trace

LOADGEN = os.environ.get("LOADGEN", ".output/bench/bench_loadgen")
CPU_LOAD = "0"
CPU_WSAUDIT = "1"


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return None


def wsaudit_start(wsaudit, pid, mode, outfile):
    cmd = ["taskset", "-c", CPU_WSAUDIT, wsaudit, "trace", "--standalone", "-p", str(pid), "-o", "json",
           "--stats-interval", "0"]
    if mode == "capture":
        cmd.append("--capture-only")
    return start_trace(cmd, outfile, "capacity")


def wsaudit_quiesce(pid, limit=10.0):
    """Waits until wsaudit's CPU time stops growing (it has read the ring buffer dry)."""
    deadline = time.monotonic() + limit
    last = proc_cpu(pid)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = proc_cpu(pid)
        if now == last:
            return
        last = now


def one_run(args, wsaudit, conns, rate, mode, seconds, perf_out=None, batch=1):
    """One loadgen run traced by wsaudit; returns a dict of figures."""
    load = subprocess.Popen(["taskset", "-c", CPU_LOAD, LOADGEN, "-c", str(conns), "-r",
                             str(rate), "-d", str(seconds), "-b", str(batch), "--wait"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out = tempfile.TemporaryFile()
    ws = None
    perf = None
    try:
        ready = load.stdout.readline()
        if not ready.startswith("READY"):
            sys.exit("capacity: bench_loadgen did not start")
        ws = wsaudit_start(wsaudit, load.pid, mode, out)
        rss0 = proc_status(ws.pid, "VmRSS")
        cpu0 = proc_cpu(ws.pid)
        if perf_out:
            perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "1000",
                                     "--call-graph", "dwarf,16384",
                                     "-p", str(ws.pid), "-o", perf_out, "--",
                                     "sleep", str(seconds)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        load.stdin.write("go\n")
        load.stdin.flush()
        res = json.loads(load.stdout.readline())
        wsaudit_quiesce(ws.pid)
        cpu1 = proc_cpu(ws.pid)
        res["rss_kb"] = proc_status(ws.pid, "VmRSS")
        res["rss0_kb"] = rss0
        res["hwm_kb"] = proc_status(ws.pid, "VmHWM")
        res["cpu_s"] = cpu1 - cpu0
        if perf:
            perf.wait(seconds + 30)
        load.stdin.write("quit\n")
        load.stdin.flush()
        load.wait(30)
        time.sleep(0.2)
        stats, _ = stop_trace(ws, out, "capacity")
        res["drops_total"] = stats["drops_total"]
        res["drops"] = {k: v for k, v in stats.get("drops", {}).items() if v}
        res["frames"] = stats["frames"]
        res["not_python"] = stats.get("attribution", {}).get("unattributed", {}).get(
            "not_python", 0)
        res["conns_ws"] = stats.get("conns", {}).get("websocket")
        return res
    finally:
        for p in (perf, load, ws):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        out.close()


def perf_lines(text):
    """perf report lines without comments and without unsymbolised addresses."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if not f or line.startswith("#"):
            continue
        sym = f[-3] if len(f) >= 3 and f[-1] == "-" else (f[-1] if f else "")
        if sym.startswith("0x") or set(sym) <= set("0"):
            continue
        out.append(line.rstrip(" -"))
    return out


def lost(r):
    """Frames lost: drops other than no_entry (a call in flight at attach), or frames missing."""
    real = sum(v for k, v in r["drops"].items() if k != "no_entry")
    return real + max(0, r["sent"] - r["frames"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("-d", "--duration", type=float, default=3.0)
    ap.add_argument("--rates", default="25000,50000,75000,100000,125000,0")
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16,
                    help="frames per write() of the batched series (capture-only)")
    ap.add_argument("--batch-rates", default="200000,400000,800000,0",
                    help="rates of the batched series; empty: no batched series")
    ap.add_argument("--mode", choices=("capture", "full", "both"), default="both")
    ap.add_argument("-w", "--wsaudit", default="./wsaudit")
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--perf-rate", type=int, default=100000)
    ap.add_argument("--quick", action="store_true", help="1 repetition, 2 s runs")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.duration = 1, 2.0
        args.batch_rates = "400000,0"
    if os.geteuid() != 0:
        sys.exit("capacity: must run as root")
    if not os.access(LOADGEN, os.X_OK):
        sys.exit(f"capacity: {LOADGEN} not built (make bench-build)")
    rates = [int(x) for x in args.rates.split(",")]
    modes = ["capture", "full"] if args.mode == "both" else [args.mode]
    series = [(m, 1, r) for r in rates for m in modes]
    if args.batch_rates:
        series += [("capture", args.batch, int(x)) for x in args.batch_rates.split(",")]
    results = {k: [] for k in series}
    for rep in range(args.reps):
        for key in (series if rep % 2 == 0 else list(reversed(series))):
            mode, batch, rate = key
            r = one_run(args, args.wsaudit, args.conns, rate, mode, args.duration, batch=batch)
            results[key].append(r)
            print(f"capacity: rep {rep} {mode} batch {batch} rate {rate}: sent {r['sent']} "
                  f"({r['achieved']:.0f}/s) frames {r['frames']} drops {r['drops']} "
                  f"cpu {r['cpu_s']:.2f}s", file=sys.stderr)
    mem = {}
    for conns in (10, 1000):
        mem[conns] = [one_run(args, args.wsaudit, conns, 2000, "capture", 2.0)
                      for _ in range(max(1, min(args.reps, 2)))]
        for r in mem[conns]:
            print(f"capacity: memory {conns} conns: rss {r['rss_kb']} kB (at attach "
                  f"{r['rss0_kb']}), ws conns {r['conns_ws']}", file=sys.stderr)
    perf_txt = None
    if args.perf:
        pdata = tempfile.mktemp(prefix="wsaudit-perf.")
        try:
            r = one_run(args, args.wsaudit, args.conns, args.perf_rate, "capture", 5.0,
                        perf_out=pdata)
            rep = subprocess.run(["perf", "report", "-i", pdata, "--no-children", "--stdio",
                                  "--sort", "symbol", "-g", "none", "--percent-limit", "1.5"],
                                 capture_output=True, text=True, timeout=120)
            perf_txt = (r, "\n".join(perf_lines(rep.stdout)))
            rep2 = subprocess.run(["perf", "report", "-i", pdata, "--children", "--stdio",
                                   "--sort", "symbol", "-g", "none", "--percent-limit", "5"],
                                  capture_output=True, text=True, timeout=120)
            perf_txt += ("\n".join(perf_lines(rep2.stdout)),)
        finally:
            if os.path.exists(pdata):
                os.unlink(pdata)
    report(args, series, modes, results, mem, perf_txt)


def mmm(v, fmt="{:.0f}"):
    return f"{fmt.format(statistics.median(v))} / {fmt.format(min(v))} / {fmt.format(max(v))}"


def report(args, series, modes, results, mem, perf_txt):
    print("## capacity: the frame rate wsaudit follows (issue 7, collector capacity)\n")
    print(f"`bench_loadgen` (C, pinned to CPU {CPU_LOAD}): {args.conns} loopback WebSocket "
          f"connections to itself, handshakes seen by wsaudit, then one `write()` per unmasked "
          f"66 B text frame (64 B JSON-like payload), round robin, for {args.duration:g} s per "
          f"run at each rate (0: as fast as it can).  `wsaudit trace -p LOADGEN -o json "
          f"--stats-interval 0` (default 8 MiB ring buffer) pinned to CPU {CPU_WSAUDIT}, its "
          f"output to a file.  {args.reps} repetitions, rates and modes interleaved.  "
          f"Figures: median / min / max over the repetitions.\n")
    print("A C process has no Python stack: *capture* is `--capture-only`; *full* is full "
          "attribution, where each frame's writer is found not to be Python (`not_python`) "
          "without a stack walk.  The cost of the walk is in walk.md and service.md.\n")
    print("| mode | frames per write | asked frames/s | achieved frames/s | frames parsed / sent | drops (runs with "
          "any lost frame) | drop reasons | wsaudit CPU ms per 1,000 frames |")
    print("|---|---|---|---|---|---|---|---|")
    zero_ok = {}
    for key in series:
        if True:
            m, batch, rate = key
            rs = results[key]
            ach = [r["achieved"] for r in rs]
            parsed = sum(r["frames"] for r in rs)
            sent = sum(r["sent"] for r in rs)
            drops = [lost(r) for r in rs]
            reasons = {}
            for r in rs:
                for k, v in r["drops"].items():
                    reasons[k] = reasons.get(k, 0) + v
            cpu = [1000 * r["cpu_s"] / max(1, r["frames"]) * 1000 for r in rs]
            bad = sum(1 for d in drops if d)
            print(f"| {m} | {batch} | {rate or 'max'} | {mmm(ach)} | {parsed} / {sent} | "
                  f"{mmm(drops)} ({bad} of {len(rs)}) | {json.dumps(reasons) if reasons else '-'} "
                  f"| {mmm(cpu, '{:.1f}')} |")
            if not bad:
                zero_ok.setdefault((m, batch), []).append(statistics.median(ach))
    print()
    for m, batch in dict.fromkeys((k[0], k[1]) for k in series):
        best = max(zero_ok.get((m, batch), [0]))
        first_bad = [(statistics.median([r["achieved"] for r in results[k]]))
                     for k in series if k[:2] == (m, batch) and any(lost(r) for r in results[k])]
        print(f"- {m}, {batch} frame(s) per write: highest rate with zero lost frames in every "
              f"run: **{best:.0f} frames/s**; "
              f"losses start at: "
              f"{', '.join(f'{x:.0f}' for x in sorted(first_bad)) + ' frames/s' if first_bad else 'no rate tried (the load generator is the limit)'}.")
    ok50 = any(x >= 49000 for x in zero_ok.get(("full", 1), []))
    print(f"- Goal (issue 7): zero drops at 50,000 frames/s with full attribution: "
          f"**{'met' if ok50 else 'not met'}** for this C writer, whose frames need no stack walk "
          f"(capture cost only); with a Python writer, see walk.md and service.md.\n")
    print("Memory per connection: wsaudit VmRSS with connections open after their handshakes "
          "and 2 s at 2,000 frames/s (capture-only); BPF maps are preallocated and are not in "
          "the RSS.\n")
    print("| connections | wsaudit VmRSS kB (median / min / max) | VmHWM kB | WebSocket conns seen |")
    print("|---|---|---|---|")
    for c in (10, 1000):
        print(f"| {c} | {mmm([r['rss_kb'] for r in mem[c]])} | "
              f"{mmm([r['hwm_kb'] for r in mem[c]])} | {mem[c][0]['conns_ws']} |")
    d = statistics.median([r["rss_kb"] for r in mem[1000]]) - statistics.median(
        [r["rss_kb"] for r in mem[10]])
    print(f"\n**Memory per connection: {d * 1024 / 990:.0f} bytes** ((RSS 1000 - RSS 10) / 990).\n")
    if perf_txt:
        r, self_txt, child_txt = perf_txt
        print(f"### perf profile of wsaudit's user space (capture-only, {args.conns} connections, "
              f"asked {args.perf_rate} frames/s, achieved {r['achieved']:.0f}, 5 s; "
              f"`perf record -e cpu-clock -F 1000 --call-graph dwarf -p WSAUDIT`)\n")
        print("Self time, symbols above 1.5%:\n\n```")
        print(self_txt)
        print("```\n\nWith callees (children), above 5%:\n\n```")
        print(child_txt)
        print("```")


if __name__ == "__main__":
    main()

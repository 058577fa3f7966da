#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The frame rate wsaudit follows with full attribution (issue 7, section 3, with Python).

bench/capacity.py drives a C writer, which has no Python stack: its figures are capture
figures.  This drives the Python service of bench/service_cost.py (FastAPI + uvicorn +
uvloop under /usr/bin/python3, pinned to CPU 0) at fixed total rates with its clients (one
process, CPU 1), under `wsaudit trace` with full attribution (not pinned), and reports per
rate: the frames the clients received, the frames wsaudit printed and attributed, its drops
and its CPU per 1,000 frames.  Each rate gets a fresh server and a fresh wsaudit, so the
drops of a rate are its own.  Markdown report on stdout.

usage: follow_rate.py [-r REPS] [-s SECONDS] [-n CLIENTS] [--rates R1,R2,...] [-w WSAUDIT]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from service_cost import CPU_CLIENT, CPU_SERVER, HERE as SERVICE, PYTHON, free_port, proc_cpu
from tracer import cpu_when_quiet, start_trace, stop_processes, stop_trace


def wait_listening(port, proc):
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("follow_rate: the server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("follow_rate: the server does not listen")


def run_rate(args, rate):
    port = free_port()
    srv = subprocess.Popen(["taskset", "-c", CPU_SERVER, PYTHON, SERVICE, "--server", "--port",
                            str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True)
    out = tempfile.TemporaryFile()
    ws = None
    try:
        if not srv.stdout.readline().startswith("READY"):
            sys.exit("follow_rate: the server did not start")
        wait_listening(port, srv)
        ws = start_trace([args.wsaudit, "trace", "--standalone", "-p", str(srv.pid), "-o", "json",
                          "--stats-interval", "0"], out, "follow_rate")
        cpu0 = proc_cpu(ws.pid)
        cli = subprocess.run(["taskset", "-c", CPU_CLIENT, PYTHON, SERVICE, "--client",
                              "--phase", "rate", "--port", str(port), "-n", str(args.clients),
                              "-s", str(args.seconds), "--rate", str(rate)],
                             capture_output=True, text=True, timeout=2 * args.seconds + 60)
        if cli.returncode != 0:
            sys.exit(f"follow_rate: client failed: {cli.stderr[-2000:]}")
        got = json.loads(cli.stdout.strip().splitlines()[-1])
        cpu = cpu_when_quiet(proc_cpu, ws.pid) - cpu0
        stats, printed = stop_trace(ws, out, "follow_rate")
        drops = {k: v for k, v in stats["drops"].items() if v and k != "no_entry"}
        return {"rate": rate, "received": got["frames"], "fps": got["fps"], "printed": printed,
                "attributed": stats["attribution"]["attributed"],
                "unattributed": {k: v for k, v in stats["attribution"]["unattributed"].items()
                                 if v},
                "drops": drops, "cpu_ms_per_1000": 1e6 * cpu / max(1, printed)}
    finally:
        stop_processes(ws, srv)
        out.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-r", "--reps", type=int, default=2)
    ap.add_argument("-s", "--seconds", type=float, default=5.0)
    ap.add_argument("-n", "--clients", type=int, default=10)
    ap.add_argument("--rates", default="25000,50000,75000")
    ap.add_argument("-w", "--wsaudit", default="./wsaudit")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("follow_rate: must run as root")
    rates = [int(r) for r in args.rates.split(",")]
    res = {r: [] for r in rates}
    for rep in range(args.reps):
        for rate in rates:
            r = run_rate(args, rate)
            res[rate].append(r)
            print(f"follow_rate: rep {rep}: {json.dumps(r)}", file=sys.stderr)
    print("## follow_rate: the rate wsaudit follows with full attribution (issue 7)\n")
    print(f"FastAPI 0.92 + uvicorn 0.17.6 + uvloop under `{PYTHON}` on CPU {CPU_SERVER}, "
          f"{args.clients} clients on CPU {CPU_CLIENT}, `wsaudit trace -o json` (full "
          f"attribution, output to a file) not pinned; {args.seconds:g} s per run, "
          f"{args.reps} runs per rate, a fresh server and wsaudit per run.  Each run on its "
          f"own line.\n")
    print("| target frames/s | received frames/s | frames received | printed by wsaudit | "
          "attributed | drops | wsaudit CPU ms per 1,000 frames |")
    print("|---|---|---|---|---|---|---|")
    for rate in rates:
        for r in res[rate]:
            print(f"| {rate} | {r['fps']:.0f} | {r['received']} | {r['printed']} | "
                  f"{r['attributed']} | {json.dumps(r['drops']) if r['drops'] else 0} | "
                  f"{r['cpu_ms_per_1000']:.1f} |")
    print()
    for rate in rates:
        cpu = statistics.median(r["cpu_ms_per_1000"] for r in res[rate])
        print(f"- {rate} frames/s: zero drops in "
              f"{sum(1 for r in res[rate] if not r['drops'])} of {len(res[rate])} runs; "
              f"wsaudit CPU {cpu:.1f} ms per 1,000 frames (median)")
    if 50000 in res:
        ok = all(not r["drops"] for r in res[50000])
        print(f"\n- Goal (issue 7): zero drops at 50,000 frames/s with full attribution: "
              f"**{'met' if ok else 'not met'}**.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""What TLS capture adds per frame (issue 14), against the same service with plaintext capture.

The service is this file run with --server: Debian's python3-websockets on plain asyncio, one
process, serving ws:// or, with --tls, wss:// with its own ssl.SSLContext (a self-signed P-256
certificate made with the openssl command).  BPF time is bpf_stats' run time of every program
of wsaudit (a program's tail calls count in it), over the frames: the syscall exits run for
every process of the machine, whose writes add noise to both modes; the tls_* column is the
libssl probes alone (the stack walk and the emitter they enter included).  A client (--client, websockets, one connection)
asks for N text frames of SIZE bytes, written one by one by `stream` with ws.send, and reads
them all; compression is off, so the frames are the same bytes in both modes.

Configurations, one batch each per repetition, order rotated, a fresh server each:
  ws        plaintext, not traced
  ws+trace  plaintext, wsaudit trace -p SERVER -o json (full attribution)
  wss       TLS, not traced
  wss+trace TLS, traced: the plaintext read at SSL_write by the libssl probes (docs/tls.md)
Per batch: the service's CPU (utime+stime) while the client runs, divided by the frames; with
a tracer, wsaudit's CPU once it is idle and the run time of its BPF programs
(kernel.bpf_stats_enabled=1) over the frames its stats record counts.  Markdown on stdout.

usage: tls_cost.py [-r REPS] [-f FRAMES] [--size BYTES] [--quick]
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

from tracer import bpf_prog_stats, cpu_when_quiet, free_port, start_trace, stop_trace

PYTHON = "/usr/bin/python3"
HERE = os.path.abspath(__file__)
WSAUDIT = os.path.join(os.path.dirname(HERE), "..", "wsaudit")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def stream(ws, n, size):
    payload = "x" * size
    for _ in range(n):
        await ws.send(payload)


async def serve(port, cert, key):
    import ssl

    import websockets

    async def handler(ws, path=None):
        async for req in ws:
            n, size = map(int, req.split())
            await stream(ws, n, size)

    ctx = None
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    async with websockets.serve(handler, "127.0.0.1", port, ssl=ctx, compression=None,
                                max_queue=None):
        print("READY", flush=True)
        await asyncio.Future()


async def client(port, tls, n, size):
    import ssl

    import websockets

    ctx = None
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    uri = "%s://127.0.0.1:%d/" % ("wss" if tls else "ws", port)
    async with websockets.connect(uri, ssl=ctx, compression=None, max_queue=None) as ws:
        await ws.send("%d %d" % (n, size))
        for _ in range(n):
            await ws.recv()


def batch(cfg, frames, size, cert):
    tls, traced = cfg.startswith("wss"), cfg.endswith("+trace")
    port = free_port()
    argv = [PYTHON, HERE, "--server", "--port", str(port)]
    if tls:
        argv += ["--cert", cert[0], "--key", cert[1]]
    srv = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        if srv.stdout.readline().strip() != "READY":
            sys.exit(f"{cfg}: the service did not start")
        trace = out = None
        if traced:
            out = tempfile.TemporaryFile()
            trace = start_trace([WSAUDIT, "trace", "--standalone", "-p", str(srv.pid), "-o",
                                 "json"], out, cfg)
            bpf0 = bpf_prog_stats(trace.pid)
            cpu0 = cpu_of(trace.pid)
        s0 = cpu_of(srv.pid)
        t0 = time.monotonic()
        subprocess.run([PYTHON, HERE, "--client", "--port", str(port), "-f", str(frames),
                        "--size", str(size)] + (["--tls"] if tls else []), check=True)
        wall = time.monotonic() - t0
        r = {"service_us": (cpu_of(srv.pid) - s0) / frames * 1e6, "wall_us": wall / frames * 1e6}
        if traced:
            r["wsaudit_us"] = (cpu_when_quiet(cpu_of, trace.pid) - cpu0) / frames * 1e6
            bpf1 = bpf_prog_stats(trace.pid)
            # bpf_stats times a program from its hook to its end, tail calls included, and
            # not the programs entered by tail call on their own.  All of wsaudit's programs:
            # the syscall exits run for every process of the machine too (noise, in both
            # modes); the tls_* ones run for the service's SSL calls only.
            d = {k: bpf1[k][0] - bpf0.get(k, [0, 0])[0] for k in bpf1}
            r["bpf_ns"] = sum(d.values()) / frames
            r["tls_bpf_ns"] = sum(v for k, v in d.items() if k.startswith("tls_")) / frames
            stats, seen = stop_trace(trace, out, cfg)
            r["frames"] = seen
            r["drops"] = stats["drops_total"]
        return r
    finally:
        srv.kill()
        srv.wait()


def med(rs, key):
    v = [r[key] for r in rs if key in r]
    return (min(v), statistics.median(v), max(v)) if v else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", action="store_true")
    ap.add_argument("--client", action="store_true")
    ap.add_argument("--port", type=int)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("-f", "--frames", type=int, default=20000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.server:
        asyncio.run(serve(a.port, a.cert, a.key))
        return
    if a.client:
        asyncio.run(client(a.port, a.tls, a.frames, a.size))
        return
    if a.quick:
        a.reps, a.frames = 2, 5000
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("1")
    tmp = tempfile.mkdtemp(prefix="tlsbench.")
    cert = (os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", cert[1], "-out",
                    cert[0], "-days", "2", "-subj", "/CN=127.0.0.1"], check=True,
                   capture_output=True)
    cfgs = ["ws", "ws+trace", "wss", "wss+trace"]
    res = {c: [] for c in cfgs}
    for rep in range(a.reps):
        for c in cfgs[rep % len(cfgs):] + cfgs[:rep % len(cfgs)]:
            res[c].append(batch(c, a.frames, a.size, cert))
    print(f"## TLS capture cost ({a.frames} frames of {a.size} B per batch, {a.reps} "
          f"repetitions; min / median / max)\n")
    print("| configuration | service CPU µs/frame | wall µs/frame | wsaudit CPU µs/frame | "
          "BPF ns/frame (all) | BPF ns/frame (tls_*) | frames reported | drops |")
    print("|---|---|---|---|---|---|---|---|")

    def fmt(t, p=2):
        return "—" if t is None else " / ".join(f"{x:.{p}f}" for x in t)

    for c in cfgs:
        rs = res[c]
        print(f"| {c} | {fmt(med(rs, 'service_us'))} | {fmt(med(rs, 'wall_us'))} | "
              f"{fmt(med(rs, 'wsaudit_us'))} | {fmt(med(rs, 'bpf_ns'), 0)} | "
              f"{fmt(med(rs, 'tls_bpf_ns'), 0)} | "
              f"{', '.join(str(r['frames']) for r in rs) if 'frames' in rs[0] else '—'} | "
              f"{', '.join(str(r['drops']) for r in rs) if 'drops' in rs[0] else '—'} |")
    add = {t: statistics.median(r["service_us"] for r in res[t + "+trace"]) -
           statistics.median(r["service_us"] for r in res[t]) for t in ("ws", "wss")}
    bpf = {t: statistics.median(r["bpf_ns"] for r in res[t + "+trace"]) for t in ("ws", "wss")}
    tls = statistics.median(r["tls_bpf_ns"] for r in res["wss+trace"])
    print(f"\nTracing adds {add['ws']:.2f} µs of service CPU per frame on ws:// and "
          f"{add['wss']:.2f} µs on wss:// (medians); wsaudit's BPF programs run "
          f"{bpf['ws']:.0f} ns per frame on ws:// and {bpf['wss']:.0f} ns on wss:// "
          f"({bpf['wss'] - bpf['ws']:+.0f} ns), of which {tls:.0f} ns in the libssl probes; "
          f"the traps of the uprobe and of its return "
          f"probe are not in the BPF time: they are in the service's CPU.")


if __name__ == "__main__":
    main()

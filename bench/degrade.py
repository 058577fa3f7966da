#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Per-frame writes past capacity: what wsaudit gives up first (issue 19).

The service is this file run with --server: a standard-library asyncio server (no uvloop,
no library), one process pinned to CPU 0, CONNS connections each written one frame per
write() (~300 B of JSON, unmasked) through Bridge.publish -> Manager.send -> writer.write,
paced in 1 ms ticks at RATE frames/s in total (0: as fast as it can), for SECONDS.  The
client (--client, CPU 1) reads and counts every frame.  `wsaudit trace -p SERVER -o json`
(full attribution, output to a file, not pinned, ring buffer --ringbuf-size) follows it.

Per run: frames the client read, frames wsaudit printed, of those attributed and
unattributed stack_lost (the origin given up, the bytes kept and judged), and the drops by
reason: ringbuf_full is a data record lost (bytes, so whole frames: a gap in the stream),
stack_ringbuf_full a stack record lost (an origin).  The degradation order wanted: origins
before frames, so stack_ringbuf_full starts at a lower rate than ringbuf_full.

usage: degrade.py [-r REPS] [-s SECONDS] [--rates R,R,...] [-c CONNS] [--ringbuf-size BYTES]
                  [-w WSAUDIT] [--baseline WSAUDIT]
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from tracer import free_port, proc_cpu, start_trace, stop_trace, ws_frame_header

HERE = os.path.abspath(__file__)
PYTHON = "/usr/bin/python3"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload):
    n = len(payload)
    hdr = bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + n.to_bytes(2, "big")
    return hdr + payload


class Manager:
    def send(self, writer, data):
        writer.write(data)


class Bridge:
    def __init__(self):
        self.manager = Manager()

    def publish(self, writer, user, seq):
        ev = {"type": "agent_update", "user_id": user, "seq": seq,
              "run": {"id": f"run-{user}", "step": seq, "status": "running"},
              "message": {"role": "assistant", "content": "x" * 160}}
        self.manager.send(writer, frame(json.dumps(ev).encode()))


async def handler(reader, writer, rate, seconds):
    head = await reader.readuntil(b"\r\n\r\n")
    key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
           if ln.lower().startswith(b"sec-websocket-key:")][0]
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    await writer.drain()
    bridge, user, seq = Bridge(), f"u{id(writer) % 1000}", 0
    start = time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        # What the rate owes by now (timers are late on a loaded machine), at most 64 a turn.
        owed = min(64, int(rate * (now - start)) - seq) if rate else 64
        for _ in range(owed):
            bridge.publish(writer, user, seq)
            seq += 1
        await writer.drain()
        if rate:
            await asyncio.sleep(0.001)
    writer.write(b"\x88\x02\x03\xe8")
    await writer.drain()
    print(f"SENT {seq + 1}", flush=True)
    writer.close()


async def serve(port, conns, rate, seconds):
    srv = await asyncio.start_server(
        lambda r, w: handler(r, w, rate / conns, seconds), "127.0.0.1", port)
    print(f"READY pid={os.getpid()}", flush=True)
    async with srv:
        await srv.serve_forever()


def client(port, conns):
    sel, bufs, got = selectors.DefaultSelector(), {}, 0
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        b = b""
        while b"\r\n\r\n" not in b:
            b += s.recv(65536)
        bufs[s] = b.split(b"\r\n\r\n", 1)[1]
        sel.register(s, selectors.EVENT_READ)
    open_ = conns
    while open_:
        for k, _ in sel.select(30):
            s = k.fileobj
            chunk = s.recv(1 << 20)
            b = bufs[s] + chunk
            pos = 0
            while True:
                h = ws_frame_header(b, pos)
                if h is None:
                    break
                op, off, n = h
                got += 1
                pos = off + n
            bufs[s] = b[pos:]
            if not chunk:
                sel.unregister(s)
                s.close()
                open_ -= 1
    print(f"GOT {got}", flush=True)


def run(wsaudit, rate, args):
    port = free_port()
    srv = subprocess.Popen(["taskset", "-c", "0", PYTHON, HERE, "--server", "--port", str(port),
                            "-c", str(args.conns), "--rate", str(rate), "-s", str(args.seconds)],
                           stdout=subprocess.PIPE, text=True)
    line = srv.stdout.readline()
    if not line.startswith("READY"):
        sys.exit(f"degrade: server did not start: {line!r}")
    out = tempfile.TemporaryFile()
    trace = start_trace([wsaudit, "trace", "--standalone", "-p", str(srv.pid), "-o", "json",
                         "--stats-interval", "0", "--ringbuf-size", str(args.ringbuf_size)],
                        out, "degrade")
    cpu0 = proc_cpu(trace.pid)
    cl = subprocess.run(["taskset", "-c", "1", PYTHON, HERE, "--client", "--port", str(port),
                         "-c", str(args.conns)], capture_output=True, text=True,
                        timeout=args.seconds + 120)
    got = int(cl.stdout.split()[-1]) if cl.stdout.startswith("GOT") else 0
    time.sleep(0.5)
    cpu = proc_cpu(trace.pid) - cpu0
    stats, printed = stop_trace(trace, out, "degrade")
    srv.kill()
    srv.wait()
    un = stats["attribution"]["unattributed"]
    return {"got": got, "rate": got / args.seconds, "printed": printed,
            "attributed": stats["attribution"]["attributed"], "stack_lost": un.get("stack_lost", 0),
            "deferred": un.get("deferred_write", 0),
            "ringbuf_full": stats["drops"]["ringbuf_full"],
            "stack_ringbuf_full": stats["drops"]["stack_ringbuf_full"],
            "gap_bytes": stats["kernel"]["lost_bytes"], "cpu_us": cpu * 1e6 / max(1, printed)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, default=0, help=argparse.SUPPRESS)
    ap.add_argument("-r", "--reps", type=int, default=2)
    ap.add_argument("-s", "--seconds", type=float, default=3)
    ap.add_argument("-c", "--conns", type=int, default=2)
    ap.add_argument("--rates", default="10000,25000,50000,0")
    ap.add_argument("--ringbuf-size", type=int, default=8 << 20)
    ap.add_argument("-w", "--wsaudit", default=os.path.join(os.path.dirname(HERE), "..",
                                                           "wsaudit"))
    ap.add_argument("--baseline", metavar="WSAUDIT")
    args = ap.parse_args()
    if args.server:
        asyncio.run(serve(args.port, args.conns, args.rate, args.seconds))
        return
    if args.client:
        client(args.port, args.conns)
        return
    builds = [("this build", args.wsaudit)] + ([("baseline", args.baseline)]
                                               if args.baseline else [])
    rates = [int(r) for r in args.rates.split(",")]
    res = {}
    for rep in range(args.reps):
        for rate in rates if rep % 2 == 0 else rates[::-1]:
            for name, w in builds if rep % 2 == 0 else builds[::-1]:
                r = run(w, rate, args)
                res.setdefault((name, rate), []).append(r)
                print(f"degrade: {name} rate {rate or 'max'}: {r}", file=sys.stderr, flush=True)
    print(f"## degrade: per-frame writes past capacity (issue 19)\n\nstdlib asyncio, "
          f"{args.conns} connections, one ~300 B frame per write(), {args.seconds:g} s per run, "
          f"ring buffer {args.ringbuf_size} B, {args.reps} runs per cell (medians).\n")
    print("| build | asked frames/s | read by the client /s | printed | attributed | "
          "stack_lost | deferred_write | stack records dropped | data records dropped | "
          "bytes lost | wsaudit CPU µs/frame |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
    for (name, rate), rs in res.items():
        print(f"| {name} | {rate or 'max'} | {med(rs, 'rate'):.0f} | {med(rs, 'printed'):.0f} "
              f"of {med(rs, 'got'):.0f} | {med(rs, 'attributed'):.0f} | "
              f"{med(rs, 'stack_lost'):.0f} | {med(rs, 'deferred'):.0f} | "
              f"{med(rs, 'stack_ringbuf_full'):.0f} | {med(rs, 'ringbuf_full'):.0f} | "
              f"{med(rs, 'gap_bytes'):.0f} | {med(rs, 'cpu_us'):.1f} |")


if __name__ == "__main__":
    main()

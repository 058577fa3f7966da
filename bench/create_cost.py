#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Creation cost (issue 20): what tracing adds to a service that creates many tasks, callbacks
and thread-pool jobs that never send.

Linking a frame to the code that created its work (docs/policy.md, test_causal.py) means
hooking the creation of every asyncio Task, every scheduled handle and every thread-pool job
in a traced process, sends or not.  The worker (Debian /usr/bin/python3, this file with
--worker) is such a service: it holds one WebSocket connection open (so wsaudit follows a
WebSocket process, not an idle one), and on command runs one batch of each kind, timing the
whole batch on the worker thread's CPU clock (time.thread_time_ns) and on the wall clock:

  task       asyncio.create_task(coro()) of a coroutine that returns at once, awaited in
             chunks of 500
  call_soon  loop.call_soon(callback) of a callback that does nothing, waited in chunks of 500
  to_thread  asyncio.to_thread(callable) of a callable that does nothing (the default
             thread-pool executor: run_in_executor)

The driver (this file) runs each repetition once per configuration, order rotated
(interleaved, so drift of a shared machine hits both alike):

  none   no tracer
  trace  wsaudit trace --standalone -p WORKER -o json (whatever creation hooks the build
         attaches to a traced process)

The report (markdown, stdout): per kind, the median over the repetitions of ns per creation,
min and max, on both clocks, and trace/none as a ratio of medians and paired by repetition
(median of the per-repetition ratios).  wsaudit's final stats record is checked for drops and
its counters that name links, if any, are shown.

Exit status: 0; 1 on a runtime failure.

usage: create_cost.py [-r REPS] [-n CREATIONS] [--threads CREATIONS] [-w WSAUDIT]
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from tracer import start_trace

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
PYTHON = "/usr/bin/python3"
KINDS = ("task", "call_soon", "to_thread")
CHUNK = 500


# ---------------------------------------------------------------- worker (traced process)


async def nothing():
    return None


def nothing_sync():
    return None


async def batch_task(n):
    for i in range(0, n, CHUNK):
        tasks = [asyncio.create_task(nothing()) for _ in range(min(CHUNK, n - i))]
        await asyncio.gather(*tasks)


async def batch_call_soon(n):
    loop = asyncio.get_running_loop()
    for i in range(0, n, CHUNK):
        done = loop.create_future()
        k = min(CHUNK, n - i)
        for _ in range(k - 1):
            loop.call_soon(nothing_sync)
        loop.call_soon(done.set_result, None)
        await done


async def batch_to_thread(n):
    for _ in range(n):
        await asyncio.to_thread(nothing_sync)


BATCH = {"task": batch_task, "call_soon": batch_call_soon, "to_thread": batch_to_thread}


async def worker(args):
    conn_ready = asyncio.Event()
    state = {}

    async def on_conn(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + ACCEPT + b"\r\n\r\n")
        writer.write(b"\x81\x05hello")
        await writer.drain()
        state["writer"] = writer
        conn_ready.set()
        try:
            await reader.read()
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"READY pid={os.getpid()} port={port}", flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while True:
        line = (await stdin.readline()).decode().split()
        if not line or line[0] == "quit":
            break
        if line[0] == "wait_conn":
            await conn_ready.wait()
            print("CONN", flush=True)
            continue
        out = {}
        for kind in KINDS:
            n = int(line[2]) if kind == "to_thread" else int(line[1])
            c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
            await BATCH[kind](n)
            t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
            out[kind] = {"cpu": (c1 - c0) / n, "wall": (t1 - t0) / n, "n": n}
        # One frame after the batch: the traced process still sends, and wsaudit sees it.
        state["writer"].write(b"\x81\x04done")
        print(json.dumps(out), flush=True)
    server.close()


# ---------------------------------------------------------------- driver


def wsaudit_start(wsaudit, pid):
    out = tempfile.TemporaryFile()
    proc = start_trace([wsaudit, "trace", "--standalone", "-p", str(pid), "-o", "json"], out,
                       "create_cost")
    proc.outfile = out
    return proc


def wsaudit_stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        sys.exit("create_cost: wsaudit did not exit within 30 s of SIGINT")
    proc.outfile.seek(0)
    stats = None
    for line in proc.outfile.read().decode().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("type") == "stats":
            stats = rec
    proc.outfile.close()
    if proc.returncode != 0:
        sys.exit(f"create_cost: wsaudit exited with status {proc.returncode}")
    if stats is None:
        sys.exit("create_cost: wsaudit printed no stats record")
    return stats


def link_counters(stats, prefix=""):
    """Counters of the stats record that speak of creations or causal links (not TLS's)."""
    out = {}
    for k, v in stats.items():
        path = prefix + k
        if isinstance(v, dict):
            out.update(link_counters(v, path + "."))
        elif isinstance(v, (int, float)) and "tls" not in path and \
                any(w in path for w in ("creat", "causal", "links.", "via")):
            out[path] = v
    return out


def run_batch(worker, port, cfg, args):
    proc = None
    if cfg == "trace":
        proc = wsaudit_start(args.wsaudit, worker.pid)
    # A new connection per batch, once wsaudit traces, so that it follows its handshake.
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY +
              b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    worker.stdin.write("wait_conn\n")
    worker.stdin.flush()
    if worker.stdout.readline().strip() != "CONN":
        sys.exit("create_cost: the worker did not take the connection")
    worker.stdin.write(f"run {args.creations} {args.threads}\n")
    worker.stdin.flush()
    line = worker.stdout.readline()
    if not line:
        sys.exit("create_cost: the worker died")
    res = json.loads(line)
    c.close()
    stats = None
    if proc:
        time.sleep(0.3)
        stats = wsaudit_stop(proc)
    return res, stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("-r", "--reps", type=int, default=5)
    ap.add_argument("-n", "--creations", type=int, default=20000,
                    help="tasks and call_soon handles per batch")
    ap.add_argument("--threads", type=int, default=2000, help="to_thread jobs per batch")
    ap.add_argument("-w", "--wsaudit", default="./wsaudit")
    args = ap.parse_args()
    if args.worker:
        return asyncio.run(worker(args))
    if os.geteuid() != 0:
        sys.exit("create_cost: must run as root")
    w = subprocess.Popen([PYTHON, os.path.abspath(__file__), "--worker"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    cfgs = ["none", "trace"]
    res = {c: [] for c in cfgs}
    stats = []
    try:
        ready = w.stdout.readline().split()
        if not ready or ready[0] != "READY":
            sys.exit("create_cost: the worker did not start")
        port = int(dict(x.split("=") for x in ready[1:])["port"])
        # One untimed batch first: imports, the thread pool's threads, the allocator's arenas.
        run_batch(w, port, "none", args)
        for rep in range(args.reps):
            order = cfgs if rep % 2 == 0 else cfgs[::-1]
            for cfg in order:
                r, st = run_batch(w, port, cfg, args)
                res[cfg].append(r)
                if st is not None:
                    stats.append(st)
                print(f"create_cost: rep {rep} {cfg}: " + ", ".join(
                    f"{k} {r[k]['cpu']:.0f} ns cpu" for k in KINDS), file=sys.stderr)
        w.stdin.write("quit\n")
        w.stdin.flush()
        w.wait(10)
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
    return report(args, cfgs, res, stats)


def report(args, cfgs, res, stats):
    print("## create_cost: creating tasks, callbacks and thread-pool jobs that never send "
          "(issue 20)\n")
    print(f"`/usr/bin/python3` ({sys.version.split()[0]}) asyncio worker (selector loop) with "
          f"one WebSocket connection open; per batch {args.creations} `create_task` of a "
          f"coroutine that returns at once, {args.creations} `call_soon` of an empty callback "
          f"and {args.threads} `to_thread` of an empty callable; {args.reps} repetitions, "
          f"no wsaudit and `wsaudit trace -p` interleaved (order alternated).  Figures: ns "
          f"per creation over the whole batch (creation, scheduling and running the empty "
          f"work), on the worker thread's CPU clock and on the wall clock.\n")
    for clock in ("cpu", "wall"):
        print(f"### {clock} clock: ns per creation (median / min / max over the repetitions)\n")
        print("| kind | no wsaudit | wsaudit trace | ratio of medians | ratio, paired median |")
        print("|---|---|---|---|---|")
        for k in KINDS:
            v = {c: [r[k][clock] for r in res[c]] for c in cfgs}
            m = {c: statistics.median(v[c]) for c in cfgs}
            paired = statistics.median(t / n for t, n in zip(v["trace"], v["none"]))
            cell = {c: f"{m[c]:.0f} / {min(v[c]):.0f} / {max(v[c]):.0f}" for c in cfgs}
            print(f"| {k} | {cell['none']} | {cell['trace']} | {m['trace'] / m['none']:.3f} | "
                  f"{paired:.3f} |")
        print()
    drops = sum(s.get("drops_total") or 0 for s in stats)
    links = {}
    for s in stats:
        for k, v in link_counters(s).items():
            links[k] = links.get(k, 0) + v
    print("### what wsaudit saw\n")
    print(f"- drops over the traced batches: {drops}")
    if links:
        print("- link counters of its stats records, summed over the traced batches: " +
              ", ".join(f"`{k}` {v}" for k, v in sorted(links.items())))
    else:
        print("- its stats records have no counter of links or creations: this build attaches "
              "no creation hook, and the ratios above are tracing without them (the baseline "
              "the hooks are measured against)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

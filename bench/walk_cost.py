#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Walk cost (issue 4): the time the BPF Python stack walk adds to a captured WebSocket write.

A sender process (Debian /usr/bin/python3, this file with --sender) accepts a loopback connection,
reads the client's upgrade request, answers 101 and then sends small unmasked binary frames from a
recursion that makes the Python stack 32 frames deep at the send, timing each sock.send() with
time.perf_counter_ns().  The driver (this file) is the client: it connects, does the handshake and
drains the frames in a thread.  Each repetition runs one batch per configuration, order rotated:

  none     no tracer
  floor    .output/bench/bench_floor_attach: an empty program on every hook point wsaudit
           attaches (the floor the kernel-path figures of issue 7 are compared with)
  capture  wsaudit trace --capture-only -p SENDER -o json
  walk     wsaudit trace -p SENDER -o json (full attribution: the stack walk at the write's exit)

Every batch opens a new connection once wsaudit (if any) prints "wsaudit: tracing", so that the
collector sees the handshake.  wsaudit's frame records are checked: in "walk" every frame must be
attributed to the innermost benchmark function, in "capture" none is; its stats record gives the
drops.  The report (markdown, stdout) gives per configuration the median, min and max over the
repetitions of each batch's median send time on two clocks (the sending thread's CPU time, which
the goal is judged on, and wall time), and walk - capture paired by repetition.  With --bpf-stats,
kernel.bpf_stats_enabled is switched on for the run (and restored) and the run time of each of
wsaudit's BPF programs is reported from /proc/WSAUDIT/fdinfo.

Exit status: 0; 1 when a full-walk run did not attribute every frame to the benchmark function
(the figure would not be that of complete walks) or on a runtime failure.

usage: walk_cost.py [-r REPS] [-n SENDS] [-w WSAUDIT] [--depth N] [--size BYTES] [--bpf-stats]
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from tracer import bpf_prog_stats, start_floor, start_trace, stop_processes

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
PYTHON = "/usr/bin/python3"
# The sender and the driver's reader share one CPU (across CPUs each send that wakes the sleeping
# reader pays an inter-processor wake-up, see bench/README.md), wsaudit has the other, so that the
# figure is the write path's and not the sender waiting for a CPU that wsaudit's user space holds.
BPF_STATS = False
FLOOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".output", "bench",
                     "bench_floor_attach")
CPU_SENDER = "0"
SLICE = 200
CPU_OTHER = "1"


def recv_until(sock, marker, limit=65536):
    buf = b""
    while marker not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("peer closed during handshake")
        buf += chunk
        if len(buf) > limit:
            raise ConnectionError("handshake too long")
    return buf


# ---------------------------------------------------------------- sender (traced process)


def sender_send_batch(sock, frame, count, times):
    send = sock.send
    clock = time.perf_counter_ns
    cpu = time.thread_time_ns
    wall, cput = times
    for _ in range(count):
        c0 = cpu()
        t0 = clock()
        send(frame)
        t1 = clock()
        c1 = cpu()
        wall.append(t1 - t0)
        cput.append(c1 - c0)


def sender_recurse(level, sock, frame, count, times):
    if level > 0:
        return sender_recurse(level - 1, sock, frame, count, times)
    return sender_send_batch(sock, frame, count, times)


def sender_main(args):
    import traceback

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    payload = b"x" * args.size
    frame = bytes([0x82, len(payload)]) + payload if args.size < 126 else None
    if frame is None:
        sys.exit("walk_cost: --size must be below 126")

    # How deep the stack is at sender_send_batch with no recursion: the recursion makes up the rest.
    def probe():
        return len(traceback.extract_stack())

    def probe_recurse(level):
        if level > 0:
            return probe_recurse(level - 1)
        return probe()

    # probe_recurse and probe stand where sender_recurse and sender_send_batch will.
    levels = 0
    while probe_recurse(levels) < args.depth and levels < 1000:
        levels += 1
    probe_depth = probe_recurse(levels)
    print(f"READY pid={os.getpid()} port={lsock.getsockname()[1]} depth={probe_depth}", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        count = int(cmd[1])
        conn, _ = lsock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        recv_until(conn, b"\r\n\r\n")
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + ACCEPT + b"\r\n\r\n"
        )
        times = ([], [])
        # Sent in slices; after each, the driver waits until wsaudit has read the ring buffer
        # dry (its user space takes far longer per attributed frame than the write), so that
        # the figure is that of the write path and not of a full ring buffer, where the walk
        # is skipped.
        left = count
        while left > 0:
            n = min(left, SLICE)
            sender_recurse(levels, conn, frame, n, times)
            left -= n
            print("slice", flush=True)
            if sys.stdin.readline().strip() != "go":
                sys.exit("walk_cost sender: the driver is gone")
        conn.close()
        out = {}
        for name, t in zip(("wall", "cpu"), times):
            t.sort()
            out[name] = {"median": statistics.median(t), "min": t[0],
                         "p90": t[len(t) * 9 // 10], "n": len(t)}
        print(json.dumps(out), flush=True)


# ---------------------------------------------------------------- driver


class Drain(threading.Thread):
    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock = sock
        self.bytes = 0

    def run(self):
        try:
            while True:
                b = self.sock.recv(1 << 16)
                if not b:
                    return
                self.bytes += len(b)
        except OSError:
            return


def wsaudit_start(wsaudit, pid, capture_only):
    cmd = ["taskset", "-c", CPU_OTHER, wsaudit, "trace", "--standalone", "-p", str(pid), "-o", "json", "--stats-interval", "0"]
    if capture_only:
        cmd.append("--capture-only")
    # Its output goes to a file: a pipe read only at the end would fill, block wsaudit's writes
    # and with them its reading of the ring buffer.
    out = tempfile.TemporaryFile()
    proc = start_trace(cmd, out, "walk_cost")
    proc.outfile = out
    return proc


def wsaudit_stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        sys.exit("walk_cost: wsaudit did not exit within 30 s of SIGINT")
    proc.outfile.seek(0)
    out = proc.outfile.read()
    proc.outfile.close()
    if proc.returncode != 0:
        sys.exit(f"walk_cost: wsaudit exited with status {proc.returncode}")
    frames, stats = [], None
    for line in out.decode().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("type") == "frame":
            frames.append(rec)
        elif rec.get("type") == "stats":
            stats = rec
            if os.environ.get("WALK_COST_DEBUG"):
                print(line, file=sys.stderr)
    return frames, stats


def cpu_quiet(pid, limit=5.0):
    """Waits until the CPU time of pid stops growing for 60 ms (more than wsaudit's 50 ms poll)."""
    def cpu():
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    deadline = time.monotonic() + limit
    last, still = cpu(), 0
    while time.monotonic() < deadline and still < 3:
        time.sleep(0.02)
        now = cpu()
        still = still + 1 if now == last else 0
        last = now


def run_batch(sender, port, count, cfg, wsaudit):
    proc = floor = None
    if cfg == "floor":
        floor = start_floor([FLOOR], "walk_cost")
    elif cfg != "none":
        proc = wsaudit_start(wsaudit, sender.pid, cfg == "capture")
    sender.stdin.write(f"run {count}\n")
    sender.stdin.flush()
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY +
              b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    recv_until(c, b"\r\n\r\n")
    d = Drain(c)
    d.start()
    while True:
        line = sender.stdout.readline()
        if line.strip() != "slice":
            break
        if proc:
            cpu_quiet(proc.pid)
        else:
            time.sleep(0.02)
        sender.stdin.write("go\n")
        sender.stdin.flush()
    if not line:
        sys.exit("walk_cost: the sender died")
    res = json.loads(line)
    d.join(10)
    c.close()
    stop_processes(floor)
    check = None
    if proc:
        time.sleep(0.3)
        bpf = bpf_prog_stats(proc.pid) if BPF_STATS else None
        frames, stats = wsaudit_stop(proc)
        data = frames
        attributed = sum(1 for f in data if f.get("origin")
                         and f["origin"].get("function") == "sender_send_batch")
        if stats is None:
            sys.exit("walk_cost: wsaudit printed no stats record")
        # Frames counted by wsaudit's own stats (the printed records are checked for the origin).
        check = {"frames": stats.get("frames", 0), "printed": len(data),
                 "attributed": attributed,
                 "stacks": stats.get("attribution", {}).get("stacks", 0),
                 "drops": stats.get("drops_total"),
                 "drop_reasons": {k: v for k, v in stats.get("drops", {}).items() if v},
                 "bpf": bpf}
    return res, check


def fmt_us(ns):
    return f"{ns / 1000:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sender", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("-r", "--reps", type=int, default=7)
    ap.add_argument("-n", "--sends", type=int, default=4000)
    ap.add_argument("-w", "--wsaudit", default="./wsaudit")
    ap.add_argument("--depth", type=int, default=32)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--bpf-stats", action="store_true",
                    help="switch kernel.bpf_stats_enabled on for the run (restored after) and "
                         "report the run time of wsaudit's BPF programs")
    args = ap.parse_args()
    if args.sender:
        return sender_main(args)
    if os.geteuid() != 0:
        sys.exit("walk_cost: must run as root")
    global BPF_STATS
    os.sched_setaffinity(0, {int(CPU_SENDER)})
    stats_path = "/proc/sys/kernel/bpf_stats_enabled"
    stats_was = None
    if args.bpf_stats:
        with open(stats_path) as f:
            stats_was = f.read().strip()
        with open(stats_path, "w") as f:
            f.write("1")
        BPF_STATS = True
    sender = subprocess.Popen(["taskset", "-c", CPU_SENDER, PYTHON, os.path.abspath(__file__), "--sender", "--depth",
                               str(args.depth), "--size", str(args.size)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready = sender.stdout.readline().split()
        kv = dict(x.split("=") for x in ready[1:])
        port, depth = int(kv["port"]), int(kv["depth"])
        cfgs = ["none", "floor", "capture", "walk"]
        res = {c: [] for c in cfgs}
        checks = {c: [] for c in cfgs}
        for rep in range(args.reps):
            order = cfgs[rep % len(cfgs):] + cfgs[:rep % len(cfgs)]
            for cfg in order:
                r, chk = run_batch(sender, port, args.sends, cfg, args.wsaudit)
                res[cfg].append(r)
                checks[cfg].append(chk)
                print(f"walk_cost: rep {rep} {cfg}: wall median {r['wall']['median']} ns, "
                      f"cpu median {r['cpu']['median']} ns"
                      f"{'' if chk is None else ', wsaudit ' + json.dumps(chk)}", file=sys.stderr)
        sender.stdin.write("quit\n")
        sender.stdin.flush()
        sender.wait(10)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
        if stats_was is not None:
            with open(stats_path, "w") as f:
                f.write(stats_was)
    return report(args, depth, cfgs, res, checks)


def report(args, depth, cfgs, res, checks):
    print("## walk_cost: the Python stack walk per captured write (issue 4)\n")
    print(f"`/usr/bin/python3` ({sys.version.split()[0]}) sender, stack {depth} Python frames deep "
          f"at each `sock.send()` of a {args.size} B binary frame (+2 B header) on loopback, "
          f"pinned with its reader to CPU {CPU_SENDER} (wsaudit on CPU {CPU_OTHER}); {args.sends} "
          f"timed sends per batch in slices of {SLICE}, each followed by a wait until "
          f"wsaudit's CPU time stops growing (it has read its ring buffer), {args.reps} repetitions, "
          f"configurations interleaved (order rotated), each traced batch on a connection opened "
          f"once wsaudit traces.  Two clocks around each call: wall "
          f"(`time.perf_counter_ns()`) and the sender thread's CPU time (`time.thread_time_ns()`, "
          f"which holds the syscall and the BPF programs run in it, and leaves out waiting for a "
          f"CPU).\n")
    names = {"none": "no wsaudit",
             "floor": "floor: empty programs on wsaudit's hook points (not a WebSocket)",
             "capture": "`wsaudit trace --capture-only`", "walk": "`wsaudit trace` (full walk)"}
    rc = 0
    for clock in ("cpu", "wall"):
        print(f"### {clock} clock: batch medians, us per send (median / min / max over the "
              f"repetitions)\n")
        print("| configuration | median | min | max |")
        print("|---|---|---|---|")
        for c in cfgs:
            v = [r[clock]["median"] for r in res[c]]
            print(f"| {names[c]} | {fmt_us(statistics.median(v))} | {fmt_us(min(v))} | "
                  f"{fmt_us(max(v))} |")
        med = {c: [r[clock]["median"] for r in res[c]] for c in cfgs}
        walk_add = [w - c for w, c in zip(med["walk"], med["capture"])]
        cap_add = [c - n for c, n in zip(med["capture"], med["none"])]
        print()
        print("Added time, paired by repetition (us per send: median / min / max):\n")
        print(f"- capture only - no wsaudit: {fmt_us(statistics.median(cap_add))} / "
              f"{fmt_us(min(cap_add))} / {fmt_us(max(cap_add))}")
        print(f"- **the walk: full - capture only: {fmt_us(statistics.median(walk_add))} / "
              f"{fmt_us(min(walk_add))} / {fmt_us(max(walk_add))}**")
        floor_add = [f - n for f, n in zip(med["floor"], med["none"])]
        print(f"- the floor: empty programs - no wsaudit: "
              f"{fmt_us(statistics.median(floor_add))} / {fmt_us(min(floor_add))} / "
              f"{fmt_us(max(floor_add))}")
        fl = statistics.median(floor_add)
        if fl > 0:
            print(f"- as multiples of the floor's added time (issue 7, kernel path): capture "
                  f"{statistics.median(cap_add) / fl:.2f}, capture with the 32-frame walk "
                  f"{statistics.median([w - n for w, n in zip(med['walk'], med['none'])]) / fl:.2f}")
        goal = statistics.median(walk_add) <= 1500
        print(f"\nGoal (issue 4), {clock} clock: the walk adds at most 1.5 us at the median: "
              f"**{'met' if goal else 'not met'}** ({fmt_us(statistics.median(walk_add))} us).\n")
    print("### what wsaudit saw\n")
    print("| configuration | frames (wsaudit stats) | stacks walked | printed with origin "
          "`sender_send_batch` | drops | drop reasons |")
    print("|---|---|---|---|---|---|")
    for c in ("capture", "walk"):
        fr = sum(x["frames"] for x in checks[c])
        at = sum(x["attributed"] for x in checks[c])
        st = sum(x["stacks"] for x in checks[c])
        dr = sum(x["drops"] or 0 for x in checks[c])
        reasons = {}
        for x in checks[c]:
            for k, v in x["drop_reasons"].items():
                if isinstance(v, (int, float)):
                    reasons[k] = reasons.get(k, 0) + v
        print(f"| {names[c]} | {fr} | {st} | {at} | {dr} | {json.dumps(reasons) if reasons else '-'} |")
    if BPF_STATS:
        print("\n### wsaudit's BPF programs (kernel.bpf_stats_enabled=1 during the run)\n")
        print("Run time per run of each program that ran, and in total per frame sent (median "
              "over the repetitions; a tail-called program's time is in its caller's).\n")
        print("| program | capture only: ns per run | runs per batch | full walk: ns per run "
              "| runs per batch |")
        print("|---|---|---|---|---|")
        progs = sorted({n for c in ("capture", "walk") for x in checks[c] for n in x["bpf"]})
        tot = {}
        for n in progs:
            row = []
            for c in ("capture", "walk"):
                per = [x["bpf"][n][0] / x["bpf"][n][1] for x in checks[c]
                       if n in x["bpf"] and x["bpf"][n][1]]
                cnt = [x["bpf"][n][1] for x in checks[c] if n in x["bpf"]]
                row += [f"{statistics.median(per):.0f}" if per else "-",
                        f"{statistics.median(cnt):.0f}" if cnt else "-"]
            if row[1] in ("-", "0") and row[3] in ("-", "0"):
                continue
            print(f"| {n} | " + " | ".join(row) + " |")
        for c in ("capture", "walk"):
            tot[c] = statistics.median(sum(v[0] for v in x["bpf"].values()) / args.sends
                                       for x in checks[c])
        print(f"\nAll of wsaudit's BPF programs, ns per frame sent: capture only {tot['capture']:.0f}, "
              f"full walk {tot['walk']:.0f}; the walk's share: "
              f"**{tot['walk'] - tot['capture']:.0f} ns** per write.")
    expected = args.sends * args.reps
    walk_at = sum(x["attributed"] for x in checks["walk"])
    print(f"\n{args.sends * args.reps} frames sent per configuration.  The drops are not frames: "
          f"`no_entry` counts a syscall exit with no entry record (the one in flight when wsaudit "
          f"attaches).")
    if walk_at != expected:
        print(f"\n**wsaudit attributed {walk_at} of {expected} frames to sender_send_batch in "
              f"the full-walk runs.**")
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Start-up of `wsaudit trace`: from its launch to its `wsaudit: tracing` line (issue 11).

Target: an idle /usr/bin/python3 (a CPython the trace attaches to, as in an incident).  Each
configuration runs REPS times, interleaved, quiet and then under load: two other
`wsaudit trace` instances (on their own idle targets) starting and stopping over and over,
as on a node where others run wsaudit too.  Reported per configuration: min, median and max
of the time to the `tracing` line, as measured here, and the load time wsaudit reports in its
banner when it has one.

Configurations:
  standalone       `trace -p PID` loading its own programs
  capture-only     `trace -p PID --capture-only` (no stack walk loaded)
  agent            `trace -p PID` while `wsaudit agent` runs (through the agent's socket),
                   when the binary has the agent path (`--standalone` is known to it)
Each -w WSAUDIT (label=path) is measured, so an older build can be compared with this one.

usage: startup.py [-r REPS] [-w [LABEL=]WSAUDIT]... [--no-load] [--configs a,b,...]
Markdown on stdout.
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"
IDLE = [PYTHON, "-c", "import time; time.sleep(3600)"]


def run_once(cmd, timeout=60):
    """Starts cmd, returns (seconds to the `tracing` line, banner's load ms or None, stderr);
    the trace is stopped with SIGINT once it traces."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err, took = [], None
    try:
        for line in p.stderr:
            s = line.decode(errors="replace")
            err.append(s)
            if "wsaudit: tracing" in s:
                took = time.monotonic() - t0
                break
            if time.monotonic() - t0 > timeout:
                break
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        try:
            p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    text = "".join(err)
    if took is None:
        sys.exit(f"startup: {' '.join(cmd)} did not start tracing:\n{text}")
    m = re.search(r"loaded and verified in (\d+) ms", text)
    return took, int(m.group(1)) if m else None, text


class Churn:
    """Two other instances starting and stopping until stopped: the load."""

    def __init__(self, wsaudit, n=2):
        self.stop = threading.Event()
        self.targets = [subprocess.Popen(IDLE) for _ in range(n)]
        self.starts = 0
        self.threads = [threading.Thread(target=self.loop, args=(wsaudit, t.pid), daemon=True)
                        for t in self.targets]
        for t in self.threads:
            t.start()

    def loop(self, wsaudit, pid):
        own = ["--standalone"] if has_agent_path(wsaudit) else []
        while not self.stop.is_set():
            p = subprocess.Popen([wsaudit, "trace", *own, "-p", str(pid), "-d", "0.2"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            p.wait()
            self.starts += 1

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        for t in self.targets:
            t.kill()
            t.wait()


def start_agent(wsaudit, tmp):
    policy = os.path.join(tmp, "policy.yaml")
    with open(policy, "w") as f:
        # The default policy following nothing on its own: the trace asks for its pid.
        with open(os.path.join(ROOT, "policies", "default.yaml")) as d:
            f.write(re.sub(r"(?m)^  exe: .*$", '  exe: ["/nonexistent/*"]', d.read(), count=1))
    sock = os.path.join(tmp, "agent.sock")
    p = subprocess.Popen([wsaudit, "agent", "-c", policy, "--metrics-addr", "none", "--log",
                          os.path.join(tmp, "agent.log"), "--socket", sock],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    for line in p.stderr:
        if b"agent following" in line or time.monotonic() > deadline:
            break
    threading.Thread(target=p.stderr.read, daemon=True).start()
    return p, sock


def has_agent_path(wsaudit):
    out = subprocess.run([wsaudit, "trace", "--help"], capture_output=True, text=True)
    return "--standalone" in out.stdout


def fmt(v):
    return f"{min(v) * 1000:.0f} / {statistics.median(v) * 1000:.0f} / {max(v) * 1000:.0f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-r", "--reps", type=int, default=5)
    ap.add_argument("-w", "--wsaudit", action="append")
    ap.add_argument("--no-load", action="store_true", help="quiet runs only")
    ap.add_argument("--configs", default="standalone,capture-only,agent")
    args = ap.parse_args()
    builds = []
    for w in args.wsaudit or [os.path.join(ROOT, "wsaudit")]:
        label, _, path = w.rpartition("=")
        builds.append((label or "this build", path))
    configs = args.configs.split(",")

    target = subprocess.Popen(IDLE)
    rows = []
    try:
        for load in [False] + ([] if args.no_load else [True]):
            for label, path in builds:
                churn = Churn(path) if load else None
                tmp = tempfile.mkdtemp()
                try:
                    for cfg in configs:
                        cmd = [path, "trace", "-p", str(target.pid), "-o", "json"]
                        agent = None
                        if cfg == "capture-only":
                            cmd.append("--capture-only")
                        if cfg == "agent":
                            if not has_agent_path(path):
                                continue
                            agent, sock = start_agent(path, tmp)
                            cmd += ["--agent-socket", sock]
                        elif has_agent_path(path):
                            cmd.append("--standalone")
                        times, loads = [], []
                        try:
                            for _ in range(args.reps):
                                took, load_ms, text = run_once(cmd)
                                if cfg == "agent":
                                    assert "through the agent" in text, text
                                times.append(took)
                                if load_ms is not None:
                                    loads.append(load_ms)
                        finally:
                            if agent:
                                agent.send_signal(signal.SIGINT)
                                agent.wait(60)
                        rows.append((label, cfg, "2 others starting and stopping" if load
                                     else "quiet", times, loads))
                finally:
                    if churn:
                        churn.close()
    finally:
        target.kill()
        target.wait()

    print("## Start-up: launch to the `wsaudit: tracing` line (bench/startup.py)\n")
    print(f"{args.reps} runs per row, `trace -p PID -o json` on an idle `{PYTHON}`; "
          "min / median / max in ms.  Load: two other `wsaudit trace` instances starting "
          "and stopping over and over on the same node.  `loaded` is the programs' load "
          "and verification time wsaudit reports in its banner (median).\n")
    print("| build | path | node | to `tracing` (ms) | loaded (ms) |")
    print("|---|---|---|---|---|")
    for label, cfg, load, times, loads in rows:
        lm = f"{statistics.median(loads):.0f}" if loads else "-"
        print(f"| {label} | {cfg} | {load} | {fmt(times)} | {lm} |")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Runs the stand-in once: starts the service on 127.0.0.1, prints its PID, runs the client
driver, stops the service.

  /usr/bin/python3 run.py [--port 0] [--users 3] [--runs 1] [--seed 1] [--leak] [--detached-bypass]
                          [--truth FILE] [--report FILE] [--hold SECONDS]
                          [--go-file PATH] [--check] [--timeout 30] [--fault KIND]...

stdout, in order:
  SERVER pid=N port=P leak=0|1      the service listens (attach a tracer to N now)
  CLIENTS start                     after --hold seconds / once --go-file exists
  CLIENTS done rc=R                 all users finished (R is the client's exit code)
  SERVER stopped rc=R
and with --check the lines of check.py. --port 0 picks a free port. Without --truth and
--report the files go to a temporary directory that is removed at the end. Exit code:
the client's, or check.py's with --check; 1 when the service does not start.
--fault KIND (epipe, raise, after_close, no_completed, out_of_order, missing_event) switches the service's delivery faults on
(STANDIN_FAULTS=1) and adds a user whose run asks for that fault (client.py).
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The interpreter of the service: a test may run it from a copy, to single it out.
PY = os.environ.get("STANDIN_PYTHON", "/usr/bin/python3")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--users", type=int, default=3)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--leak", action="store_true")
    ap.add_argument("--detached-bypass", action="store_true",
                    help="add the fire-and-forget bypass (STANDIN_DETACHED_BYPASS=1)")
    ap.add_argument("--truth")
    ap.add_argument("--report")
    ap.add_argument("--hold", type=float, default=0.0,
                    help="seconds to wait after the service is up, before the clients")
    ap.add_argument("--go-file", help="wait (up to 60 s) until this file exists")
    ap.add_argument("--timeout", type=float, default=30.0, help="client time bound")
    ap.add_argument("--check", action="store_true", help="run check.py on the result")
    ap.add_argument("--ssl-keyfile", help="wss://: the service's key (with --ssl-certfile)")
    ap.add_argument("--ssl-certfile", help="wss://: the service's certificate")
    ap.add_argument("--fault", action="append", default=[],
                    choices=("epipe", "raise", "after_close", "no_completed", "out_of_order",
                             "missing_event"),
                    help="a delivery fault to reproduce (one user each)")
    a = ap.parse_args()

    tmp = None
    if not a.truth or not a.report:
        tmp = tempfile.mkdtemp(prefix="standin.")
    truth = a.truth or os.path.join(tmp, "truth.jsonl")
    report = a.report or os.path.join(tmp, "report.json")
    if os.path.exists(truth):
        os.unlink(truth)
    port = a.port or free_port()
    cmd = [PY, os.path.join(HERE, "server.py"), "--port", str(port), "--truth", truth]
    if a.leak:
        cmd.append("--leak")
    env = dict(os.environ, STANDIN_LEAK="1" if a.leak else "0",
               STANDIN_DETACHED_BYPASS="1" if a.detached_bypass else "0")
    if a.fault:
        env["STANDIN_FAULTS"] = "1"
    if a.ssl_keyfile:
        cmd += ["--ssl-keyfile", a.ssl_keyfile, "--ssl-certfile", a.ssl_certfile]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    rc = 1
    try:
        line = server.stdout.readline()
        if not line.startswith("READY "):
            print("SERVER failed to start: %r" % line, flush=True)
            return 1
        print("SERVER pid=%d port=%d leak=%d" % (server.pid, port, a.leak), flush=True)
        if a.go_file:
            deadline = time.monotonic() + 60
            while not os.path.exists(a.go_file):
                if time.monotonic() > deadline:
                    print("no go file %s after 60 s" % a.go_file, flush=True)
                    return 1
                time.sleep(0.05)
        time.sleep(a.hold)
        print("CLIENTS start", flush=True)
        rc = subprocess.call([PY, os.path.join(HERE, "client.py"), "--port", str(port),
                              "--users", str(a.users), "--runs", str(a.runs),
                              "--seed", str(a.seed), "--timeout", str(a.timeout),
                              "--report", report]
                             + [arg for f in a.fault for arg in ("--fault", f)]
                             + (["--tls"] if a.ssl_keyfile else []))
        print("CLIENTS done rc=%d" % rc, flush=True)
    finally:
        print("SERVER stopped rc=%s" % stop(server), flush=True)
    if a.check:
        sys.stdout.flush()
        rc = subprocess.call([PY, os.path.join(HERE, "check.py"), "--truth", truth,
                              "--report", report, "--leak", "on" if a.leak else "off"])
    if tmp:
        shutil.rmtree(tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())

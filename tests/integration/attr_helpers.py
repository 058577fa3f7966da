# SPDX-License-Identifier: GPL-2.0
"""Helpers of test_attribution.py: the interpreters under test, the ground-truth app of
tests/apps/attr_app and the comparison of wsaudit's origin and stack with the app's log.
"""

import collections
import fnmatch
import glob
import json
import os
import re
import subprocess
import time

from harness import APPS, ROOT

APP = os.path.join(APPS, "attr_app")
SERVER = os.path.join(APP, "server.py")
CLIENT = os.path.join(APP, "client.py")
HOST_PY = "/usr/bin/python3"
PYENV = "/root/.pyenv/versions"
ROOTS = os.environ.get("WSAUDIT_ROOTS", "/var/cache/wsaudit/roots")
PYTHONS = os.path.join(ROOT, "tests", "pythons")
RUN_IN_ROOT = os.path.join(PYTHONS, "run-in-root.sh")
PROVISION = os.path.join(PYTHONS, "provision.sh")
# wsaudit's default transport globs: origin is the innermost frame matching none.
TRANSPORT = ["*/site-packages/*", "*/dist-packages/*", "*/lib/python3*/*", "<frozen *>"]
# Inside a root the repository is mounted read-only here (run-in-root.sh).
ROOT_REPO = "/wsaudit"
ROOT_LOGDIR = "/attrlog"


class Interp:
    """One interpreter under test; exe is None and why says why when it is not available."""

    def __init__(self, label, exe=None, suite=None, why=None):
        self.label, self.exe, self.suite, self.why = label, exe, suite, why

    @property
    def root(self):
        return os.path.join(ROOTS, self.suite) if self.suite else None

    def __repr__(self):
        return self.label


def interpreters():
    found = [Interp("debian-3.11", "/usr/bin/python3.11")]
    for minor in ("3.9", "3.10", "3.11", "3.12", "3.13"):
        paths = sorted(glob.glob(os.path.join(PYENV, minor + ".*", "bin", "python" + minor)))
        if paths:
            found.append(Interp("pyenv-" + paths[-1].split("/")[-3], paths[-1]))
        else:
            found.append(Interp("pyenv-" + minor, why="no pyenv build of %s under %s" % (minor, PYENV)))
    for suite, exe in (("bullseye", "/usr/bin/python3.9"), ("trixie", "/usr/bin/python3.13"),
                       ("sid", "/usr/bin/python3.14")):
        found.append(Interp("debian-%s-%s" % (suite, exe.split("python")[-1]), exe, suite))
    return found


def ensure_root(interp, timeout=900):
    """None when the root is ready (provisioned if needed), else the reason it is not."""
    res = subprocess.run([PROVISION, "--check", interp.suite], capture_output=True, text=True,
                         timeout=60)
    if res.returncode == 4:
        try:
            res = subprocess.run([PROVISION, interp.suite], capture_output=True, text=True,
                                 timeout=timeout)
        except subprocess.TimeoutExpired:
            return "provision.sh %s did not finish within %ds" % (interp.suite, timeout)
    if res.returncode != 0:
        return "provision.sh %s: exit %d: %s" % (interp.suite, res.returncode,
                                                 (res.stderr or res.stdout).strip()[-300:])
    if not os.path.exists(os.path.join(interp.root, interp.exe.lstrip("/"))):
        return "%s missing in %s" % (interp.exe, interp.root)
    return None


class App:
    """server.py under interp; stdout to a file, truth log in workdir/truth.jsonl."""

    def __init__(self, procs, interp, port, workdir):
        self.interp, self.port = interp, port
        self.out_path = os.path.join(workdir, "app.out")
        self.truth_path = os.path.join(workdir, "truth.jsonl")
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        for k in ("PYTHONPATH", "PYTHONHOME", "PYENV_VERSION", "VIRTUAL_ENV"):
            env.pop(k, None)
        if interp.suite:
            server = SERVER.replace(ROOT, ROOT_REPO, 1)
            argv = [RUN_IN_ROOT, "--bind", "%s:%s" % (workdir, ROOT_LOGDIR), interp.suite,
                    interp.exe, server, "--log", ROOT_LOGDIR + "/truth.jsonl"]
        else:
            argv = [interp.exe, SERVER, "--log", self.truth_path]
        argv += ["--port", str(port)]
        self.out = open(self.out_path, "w")
        self.proc = procs.start(argv, stdout=self.out, stderr=subprocess.STDOUT, env=env,
                                cwd="/")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = re.match(r"READY pid=(\d+) port=(\d+) python=(\S+)\n", self.output())
            if m:
                self.pid = int(m.group(1))
                self.version = m.group(3)
                # run-in-root.sh execs all the way down: the spawned PID is the interpreter.
                assert self.pid == self.proc.pid, (self.pid, self.proc.pid)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("%s: app not ready (exit %s): %s" % (
            interp.label, self.proc.poll(), self.output()[-2000:]))

    def output(self):
        with open(self.out_path) as f:
            return f.read()

    def truth(self):
        """{client port: [entries by seq]}; one entry per frame the app wrote."""
        out = collections.defaultdict(list)
        with open(self.truth_path) as f:
            for line in f:
                r = json.loads(line)
                out[r["conn"]].append(r)
        for entries in out.values():
            entries.sort(key=lambda r: r["seq"])
        return dict(out)


def run_client(port, n=2, timeout=60):
    res = subprocess.run([HOST_PY, CLIENT, "--port", str(port), "-n", str(n), "--timeout",
                          str(timeout - 5)], capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, "client failed (%d): %s" % (res.returncode, res.stderr[-2000:])
    conns = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    assert len(conns) == n, res.stdout
    return sorted(conns, key=lambda c: c["index"])


def app_events(output, ports):
    """The app's stdout lines of the connections in ports ({port: index}), per index, with
    the client port replaced by the connection's index: nothing run-specific is left."""
    out = collections.defaultdict(list)
    for line in output.splitlines():
        m = re.search(r" conn=(\d+)", line)
        if m and int(m.group(1)) in ports:
            out[ports[int(m.group(1))]].append(line.replace(m.group(0), " conn=#"))
    return dict(out)


def truth_by_index(truth, ports):
    """Truth entries of the connections in ports, per index, without the client port."""
    return {ports[p]: [dict(e, conn="#") for e in truth.get(p, [])] for p in ports}


def is_transport(path):
    return any(fnmatch.fnmatchcase(path, g) for g in TRANSPORT)


def expected_origin(stack):
    for f in stack:
        if not is_transport(f["file"]):
            return f
    return None


def strip_root(path, root):
    """A file wsaudit names as seen from the host, as the app names it inside its root."""
    if root and path.startswith(root + "/"):
        return path[len(root):]
    return path


def key(f, root=None):
    return (f["function"], strip_root(f["file"], root), f["line"])


def frame_records(recs, pid, port, peers):
    out = collections.defaultdict(list)
    for r in recs:
        if r.get("type") == "frame" and r["pid"] == pid and \
                int(r["conn"]["local"].rsplit(":", 1)[1]) == port:
            out[int(r["conn"]["peer"].rsplit(":", 1)[1])].append(r)
    return {p: out.get(p, []) for p in peers}


class Score:
    def __init__(self):
        self.frames = self.data = self.origin = self.stack = 0
        # File names wsaudit gave with the root's host prefix, of all it gave.
        self.prefixed = self.names = 0
        self.details = []

    def add(self, what):
        if len(self.details) < 40:
            self.details.append(what)

    @property
    def accuracy(self):
        return 100.0 * min(self.origin, self.stack) / self.frames if self.frames else 0.0


def compare(truth, got, root):
    """truth {port: entries}, got {port: wsaudit frame records}; frame by frame, in order."""
    s = Score()
    for port in sorted(truth):
        t, g = truth[port], got.get(port, [])
        if len(t) != len(g):
            s.add("conn %d: app wrote %d frames, wsaudit reported %d" % (port, len(t), len(g)))
        for i in range(max(len(t), len(g))):
            s.frames += 1
            if i >= len(t) or i >= len(g):
                continue
            e, r = t[i], g[i]
            where = "conn %d seq %d (%s, %s)" % (port, e["seq"], e["opcode"],
                                                 expected_origin(e.get("stack", [])) and
                                                 expected_origin(e["stack"])["function"])
            if "error" in e or "stack" not in e:
                s.add("%s: the app saw no socket send for it: %s" % (where, e.get("error")))
                continue
            if (e["opcode"], e["fin"], e["payload_len"]) != (r["opcode"], r["fin"], r["payload_len"]):
                s.add("%s: frame differs: app %s/%s/%d, wsaudit %s/%s/%d" % (
                    where, e["opcode"], e["fin"], e["payload_len"], r["opcode"], r["fin"],
                    r["payload_len"]))
                continue
            if e["opcode"] in ("text", "binary", "continuation"):
                s.data += 1
            want = expected_origin(e["stack"])
            have = r.get("origin")
            if have is not None and want is not None and key(have, root) == key(want):
                s.origin += 1
            else:
                s.add("%s: origin: app %s, wsaudit %s%s" % (
                    where, want and key(want), have and key(have, root),
                    "" if have else " (unattributed: %s)" % r.get("unattributed")))
            for f in r.get("stack") or []:
                prefixed = bool(root) and f["file"].startswith(root + "/")
                s.prefixed += prefixed
                s.names += 1
            want_stack = [key(f) for f in e["stack"]]
            have_stack = [key(f, root) for f in r.get("stack") or []]
            if want_stack == have_stack and not r.get("stack_partial"):
                s.stack += 1
            else:
                s.add("%s: stack%s:\n%s" % (where, " (partial)" if r.get("stack_partial") else "",
                                            diff_stacks(want_stack, have_stack)))
    return s


def diff_stacks(want, have):
    lines = []
    for i in range(max(len(want), len(have))):
        a = want[i] if i < len(want) else None
        b = have[i] if i < len(have) else None
        lines.append("    %s #%d app %s%s" % ("  " if a == b else "!!", i, a,
                                              "" if a == b else "\n          wsaudit %s" % (b,)))
    return "\n".join(lines)

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Agent soak (issue 6): `wsaudit agent`, built with ASan+UBSan, follows the stand-in service
while it and its clients are started and stopped repeatedly for MINUTES.

  /usr/bin/python3 soak.py --wsaudit BIN [--minutes 10] [--work DIR] [--seed S]

Each run: tests/apps/standin/run.py with 2-6 users, the leak on or off and a seed drawn at
random, from a copy of the interpreter that the policy's targets.exe alone names. Between
runs, every ~30 s: the agent's VmRSS, the entry counts of its BPF maps and its /metrics.
Half-way: the log is renamed and the agent gets SIGHUP (a new log, nothing lost across the
two files). At the end: SIGTERM, exit code 0, no sanitizer report; every violation the
service planted is in the log with its rule, and nothing else; RSS and map entries flat;
wsaudit_processes and wsaudit_connections_open back to 0.

With the attacker on (the default; --no-attacks for the plain soak): first, alone, a traced
service that sends 100k thread_id values chosen to share a bucket of the old unkeyed table;
then alongside each run, in turn: a SIGHUP with a bad policy (200 KB of nested '[', 1 MiB of
nodes, a FIFO), a service that sends decompression bombs, and the flood again with 2,000
values; all along, slow clients (slowloris) on the agent's HTTP port from another address
while /healthz is probed.  Then also: every attacker frame is a violation in the log; each
bad reload refused within RELOAD_BOUND_MS; every /healthz probe answered within
PROBE_TIMEOUT and never failing for LIVENESS_WINDOW_S (the kubelet's restart); no record lost
to a full ring buffer; the collector's lag (from the attacker's last byte read by its client
to its last violation in the log) within LAG_BOUND_S.

Checks print one line each; the last line is "soak: N passed, M failed". Exit 0 when all pass.
"""
import argparse
import collections
import difflib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STANDIN = os.path.join(ROOT, "tests", "apps", "standin")
HOSTILE = os.path.join(ROOT, "tests", "apps", "ws_hostile_server.py")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import httpattack  # noqa: E402
PY = "/usr/bin/python3"
EXE_NAME = "wsx-soak-python3"
# names_seen is not among them: an LRU of what walks sent, full by design (docs/names.md).
MAPS = ("conn_map", "traced_bits", "py_procs", "py_names", "inflight_map", "tstate_cache",
        "verdict_map", "ctx_codes", "ctx_procs")
GAUGES = ("wsaudit_processes", "wsaudit_connections_open")
SAMPLE_EVERY = 30.0
# Flatness: the last sample may exceed the one after warm-up by at most this much.
RSS_BOUND_KIB = 8 * 1024
RSS_BOUND_FRAC = 0.10
MAP_BOUND = 4
# The attacker's bounds (the figures measured are printed next to them).
RELOAD_BOUND_MS = 1000
PROBE_TIMEOUT = 5.0  # deploy/: livenessProbe.timeoutSeconds
# The kubelet restarts the agent after failureThreshold (3) failed probes periodSeconds (10)
# apart: a /healthz failure shorter than that restarts nothing, but is reported.
LIVENESS_WINDOW_S = 30.0
LAG_BOUND_S = 30.0
SLOW_CLIENTS = 64
FLOOD_VALUES = 100000
BOMBS, BOMB_AFTER = 10, 20
# The drop reasons that say the collector fell behind (the others are the kernel side's).
RINGBUF_DROPS = ("ringbuf_full", "stack_ringbuf_full")
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|Sanitizer has encountered|runtime error:"
                       r"|SUMMARY: \w+Sanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


class Agent:
    def __init__(self, binary, work, policy):
        self.log = os.path.join(work, "violations.jsonl")
        self.err_path = os.path.join(work, "agent.err")
        self.port = free_port()
        env = dict(os.environ)
        # A small quarantine: ASan's RSS reaches its plateau during warm-up, so growth
        # after it is the agent's.
        env["ASAN_OPTIONS"] = ("detect_leaks=1:quarantine_size_mb=16:"
                               "malloc_context_size=20:abort_on_error=0")
        env["UBSAN_OPTIONS"] = "print_stacktrace=1"
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(
            [binary, "agent", "-c", policy, "--socket", "none", "--metrics-addr",
             f"127.0.0.1:{self.port}", "--log", self.log, "--stats-interval", "20", "-v",
             # Rotation by size would delete what the checks read; the soak rotates by
             # renaming and SIGHUP instead (tests/integration/test_agent_log.py tests it).
             "--log-max-size", "0"],
            stdout=subprocess.DEVNULL, stderr=self.err, cwd=ROOT, env=env,
            start_new_session=True)
        ok = wait_for(lambda: "wsaudit: agent following" in self.stderr()
                      or self.proc.poll() is not None, 120)
        if not ok or self.proc.poll() is not None:
            raise SystemExit("soak: the agent did not start:\n" + self.stderr())

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def scrape(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return r.read().decode()

    def metrics(self):
        text = self.scrape()
        out = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in GAUGES:
                out[parts[0]] = int(float(parts[1]))
        return out

    def map_ids(self):
        """The BPF maps this agent holds open, by name (from its fdinfo, so maps of other
        wsaudit processes on the machine are not counted)."""
        ids = set()
        fddir = f"/proc/{self.proc.pid}/fdinfo"
        for fd in os.listdir(fddir):
            try:
                with open(os.path.join(fddir, fd)) as f:
                    m = re.search(r"^map_id:\s*(\d+)", f.read(), re.M)
            except OSError:
                continue
            if m:
                ids.add(int(m.group(1)))
        out = {}
        for i in sorted(ids):
            p = subprocess.run(["bpftool", "map", "show", "id", str(i), "-j"],
                               capture_output=True, text=True, timeout=30)
            if p.returncode == 0:
                name = json.loads(p.stdout).get("name")
                if name in MAPS:
                    out[name] = i
        return out

    def map_counts(self, ids):
        out = {}
        for name in MAPS:
            if name not in ids:
                out[name] = None
                continue
            p = subprocess.run(["bpftool", "map", "dump", "id", str(ids[name]), "-j"],
                               capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                out[name] = None
            elif name == "traced_bits":
                # An array of bit words: the entries are the processes whose bit is set.
                out[name] = sum(bin(int.from_bytes(bytes(int(b, 16) for b in e["value"]),
                                                   "little")).count("1")
                                for e in json.loads(p.stdout))
            else:
                out[name] = len(json.loads(p.stdout))
        return out


class LogTail:
    """Counts the violation frames of each pid as the agent writes them, across a rotation:
    the renamed file is read to its end before the new one is opened."""

    def __init__(self, path):
        self.path, self.f, self.ino, self.buf = path, None, None, b""
        self.counts = collections.Counter()

    def poll(self):
        while True:
            if self.f is None:
                try:
                    self.f = open(self.path, "rb")
                except FileNotFoundError:
                    return
                self.ino = os.fstat(self.f.fileno()).st_ino
            self.drain()
            try:
                if os.stat(self.path).st_ino == self.ino:
                    return
            except FileNotFoundError:
                return
            # Rotated: the agent writes to the new file only once it exists, so what the
            # old one holds now is all it will hold.
            self.drain()
            self.f.close()
            self.f = None

    def drain(self):
        while True:
            chunk = self.f.read(1 << 20)
            if not chunk:
                return
            self.buf += chunk
            *lines, self.buf = self.buf.split(b"\n")
            for line in lines:
                # JSON_PRESERVE_ORDER: "type" comes first.
                if b'"type":"frame"' in line[:32]:
                    m = re.search(rb'"pid":(\d+)', line)
                    if m:
                        self.counts[int(m.group(1))] += 1


class Attacks:
    """The attacker mixed into the soak: one attack per stand-in run, alongside it, in turn
    (bombs, a hash flood, a bad reload), and slow clients with /healthz probes all along."""

    def __init__(self, soak):
        self.s = soak
        self.n = 0
        self.expected = {}  # attacker pid -> violation frames it must leave in the log
        self.failed_starts = []
        self.lags, self.reloads, self.probes = [], [], []
        self.tail = LogTail(soak.agent.log)
        self.stop = threading.Event()
        w = soak.work
        self.bad = []
        p = os.path.join(w, "bad.nested.yaml")
        with open(p, "w") as f:
            f.write("[" * 200000)
        self.bad.append(("200 KB of nested [", p))
        p = os.path.join(w, "bad.nodes.yaml")
        with open(p, "w") as f:
            f.write("bridge:\n  functions:\n" + "   - a\n" * ((1 << 20) // 7 - 5))
        self.bad.append(("1 MiB of nodes", p))
        p = os.path.join(w, "bad.fifo.yaml")
        os.mkfifo(p)
        self.bad.append(("a FIFO", p))
        from test_hostile import fnv_colliding_values
        self.values = os.path.join(w, "flood.values")
        with open(self.values, "w") as f:
            f.write("\n".join(fnv_colliding_values(FLOOD_VALUES)) + "\n")
        self.values_small = os.path.join(w, "flood.small.values")
        with open(self.values_small, "w") as f:
            f.write("\n".join(fnv_colliding_values(FLOOD_VALUES // 50)) + "\n")

    def start(self):
        port = self.s.agent.port
        self.slow = httpattack.SlowClients(port, SLOW_CLIENTS, srcs=("127.0.0.2",))
        self.slow.start()

        def probe():
            while not self.stop.wait(2.0):
                st, secs, body = httpattack.get(port, "/healthz", timeout=PROBE_TIMEOUT,
                                                with_body=True)
                self.probes.append((st, secs, time.monotonic()))
                if st != 200:
                    print(f"soak: /healthz {st} after {secs:.3f} s: {body}", flush=True)

        self.prober = threading.Thread(target=probe, daemon=True)
        self.prober.start()

    def one(self, i):
        kind = ("reload", "bomb", "flood")[self.n % 3]
        self.n += 1
        try:
            getattr(self, kind)(i)
        except Exception as e:  # noqa: BLE001 - said and failed at the end
            print(f"soak: attack {kind} (run {i}) failed: {e!r}", flush=True)
            self.failed_starts.append((kind, repr(e)))

    def hostile(self, argv, client, expect):
        from test_hostile import ws_read_all  # noqa: F401 - the same client as the tests
        port = free_port()
        env = dict(os.environ, PYTHONHOME="/usr")
        p = subprocess.Popen([self.s.exe, HOSTILE, "--port", str(port), *argv], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            line = p.stdout.readline()
            m = re.match(r"READY pid=(\d+)", line)
            if not m:
                raise RuntimeError(f"the hostile service did not start: {line!r}")
            pid = int(m.group(1))
            agent = self.s.agent
            if not wait_for(lambda: f"tracing pid {pid} " in agent.stderr(), 30):
                raise RuntimeError(f"pid {pid} not followed")
            # A process caught at exec is walked once its interpreter is found (every 0.2 s).
            time.sleep(1.0)
            client(port)
            done = time.monotonic()
            self.expected[pid] = expect
            # The service stays up until its frames are judged: the walk reads its memory.
            reached = wait_for(lambda: (self.tail.poll(), self.tail.counts[pid] >= expect)[1],
                               LAG_BOUND_S * 2, step=0.1)
            lag = time.monotonic() - done
        finally:
            p.terminate()
            p.wait(10)
        self.lags.append((argv[1], pid, lag if reached else None))
        print(f"soak: attack {argv[1]} pid {pid}: {self.tail.counts[pid]}/{expect} violations "
              f"in the log, lag {lag:.2f} s", flush=True)

    def bomb(self, i):
        from test_hostile import ws_read_all
        self.hostile(["--attack", "bomb", "--bombs", str(BOMBS), "--after", str(BOMB_AFTER),
                      "--pace", "0.02"],
                     lambda port: ws_read_all(port, "permessage-deflate", timeout=120),
                     BOMBS + BOMB_AFTER)

    def flood(self, i):
        from test_hostile import jwt, ws_read_all
        path, n = (self.values, FLOOD_VALUES) if i < 0 else \
            (self.values_small, FLOOD_VALUES // 50)
        self.hostile(["--attack", "values", "--values", path, "--batch", "100", "--pace",
                      "0.002"],
                     lambda port: ws_read_all(
                         port, headers=[f"Authorization: Bearer {jwt('alice')}"], timeout=300),
                     n)

    def reload(self, i):
        what, path = self.bad[(self.n // 3) % len(self.bad)]
        agent, policy = self.s.agent, self.s.policy
        before = agent.stderr().count("keeping the policy in force")
        os.unlink(policy)
        os.symlink(path, policy)
        try:
            agent.proc.send_signal(signal.SIGHUP)
            ok = wait_for(lambda: agent.stderr().count("keeping the policy in force") > before,
                          10)
        finally:
            os.unlink(policy)
            os.symlink(self.s.good_policy, policy)
        m = re.findall(r"keeping the policy in force \(the reload took ([0-9.]+) ms\)",
                       agent.stderr())
        self.reloads.append((what, float(m[-1]) if ok and m else None))
        print(f"soak: attack reload ({what}): "
              f"{'refused in %s ms' % m[-1] if ok and m else 'NOT refused'}", flush=True)

    def finish(self):
        self.stop.set()
        self.slow.stop.set()
        self.slow.join()
        self.prober.join()

    def checks(self, final):
        s = self.s
        self.tail.poll()
        s.check(not self.failed_starts, f"every attack ran ({len(self.failed_starts)} did not)")
        lost = {p: (self.tail.counts[p], n) for p, n in self.expected.items()
                if self.tail.counts[p] != n}
        s.check(bool(self.expected) and not lost,
                f"every attacker frame is a violation in the log ({len(self.expected)} "
                f"attackers, {sum(self.expected.values())} frames)"
                + (f"; short: {lost}" if lost else ""))
        lags = [x[2] for x in self.lags]
        worst = max((x for x in lags if x is not None), default=None)
        s.check(bool(lags) and None not in lags and worst <= LAG_BOUND_S,
                f"collector lag after each attack within {LAG_BOUND_S:g} s (longest "
                f"{worst if worst is None else round(worst, 2)} s: "
                + ", ".join(f"{k} {'-' if x is None else round(x, 2)}" for k, _, x in self.lags)
                + ")")
        took = [t for _, t in self.reloads]
        # None: a reload the agent did not refuse (said above, as NOT refused).
        refused = [t for t in took if t is not None]
        s.check(bool(took) and len(refused) == len(took) and max(took) <= RELOAD_BOUND_MS,
                f"every bad reload refused within {RELOAD_BOUND_MS} ms ({len(refused)} of "
                f"{len(took)} refused, longest {max(refused, default=None)} ms)")
        late = [x for x in self.probes if x[0] is not None and x[1] > PROBE_TIMEOUT]
        slowest = max((t for _, t, _ in self.probes), default=0)
        s.check(bool(self.probes) and not late and all(x[0] is not None for x in self.probes),
                f"/healthz answered within {PROBE_TIMEOUT:g} s with {SLOW_CLIENTS} slow clients "
                f"on ({len(self.probes)} probes, slowest {slowest:.3f} s)")
        # The longest run of failed probes: what the kubelet would have seen.
        longest, start = 0.0, None
        for st, _, at in self.probes:
            if st == 200:
                start = None
                continue
            start = at if start is None else start
            longest = max(longest, at - start + 2.0)
        failed = sum(1 for x in self.probes if x[0] != 200)
        s.check(longest < LIVENESS_WINDOW_S,
                f"/healthz never failed for the liveness window ({LIVENESS_WINDOW_S:g} s): "
                f"{failed} of {len(self.probes)} probes failed, longest run {longest:.0f} s "
                "(reasons above)")
        drops = final.get("drops") or {}
        lost = {k: v for k, v in drops.items() if v and k in RINGBUF_DROPS}
        s.check(bool(drops) and not lost,
                f"no record lost to a full ring buffer with the attacks ({lost or drops})")
        s.figures = {"lag_s": worst, "reload_ms": max(refused, default=None),
                     "probe_s": slowest, "slow_cut": self.slow.cut, "unhealthy_s": longest}


class Soak:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.work = a.work
        self.passed = self.failed = 0
        self.runs = []
        self.samples = []
        self.attacks = None
        self.figures = {}

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"soak: {'PASS' if ok else 'FAIL'} {what}", flush=True)

    def setup(self):
        exe = os.path.join(self.work, EXE_NAME)
        shutil.copy(os.path.realpath(PY), exe)
        with open(os.path.join(ROOT, "policies", "netra.yaml")) as f:
            text = re.sub(r'(?m)^  exe: .*$', f'  exe: ["{exe}"]', f.read(), count=1)
        good = os.path.join(self.work, "policy.good.yaml")
        with open(good, "w") as f:
            f.write(text)
        # A link, so a bad reload can point it elsewhere for a moment.
        policy = os.path.join(self.work, "policy.yaml")
        os.symlink(good, policy)
        self.exe, self.policy, self.good_policy = exe, policy, good

    def sample(self, label):
        s = {"t": time.monotonic() - self.t0, "label": label, "runs": len(self.runs),
             "rss": self.agent.rss_kib(), "maps": self.agent.map_counts(self.map_ids)}
        # The registry is refreshed once a second; the gauges settle after a process exits.
        m = wait_for(lambda: (lambda x: x if not any(x.get(g) for g in GAUGES) else None)(
            self.agent.metrics()), 5) or self.agent.metrics()
        s.update(m)
        self.samples.append(s)
        print("soak: sample t=%4.0fs runs=%3d rss=%6d KiB %s procs=%s conns=%s" % (
            s["t"], s["runs"], s["rss"],
            " ".join(f"{k}={v}" for k, v in s["maps"].items()),
            s.get("wsaudit_processes"), s.get("wsaudit_connections_open")), flush=True)

    def one_run(self, i):
        users = self.rng.randint(2, 6)
        leak = self.rng.random() < 0.5
        probe = self.a.probe == "always" or (self.a.probe == "random" and
                                             self.rng.random() < 0.5)
        seed = self.rng.randint(1, 1 << 30)
        truth = os.path.join(self.work, f"truth.{i}.jsonl")
        report = os.path.join(self.work, f"report.{i}.json")
        go = os.path.join(self.work, f"go.{i}")
        env = dict(os.environ, STANDIN_PYTHON=self.exe, PYTHONHOME="/usr")
        cmd = [PY, os.path.join(STANDIN, "run.py"), "--users", str(users), "--seed", str(seed),
               "--timeout", "60", "--truth", truth, "--report", report, "--go-file", go]
        if leak:
            cmd.append("--leak")
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        line = p.stdout.readline()
        m = re.match(r"SERVER pid=(\d+)", line)
        pid = int(m.group(1)) if m else None
        port = re.search(r"port=(\d+)", line)
        followed = False
        if pid:
            # The clients start once the agent traces the service.
            followed = bool(wait_for(lambda: f"tracing pid {pid} " in self.agent.stderr(), 30))
            if followed and probe:
                # A process caught at exec is inspected at its first connection: one
                # HTTP request first, so the clients' frames find the stack walk on.
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/ws/health",
                                           timeout=10).read()
                except OSError as e:
                    print(f"soak: run {i}: probe failed: {e}", flush=True)
                followed = bool(wait_for(
                    lambda: f"pid {pid}: uvloop transport writes hooked" in self.agent.stderr(),
                    30))
            open(go, "w").close()
        try:
            out, err = p.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        run = {"i": i, "users": users, "leak": leak, "seed": seed, "pid": pid, "rc": p.returncode,
               "followed": followed, "probe": probe, "truth": truth, "out": line + out + err}
        self.runs.append(run)
        if p.returncode != 0 or not followed:
            print(f"soak: run {i} rc={p.returncode} followed={followed}:\n{run['out']}",
                  flush=True)
        return run

    def main(self):
        self.setup()
        self.t0 = time.monotonic()
        self.agent = Agent(self.a.wsaudit, self.work, self.policy)
        self.map_ids = self.agent.map_ids()
        # A map the build does not have is said, not failed: the set changes with the BPF side.
        absent = [m for m in MAPS if m not in self.map_ids]
        self.check(bool(self.map_ids), f"the agent holds the maps {sorted(self.map_ids)}"
                   + (f" (absent in this build: {', '.join(absent)})" if absent else ""))
        if self.a.attacks:
            self.attacks = Attacks(self)
            self.attacks.start()
            # The whole flood first, alone: under ASan the collector takes 15-20 s over its
            # 100k frames, and a stand-in service that exits meanwhile is gone before its
            # frames are walked (they are counted unjudged, not logged).
            self.attacks.flood(-1)
        self.sample("start")
        end = self.t0 + self.a.minutes * 60
        half = self.t0 + self.a.minutes * 30
        warm = self.t0 + min(60.0, self.a.minutes * 12)
        last_sample = time.monotonic()
        rotated = None
        self.warm_index = None
        i = 0
        while time.monotonic() < end:
            attack = None
            if self.attacks:
                attack = threading.Thread(target=self.attacks.one, args=(i,))
                attack.start()
            self.one_run(i)
            if attack:
                attack.join()
            i += 1
            now = time.monotonic()
            if self.warm_index is None and now >= warm:
                self.sample("warm")
                self.warm_index = len(self.samples) - 1
                last_sample = now
            elif now - last_sample >= SAMPLE_EVERY:
                self.sample("")
                last_sample = now
            if rotated is None and now >= half:
                rotated = self.agent.log + ".1"
                os.rename(self.agent.log, rotated)
                self.agent.proc.send_signal(signal.SIGHUP)
                reopened = wait_for(lambda: os.path.exists(self.agent.log), 10)
                self.check(reopened, f"SIGHUP after run {i}: the agent opened a new log")
        if self.attacks:
            self.attacks.finish()
        time.sleep(2)
        self.sample("end")
        self.check(rotated is not None, "the log was rotated mid-way")
        self.finish([rotated, self.agent.log] if rotated else [self.agent.log])

    def finish(self, logs):
        a = self.agent
        a.proc.send_signal(signal.SIGTERM)
        try:
            rc = a.proc.wait(120)
        except subprocess.TimeoutExpired:
            a.proc.kill()
            rc = a.proc.wait()
        a.err.close()
        err = a.stderr()
        self.check(rc == 0, f"SIGTERM: the agent exited with {rc}")
        san = [l for l in err.splitlines() if SANITIZER.search(l)]
        self.check(not san, "no ASan/LSan/UBSan report" + ("" if not san else ": " + san[0]))
        if san:
            print(err[-20000:])
        warns = [l for l in err.splitlines() if l.startswith("wsaudit") and "warn" in l.lower()]
        for l in warns[:10]:
            print("soak: agent: " + l)

        records = []
        per_file = []
        attackers = set(self.attacks.expected) if self.attacks else set()
        for path in logs:
            recs = []
            with open(path) as f:
                for line in f:
                    if not line.strip():
                        continue
                    r = json.loads(line)
                    # The attackers' frames are counted by Attacks, not kept.
                    if r.get("type") == "frame" and r.get("pid") in attackers:
                        continue
                    recs.append(r)
            per_file.append((path, recs))
            records.extend(recs)
        for path, recs in per_file:
            nv = sum(1 for r in recs if r.get("type") == "frame")
            ns = sum(1 for r in recs if r.get("type") == "stats")
            print(f"soak: log {os.path.basename(path)}: {nv} violation frames, {ns} stats")
        self.check(all(any(r.get("type") == "stats" for r in recs) for _, recs in per_file),
                   "each log file holds stats records")
        self.check(bool(records) and records[-1].get("type") == "stats"
                   and records[-1].get("final"), "the last record is the final stats record")
        self.compare(records)
        if self.attacks:
            self.attacks.checks(records[-1] if records else {})
        self.flatness()
        self.summary()

    def compare(self, records):
        # Expected violations per (service pid, client port): the truth frames that expect a
        # rule, in their rank on the connection.
        want = collections.defaultdict(list)
        frames = planted = 0
        bad_runs = [r["i"] for r in self.runs if r["rc"] != 0 or not r["followed"]]
        self.check(not bad_runs, f"{len(self.runs)} stand-in runs completed and followed"
                   + (f" (failed: {bad_runs})" if bad_runs else ""))
        for run in self.runs:
            if not os.path.exists(run["truth"]):
                continue
            with open(run["truth"]) as f:
                truth = [json.loads(l) for l in f if l.strip()]
            failed = {r["seq"] for r in truth if "error" in r}
            truth = [r for r in truth if "error" not in r and r["seq"] not in failed]
            frames += len(truth)
            for r in sorted(truth, key=lambda r: (r["conn"]["peer_port"], r["conn_seq"])):
                if r["expect"]:
                    want[(run["pid"], r["conn"]["peer_port"])].append(
                        (r["conn_seq"], r["type"], tuple(sorted(r["expect"])), r))
                if r.get("planted"):
                    planted += 1
        got = collections.defaultdict(list)
        for rec in records:
            if rec.get("type") != "frame":
                continue
            port = int(rec["conn"]["peer"].rsplit(":", 1)[1])
            rules = tuple(sorted({v["rule"] for v in rec.get("violations") or []}))
            got[(rec["pid"], port)].append(((rec.get("message") or {}).get("type"), rules, rec))
        # A message type the policy does not name is shown hashed ("t#..."): such types
        # are compared as one.
        shown = {x[0] for v in got.values() for x in v if x[0] and not x[0].startswith("t#")}
        for v in want.values():
            v[:] = [(x[0], x[1] if x[1] in shown else "t#", *x[2:]) for x in v]
        for k, v in got.items():
            got[k] = [("t#" if x[0] and x[0].startswith("t#") else x[0], *x[1:]) for x in v]
        n_want = sum(len(v) for v in want.values())
        n_got = sum(len(v) for v in got.values())
        lost, extra, wrong_origin = [], [], []
        for key in set(want) | set(got):
            w = want.get(key, [])
            g = got.get(key, [])
            # The k-th violating frame on a connection is the k-th truth frame that expects one.
            sm = difflib.SequenceMatcher(a=[x[1:3] for x in w], b=[x[:2] for x in g],
                                         autojunk=False)
            for op, a0, a1, b0, b1 in sm.get_opcodes():
                if op == "equal":
                    for x, y in zip(w[a0:a1], g[b0:b1]):
                        o = y[2].get("origin") or {}
                        t = x[3]
                        if t["planted"] and t["planted"].get("kind") == "bypass" and \
                                (o.get("function"), o.get("line")) != \
                                (t["origin"]["function"], t["origin"]["line"]):
                            wrong_origin.append((key, x[0], o, t["origin"]["function"]))
                    continue
                lost += [(key, x[0], x[1], x[2]) for x in w[a0:a1]]
                extra += [(key, y[0], y[1]) for y in g[b0:b1]]
        self.n_frames, self.n_want, self.n_got, self.n_planted = frames, n_want, n_got, planted
        by_rule_w = collections.Counter(r for v in want.values() for x in v for r in x[2])
        by_rule_g = collections.Counter(r for v in got.values() for x in v for r in x[1])
        self.by_rule = (by_rule_w, by_rule_g)
        print(f"soak: truth: {frames} text frames, {n_want} expect a violation "
              f"{dict(by_rule_w)}; log: {n_got} violation frames {dict(by_rule_g)}")
        for x in lost[:10]:
            print(f"soak: lost: pid {x[0][0]} port {x[0][1]} rank {x[1]} {x[2]} {x[3]}")
        probed = {r["pid"]: r["probe"] for r in self.runs}
        if lost:
            lp = sum(1 for x in lost if probed.get(x[0][0]))
            print(f"soak: lost in runs with a health probe first: {lp}, without: "
                  f"{len(lost) - lp} ({sum(probed.values())}/{len(probed)} runs probed)")
            print("soak: lost by (rank on the connection, type): " + ", ".join(
                f"{k[0]} {k[1]}: {n}" for k, n in
                collections.Counter((x[1], x[2]) for x in lost).most_common(8)))
        for x in extra[:10]:
            print(f"soak: unexpected: pid {x[0][0]} port {x[0][1]} {x[1]} {x[2]}")
        for x in wrong_origin[:10]:
            print(f"soak: wrong origin: pid {x[0][0]} port {x[0][1]} rank {x[1]}: {x[2]}, "
                  f"truth {x[3]}")
        self.check(not lost, f"every expected violation is in the log ({n_want - len(lost)}"
                   f"/{n_want})")
        self.check(not extra, f"no unexpected violation ({len(extra)})")
        self.check(not wrong_origin, f"bypasses name the truth's origin ({len(wrong_origin)} "
                   "wrong)")

    def flatness(self):
        if self.warm_index is None or len(self.samples) < 2:
            self.check(False, "flatness: no warm-up sample (run longer)")
            return
        w, e = self.samples[self.warm_index], self.samples[-1]
        bound = int(RSS_BOUND_KIB + RSS_BOUND_FRAC * w["rss"])
        self.check(e["rss"] - w["rss"] <= bound,
                   f"RSS flat: {w['rss']} KiB after warm-up, {e['rss']} KiB at the end "
                   f"(bound +{bound} KiB)")
        runs = max(1, e["runs"] - w["runs"])
        print(f"soak: RSS slope after warm-up: {(e['rss'] - w['rss']) / runs:.1f} KiB/run "
              f"over {runs} runs")
        for name in MAPS:
            if name not in self.map_ids:
                continue
            a, b = w["maps"][name], e["maps"][name]
            self.check(a is not None and b is not None and b - a <= MAP_BOUND,
                       f"map {name} flat: {a} entries after warm-up, {b} at the end "
                       f"(bound +{MAP_BOUND})")
        for g in GAUGES:
            self.check(e.get(g) == 0, f"{g} back to 0 after the last run ({e.get(g)})")

    def summary(self):
        print("\nsoak: samples")
        print("  %6s %5s %9s " % ("t(s)", "runs", "RSS(KiB)") +
              " ".join("%12s" % m for m in MAPS) + " %5s %5s" % ("procs", "conns"))
        for s in self.samples:
            print("  %6.0f %5d %9d " % (s["t"], s["runs"], s["rss"]) +
                  " ".join("%12s" % s["maps"][m] for m in MAPS) +
                  " %5s %5s %s" % (s.get("wsaudit_processes"), s.get("wsaudit_connections_open"),
                                   s["label"]))
        leak_runs = sum(1 for r in self.runs if r["leak"])
        users = sum(r["users"] for r in self.runs)
        print(f"soak: {len(self.runs)} runs ({leak_runs} with the leak on, {users} users), "
              f"{self.n_frames} text frames, violations expected {self.n_want}, "
              f"logged {self.n_got}")
        print(f"soak: {self.passed} passed, {self.failed} failed")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wsaudit", required=True, help="the agent binary (ASan+UBSan build)")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--work", help="keep the logs here (default: a temporary directory)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--probe", choices=("random", "always", "never"), default="random",
                    help="one HTTP request (a health probe) to the service before its clients "
                    "start: the agent inspects a process caught at exec at its first "
                    "connection (default: in a random half of the runs)")
    ap.add_argument("--no-attacks", dest="attacks", action="store_false",
                    help="the plain soak: no attacker mixed in")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("soak: needs root (BPF)")
    if a.seed is None:
        a.seed = random.randrange(1 << 30)
    tmp = None
    if not a.work:
        tmp = a.work = tempfile.mkdtemp(prefix="wsaudit-soak.")
    os.makedirs(a.work, exist_ok=True)
    print(f"soak: {a.minutes:g} min, seed {a.seed}, work {a.work}, probe {a.probe}, "
          f"attacks {'on' if a.attacks else 'off'}", flush=True)
    s = Soak(a)
    try:
        s.main()
    finally:
        if getattr(s, "agent", None) and s.agent.proc.poll() is None:
            os.killpg(s.agent.proc.pid, signal.SIGKILL)
    if tmp and not s.failed:
        shutil.rmtree(tmp)
    sys.exit(1 if s.failed else 0)


if __name__ == "__main__":
    main()

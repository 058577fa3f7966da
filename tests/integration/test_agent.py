# SPDX-License-Identifier: GPL-2.0
"""`wsaudit agent` as the DaemonSet runs it, against the stand-in service with its leak on:
it follows the service by the policy's targets (started after the agent), writes the
violations to its log, serves /metrics that promtool accepts, and a real Prometheus server
scraping it on loopback answers a PromQL query for violations by rule with the log's counts.
SIGHUP with a broken policy keeps the old one; SIGTERM detaches cleanly.
"""

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from harness import PY, ROOT, WSAUDIT, free_port

STANDIN = os.path.join(ROOT, "tests", "apps", "standin")
EXE_NAME = "wsx-agent-python3"


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s")


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return r.read().decode()


def violations_in_log(path):
    counts = collections.Counter()
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("type") == "frame":
                for v in rec["violations"]:
                    counts[v["rule"]] += 1
    return counts


def check_exposition(text):
    """What promtool does not check: one group per family, no duplicate series."""
    seen_families, series, current = set(), set(), None
    for line in text.splitlines():
        m = re.match(r"# (HELP|TYPE) (\S+)", line)
        if m:
            if m.group(2) != current:
                assert m.group(2) not in seen_families, f"family {m.group(2)} split in two"
                seen_families.add(m.group(2))
                current = m.group(2)
            continue
        if not line or line.startswith("#"):
            continue
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        assert name == current, f"series {name} outside its family group ({current})"
        key = line.rsplit(" ", 1)[0]
        assert key not in series, f"duplicate series {key}"
        series.add(key)
    return seen_families


class Agent:
    def __init__(self, procs, tmp, policy, port, extra=()):
        self.log = os.path.join(tmp, "violations.jsonl")
        self.err_path = os.path.join(tmp, "agent.err")
        self.err = open(self.err_path, "w")
        self.proc = procs.start([WSAUDIT, "agent", "-c", policy, "--socket", "none", "--metrics-addr",
                                 f"127.0.0.1:{port}", "--log", self.log, "--stats-interval", "0",
                                 *extra],
                                stdout=subprocess.DEVNULL, stderr=self.err, cwd=ROOT)
        wait_for(lambda: "wsaudit: agent following" in self.stderr() or self.proc.poll() is not None,
                 60, "agent start")
        assert self.proc.poll() is None, self.stderr()

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()


def test_agent_log_metrics_prometheus(procs, tmp_path):
    tmp = str(tmp_path)
    promtool = shutil.which("promtool")
    prometheus = shutil.which("prometheus")
    if not promtool or not prometheus:
        pytest.fail("promtool/prometheus missing: run `make deps` (Debian package prometheus)")
    # The service runs from a copy of the interpreter under a name nothing else has, and
    # the policy's targets name exactly that path (another test's copy has the same name).
    exe = os.path.join(tmp, EXE_NAME)
    shutil.copy(os.path.realpath(PY), exe)
    with open(os.path.join(ROOT, "policies", "netra.yaml")) as f:
        policy_text = re.sub(r'(?m)^  exe: .*$', f'  exe: ["{exe}"]', f.read(), count=1)
    policy = os.path.join(tmp, "policy.yaml")
    with open(policy, "w") as f:
        f.write(policy_text)
    port = free_port()
    agent = Agent(procs, tmp, policy, port)

    env = dict(os.environ, STANDIN_PYTHON=exe, PYTHONHOME="/usr")
    run = subprocess.run([PY, os.path.join(STANDIN, "run.py"), "--users", "3", "--leak",
                          "--seed", "2", "--timeout", "60"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    time.sleep(2.5)  # the agent copies its totals into the registry once a second

    counts = wait_for(lambda: violations_in_log(agent.log) or None, 10, "violations in the log")
    print(f"\n[agent] violation log: {dict(counts)}")
    assert counts["bridge_bypass"] > 0 and counts["isolation_breach"] > 0

    text = scrape(port)
    golden = os.path.join(tmp, "golden.prom")
    with open(golden, "w") as f:
        f.write(text)
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), p.stdout + p.stderr
    families = check_exposition(text)
    print(f"[agent] scrape: {len(families)} families, promtool check metrics: clean")
    for rule, n in counts.items():
        assert f'wsaudit_violations_total{{rule="{rule}"}} {n}' in text, (rule, n)

    # Every metric the dashboards and alert rules use exists in this scrape.
    p = subprocess.run([PY, os.path.join(ROOT, "tests", "integration", "metrics",
                                         "check_dashboards.py"), "--golden", golden],
                       capture_output=True, text=True, timeout=60)
    print(p.stdout + p.stderr)
    assert p.returncode == 0

    # A real Prometheus scraping the agent: PromQL answers with the log's counts.
    data = os.path.join(tmp, "prom-data")
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n"
                f"  - job_name: wsaudit\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{port}']\n")
    prom_port = free_port()
    procs.start([prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    query = urllib.parse.quote("sum by (rule) (wsaudit_violations_total)")

    def answer():
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{prom_port}/api/v1/query?query={query}", timeout=5) as r:
                res = json.load(r)["data"]["result"]
        except OSError:
            return None
        got = {x["metric"]["rule"]: int(float(x["value"][1])) for x in res}
        return got if got.get("bridge_bypass") else None

    got = wait_for(answer, 60, "Prometheus query result")
    print(f"[agent] PromQL sum by (rule) (wsaudit_violations_total): {got}")
    # Every rule is exported from the start (at 0); the ones that fired match the log.
    assert {r: n for r, n in got.items() if n} == dict(counts), (got, counts)

    # SIGHUP with a broken policy: the old one stays, and the agent says why.
    with open(policy, "w") as f:
        f.write("bridge:\n  opcodes: [txt]\n")
    agent.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "keeping the policy in force" in agent.stderr(), 10, "reload refusal")
    time.sleep(1.5)
    text = scrape(port)
    assert 'wsaudit_policy_reloads_total{result="error"} 1' in text
    # The gauge says it for as long as the refused policy is the one on disk.
    assert "\nwsaudit_policy_last_reload_success 0\n" in text
    assert agent.proc.poll() is None

    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(20) == 0, agent.stderr()
    last = json.loads(open(agent.log).read().splitlines()[-1])
    assert last["type"] == "stats" and last["final"], last


BIG_SERVER = """
import asyncio, sys, websockets
async def handler(ws, path=None):
    await ws.send(bytes(int(sys.argv[2])))
    await ws.close()
async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]), compression=None,
                                max_size=None):
        print("READY", flush=True)
        await asyncio.Future()
asyncio.run(main())
"""

BIG_CLIENT = """
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1], compression=None, max_size=None) as ws:
        print(len(await ws.recv()))
asyncio.run(main())
"""


def test_agent_drops_and_dropped_bytes(procs, tmp_path):
    """Occurrences and bytes in their own families: a 600 kB binary frame past the 256 KiB
    capture cap counts a few cap_exceeded drops in wsaudit_drops_total and the bytes not
    captured in wsaudit_dropped_bytes_total{reason="cap_exceeded"}, each equal to the agent's
    final stats record (drops.cap_exceeded, kernel.cap_bytes and kernel.lost_bytes)."""
    tmp = str(tmp_path)
    exe = os.path.join(tmp, EXE_NAME)
    shutil.copy(os.path.realpath(PY), exe)
    with open(os.path.join(ROOT, "policies", "netra.yaml")) as f:
        policy_text = re.sub(r'(?m)^  exe: .*$', f'  exe: ["*/{EXE_NAME}"]', f.read(), count=1)
    policy = os.path.join(tmp, "policy.yaml")
    with open(policy, "w") as f:
        f.write(policy_text)
    port = free_port()
    agent = Agent(procs, tmp, policy, port)
    server, client = os.path.join(tmp, "big_server.py"), os.path.join(tmp, "big_client.py")
    with open(server, "w") as f:
        f.write(BIG_SERVER)
    with open(client, "w") as f:
        f.write(BIG_CLIENT)
    ws_port, size = free_port(), 600_000
    srv = procs.start([exe, server, str(ws_port), str(size)], stdout=subprocess.PIPE,
                      env=dict(os.environ, PYTHONHOME="/usr"))
    assert srv.stdout.readline().strip() == b"READY"
    r = subprocess.run([PY, client, f"ws://127.0.0.1:{ws_port}/"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == str(size), r.stdout + r.stderr

    def scraped():
        text = scrape(port)
        m = re.search(r'^wsaudit_dropped_bytes_total\{reason="cap_exceeded"\} (\d+)$', text, re.M)
        return text if m and int(m.group(1)) > 0 else None

    text = wait_for(scraped, 10, "dropped bytes in the scrape")
    series = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^(wsaudit_drop(?:s|ped_bytes)_total\{reason="[a-z_]+"\}) (\d+)$', text, re.M)}
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(20) == 0, agent.stderr()
    stats = json.loads(open(agent.log).read().splitlines()[-1])
    assert stats["type"] == "stats" and stats["final"], stats
    print(f"\n[agent] scrape: {series}\n[agent] final stats: drops {stats['drops']}, "
          f"kernel {stats['kernel']}")
    for reason, n in stats["drops"].items():
        assert series[f'wsaudit_drops_total{{reason="{reason}"}}'] == n, reason
    assert series['wsaudit_dropped_bytes_total{reason="cap_exceeded"}'] == \
        stats["kernel"]["cap_bytes"]
    assert series['wsaudit_dropped_bytes_total{reason="lost"}'] == stats["kernel"]["lost_bytes"]
    # Occurrences are a handful of writes; the bytes are what the cap left out of 600 kB.
    assert 1 <= stats["drops"]["cap_exceeded"] < 10
    assert size - 2 * 256 * 1024 <= stats["kernel"]["cap_bytes"] < size


def probes(port, state):
    m = re.search(rf'^wsaudit_probes{{state="{state}"}} (\d+)$', scrape(port), re.M)
    return int(m.group(1))


def test_agent_probe_gauge_counts_what_is_attached(procs, tmp_path):
    """wsaudit_probes{state="attached"} goes up with the uprobes a followed process gets
    (zlib's deflate, PyContext_CopyCurrent) and back down when it exits and its image is
    forgotten: three services in turn, the gauge back at the agent's own programs each time."""
    tmp = str(tmp_path)
    exe = os.path.join(tmp, EXE_NAME)
    shutil.copy(os.path.realpath(PY), exe)
    with open(os.path.join(ROOT, "policies", "netra.yaml")) as f:
        policy_text = re.sub(r'(?m)^  exe: .*$', f'  exe: ["*/{EXE_NAME}"]', f.read(), count=1)
    policy = os.path.join(tmp, "policy.yaml")
    with open(policy, "w") as f:
        f.write(policy_text)
    port = free_port()
    agent = Agent(procs, tmp, policy, port)
    server = os.path.join(tmp, "big_server.py")
    with open(server, "w") as f:
        f.write(BIG_SERVER)
    base = wait_for(lambda: probes(port, "attached"), 10, "the agent's programs attached")
    seen = []
    for i in range(3):
        srv = procs.start([exe, server, str(free_port()), "10"], stdout=subprocess.PIPE,
                          env=dict(os.environ, PYTHONHOME="/usr"))
        assert srv.stdout.readline().strip() == b"READY"
        up = wait_for(lambda: (n := probes(port, "attached")) > base and n, 15,
                      f"service {i}: its uprobes in the gauge")
        srv.kill()
        srv.wait()
        # The agent forgets an exited process' image at its exit, or at the next sweep (5 s).
        last = []
        try:
            wait_for(lambda: last.append(probes(port, "attached")) or last[-1] == base, 40,
                     f"service {i}: the gauge back at {base} after its exit")
        except AssertionError:
            raise AssertionError(f"service {i}: the gauge at {last[-5:]}, not back at {base}; "
                                 f"agent stderr:\n{agent.stderr()}")
        seen.append(up)
    print(f"\n[agent] probes attached: {base} alone, {seen} with each service, {base} after")
    assert agent.proc.poll() is None, agent.stderr()

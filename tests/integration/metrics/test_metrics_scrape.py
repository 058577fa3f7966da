# SPDX-License-Identifier: GPL-2.0
"""/metrics end to end: the collector's families served by user/metrics_http.c (built here
with cc and ASan from the same sources as ./wsaudit), scraped with urllib and checked by
promtool, by our own checks of what promtool lets through, against the committed golden
scrape, and scraped by a real Prometheus server whose HTTP API must report the violation
counts the test planted.

Runs unprivileged and needs no BPF; as part of tests/integration/run.sh it runs as root like
the rest.  On its own:
    /usr/bin/python3 -m pytest -v -p no:cacheprovider --confcutdir=tests/integration/metrics \
        tests/integration/metrics
WSAUDIT_UPDATE_GOLDEN=1 rewrites golden.prom from the scrape instead of comparing with it.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
GOLDEN = os.path.join(HERE, "golden.prom")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

sys.path.insert(0, HERE)
import promtext  # noqa: E402

# The violations planted: (rule, origin, count).  The first ones are the service's functions;
# 50 generated ones then push the (rule, origin) pairs past the cap of 50, so the last 4 of
# them are counted under origin="other".  Two origins need escaping in the exposition (no
# Python qualname has a quote or a line feed, but the exposition must not depend on that).
NAMED = [
    ("bridge_bypass", "ChatService.broadcast_update", 4),
    ("bridge_bypass", "WebSocketManager.send_to_user.<locals>.push", 2),
    ("isolation_breach", "AgentRunner._emit", 3),
    ("isolation_breach", 'Probe.quote"back\\slash', 1),
    ("isolation_breach", "Probe.line\nfeed", 1),
]
GENERATED = [("bridge_bypass", f"Generated.fn{i:02d}", 1) for i in range(50)]
PLANTED = NAMED + GENERATED
BY_RULE = {"bridge_bypass": 4 + 2 + 50, "isolation_breach": 3 + 1 + 1,
           "identity_ambiguous": 0, "identity_unknown": 0, "message_unreadable": 0}
OVERFLOWED = len(NAMED) + len(GENERATED) - 50
WORKLOAD = ("chat", "api")  # k8s_namespace, k8s_workload of the NAMED ones

DEADLINE = 45  # seconds for Prometheus to report what it scraped


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pkg_config(*args):
    return subprocess.run(["pkg-config", *args, "libmicrohttpd"], check=True, capture_output=True,
                          text=True).stdout.split()


@pytest.fixture(scope="module")
def workdir():
    d = tempfile.mkdtemp(prefix="wsaudit-metrics-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def serve_bin(workdir):
    out = os.path.join(workdir, "metrics_serve")
    cmd = ["cc", "-std=gnu11", "-O1", "-g", "-fsanitize=address,undefined",
           "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-Wall", "-Wextra", "-Werror",
           "-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wformat=2", "-Wundef",
           "-Wwrite-strings", "-Wno-unused-parameter", "-D_GNU_SOURCE",
           "-I" + os.path.join(ROOT, "include"), "-I" + os.path.join(ROOT, "user"),
           *pkg_config("--cflags"),
           os.path.join(HERE, "metrics_serve.c"),
           *(os.path.join(ROOT, "user", f)
             for f in ("metrics.c", "metrics_http.c", "log.c", "utf8.c")),
           *pkg_config("--libs"), "-lpthread", "-o", out]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"cc failed:\n{r.stderr}"
    return out


def stop(proc, name):
    """SIGTERM, then SIGKILL; (exit status, stderr)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"{name} did not stop on SIGTERM")
    err = proc.stderr.read() if proc.stderr else ""
    return proc.returncode, err


@pytest.fixture(scope="module")
def server(serve_bin):
    args = [serve_bin, "--listen", "127.0.0.1:0"]
    # The service's violations come from a Deployment's pods, the generated ones from the host.
    args += ["--workload", f"{WORKLOAD[0]}/{WORKLOAD[1]}"]
    for rule, origin, n in NAMED:
        args += ["--violation", f"{rule},{origin},{n}"]
    args += ["--workload", "none/none"]
    for rule, origin, n in GENERATED:
        args += ["--violation", f"{rule},{origin},{n}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on "), f"metrics_serve: {line!r} {proc.stderr.read()!r}"
        yield int(line.split()[-1])
    finally:
        rc, err = stop(proc, "metrics_serve")
    # After the module's tests: a clean stop, and nothing from ASan/LSan or the server.
    assert rc == 0, f"metrics_serve exited {rc}: {err}"
    assert err == "", err


def get(port, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.fixture(scope="module")
def scrape(server):
    status, headers, body = get(server, "/metrics")
    assert status == 200
    assert headers["Content-Type"] == CONTENT_TYPE
    return body.decode("utf-8")


def test_endpoints(server):
    status, _, body = get(server, "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert get(server, "/")[0] == 404
    assert get(server, "/metrics/x")[0] == 404
    status, headers, _ = get(server, "/metrics", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, headers, body = get(server, "/metrics", method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Type"] == CONTENT_TYPE


def test_promtool_check_metrics(scrape):
    r = subprocess.run(["promtool", "check", "metrics"], input=scrape.encode(), capture_output=True,
                       timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")


def test_what_promtool_does_not_check(server, scrape):
    expo = promtext.parse(scrape)
    assert promtext.check(expo) == []
    # HELP and TYPE once per family (a second one is in check()), for all 60 families (the agent's process_* included).
    assert len(expo.help) == 60
    assert set(expo.type) == set(expo.help) == {s.name for s in expo.samples}
    # Stable order: a second scrape is the same text.
    assert get(server, "/metrics")[2].decode("utf-8") == scrape


def test_checker_catches_what_promtool_misses():
    """Each fixture passes promtool 2.42 (verified here) but not our checks."""
    head = "# HELP a_total A.\n# TYPE a_total counter\n# HELP b B.\n# TYPE b gauge\n"
    hist = "# HELP h H.\n# TYPE h histogram\n"
    fixtures = {
        "duplicate series": head + 'a_total{x="1"} 1\na_total{x="1"} 2\n',
        "second group": head + "a_total 1\nb 2\n" + 'a_total{x="2"} 3\n',
        "buckets out of order": hist + 'h_bucket{le="1"} 1\nh_bucket{le="0.5"} 1\n'
        'h_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n',
        "no +Inf bucket": hist + 'h_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
        "forbidden label": head + 'a_total{pid="42"} 1\n',
    }
    for what, text in fixtures.items():
        r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
        assert r.returncode == 0 or what == "forbidden label", (what, r.stderr)
        assert promtext.check(promtext.parse(text)), what
    with pytest.raises(ValueError):
        promtext.parse("a 1")  # no final line feed


def test_values(scrape):
    expo = promtext.parse(scrape)
    by = {}
    for s in expo.samples:
        by[(s.name, frozenset(s.labels))] = s.value

    def v(name, **labels):
        return by[(name, frozenset(labels.items()))]

    for rule, n in BY_RULE.items():
        assert v("wsaudit_violations_total", rule=rule) == n
    for rule, origin, n in NAMED:
        assert v("wsaudit_violations_by_origin_total", rule=rule, origin=origin) == n
    assert v("wsaudit_violations_by_origin_total", rule="bridge_bypass", origin="other") == OVERFLOWED
    assert v("wsaudit_metrics_overflow_total", family="wsaudit_violations_by_origin_total") == OVERFLOWED
    assert v("wsaudit_violations_by_workload_total", rule="bridge_bypass", k8s_namespace="chat",
             k8s_workload="api") == 4 + 2
    assert v("wsaudit_violations_by_workload_total", rule="isolation_breach",
             k8s_namespace="chat", k8s_workload="api") == 3 + 1 + 1
    assert v("wsaudit_violations_by_workload_total", rule="bridge_bypass", k8s_namespace="none",
             k8s_workload="none") == 50
    origins = [s for s in expo.samples if s.name == "wsaudit_violations_by_origin_total"]
    assert len(origins) == 50 + 1  # the cap, then "other"
    assert sum(s.value for s in origins) == sum(BY_RULE.values())
    for reason in ("ringbuf_full", "read_fault", "cap_exceeded", "map_full", "no_entry",
                   "too_many_iov", "loop_limit", "fd_resolve", "stack_ringbuf_full"):
        assert ("wsaudit_drops_total", frozenset({("reason", reason)})) in by
    # Occurrences and bytes apart.
    assert v("wsaudit_drops_total", reason="cap_exceeded") == 40
    assert v("wsaudit_dropped_bytes_total", reason="cap_exceeded") == 2621440
    assert v("wsaudit_dropped_bytes_total", reason="lost") == 70312
    assert v("wsaudit_build_info", version="0.0.0-test", revision="golden") == 1


def test_golden(scrape):
    if os.environ.get("WSAUDIT_UPDATE_GOLDEN") == "1":
        with open(GOLDEN, "w", encoding="utf-8") as f:
            f.write(scrape)
    with open(GOLDEN, encoding="utf-8") as f:
        golden = f.read()
    assert scrape == golden, "the exposition changed: review it, then WSAUDIT_UPDATE_GOLDEN=1"
    r = subprocess.run(["promtool", "check", "metrics"], input=golden.encode(), capture_output=True,
                       timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")


@pytest.fixture(scope="module")
def prometheus(server, workdir):
    port = free_port()
    cfg = os.path.join(workdir, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: wsaudit
    static_configs:
      - targets: ['127.0.0.1:{server}']
""")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={workdir}/tsdb",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
         "--storage.tsdb.retention.time=1h"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=workdir)
    try:
        yield port
    finally:
        rc, err = stop(proc, "prometheus")
        if rc not in (0, -signal.SIGTERM):
            print(err, file=sys.stderr)


def query(port, promql):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as r:
        data = json.load(r)
    assert data["status"] == "success", data
    return data["data"]["result"]


def wait_for(port, promql, want, deadline):
    """The query's result as {label tuple: value} once it equals want, or the last one."""
    got = None
    while time.monotonic() < deadline:
        try:
            got = {tuple(sorted(r["metric"].items())): float(r["value"][1])
                   for r in query(port, promql)}
        except (urllib.error.URLError, ConnectionError):
            got = None
        if got == want:
            return got
        time.sleep(0.5)
    return got


def test_prometheus_scrapes_violations(prometheus):
    deadline = time.monotonic() + DEADLINE
    want = {(("rule", rule),): float(n) for rule, n in BY_RULE.items() if n}
    got = wait_for(prometheus, "sum by (rule) (wsaudit_violations_total > 0)", want, deadline)
    assert got == want
    # The breakdown by origin adds up to the same, and "other" holds what overflowed.
    got = wait_for(prometheus, "sum by (rule) (wsaudit_violations_by_origin_total)", want, deadline)
    assert got == want
    got = query(prometheus, 'wsaudit_violations_by_origin_total{origin="other"}')
    assert [(r["metric"]["rule"], r["value"][1]) for r in got] == [("bridge_bypass", str(OVERFLOWED))]
    # An origin that needed escaping arrives as it was planted.
    got = query(prometheus, 'wsaudit_violations_by_origin_total{rule="isolation_breach"}')
    assert {r["metric"]["origin"] for r in got} == {o for r, o, _ in NAMED if r == "isolation_breach"}
    # By workload too, with the namespace kept apart.
    got = wait_for(prometheus, "sum by (rule) (wsaudit_violations_by_workload_total)", want, deadline)
    assert got == want
    got = query(prometheus, 'sum by (k8s_namespace, k8s_workload) '
                            '(wsaudit_violations_by_workload_total{k8s_namespace="chat"})')
    assert [(r["metric"]["k8s_workload"], r["value"][1]) for r in got] == [("api", "11")]
    got = query(prometheus, 'up{job="wsaudit"}')
    assert [r["value"][1] for r in got] == ["1"]
    got = query(prometheus, "scrape_samples_scraped")
    with open(GOLDEN, encoding="utf-8") as f:
        samples = len(promtext.parse(f.read()).samples)
    assert [int(r["value"][1]) for r in got] == [samples]

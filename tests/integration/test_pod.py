# SPDX-License-Identifier: GPL-2.0
"""`trace --pod / --container-id / --namespace`: processes resolved on the node from the
container runtime's state, as on a Kubernetes node running containerd.

The node is made for real: a cgroup v2 directory named as the kubelet's systemd driver
names a container (kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope, under a
directory of the test's own) and a containerd-like task bundle (k8s.io/<id>/config.json with
the CRI plugin's annotations, written with tests/data/podinfo/make_fixtures.py's helpers).
Servers run inside that cgroup; one more is started in it after the trace began and must be
followed too; a server on the host must not be.  A PID that does not exist fails before any
program is loaded; a PID copied from inside another PID namespace is said.
"""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from harness import (PY, ROOT, SERVERS, WSAUDIT, Trace, free_port, read_line, run_clients,
                     trace_frames)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "data", "podinfo"))
import make_fixtures  # noqa: E402

NS, POD, CONTAINER = "chat", "api-7d9f8b6c4-x2x9z", "web"


def cgroup2_root():
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, path, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return path
    return None


class Node:
    """A pod's container as containerd and the kubelet leave it on a node."""

    def __init__(self, tmp):
        root = cgroup2_root()
        if root is None:
            pytest.skip("no cgroup v2 hierarchy mounted: a container's cgroup cannot be made")
        self.id = make_fixtures.cid(f"test_pod/{uuid.uuid4()}")
        self.uid = str(uuid.uuid4())
        self.top = os.path.join(root, f"wsaudit-test-{os.getpid()}-{self.id[:8]}")
        pod_slice = os.path.join(self.top, f"kubepods-besteffort-pod{self.uid.replace('-', '_')}.slice")
        self.cgroup = os.path.join(pod_slice, f"cri-containerd-{self.id}.scope")
        os.makedirs(self.cgroup)
        self.bundles = os.path.join(tmp, "bundles")
        path = os.path.join(self.bundles, "k8s.io", self.id, "config.json")
        os.makedirs(os.path.dirname(path))
        spec = make_fixtures.spec(make_fixtures.annotations(POD, NS, self.uid, CONTAINER),
                                  os.path.relpath(self.cgroup, root))
        with open(path, "w") as f:
            json.dump(spec, f)

    def server(self, procs, tmp, name):
        """A websockets server started inside the container's cgroup (it moves itself in,
        then execs Python)."""
        port = free_port()
        log = os.path.join(tmp, f"{name}.log")
        script = (f'echo $$ > {self.cgroup}/cgroup.procs && '
                  f'exec {PY} {SERVERS["websockets"]} --port {port} --log {log}')
        p = procs.start(["/bin/sh", "-c", script], stdout=subprocess.PIPE)
        line = read_line(p, 30, name)
        assert line.startswith("READY pid="), line
        assert open(f"/proc/{p.pid}/cgroup").read().find(self.id) >= 0
        return p, port

    def remove(self, procs):
        procs.kill_all()
        for d in (self.cgroup, os.path.dirname(self.cgroup), self.top):
            try:
                os.rmdir(d)
            except OSError:
                pass


@pytest.fixture
def node(procs, tmp_path):
    n = Node(str(tmp_path))
    yield n
    n.remove(procs)


def host_server(procs, tmp, name):
    port = free_port()
    p = procs.start([PY, SERVERS["websockets"], "--port", str(port), "--log",
                     os.path.join(tmp, f"{name}.log")], stdout=subprocess.PIPE)
    assert read_line(p, 30, name).startswith("READY pid=")
    return p, port


@pytest.mark.parametrize("how", ["pod", "container", "container-id", "namespace"])
def test_trace_pod(procs, tmp_path, node, how):
    tmp = str(tmp_path)
    first, port1 = node.server(procs, tmp, "first")
    outside, port_out = host_server(procs, tmp, "outside")
    args = {"pod": ["--pod", f"{NS}/{POD}"],
            "container": ["--pod", f"{NS}/{POD}", "--container", CONTAINER],
            "container-id": ["--container-id", f"containerd://{node.id[:16]}"],
            "namespace": ["--namespace", NS]}[how]
    trace = Trace(procs, tmp, [*args, "--bundle-root", node.bundles, "-o", "json"])
    banner = trace.stderr()
    print(banner)
    assert f"wsaudit:   {first.pid} python3 {NS}/{POD}/{CONTAINER}\n" in banner, banner
    assert f" {outside.pid} " not in banner, banner
    assert "and the processes the chosen containers start" in banner, banner

    # A process the container starts after the trace began is followed from its exec.
    later, port2 = node.server(procs, tmp, "later")
    run_clients(procs, port1, n=2)
    run_clients(procs, port2, n=2)
    run_clients(procs, port_out, n=2)
    assert trace.stop() == 0, trace.stderr()
    recs = trace.records()
    seen1 = trace_frames(recs, first.pid, port1)
    seen2 = trace_frames(recs, later.pid, port2)
    print(f"[pod] {how}: first pid {first.pid}: {sum(map(len, seen1.values()))} frames on "
          f"{len(seen1)} connections; later pid {later.pid}: "
          f"{sum(map(len, seen2.values()))} frames on {len(seen2)} connections")
    assert len(seen1) == 2 and len(seen2) == 2, (seen1.keys(), seen2.keys())
    assert not [r for r in recs if r.get("pid") == outside.pid], "a host process was traced"
    frame = next(iter(seen2.values()))[0]
    assert frame.get("container", {}).get("pod") == POD, frame
    starts = [r for r in recs if r.get("type") == "process_start" and r.get("pid") == later.pid]
    assert starts, "no process_start record for the process started in the container"


def test_pod_not_on_node(procs, tmp_path, node):
    """Nothing of the pod runs here: said at once, nothing loaded."""
    tmp = str(tmp_path)
    node.server(procs, tmp, "first")
    for args, said in ((["--pod", f"{NS}/other"], f"no process of pod {NS}/other"),
                       (["--pod", f"{NS}/{POD}", "--container", "sidecar"],
                        f"no process of pod {NS}/{POD}, container sidecar"),
                       (["--container-id", "0" * 64], "no process of container"),
                       (["--namespace", "nowhere"], "no process of namespace nowhere")):
        r = subprocess.run([WSAUDIT, "trace", *args, "--bundle-root", node.bundles,
                            "--standalone"], capture_output=True, text=True, timeout=30)
        print(args, r.returncode, r.stderr)
        assert r.returncode == 2, r.stderr
        assert said in r.stderr, r.stderr
        assert "started in" not in r.stderr, r.stderr


def test_pod_bundle_unreadable_said(procs, tmp_path, node):
    """Without the runtime's state the pod cannot be named: how many processes that hides is
    said, and why."""
    tmp = str(tmp_path)
    node.server(procs, tmp, "first")
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    r = subprocess.run([WSAUDIT, "trace", "--pod", f"{NS}/{POD}", "--bundle-root", empty,
                        "--standalone"], capture_output=True, text=True, timeout=30)
    print(r.stderr)
    assert r.returncode == 2, r.stderr
    assert "whose names could not be read (bundle_missing" in r.stderr, r.stderr


def test_missing_pid_fails_before_loading(procs, tmp_path):
    pid = 4194303  # pid_max's ceiling: never a live process here
    if os.path.exists(f"/proc/{pid}"):
        pytest.skip(f"pid {pid} exists")
    r = subprocess.run([WSAUDIT, "trace", "-p", str(pid), "--standalone"], capture_output=True,
                       text=True, timeout=30)
    print(r.stderr)
    assert r.returncode == 2, r.stderr
    assert f"pid {pid}: no such process" in r.stderr
    # Nothing was loaded: no start-up line, no self-check record.
    assert "started in" not in r.stderr and r.stdout == "", (r.stdout, r.stderr)


def test_pid_of_another_namespace_said(procs, tmp_path):
    """A PID copied from `ps` inside a container is another process on the host: which one is
    traced is said, with the host pid of the other."""
    tmp = str(tmp_path)
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is missing")
    host, port = host_server(procs, tmp, "host")
    # In a new PID namespace, a process whose pid there is the host server's pid.
    script = (f"echo {host.pid - 1} > /proc/sys/kernel/ns_last_pid && "
              f"{PY} -c 'import os, time; print(os.getpid(), flush=True); time.sleep(120)'")
    inner = procs.start(["unshare", "--pid", "--fork", "--mount-proc", "/bin/sh", "-c", script],
                        stdout=subprocess.PIPE)
    line = read_line(inner, 30, "namespaced process")
    if int(line) != host.pid:
        pytest.skip(f"the namespace gave pid {line}, not {host.pid}")
    trace = Trace(procs, tmp, ["-p", host.pid, "-o", "json", "-d", "0.5"])
    assert trace.wait() == 0, trace.stderr()
    err = trace.stderr()
    print(err)
    assert f"pid {host.pid} is traced as the host's pid {host.pid} (python3, host)" in err, err
    assert f"inside its PID namespace: to trace that one, -p " in err, err


def test_agent_violations_by_workload(procs, tmp_path, node):
    """The agent names the workload of each violation: the stand-in service with its leak on
    runs inside the pod's container (a Deployment's pod: api-<hash>-<suffix>), and
    wsaudit_violations_by_workload_total counts its violations under k8s_namespace="chat",
    k8s_workload="api", as many as the log has.  Without the runtime's state the same
    violations are counted under unknown/unknown."""
    import collections
    import re
    import signal
    import time
    from test_agent import Agent, EXE_NAME, STANDIN, scrape, violations_in_log, wait_for

    tmp = str(tmp_path)
    exe = os.path.join(tmp, EXE_NAME)
    shutil.copy(os.path.realpath(PY), exe)
    with open(os.path.join(ROOT, "policies", "netra.yaml")) as f:
        policy_text = re.sub(r'(?m)^  exe: .*$', f'  exe: ["*/{EXE_NAME}"]', f.read(), count=1)
    policy = os.path.join(tmp, "policy.yaml")
    with open(policy, "w") as f:
        f.write(policy_text)
    # Every process of the run enters the container's cgroup, then becomes the interpreter.
    enter = os.path.join(tmp, "in-pod")
    with open(enter, "w") as f:
        f.write(f'#!/bin/sh\necho $$ > {node.cgroup}/cgroup.procs && exec {exe} "$@"\n')
    os.chmod(enter, 0o755)

    def run(bundles, sub):
        d = os.path.join(tmp, sub)
        os.makedirs(d)
        port = free_port()
        agent = Agent(procs, d, policy, port, ["--bundle-root", bundles])
        env = dict(os.environ, STANDIN_PYTHON=enter, PYTHONHOME="/usr")
        r = subprocess.run([PY, os.path.join(STANDIN, "run.py"), "--users", "3", "--leak",
                            "--seed", "2", "--timeout", "60"],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        counts = wait_for(lambda: violations_in_log(agent.log) or None, 10, "violations")
        series = collections.Counter()

        def scraped():
            series.clear()
            for m in re.finditer(r'^wsaudit_violations_by_workload_total\{rule="([^"]+)",'
                                 r'k8s_namespace="([^"]+)",k8s_workload="([^"]+)"\} (\d+)$',
                                 scrape(port), re.M):
                series[m.groups()[:3]] += int(m.group(4))
            by_rule = collections.Counter()
            for (rule, _, _), n in series.items():
                by_rule[rule] += n
            return by_rule == counts

        wait_for(scraped, 10, "the log's violations in wsaudit_violations_by_workload_total")
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(20) == 0, agent.stderr()
        return counts, series

    counts, series = run(node.bundles, "resolved")
    print(f"\n[pod] agent log: {dict(counts)}; by workload: {dict(series)}")
    assert counts["bridge_bypass"] > 0 and counts["isolation_breach"] > 0, counts
    assert {(ns, wl) for _, ns, wl in series} == {(NS, "api")}, series

    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    counts, series = run(empty, "unresolved")
    print(f"[pod] without the runtime's state: {dict(series)}")
    assert {(ns, wl) for _, ns, wl in series} == {("unknown", "unknown")}, series

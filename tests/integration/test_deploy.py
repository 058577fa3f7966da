# SPDX-License-Identifier: GPL-2.0
"""deploy/ checked without a cluster: manifests parse, the DaemonSet has what an eBPF agent
needs (hostPID, the capabilities of the least-privilege variant, probes, the metrics port),
the monitoring objects point at that port (tests/integration/deploy_check.py)."""

import os
import shutil
import subprocess

import pytest

from harness import PY, ROOT


def test_deploy_manifests():
    p = subprocess.run([PY, os.path.join(ROOT, "tests", "integration", "deploy_check.py")],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    print(p.stdout + p.stderr)
    assert p.returncode == 0


BROKEN = """apiVersion: apps/v1
kind: DaemonSet
metadata: {name: wsaudit, namespace: wsaudit}
spec:
  template:
    spec:
      containers: [{name: wsaudit, image: registry.invalid/wsaudit, ports: [{containerPort: "9464"}]}]
---
apiVersion: monitoring.googleapis.com/v1
kind: PodMonitoring
metadata: {name: wsaudit}
spec: {endpoints: [{port: metrics, interval: 30}]}
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: wsaudit}
spec: {groups: [{name: wsaudit, rules: [{alert: A}]}]}
---
apiVersion: example.com/v1
kind: Unknown
metadata: {name: x}
"""


def test_schema_validation_catches_broken_objects():
    """The validator deploy_check runs on every render refuses what the API server would: a
    DaemonSet without its selector and a port that is a string, a PodMonitoring interval that
    is a number, a PrometheusRule rule without its expr, and a kind it has no schema for."""
    validate = os.path.join(ROOT, "tests", "integration", "k8s_schema", "validate.mjs")
    if not shutil.which("node") or not os.path.isdir(os.path.join(os.path.dirname(validate),
                                                                  "node_modules")):
        pytest.fail("node and tests/integration/k8s_schema/node_modules needed: scripts/deps.sh")
    p = subprocess.run(["node", validate], input=BROKEN, capture_output=True, text=True,
                       timeout=60)
    print(p.stdout + p.stderr)
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    assert len(lines) == 4 and all(line.startswith("FAIL") for line in lines), lines
    assert "required property 'selector'" in lines[0] or "required property selector" in lines[0]
    assert "containerPort must be integer" in lines[0]
    assert "interval must be string" in lines[1]
    assert "expr" in lines[2]
    assert "no schema for this kind" in lines[3]

# SPDX-License-Identifier: GPL-2.0
"""deploy/ checked without a cluster: manifests parse, the DaemonSet has what an eBPF agent
needs (hostPID, the capabilities of the least-privilege variant, probes, the metrics port),
the monitoring objects point at that port (tests/integration/deploy_check.py)."""

import os
import subprocess

from harness import PY, ROOT


def test_deploy_manifests():
    p = subprocess.run([PY, os.path.join(ROOT, "tests", "integration", "deploy_check.py")],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    print(p.stdout + p.stderr)
    assert p.returncode == 0

# SPDX-License-Identifier: GPL-2.0
"""Fixtures and skips of the integration suite (helpers in harness.py)."""

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import WSAUDIT, Procs  # noqa: E402


def pytest_collection_modifyitems(config, items):
    # Checked at collection so every test says why it did not run.
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root: loads BPF programs into the kernel")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def prerequisites():
    if not os.access(WSAUDIT, os.X_OK):
        pytest.fail(f"{WSAUDIT} is missing: build it with `make` first")
    if shutil.which("tshark") is None:
        pytest.fail("tshark is missing: run `make deps`")
    if not os.path.isdir("/sys/kernel/tracing/events"):
        pytest.fail("tracefs is not mounted at /sys/kernel/tracing (tests/integration/run.sh mounts it)")


@pytest.fixture
def procs():
    ps = Procs()
    try:
        yield ps
    finally:
        ps.kill_all()



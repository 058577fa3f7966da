# SPDX-License-Identifier: GPL-2.0
"""wsaudit check-system on this machine, and the one-line refusal of trace without privileges.

As root every required check passes here (the integration suite's kernel has every feature
docs/kernels.md lists).  Without capabilities, check-system names the missing ones with the fix,
and trace stops with that one line before any BPF is loaded: no libbpf output, no verifier log.
"""

import re
import subprocess

from harness import WSAUDIT

# "%-4s %-26s %s": status, name, what was found [fix: ...]
LINE = re.compile(r"^(pass|warn|FAIL) (.{26}) (\S.*)$")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
          "--bounding-set=-all"]


def run(argv, timeout=60):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def test_check_system_passes_as_root():
    p = run([WSAUDIT, "check-system"])
    lines = p.stdout.splitlines()
    print(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr
    checks = [LINE.match(l) for l in lines[:-1]]
    assert all(checks), "a line is not STATUS NAME DETAIL:\n" + p.stdout
    names = {m.group(2).strip() for m in checks}
    for want in ("kernel", "capabilities", "lockdown", "btf", "tracefs", "syscall tracepoints",
                 "uprobes", "map: ringbuf", "prog: tracepoint", "prog: tp_btf",
                 "helper: current_task_btf", "cgroup"):
        assert want in names, f"no {want} check:\n{p.stdout}"
    assert not [m for m in checks if m.group(1) == "FAIL"], p.stdout
    assert lines[-1].startswith("ok: "), lines[-1]


def test_check_system_without_privileges_names_the_fix():
    p = run(NOBODY + [WSAUDIT, "check-system"])
    assert p.returncode == 1, p.stdout + p.stderr
    caps = [l for l in p.stdout.splitlines() if l[5:31].strip() == "capabilities"]
    assert caps and caps[0].startswith("FAIL"), p.stdout
    assert "CAP_BPF" in caps[0] and "fix:" in caps[0], caps[0]
    assert p.stdout.splitlines()[-1].startswith("FAIL: "), p.stdout


def test_trace_without_privileges_stops_with_one_line():
    p = run(NOBODY + [WSAUDIT, "trace", "-p", "1", "-d", "1"])
    assert p.returncode != 0, p.stdout + p.stderr
    # One error, the last line; what trace says before (its banner) is not about the failure.
    err = [l for l in p.stderr.splitlines() if "error" in l or "warning" in l]
    assert len(err) == 1, "expected one error line, got:\n" + p.stderr
    assert p.stderr.splitlines()[-1] == err[0], p.stderr
    assert "capabilities" in err[0] and "fix:" in err[0], err[0]
    assert "libbpf" not in p.stderr and "BPF program" not in p.stderr, p.stderr

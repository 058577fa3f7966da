# SPDX-License-Identifier: GPL-2.0
"""Every command's --help and usage errors, as a user meets them.

--help prints the command's usage to stdout and exits 0; an unknown option or a stray
argument says "wsaudit COMMAND: what is wrong" and the usage on stderr, and exits 2.  The
parsers themselves are unit-tested (tests/unit/test_cli.c, test_trace_opts.c,
test_run_opts.c); this is the binary's side of the same contract.
"""

import subprocess

import pytest

from harness import WSAUDIT

COMMANDS = ["trace", "agent", "run", "decode", "version", "check-policy", "check-system",
            "hash-user"]


def run(argv):
    return subprocess.run([WSAUDIT] + argv, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("cmd", COMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_exits_0(cmd, flag):
    p = run([cmd, flag])
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"usage: wsaudit {cmd}"), p.stdout
    assert p.stderr == ""


@pytest.mark.parametrize("cmd", COMMANDS)
def test_unknown_option_exits_2(cmd):
    p = run([cmd, "--no-such-option"])
    assert p.returncode == 2
    assert p.stderr.startswith(f"wsaudit {cmd}: unknown option '--no-such-option'\n"), p.stderr
    assert f"usage: wsaudit {cmd}" in p.stderr
    assert p.stdout == ""


def test_top_level_help():
    for argv in (["--help"], ["-h"], ["help"]):
        p = run(argv)
        assert p.returncode == 0
        for cmd in COMMANDS:
            assert f"wsaudit {cmd}" in p.stdout
    p = run([])
    assert p.returncode == 2
    p = run(["no-such-command"])
    assert p.returncode == 2
    assert "unknown command 'no-such-command'" in p.stderr

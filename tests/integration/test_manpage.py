# SPDX-License-Identifier: GPL-2.0
"""wsaudit(8) and the bash completion are made from the binary's --help texts
(scripts/mkdocs.py): every option a command's --help names is in the man page and offered by
the completion, and the page renders without warnings."""

import os
import re
import shutil
import subprocess

import pytest

from harness import ROOT, WSAUDIT

MKDOCS = os.path.join(ROOT, "scripts", "mkdocs.py")


def gen(what):
    return subprocess.run(["/usr/bin/python3", MKDOCS, WSAUDIT, what], capture_output=True,
                          text=True, timeout=60, check=True).stdout


def helps():
    top = subprocess.run([WSAUDIT, "--help"], capture_output=True, text=True).stdout
    cmds = re.findall(r"^\s+wsaudit ([a-z][a-z-]*)", top, re.M)
    assert "trace" in cmds and "agent" in cmds, top
    return {c: subprocess.run([WSAUDIT, c, "--help"], capture_output=True, text=True).stdout
            for c in cmds}


def test_man_page(tmp_path):
    if shutil.which("man") is None:
        pytest.skip("man (man-db) is missing: the page cannot be rendered here")
    page = tmp_path / "wsaudit.8"
    page.write_text(gen("man"))
    r = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True,
                       env={**os.environ, "MANWIDTH": "120", "MAN_KEEP_FORMATTING": "0"},
                       timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    text = re.sub(r".\x08", "", r.stdout)
    for cmd, h in helps().items():
        assert re.search(rf"^ {{3}}{re.escape(cmd)}$", text, re.M), f"no section for {cmd}"
        for opt in set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", h)):
            assert opt in text, f"{cmd} {opt} is not in the man page"
    print(f"\n[man] {len(text.splitlines())} lines rendered, {len(helps())} commands")


def complete(script, words):
    line = " ".join(words)
    cmd = (f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
           "_wsaudit; printf '%s\\n' \"${COMPREPLY[@]}\"")
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True,
                          timeout=30).stdout.split()


def test_bash_completion(tmp_path):
    script = tmp_path / "wsaudit.bash"
    script.write_text(gen("completion"))
    assert "trace" in complete(script, ["wsaudit", "tr"])
    assert set(complete(script, ["wsaudit", "trace", "--po"])) == {"--pod", "--policy"}
    assert complete(script, ["wsaudit", "trace", "-o", "j"]) == ["json"]
    # --write DIR completes directories only.
    (tmp_path / "wdir").mkdir()
    (tmp_path / "wfile").write_text("")
    assert complete(script, ["wsaudit", "trace", "--write", str(tmp_path / "w")]) == \
        [str(tmp_path / "wdir")]
    for cmd, h in helps().items():
        offered = set(complete(script, ["wsaudit", cmd, "--"]))
        named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", h))
        assert named <= offered, (cmd, sorted(named - offered))

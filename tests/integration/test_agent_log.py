# SPDX-License-Identifier: GPL-2.0
"""The agent's violation log under attack: a filesystem that fills up while violations flow
(a 64 KiB tmpfs), then gets space back; rotation by size; `--log -`.  Nothing is lost in
silence: every violation the agent judged is one valid JSON line in the log, the write errors
are counted in wsaudit_log_write_errors_total and said on stderr, and no line is half written
or merged with the next.
"""

import json
import os
import re
import shutil
import signal
import stat
import subprocess

import pytest

from harness import PY, ROOT, WSAUDIT, free_port
from test_agent import EXE_NAME, STANDIN, scrape, wait_for


def metric(text, name):
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, name
    return float(m.group(1))


def standin_env(tmp):
    """The stand-in runs from a copy of the interpreter that the policy's targets name by its
    whole path: another test's agent on the same machine (same name, other directory) does
    not follow this one's, nor this agent theirs."""
    exe = os.path.join(tmp, EXE_NAME)
    shutil.copy(os.path.realpath(PY), exe)
    with open(os.path.join(ROOT, "policies", "netra.yaml")) as f:
        text = re.sub(r'(?m)^  exe: .*$', f'  exe: ["{exe}"]', f.read(), count=1)
    policy = os.path.join(tmp, "policy.yaml")
    with open(policy, "w") as f:
        f.write(text)
    return dict(os.environ, STANDIN_PYTHON=exe, PYTHONHOME="/usr"), policy


def run_standin(env, users, seed):
    run = subprocess.run([PY, os.path.join(STANDIN, "run.py"), "--users", str(users), "--leak",
                          "--seed", str(seed), "--timeout", "60"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def start_agent(procs, tmp, policy, log, *extra, stdout=subprocess.DEVNULL):
    port = free_port()
    err_path = os.path.join(tmp, "agent.err")
    err = open(err_path, "w")
    proc = procs.start([WSAUDIT, "agent", "-c", policy, "--socket", "none", "--metrics-addr", f"127.0.0.1:{port}",
                        "--log", log, "--stats-interval", "0", *extra],
                       stdout=stdout, stderr=err, cwd=ROOT)

    def stderr():
        with open(err_path) as f:
            return f.read()

    wait_for(lambda: "wsaudit: agent following" in stderr() or proc.poll() is not None, 60,
             "agent start")
    assert proc.poll() is None, stderr()
    return proc, port, stderr


def read_records(paths):
    """Every line of the files, each one whole JSON: a merged or cut line fails here."""
    recs = []
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        assert not data or data.endswith(b"\n"), f"{p}: last line not complete"
        for n, line in enumerate(data.splitlines(), 1):
            try:
                recs.append(json.loads(line))
            except ValueError:
                pytest.fail(f"{p}:{n}: not one JSON record: {line[:200]!r}")
    return recs


def violation_counts(recs):
    got = {"bridge_bypass": 0, "isolation_breach": 0}
    for r in recs:
        if r.get("type") == "frame":
            for v in r["violations"]:
                got[v["rule"]] += 1
    final = [r for r in recs if r.get("type") == "stats" and r.get("final")]
    assert len(final) == 1, "one final stats record"
    judged = {k: final[0]["violations"][k] for k in got}
    return got, judged


def test_log_full_filesystem_loses_nothing(procs, tmp_path):
    tmp = str(tmp_path)
    env, policy = standin_env(tmp)
    fs = os.path.join(tmp, "logfs")
    os.mkdir(fs)
    # Room enough, once the filler goes, for every record the run queues (about 170 records
    # of up to 2 KiB each).
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", fs], check=True)
    try:
        # Most of it taken already: the violations fill the rest within the first run.
        filler = os.path.join(fs, "filler")
        with open(filler, "wb") as f:
            try:
                f.write(b"x" * (1020 << 10))
            except OSError:
                pass
        log = os.path.join(fs, "violations.jsonl")
        proc, port, stderr = start_agent(procs, tmp, policy, log)
        assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
        run_standin(env, users=6, seed=3)

        text = wait_for(lambda: (lambda t: t if metric(t, "wsaudit_log_queued_records") > 0
                                 else None)(scrape(port)), 10, "records queued")
        errors = metric(text, "wsaudit_log_write_errors_total")
        queued = metric(text, "wsaudit_log_queued_records")
        print(f"\n[log] full: write errors {errors:.0f}, queued {queued:.0f}, dropped "
              f"{metric(text, 'wsaudit_log_records_dropped_total'):.0f}, "
              f"log {os.path.getsize(log)} bytes")
        assert errors > 0
        assert "cannot write the violation log" in stderr()
        # A partly written record was cut back: what the log holds now is whole lines.
        read_records([log])

        os.unlink(filler)
        wait_for(lambda: metric(scrape(port), "wsaudit_log_queued_records") == 0, 10,
                 "queue written")
        assert "writable again" in stderr()
        text = scrape(port)
        assert metric(text, "wsaudit_log_records_dropped_total") == 0
        assert metric(text, "wsaudit_log_write_errors_total") >= errors

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, stderr()
        got, judged = violation_counts(read_records([log]))
        print(f"[log] after space came back: log {got}, judged {judged}")
        assert got == judged and got["bridge_bypass"] > 0
    finally:
        subprocess.run(["umount", "-l", fs])


def test_log_rotation_bounded(procs, tmp_path):
    tmp = str(tmp_path)
    env, policy = standin_env(tmp)
    log = os.path.join(tmp, "violations.jsonl")
    proc, port, stderr = start_agent(procs, tmp, policy, log, "--log-max-size", "8K",
                                     "--log-max-files", "2")
    run_standin(env, users=6, seed=4)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0, stderr()
    files = sorted(os.listdir(tmp))
    print(f"\n[log] rotation: {[(f, os.path.getsize(os.path.join(tmp, f))) for f in files]}")
    assert "violations.jsonl.1" in files and "violations.jsonl.2" in files
    assert "violations.jsonl.3" not in files
    for f in ("violations.jsonl", "violations.jsonl.1", "violations.jsonl.2"):
        p = os.path.join(tmp, f)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
        recs = read_records([p])
        assert recs
        # A file goes past the bound only by holding one record bigger than it.
        assert os.path.getsize(p) <= 8192 or len(recs) == 1


def test_log_to_stdout(procs, tmp_path):
    tmp = str(tmp_path)
    env, policy = standin_env(tmp)
    out = open(os.path.join(tmp, "stdout"), "w")
    proc, port, stderr = start_agent(procs, tmp, policy, "-", stdout=out)
    run_standin(env, users=3, seed=2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0, stderr()
    got, judged = violation_counts(read_records([os.path.join(tmp, "stdout")]))
    print(f"\n[log] --log -: {got}")
    assert got == judged and got["bridge_bypass"] > 0

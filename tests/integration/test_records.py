# SPDX-License-Identifier: GPL-2.0
"""The JSON record contract (docs/records.md): every record carries "v", and a record of
every type trace writes, made for real, validates against its JSON Schema under
docs/schemas/ (python3-jsonschema, Draft 2020-12).

One trace follows three processes at once:
  - the stand-in of the reference service under the netra policy, with the epipe fault (a
    client that resets its connection while an agent keeps writing: `lost` records) and
    typed, per-user messages (frame.message);
  - the websockets test server, asked a plain HTTP request it does not upgrade
    (conn_skipped http_not_upgraded);
  - a shell that starts /bin/true in a loop (process_fork, process_start, process_exit).
"""

import glob
import json
import os
import subprocess
import time
import urllib.request

import pytest

from harness import PY, ROOT, SERVERS, WSAUDIT, Trace, free_port, read_line

jsonschema = pytest.importorskip("jsonschema", reason="python3-jsonschema is missing: make deps")

SCHEMAS = os.path.join(ROOT, "docs", "schemas")
STANDIN = os.path.join(ROOT, "tests", "apps", "standin")
POLICY = os.path.join(ROOT, "policies", "netra.yaml")
# The types one trace makes here; the others are said below with where they are made.
MADE_HERE = {"selfcheck", "conn_open", "frame", "lost", "conn_close", "conn_skipped", "run",
             "process_fork", "process_start", "process_exit", "stats"}
NOT_MADE_HERE = {
    "dropped": "trace through the agent, a reader too slow: validated in test_trace_agent.py",
    "queued": "a uvloop client that stops reading: validated in test_delivery_queued.py",
}


def schemas():
    out = {}
    for path in glob.glob(os.path.join(SCHEMAS, "*.schema.json")):
        with open(path) as f:
            s = json.load(f)
        jsonschema.Draft202012Validator.check_schema(s)
        out[os.path.basename(path)[:-len(".schema.json")]] = s
    return out


def test_schema_for_every_type():
    want = MADE_HERE | set(NOT_MADE_HERE) | {"run_summary"}
    have = set(schemas())
    assert want <= have, sorted(want - have)


def test_run_summary_validates():
    """`wsaudit run`'s last record, for a command that opens no connection."""
    r = subprocess.run([WSAUDIT, "run", "-o", "json", "--", PY, "-c", "pass"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["v"] == 1 and last["type"] == "run_summary", last
    errors = list(jsonschema.Draft202012Validator(schemas()["run_summary"]).iter_errors(last))
    assert not errors, errors[0].message


def test_every_record_type_validates(procs, tmp_path):
    tmp = str(tmp_path)
    go = os.path.join(tmp, "go")
    runner = procs.start([PY, os.path.join(STANDIN, "run.py"), "--port", "0", "--users", "2",
                          "--runs", "1", "--seed", "7", "--go-file", go, "--timeout", "120",
                          "--fault", "epipe"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    line = read_line(runner, 30, "stand-in")
    assert line.startswith("SERVER pid="), line
    standin = int(line.split()[1].split("=")[1])
    ws_port = free_port()
    ws = procs.start([PY, SERVERS["websockets"], "--port", str(ws_port), "--log",
                      os.path.join(tmp, "ws.log")], stdout=subprocess.PIPE)
    assert read_line(ws, 30, "websockets server").startswith("READY")
    shell = procs.start(["/bin/sh", "-c", "while sleep 0.2; do /bin/true; done"])
    trace = Trace(procs, tmp, ["-p", standin, "-p", ws.pid, "-p", shell.pid, "-c", POLICY,
                               "-o", "json", "--stats-interval", "1"])
    open(go, "w").close()
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{ws_port}/", timeout=10).read()
    except Exception:
        pass  # the server answers 426 Upgrade Required: what the test wants
    runner.communicate(timeout=180)
    time.sleep(1.5)
    assert trace.stop() == 0, trace.stderr()
    recs = trace.records()

    unversioned = [r for r in recs if r.get("v") != 1]
    assert not unversioned, unversioned[:2]
    with open(trace.out_path) as f:
        assert all(line.startswith('{"v":1,"type":"') for line in f if line.strip())

    by_type = {}
    for r in recs:
        by_type.setdefault(r["type"], []).append(r)
    print("\n[records] " + ", ".join(f"{t} {len(v)}" for t, v in sorted(by_type.items())))
    for t, why in NOT_MADE_HERE.items():
        print(f"[records] {t}: not made by this test ({why})")
    missing = MADE_HERE - set(by_type)
    assert not missing, f"no record of type {sorted(missing)}"
    unknown = set(by_type) - set(schemas())
    assert not unknown, f"records of types without a schema: {sorted(unknown)}"
    have = schemas()
    for t, rs in sorted(by_type.items()):
        v = jsonschema.Draft202012Validator(have[t])
        for r in rs:
            errors = sorted(v.iter_errors(r), key=lambda e: list(e.path))
            assert not errors, f"{t}: {errors[0].message} at {list(errors[0].path)}: {r}"
    # The message's type has a name of its own; "type" in it is the v1 alias.
    typed = [r for r in by_type["frame"] + by_type["lost"] if r.get("message")]
    assert typed and all(r["message"]["msg_type"] == r["message"]["type"] for r in typed)

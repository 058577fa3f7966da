# SPDX-License-Identifier: GPL-2.0
"""A send made by work handed to another task, callback or thread is linked to the code that
handed it over (issue 20, docs/causal.md), on every supported CPython.

tests/apps/causal_link/server.py (standard library only) produces frames by one hand-off
pattern per connection: asyncio.create_task, ensure_future, a chain (a task created by
wait_for inside a task the handler created), loop.call_soon and call_later of the
transport's write, asyncio.to_thread of os.write, call_soon_threadsafe and
run_coroutine_threadsafe from a worker thread, and the same through a bridge (Bridge.*).
Its wslib/ is transport in the test's policy: the send's own stack names no application
function, only its creation does.  At each producing call the app logs the function, file
and line of the call: the origin wsaudit must report, with the `via` the app names.

Checked per pattern, for every frame: origin equals the app's producing call, `via` is the
app's, a frame produced under the bridge has via_bridge true and no violation, the others
are bridge_bypass naming the producer; and a job of run_in_executor, which asyncio runs in
no copied context, is an `unjudged` violation (no_application_frames) with its best origin,
never silently passed.  A buffered write flushed by a writer callback the bridge registered
(the "buffered" pattern: a bypass writes into the buffer before the flush) is unjudged
(deferred_write): neither frame is named after the bridge nor judged under it.  The final
stats count the links and the unjudged frames.
"""

import asyncio
import json
import os
import signal
import subprocess
import time

import pytest
import websockets

from attr_helpers import ROOT_LOGDIR, ROOT_REPO, RUN_IN_ROOT, ensure_root, interpreters, strip_root
from harness import APPS, PY, ROOT, Trace, final_stats, read_line

SERVER = os.path.join(APPS, "causal_link", "server.py")
FRAMES = 6
LINKED = ["task", "ensure_future", "chain", "call_soon", "call_later", "to_thread",
          "threadsafe", "rcts", "bridge_task", "bridge_callback", "direct"]
# Patterns whose frames no link may name, with their unjudged reason.
UNJUDGED = {"executor": "no_application_frames", "buffered": "deferred_write"}
POLICY = """\
bridge:
  functions: ["Bridge.*"]
transport:
  files: ["*/site-packages/*", "*/dist-packages/*", "*/lib/python3*/*", "<frozen *>",
          "*/causal_link/wslib/*"]
"""

INTERPS = interpreters()


class App:
    def __init__(self, procs, interp, workdir, script=None):
        self.truth_path = os.path.join(workdir, "truth.jsonl")
        self.out_path = os.path.join(workdir, "app.out")
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        for k in ("PYTHONPATH", "PYTHONHOME", "PYENV_VERSION", "VIRTUAL_ENV"):
            env.pop(k, None)
        # Another app of causal_link (script) takes no truth log.
        log = [] if script else ["--log", ROOT_LOGDIR + "/truth.jsonl"]
        script = script or SERVER
        if interp.suite:
            argv = [RUN_IN_ROOT, "--bind", "%s:%s" % (workdir, ROOT_LOGDIR), interp.suite,
                    interp.exe, script.replace(ROOT, ROOT_REPO, 1)] + log
        else:
            argv = [interp.exe, script] + (["--log", self.truth_path] if log else [])
        self.out = open(self.out_path, "w")
        self.proc = procs.start(argv, stdout=self.out, stderr=subprocess.STDOUT, env=env, cwd="/")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(self.out_path) as f:
                line = f.readline()
            if line.startswith("READY "):
                fields = dict(w.split("=", 1) for w in line.split()[1:])
                self.pid, self.port = int(fields["pid"]), int(fields["port"])
                assert self.pid == self.proc.pid
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(self.out_path) as f:
            raise RuntimeError("%s: app not ready: %s" % (interp.label, f.read()[-2000:]))

    def truth(self):
        with open(self.truth_path) as f:
            return [json.loads(line) for line in f]


async def client(port, pattern, n):
    """One connection: asks for n frames by pattern, returns their payloads."""
    got = []
    async with websockets.connect("ws://127.0.0.1:%d/%s" % (port, pattern),
                                  compression=None, open_timeout=10) as ws:
        await ws.send(str(n))
        try:
            async for m in ws:
                got.append(json.loads(m))
        except websockets.ConnectionClosed:
            pass
    return got


def run_patterns(port, patterns, n):
    for p in patterns:
        got = asyncio.run(asyncio.wait_for(client(port, p, n), 60))
        assert sorted(g["seq"] for g in got) == list(range(n)), (p, got)


def traced(procs, tmp_path, interp, patterns):
    if interp.exe is None:
        pytest.skip(interp.why)
    if interp.suite:
        why = ensure_root(interp)
        if why:
            pytest.skip(why)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    app = App(procs, interp, str(tmp_path))
    trace = Trace(procs, str(tmp_path), ["-p", app.pid, "-c", policy, "-o", "json", "--stack",
                                         "--payload"])
    run_patterns(app.port, patterns, FRAMES)
    assert trace.stop() == 0, trace.stderr()
    recs = trace.records()
    frames = {}
    for r in recs:
        if r.get("type") == "frame" and r["pid"] == app.pid and r["opcode"] == "text":
            m = json.loads(r["payload"])
            frames[(m["p"], m["seq"])] = r
    return app, recs, frames, interp.root


@pytest.mark.parametrize("interp", INTERPS, ids=[i.label for i in INTERPS])
def test_causal_link(procs, tmp_path, interp):
    app, recs, frames, root = traced(procs, tmp_path, interp, LINKED + list(UNJUDGED))
    truth = app.truth()
    ok = {p: 0 for p in LINKED}
    problems = []
    for t in truth:
        r = frames.get((t["pattern"], t["seq"]))
        where = "%s #%d" % (t["pattern"], t["seq"])
        if r is None:
            problems.append("%s: no frame reported" % where)
            continue
        if t["pattern"] in UNJUDGED:
            un = [v for v in r["violations"] if v["rule"] == "unjudged"]
            if r["origin"] is not None or len(un) != 1 or r["violations"] != un or \
                    r["via_bridge"] is not None or \
                    un[0]["reason"] != UNJUDGED[t["pattern"]] or not un[0]["best_origin"] or \
                    un[0]["severity"] != "warning":
                problems.append("%s: not unjudged: origin %s via_bridge %s violations %s" % (
                    where, r["origin"], r["via_bridge"], r["violations"]))
            continue
        o = r["origin"]
        want = (t["function"], t["file"], t["line"], t["via"])
        have = o and (o["function"], strip_root(o["file"], root), o["line"], o.get("via"))
        # 3.9/3.10 code objects have no qualname: wsaudit names the class from self.
        if have and want[0] != have[0] and have[0].endswith("." + want[0]):
            have = (want[0],) + have[1:]
        rules = [v["rule"] for v in r["violations"]]
        if have != want:
            problems.append("%s: origin %s, app %s (unattributed: %s)" % (
                where, have, want, r.get("unattributed")))
        elif t["bridged"] and (r["via_bridge"] is not True or rules):
            problems.append("%s: under the bridge: via_bridge %s, %s" % (
                where, r["via_bridge"], rules))
        elif not t["bridged"] and (r["via_bridge"] is not False or rules != ["bridge_bypass"]):
            problems.append("%s: a bypass: via_bridge %s, %s" % (where, r["via_bridge"], rules))
        elif t["via"] and not r.get("creators"):
            problems.append("%s: --stack gave no creation stack" % where)
        else:
            ok[t["pattern"]] += 1
    stats = final_stats(recs)
    print("causal %s: %s; causal %s; unjudged %s" % (
        interp.label, " ".join("%s %d/%d" % (p, ok[p], FRAMES) for p in LINKED),
        stats["causal"], stats["violations"]["unjudged"]))
    assert len(truth) == FRAMES * (len(LINKED) + len(UNJUDGED)), len(truth)
    assert not problems, "\n".join(problems[:30])
    assert stats["violations"]["unjudged"] == FRAMES * len(UNJUDGED)
    for reason in UNJUDGED.values():
        assert stats["violations"]["unjudged_by_reason"][reason] == FRAMES, reason
    assert stats["causal"]["linked"] >= FRAMES * (len(LINKED) - 1)
    # The app sleeps after each frame: those copies are not recorded, and every link holds.
    assert stats["causal"]["skipped"] > 0, stats["causal"]


WORKER = os.path.join(APPS, "causal_link", "worker.py")


def named(origin, root):
    """An origin with its file as outside the interpreter's root."""
    return origin and dict(origin, file=strip_root(origin["file"], root))


def trace_frames_of(trace, pid):
    return [r for r in trace.records() if r.get("type") == "frame" and r["pid"] == pid
            and r["opcode"] == "text"]


NAMES_CASES = [(i, False) for i in INTERPS] + [(INTERPS[0], True)]


@pytest.mark.parametrize("interp,read_alive", NAMES_CASES,
                         ids=["%s-%s" % (i.label, "read_alive" if alive else "never_read_alive")
                              for i, alive in NAMES_CASES])
def test_names_outlive_their_process(procs, tmp_path, interp, read_alive):
    """A send whose process exited before the collector read its stack is named all the
    same, from the names its walk sent while the process lived (docs/names.md), and judged
    as it would have been: never left unjudged, never linked to its work's creator.  The
    soak saw every frame of a stand-in server, whose process was gone when the collector
    reached its sends under a flood, first named after `serve`, which started the server,
    through a task, then unjudged (symbol_read_failed).  Here the collector is stopped
    (SIGSTOP), the worker sends by produce() and the process exits, then the collector goes
    on: every frame is produce's, at its line, a bridge_bypass (produce is no bridge).
    read_alive: a first frame was read while the process lived (the worker's creation,
    start_worker, and produce's code objects known); never_read_alive: the collector is
    stopped before the process sends anything, as a stand-in server behind a flood."""
    if interp.exe is None:
        pytest.skip(interp.why)
    if interp.suite:
        why = ensure_root(interp)
        if why:
            pytest.skip(why)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    app = App(procs, interp, str(tmp_path), WORKER)
    pid, port = app.pid, app.port
    with open(WORKER) as f:
        send_line = next(i for i, text in enumerate(f, 1) if "await wslib.send(" in text)
    # A root's interpreter sees the repository where it is bound (ROOT_REPO).
    origin = {"file": WORKER.replace(ROOT, ROOT_REPO, 1) if interp.suite else WORKER,
              "function": "produce", "line": send_line}
    trace = Trace(procs, str(tmp_path), ["-p", pid, "-c", policy, "-o", "json", "--payload"])
    skip = 0
    if read_alive:
        asyncio.run(asyncio.wait_for(client(port, "first", 1), 60))
        deadline = time.monotonic() + 60
        while not trace_frames_of(trace, pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        first = trace_frames_of(trace, pid)
        assert first and named(first[0]["origin"], interp.root) == origin, first
        skip = 1
    trace.proc.send_signal(signal.SIGSTOP)
    try:
        got = asyncio.run(asyncio.wait_for(client(port, "last", FRAMES), 60))
        assert sorted(g["seq"] for g in got) == list(range(FRAMES)), got
        assert app.proc.wait(30) == 0
    finally:
        trace.proc.send_signal(signal.SIGCONT)
    assert trace.stop() == 0, trace.stderr()
    recs = trace.records()
    frames = trace_frames_of(trace, pid)[skip:]
    assert len(frames) == FRAMES, frames
    for r in frames:
        assert named(r["origin"], interp.root) == origin, r
        assert r.get("via") is None, r
        assert [v["rule"] for v in r["violations"]] == ["bridge_bypass"], r["violations"]
    stats = final_stats(recs)
    print("names after exit %s (%s): %d of %d frames named produce (line %d); unjudged %s; "
          "names_lost %d" % (interp.label, "read alive" if read_alive else "never read alive",
                             len(frames), FRAMES, send_line,
                             {k: v for k, v in stats["violations"]["unjudged_by_reason"].items()
                              if v}, stats["drops"]["names_lost"]))
    assert not any(stats["violations"]["unjudged_by_reason"].values()), stats["violations"]
    assert stats["drops"]["names_lost"] == 0, stats["drops"]

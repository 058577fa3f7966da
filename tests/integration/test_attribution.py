# SPDX-License-Identifier: GPL-2.0
"""Python attribution against ground truth, on every supported CPython (issue 4, acceptance).

For each interpreter (Debian bookworm's static 3.11, the pyenv 3.9-3.13 builds with a shared
libpython, and the Debian bullseye 3.9, trixie 3.13 and sid 3.14 roots of tests/pythons),
tests/apps/attr_app/server.py writes frames from known functions: coroutines, nested
awaits, instance/class/static methods, an inherited method, a closure, an event-loop
callback and a lambda, an async generator, a thread-pool worker with sendall, modules under
agents/, core/ and services/.  At each socket send it logs CPython's own
traceback.extract_stack() of the sending frame (attr_app/truth.py).

The client runs twice against the same server: first untraced, then under
`wsaudit trace -p PID -o json --stack`.  Checked:
- the service behaves the same with and without wsaudit: the client receives the same
  frames, the app prints the same lines and logs the same stacks (client ports replaced by
  the connection's index);
- for every frame the app wrote while traced, in order per connection: wsaudit reports the
  same opcode, fin and length, its origin equals the innermost frame outside the default
  transport globs (function, file, line), and its stack equals the app's whole stack
  (application and standard library frames), never partial.  Accuracy must be 100%.

In the Debian roots the app runs chrooted: it names its files as seen inside the root
(/wsaudit/tests/apps/attr_app/..., /usr/lib/python3.X/...).  When wsaudit names a file
under the root's host path (/var/cache/wsaudit/roots/SUITE/...), that prefix is stripped
before comparing; nothing else is rewritten.
"""

import os

import pytest

from attr_helpers import (
    App,
    app_events,
    compare,
    ensure_root,
    frame_records,
    interpreters,
    run_client,
    truth_by_index,
)
from harness import Trace, data_drops, final_stats, free_port

INTERPS = interpreters()
RESULTS = {}


def report(request, line):
    """To the terminal even when pytest captures output (the figures are the point)."""
    cap = request.config.pluginmanager.get_plugin("capturemanager")
    if cap is None:
        print(line)
        return
    with cap.global_and_fixture_disabled():
        print(line, flush=True)


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    if not RESULTS:
        return
    report(request, "")
    report(request, "attribution: %-22s %-7s %6s %6s %7s %7s %9s" % (
        "interpreter", "version", "frames", "data", "origin", "stack", "accuracy"))
    for label, r in RESULTS.items():
        if isinstance(r, str):
            report(request, "attribution: %-22s SKIPPED: %s" % (label, r))
        else:
            report(request, "attribution: %-22s %-7s %6d %6d %7d %7d %8.2f%%" % (
                label, r["version"], r["frames"], r["data"], r["origin"], r["stack"],
                r["accuracy"]))


@pytest.mark.parametrize("interp", INTERPS, ids=[i.label for i in INTERPS])
def test_origin_and_stack_match_ground_truth(interp, procs, tmp_path, request):
    why = interp.why
    if why is None and interp.suite:
        why = ensure_root(interp)
    if why is None and not os.access(interp.exe if not interp.suite else
                                     os.path.join(interp.root, interp.exe.lstrip("/")), os.X_OK):
        why = "%s is not installed" % interp.exe
    if why:
        RESULTS[interp.label] = why
        pytest.skip(why)

    tmp = str(tmp_path)
    port = free_port()
    app = App(procs, interp, port, tmp)

    # Untraced run, then the same client under wsaudit.
    plain = run_client(port)
    trace = Trace(procs, tmp, ["-p", app.pid, "-o", "json", "--stack"])
    traced = run_client(port)
    rc = trace.stop()
    assert rc == 0, "wsaudit exit %s; stderr:\n%s" % (rc, trace.stderr())
    recs = trace.records()
    output = app.output()
    truth = app.truth()
    version = app.version

    # Same behaviour with and without wsaudit.
    p_plain = {c["local_port"]: c["index"] for c in plain}
    p_traced = {c["local_port"]: c["index"] for c in traced}
    assert [c["frames"] for c in plain] == [c["frames"] for c in traced], \
        "the client received different frames with wsaudit attached"
    assert app_events(output, p_plain) == app_events(output, p_traced), \
        "the app printed different lines with wsaudit attached:\n" + output
    assert truth_by_index(truth, p_plain) == truth_by_index(truth, p_traced), \
        "the app logged different frames or stacks with wsaudit attached"
    assert "error" not in output.split("READY", 1)[1], output

    # wsaudit against the ground truth.
    got = frame_records(recs, app.pid, port, list(p_traced) + list(p_plain))
    for p in p_plain:
        assert not got[p], "wsaudit reported frames of connection %d, made before it started" % p
    score = compare({p: truth[p] for p in p_traced}, got, interp.root)
    stats = final_stats(recs)
    att = stats["attribution"]
    RESULTS[interp.label] = {"version": version, "frames": score.frames, "data": score.data,
                             "origin": score.origin, "stack": score.stack,
                             "accuracy": score.accuracy}
    report(request, "\nattribution: %s (Python %s): %d frames (%d data), origin %d/%d, stack "
           "%d/%d, accuracy %.2f%%" % (interp.label, version, score.frames, score.data,
                                       score.origin, score.frames, score.stack, score.frames,
                                       score.accuracy))
    if interp.root:
        report(request, "attribution: %s: %d of %d file names in wsaudit's stacks were under %s "
               "(prefix stripped before comparing), the others as the app names them" % (
                   interp.label, score.prefixed, score.names, interp.root))
    assert score.frames == sum(len(truth[p]) for p in p_traced) > 0
    assert not score.details and score.accuracy == 100.0, (
        "%s: %d/%d origins, %d/%d stacks match (wsaudit: %d events, %d kernel records, %d "
        "connections seen, drops %s):\n%s" % (
            interp.label, score.origin, score.frames, score.stack, score.frames,
            stats["events"], stats["kernel"]["records"], stats["conns"]["seen"],
            {k: v for k, v in stats["drops"].items() if v} or 0, "\n".join(score.details)))
    assert not data_drops(stats), (
        stats["drops"], [line for line in trace.stderr().splitlines() if "skipped" in line])
    assert att["attributed"] == score.frames and not any(att["unattributed"].values()), att

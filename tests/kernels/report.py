#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""One line of the kernel matrix from a guest's results (matrix.sh OUT SUITE EXPECT).

Reads OUT/SUITE/results (written by guest.sh) and the console log, prints
    SUITE KERNEL ACCEL: loaded|refused (...) frames=N attributed=N/M findings=N  Ts  PASS|FAIL
and exits 0 when the kernel ended as expected: every step passing for EXPECT=pass, for
EXPECT=refuse a refusal that names the missing feature and no BPF loaded.
"""

import os
import re
import sys


def read(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


def steps(res):
    out = {}
    for line in read(os.path.join(res, "steps")).splitlines():
        m = re.match(r"(\S+) rc=(-?\d+) seconds=(\d+)", line)
        if m:
            out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


def first_verifier_error(text):
    """The verifier's verdict on the first program it refused: the line before
    'processed N insns' (or the last log line) inside libbpf's load log."""
    m = re.search(r"prog '([^']+)': BPF program load failed: ([^\n]*)", text)
    if not m:
        m = re.search(r"prog '([^']+)': failed to load: ([^\n]*)", text)
    if not m:
        return None
    prog, err = m.group(1), m.group(2)
    log = re.search(r"-- BEGIN PROG LOAD LOG --\n(.*?)-- END PROG LOAD LOG --", text[m.start():], re.S)
    verdict = err
    if log:
        lines = [l.strip() for l in log.group(1).splitlines() if l.strip()]
        body = [l for l in lines if not re.match(r"(processed \d+ insns|verification time|stack depth)", l)]
        if body:
            verdict = body[-1]
    return "%s: %s" % (prog, verdict)


def main():
    out, suite, expect = sys.argv[1], sys.argv[2], sys.argv[3]
    base = os.path.join(out, suite)
    res = os.path.join(base, "results")
    st = steps(res)
    kernel = read(os.path.join(res, "uname")).strip() or "?"
    accel = read(os.path.join(base, "accel")).strip().split(",")[0] or "?"
    secs = read(os.path.join(base, "seconds")).strip() or "?"
    done = "done" in read(os.path.join(res, "steps"))
    load = read(os.path.join(res, "load.out"))
    check = read(os.path.join(res, "check-system.out"))
    fields = []

    if "load" not in st:
        verdict = "not run"
    elif st["load"][0] == 0:
        verdict = "loaded"
    else:
        why = first_verifier_error(load)
        if not why:
            # The preflight's one line, or whatever wsaudit said last.
            lines = [l for l in load.splitlines() if l.strip()]
            why = lines[-1] if lines else "exit %d, no output" % st["load"][0]
        verdict = "refused (%s)" % why
    fields.append(verdict)

    cap = read(os.path.join(res, "capture.out"))
    frames = sum(int(n) for n in re.findall(r"frames compared: wsaudit=(\d+)", cap))
    fields.append("frames=%d" % frames)
    attr = read(os.path.join(res, "attribution.out"))
    m = re.search(r"attribution: debian-3\.11\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)%", attr)
    fields.append("attributed=%s/%s" % (m.group(3), m.group(1)) if m else "attributed=-")
    rules = read(os.path.join(res, "rules.out"))
    m = re.search(r"(\d+) frames, (\d+) bypass, (\d+) breach findings", rules)
    fields.append("findings=%s+%s" % (m.group(2), m.group(3)) if m else "findings=-")
    m = re.search(r"bypass recall (\d+/\d+).*breach recall (\d+/\d+).*false positives (\d+)", rules)
    if m:
        fields.append("(recall %s, %s, %s false)" % m.groups())

    failed = [s for s, (rc, _) in st.items() if rc != 0]
    if expect == "pass":
        ok = done and not failed and st.keys() >= {"check-system", "load"}
    else:
        # Below the minimum: check-system and the load both fail, naming the feature,
        # and nothing else ran.
        ok = ("load" in st and st["load"][0] != 0 and "FAIL" in check
              and "not supported by this kernel" in load)
    times = " ".join("%s=%ds" % (s, t) for s, (_, t) in st.items())
    print("%-9s %-22s %-4s %s  total %ss (%s)  %s" % (
        suite, kernel, accel, " ".join(fields), secs, times,
        "PASS" if ok else "FAIL" + (" [failed: %s]" % ",".join(failed) if failed else "")
        + ("" if done else " [guest did not finish]")))
    return 0 if ok else 1


sys.exit(main())

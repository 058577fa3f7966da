#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Scores an auditor's findings on a stand-in run against the ground truth.

  /usr/bin/python3 score.py --truth TRUTH.jsonl --trace TRACE.jsonl [--verbose]

TRACE is `wsaudit trace -p <service pid> -o json --show-identities` output (identities must
be shown to check that a breach names both users). Text frames are matched to truth records
by the client's port and their rank on the connection.

  bypass recall   planted bypass frames reported as bridge_bypass with the truth's origin
                  function, file and line
  breach recall   planted leak frames reported as isolation_breach naming owner and recipient
  false positives frames with a violation the truth does not expect (a bridge frame
                  flagged, any breach with the leak off, ...)
  unmatched       truth frames with no traced frame, traced text frames with no truth record

Exit 0 when both recalls are 100%, there are no false positives and nothing is unmatched.
"""
import argparse
import collections
import json
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def score(truth, trace, verbose=False):
    failed = {r["seq"] for r in truth if "error" in r}
    truth = [r for r in truth if "error" not in r and r["seq"] not in failed]
    rank = collections.Counter()
    traced = {}
    for t in trace:
        if t.get("type") != "frame" or t.get("opcode") != "text":
            continue
        port = int(t["conn"]["peer"].rsplit(":", 1)[1])
        traced[(port, rank[port])] = t
        rank[port] += 1
    s = collections.Counter()
    notes = []
    seen = set()
    for r in truth:
        key = (r["conn"]["peer_port"], r["conn_seq"])
        t = traced.get(key)
        if t is None:
            s["unmatched"] += 1
            notes.append("no traced frame for truth seq %d (%s)" % (r["seq"], r["type"]))
            continue
        seen.add(key)
        got = collections.defaultdict(list)
        for v in t.get("violations") or []:
            got[v["rule"]].append(v)
        expect = set(r["expect"])
        for rule in got:
            if rule not in expect:
                s["false_positives"] += 1
                notes.append("unexpected %s on seq %d %s (%s): %s" % (
                    rule, r["seq"], r["type"], r["planted"] or "bridge/system",
                    got[rule][0].get("detail")))
        p = r["planted"] or {}
        if p.get("kind") == "bypass":
            s["bypass_planted"] += 1
            o, want = t.get("origin") or {}, r["origin"]
            if "bridge_bypass" in got and (o.get("function"), o.get("file"), o.get("line")) == \
                    (want["function"], want["file"], want["line"]):
                s["bypass_found"] += 1
            else:
                notes.append("bypass seq %d %s: reported %s origin %s, truth %s:%d" % (
                    r["seq"], p["site"], sorted(got), o, want["function"], want["line"]))
        if p.get("kind") == "leak":
            s["leak_planted"] += 1
            named = any({p["owner"], p["recipient"]} <= set(v.get("values") or [])
                        for v in got.get("isolation_breach", []))
            if named:
                s["leak_found"] += 1
            else:
                notes.append("leak seq %d %s -> %s: reported %s" % (
                    r["seq"], p["owner"], p["recipient"], got.get("isolation_breach")))
    for key in traced:
        if key not in seen:
            s["unmatched"] += 1
            notes.append("traced text frame without truth: port %d rank %d" % key)
    return s, notes


def pct(a, b):
    return "n/a" if b == 0 else "%.1f%%" % (100.0 * a / b)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--trace", required=True)
    ap.add_argument("--verbose", "-v", action="store_true")
    a = ap.parse_args()
    s, notes = score(load(a.truth), load(a.trace))
    print("score: bypass recall %d/%d (%s)  breach recall %d/%d (%s)  false positives %d"
          "  unmatched %d" % (s["bypass_found"], s["bypass_planted"],
                              pct(s["bypass_found"], s["bypass_planted"]), s["leak_found"],
                              s["leak_planted"], pct(s["leak_found"], s["leak_planted"]),
                              s["false_positives"], s["unmatched"]))
    for n in notes[: None if a.verbose else 10]:
        print("score: " + n)
    ok = s["bypass_found"] == s["bypass_planted"] and s["leak_found"] == s["leak_planted"] \
        and not s["false_positives"] and not s["unmatched"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

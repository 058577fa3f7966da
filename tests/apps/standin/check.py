#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Checks a stand-in run against its own design, from the ground-truth log and the client
report, and prints the figures.

  /usr/bin/python3 check.py --truth TRUTH.jsonl --report REPORT.json --leak on|off

Checks: every recorded frame reached the client of the connection's user, in order, same
type, run id and length; every frame is accounted for (bridge, system, planted bypass,
planted leak) and nothing else; all five planted bypass sites fired (and the fire-and-forget
one when switched on), each frame with its
site's function; no bridge frame is a bypass; with the leak on at least one frame crossed
users, each through the planted site and seen as foreign by its recipient; with the leak
off none did. Exit 0 when all hold, 1 otherwise.
"""
import argparse
import collections
import json
import os
import sys

BYPASS_SITES = {
    "thread_service": "ThreadService._send_agent_started_event",
    "supervisor_workflow_execution": "SupervisorWorkflowExecutor._send_orchestration_notification",
    "unified_data_agent": "UnifiedDataAgent._emit_websocket_event",
    "synthetic_data_progress_tracker": "SyntheticDataProgressTracker._send_websocket_update",
    "message_handler": "StartAgentHandler._send_agent_completion",
    "detached_routing_announcement": "SupervisorWorkflowExecutor._announce_routing",
}
# Fires only when switched on (STANDIN_DETACHED_BYPASS=1): not required to fire.
OPTIONAL_SITES = {"detached_routing_announcement"}
LEAK_SITE = ("shared_tool_executor", "UnifiedToolExecutionEngine.execute_tool")


def load_truth(path):
    recs, failed = {}, set()
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if "error" in r:
                failed.add(r["seq"])
            else:
                recs[r["seq"]] = r
    return [recs[s] for s in sorted(recs) if s not in failed], failed


def short(path):
    return os.path.relpath(path, os.path.dirname(os.path.abspath(__file__)))


def check(truth, failed, report, leak):
    problems = []
    by_user = {u["user_id"]: u for u in report["users"]}
    # 1. Delivery: per connection, in order.
    per_conn = collections.defaultdict(list)
    for r in truth:
        per_conn[r["conn"]["id"]].append(r)
    for conn_id, recs in per_conn.items():
        user = recs[0]["conn"]["user"]
        got = by_user.get(user, {}).get("frames")
        if got is None:
            problems.append("%s: user %s not in the client report" % (conn_id, user))
            continue
        for r in recs:
            i = r["conn_seq"]
            f = got[i] if i < len(got) else None
            if f is None or f["type"] != r["type"] or f["len"] != r["text_len"] or \
                    (r["run_id"] and f["run_id"] != r["run_id"]):
                problems.append("%s frame %d (%s) not received as sent: %s" % (conn_id, i, r["type"], f))
        if len(got) != len(recs):
            problems.append("%s: %d frames sent, %d received" % (conn_id, len(recs), len(got)))
    # 2. Classification.
    kinds = collections.Counter()
    sites = collections.defaultdict(set)
    leaks = []
    for r in truth:
        p = r["planted"]
        if r["category"] == "system":
            kinds["system"] += 1
            if r["via_bridge"] or p:
                problems.append("system frame %d is %s" % (r["seq"], p or "via bridge"))
        elif p and p["kind"] == "bypass":
            kinds["bypass"] += 1
            where = (r["origin"]["function"], short(r["origin"]["file"]), r["origin"]["line"])
            sites[p["site"]].add(where)
            if r["via_bridge"] or r["expect"] != ["bridge_bypass"] or \
                    r["origin"]["function"] != BYPASS_SITES.get(p["site"]) or r["sender"] != r["origin"]:
                problems.append("bypass frame %d inconsistent: %s" % (r["seq"], r))
        elif p and p["kind"] == "leak":
            kinds["leak"] += 1
            leaks.append(r)
            if (p["site"], r["origin"]["function"]) != LEAK_SITE or not r["via_bridge"] or \
                    r["expect"] != ["isolation_breach"] or p["owner"] == p["recipient"]:
                problems.append("leak frame %d inconsistent: %s" % (r["seq"], r))
        elif r["via_bridge"]:
            kinds["bridge"] += 1
            if r["expect"]:
                problems.append("bridge frame %d expects %s" % (r["seq"], r["expect"]))
        else:
            problems.append("frame %d is neither bridge, system nor planted: %s" % (r["seq"], r))
        if r["quirk"]:
            kinds["quirk_thread_id_in_user_id"] += 1
    missing = sorted(set(BYPASS_SITES) - OPTIONAL_SITES - set(sites))
    if missing:
        problems.append("bypass sites that never fired: %s" % ", ".join(missing))
    # 3. Leaks against the clients' view.
    foreign = sum(len(u["foreign"]) for u in report["users"])
    if leak:
        if not leaks:
            problems.append("leak on, but no frame crossed users")
        for r in leaks:
            u = by_user[r["planted"]["recipient"]]
            if not any(f["run_id"] == r["run_id"] and f["i"] == r["conn_seq"] for f in u["foreign"]):
                problems.append("leak frame %d not foreign to its recipient" % r["seq"])
        if foreign != len(leaks):
            problems.append("clients saw %d foreign frames, truth has %d leaks" % (foreign, len(leaks)))
    elif leaks or foreign:
        problems.append("leak off, but %d leaks / %d foreign frames" % (len(leaks), foreign))
    for u in report["users"]:
        if "permessage-deflate" not in u.get("extensions", []):
            problems.append("%s: permessage-deflate not negotiated" % u["user_id"])
        if not u.get("subprotocol_echoed"):
            problems.append("%s: jwt subprotocol not echoed" % u["user_id"])
    if not report.get("ok"):
        problems.append("client run not ok")
    if failed:
        problems.append("%d sends failed" % len(failed))
    return kinds, sites, leaks, foreign, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--leak", choices=("on", "off"), required=True)
    a = ap.parse_args()
    truth, failed = load_truth(a.truth)
    with open(a.report) as f:
        report = json.load(f)
    kinds, sites, leaks, foreign, problems = check(truth, failed, report, a.leak == "on")
    print("check: users=%d frames=%d bridge=%d system=%d bypass=%d leak=%d "
          "thread_id_in_user_id=%d foreign_seen_by_clients=%d" % (
              len(report["users"]), len(truth), kinds["bridge"], kinds["system"],
              kinds["bypass"], kinds["leak"], kinds["quirk_thread_id_in_user_id"], foreign))
    for site in sorted(sites):
        for fn, path, line in sorted(sites[site]):
            print("check: bypass %-31s %s %s:%d" % (site, fn, path, line))
    pairs = collections.Counter((r["planted"]["owner"], r["planted"]["recipient"], r["type"])
                                for r in leaks)
    for (owner, recipient, kind), n in sorted(pairs.items()):
        print("check: leak %s of %s -> %s x%d" % (kind, owner, recipient, n))
    for p in problems:
        print("check: FAIL %s" % p)
    print("check: %s" % ("ok" if not problems else "FAILED (%d)" % len(problems)))
    sys.exit(0 if not problems else 1)


if __name__ == "__main__":
    main()

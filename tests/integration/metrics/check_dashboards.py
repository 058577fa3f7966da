#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Checks the Grafana dashboards and the Prometheus rules of dashboards/ without a Grafana.

Dashboards (every dashboards/*.json): valid JSON; classic model with id null, a uid of at most
40 characters [A-Za-z0-9_-] unique across files, schemaVersion 39, no __inputs and no
${DS_*} placeholders; exactly one variable named datasource, of type datasource for
prometheus; panel ids unique (rows' nested panels included); every panel and every target uses
{"type": "prometheus", "uid": "${datasource}"}; targets with unique refIds and an expr; every
panel but rows with a description and a unit; rate() and irate() over $__rate_interval;
gridPos inside the 24 columns, positive sizes, no two panels overlapping.

PromQL: every expr, with Grafana's variables replaced, must parse (promtool check rules on a
generated rule file); dashboards/alerts.yaml must pass promtool check rules.

Metric names: every metric the dashboards and the rules name must be in the golden scrape
(tests/integration/metrics/golden.prom), apart from the series Prometheus makes itself (up,
scrape_*).

Prints one line per problem and a closing summary; exit status 1 when there are problems.
    /usr/bin/python3 tests/integration/metrics/check_dashboards.py [--dashboards DIR] [--golden FILE]
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, HERE)
import promtext  # noqa: E402

DS = {"type": "prometheus", "uid": "${datasource}"}
UID = re.compile(r"[A-Za-z0-9_-]{1,40}")
# Series Prometheus records for every target, not exposed by the agent.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
             "scrape_samples_post_metric_relabeling", "scrape_series_added"}
# kube-state-metrics' series the coverage alert compares (DaemonSet desired against ready).
KUBE_STATE = {"kube_daemonset_status_desired_number_scheduled",
              "kube_daemonset_status_number_ready"}
# Keywords and aggregation operators of PromQL (which may be followed by "by (...)" rather
# than "("), never metric names.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "atan2", "inf", "nan", "sum", "min", "max", "avg", "group",
            "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk"}
GRAFANA_VARS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h",
                "__range_s": "3600", "__interval_ms": "60000"}


def substitute(expr):
    """Grafana's variables by values that keep the PromQL valid."""
    def repl(m):
        name = m.group(1) or m.group(2)
        return GRAFANA_VARS.get(name, ".*")
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def metric_names(expr):
    """Metric names an expression selects: identifiers outside strings, label lists and
    braces, not followed by "(" and not keywords or durations."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^}]*\}", "{}", s)  # label matchers
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1()", s)
    s = re.sub(r"\[[^\]]*\]", "[]", s)  # ranges and subqueries
    names = set()
    for m in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()", s):
        word = m.group(1)
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def variable_query_names(query):
    """label_values(metric{...}, label) and query_result(expr) name metrics too."""
    m = re.match(r"\s*label_values\((.*),\s*\w+\s*\)\s*$", query)
    if m:
        return metric_names(m.group(1))
    m = re.match(r"\s*query_result\((.*)\)\s*$", query)
    if m:
        return metric_names(m.group(1))
    m = re.match(r"\s*(label_names|metrics)\(", query)
    return set() if m else metric_names(query)


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def check_dashboard(path, data, problems, uids):
    where = os.path.relpath(path, ROOT)

    def bad(msg):
        problems.append(f"{where}: {msg}")

    exprs = []
    for key in ("title", "uid", "panels", "schemaVersion", "templating", "time"):
        if key not in data:
            bad(f"no {key}")
    if data.get("id") is not None:
        bad("id must be null (Grafana assigns it)")
    uid = data.get("uid", "")
    if not isinstance(uid, str) or not UID.fullmatch(uid):
        bad(f"uid {uid!r} is not 1-40 characters of [A-Za-z0-9_-]")
    elif uid in uids:
        bad(f"uid {uid!r} also used by {uids[uid]}")
    else:
        uids[uid] = where
    if data.get("schemaVersion") != 39:
        bad(f"schemaVersion {data.get('schemaVersion')!r}, want 39")
    if "__inputs" in data:
        bad("__inputs: use the datasource variable (file provisioning leaves ${DS_*} literal)")
    if "${DS_" in json.dumps(data):
        bad("a ${DS_*} placeholder")

    variables = data.get("templating", {}).get("list", [])
    ds_vars = [v for v in variables if v.get("type") == "datasource"]
    if len(ds_vars) != 1 or ds_vars[0].get("name") != "datasource" or ds_vars[0].get("query") != "prometheus":
        bad("want exactly one variable, named datasource, of type datasource with query prometheus")
    names = set()
    for v in variables:
        if v.get("type") != "query":
            continue
        if v.get("datasource") != DS:
            bad(f"variable {v.get('name')} does not use ${{datasource}}")
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        names |= variable_query_names(substitute(q))

    ids = {}
    rects = []
    for p in all_panels(data.get("panels", [])):
        title = p.get("title", "?")
        pid = p.get("id")
        if not isinstance(pid, int):
            bad(f"panel {title!r} has no integer id")
        elif pid in ids:
            bad(f"panel id {pid} of {title!r} also used by {ids[pid]!r}")
        else:
            ids[pid] = title
        if p.get("datasource") != DS:
            bad(f"panel {title!r}: datasource {p.get('datasource')!r}, want {DS}")
        g = p.get("gridPos", {})
        try:
            x, y, w, h = (int(g[k]) for k in ("x", "y", "w", "h"))
        except (KeyError, TypeError, ValueError):
            bad(f"panel {title!r}: gridPos needs integer x, y, w, h")
        else:
            if x < 0 or y < 0 or w < 1 or h < 1 or x + w > 24:
                bad(f"panel {title!r}: gridPos {g} outside the 24-column grid")
            for other, (ox, oy, ow, oh) in rects:
                if x < ox + ow and ox < x + w and y < oy + oh and oy < y + h:
                    bad(f"panel {title!r} overlaps {other!r}")
            rects.append((title, (x, y, w, h)))
        if p.get("type") == "row":
            continue
        if not p.get("description"):
            bad(f"panel {title!r} has no description")
        if not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            bad(f"panel {title!r} has no unit")
        targets = p.get("targets", [])
        if not targets:
            bad(f"panel {title!r} has no targets")
        refs = set()
        for t in targets:
            ref = t.get("refId")
            if not ref or ref in refs:
                bad(f"panel {title!r}: missing or repeated refId {ref!r}")
            refs.add(ref)
            if t.get("datasource") != DS:
                bad(f"panel {title!r} target {ref}: datasource {t.get('datasource')!r}")
            expr = t.get("expr")
            if not expr:
                bad(f"panel {title!r} target {ref}: no expr")
                continue
            for m in re.finditer(r"\b(i?rate)\((?:[^()]|\([^()]*\))*?\[([^\]]*)\]", expr):
                if m.group(2) != "$__rate_interval":
                    bad(f"panel {title!r} target {ref}: {m.group(1)}() over [{m.group(2)}], "
                        "want [$__rate_interval]")
            exprs.append((f"{where} panel {pid} {ref}", substitute(expr)))
            names |= metric_names(substitute(expr))
    return exprs, names


def promtool_rules(path):
    r = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True,
                       timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def check_exprs(exprs, problems):
    """Each expression as a recording rule, so promtool parses it."""
    rules = [{"record": f"wsaudit:check:{i}", "expr": e} for i, (_, e) in enumerate(exprs)]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboard_exprs", "rules": rules}]}, f)
        path = f.name
    try:
        rc, out = promtool_rules(path)
    finally:
        os.unlink(path)
    if rc:
        problems.append(f"dashboard PromQL does not parse:\n{out}")
        # Say which ones.
        for where, e in exprs:
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
                yaml.safe_dump({"groups": [{"name": "one", "rules": [{"record": "x:y", "expr": e}]}]}, f)
                one = f.name
            try:
                if promtool_rules(one)[0]:
                    problems.append(f"{where}: does not parse: {e}")
            finally:
                os.unlink(one)
    return rc == 0


def check_rules(path, problems):
    rc, out = promtool_rules(path)
    if rc:
        problems.append(f"{os.path.relpath(path, ROOT)}: promtool check rules:\n{out}")
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    names = set()
    count = 0
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            count += 1
            names |= metric_names(str(rule.get("expr", "")))
    return count, names, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dashboards", default=os.path.join(ROOT, "dashboards"))
    ap.add_argument("--golden", default=os.path.join(HERE, "golden.prom"))
    args = ap.parse_args(argv)

    problems = []
    with open(args.golden, encoding="utf-8") as f:
        golden = promtext.metric_names(promtext.parse(f.read()))

    uids = {}
    exprs = []
    used = {}
    files = sorted(glob.glob(os.path.join(args.dashboards, "*.json")))
    if not files:
        problems.append(f"no dashboards in {args.dashboards}")
    npanels = 0
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            problems.append(f"{os.path.relpath(path, ROOT)}: not JSON: {e}")
            continue
        e, names = check_dashboard(path, data, problems, uids)
        npanels += sum(1 for _ in all_panels(data.get("panels", [])))
        exprs += e
        for n in names:
            used.setdefault(n, os.path.relpath(path, ROOT))
    if exprs:
        check_exprs(exprs, problems)

    nrules = 0
    rules = os.path.join(args.dashboards, "alerts.yaml")
    if os.path.exists(rules):
        nrules, names, _ = check_rules(rules, problems)
        for n in names:
            used.setdefault(n, os.path.relpath(rules, ROOT))
    else:
        problems.append(f"no {rules}")

    for name in sorted(used):
        if name not in golden and name not in SYNTHETIC | KUBE_STATE:
            problems.append(f"{used[name]}: metric {name} is not in {os.path.relpath(args.golden, ROOT)}")

    for p in problems:
        print(p)
    print(f"check_dashboards: {len(files)} dashboard(s), {npanels} panels, {len(exprs)} queries, "
          f"{nrules} rules, {len(used)} metric names ({len(set(used) & golden)} "
          f"in the golden scrape): {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

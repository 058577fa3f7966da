# SPDX-License-Identifier: GPL-2.0
"""dashboards/: the checker passes on what is committed and fails on each kind of breakage;
the committed JSON is what dashboards/generate.py writes; the alert rules pass promtool's
check and their unit tests (alerts_test.yaml)."""

import copy
import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stdout

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DASHBOARDS = os.path.join(ROOT, "dashboards")
sys.path.insert(0, HERE)
import check_dashboards  # noqa: E402


def run_checker(*args):
    out = io.StringIO()
    with redirect_stdout(out):
        rc = check_dashboards.main(list(args))
    return rc, out.getvalue()


def test_committed_dashboards_pass():
    rc, out = run_checker()
    print(out, end="")
    assert rc == 0, out
    assert out.splitlines()[-1].endswith(": OK")


def test_dashboard_json_is_generated():
    r = subprocess.run([sys.executable, os.path.join(DASHBOARDS, "generate.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_alert_rules():
    r = subprocess.run(["promtool", "check", "rules", os.path.join(DASHBOARDS, "alerts.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "SUCCESS: 12 rules found" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(["promtool", "test", "rules", "alerts_test.yaml"], cwd=HERE,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_alerts_runbooks_and_cluster():
    """Each alert has a runbook_url into docs/runbook.md whose section exists, and every
    aggregation keeps cluster (the same node name in two clusters is two alerts)."""
    import re
    import yaml
    with open(os.path.join(DASHBOARDS, "alerts.yaml")) as f:
        rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
    with open(os.path.join(ROOT, "docs", "runbook.md")) as f:
        anchors = {line[3:].strip().lower() for line in f if line.startswith("## ")}
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        base, anchor = url.split("#")
        assert base.endswith("/docs/runbook.md"), url
        assert anchor == rule["alert"].lower() and anchor in anchors, (rule["alert"], anchors)
        for by in re.findall(r"\b(?:sum|min|max|avg|count) by \(([^)]*)\)", rule["expr"]):
            assert "cluster" in [x.strip() for x in by.split(",")], (rule["alert"], by)
    assert {r["alert"].lower() for r in rules} == anchors


def test_dashboard_cluster_agent_and_workloads():
    """A cluster variable every query of the agents' metrics selects on, the agent's CPU and
    memory, and the violations by workload."""
    with open(os.path.join(DASHBOARDS, "wsaudit.json")) as f:
        d = json.load(f)
    names = [v["name"] for v in d["templating"]["list"]]
    assert names[:2] == ["datasource", "cluster"], names
    for p in check_dashboards.all_panels(d["panels"]):
        for t in p.get("targets", []):
            assert 'cluster=~"$cluster"' in t["expr"], (p["title"], t["expr"])
    assert "process_cpu_seconds_total" in panel(d, "Agent CPU")["targets"][0]["expr"]
    assert "process_resident_memory_bytes" in panel(d, "Agent memory")["targets"][0]["expr"]
    wl = panel(d, "Violations by workload")
    assert wl["type"] == "table"
    assert "by (cluster, k8s_namespace, k8s_workload, rule)" in wl["targets"][0]["expr"]


def panel(d, title):
    return next(p for p in check_dashboards.all_panels(d["panels"]) if p["title"] == title)


def _schema(d):
    d["schemaVersion"] = 38


def _dup_id(d):
    panel(d, "Drops by reason")["id"] = panel(d, "Frames per second by opcode")["id"]


def _hardcoded_ds(d):
    panel(d, "Drops by reason")["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}


def _target_ds(d):
    del panel(d, "Drops by reason")["targets"][0]["datasource"]


def _inputs(d):
    d["__inputs"] = [{"name": "DS_PROMETHEUS", "type": "datasource", "pluginId": "prometheus"}]


def _no_ds_var(d):
    d["templating"]["list"] = [v for v in d["templating"]["list"] if v["type"] != "datasource"]


def _too_wide(d):
    panel(d, "Drops by reason")["gridPos"]["w"] = 30


def _overlap(d):
    panel(d, "Drops by reason")["gridPos"].update(x=0, y=10)


def _unknown_metric(d):
    panel(d, "Drops by reason")["targets"][0]["expr"] = \
        'sum by (reason) (rate(wsaudit_drops{job=~"$job"}[$__rate_interval]))'


def _fixed_rate_window(d):
    panel(d, "Drops by reason")["targets"][0]["expr"] = "sum(rate(wsaudit_drops_total[5m]))"


def _bad_promql(d):
    panel(d, "Drops by reason")["targets"][0]["expr"] = "sum(rate(wsaudit_drops_total[$__rate_interval])"


def _no_unit(d):
    del panel(d, "Drops by reason")["fieldConfig"]["defaults"]["unit"]


def _id_not_null(d):
    d["id"] = 12


def _bad_uid(d):
    d["uid"] = "wsaudit overview"


BREAKAGES = {
    "schemaVersion": (_schema, "schemaVersion 38, want 39"),
    "duplicate panel id": (_dup_id, "panel id"),
    "hard-coded datasource": (_hardcoded_ds, "datasource {'type': 'prometheus', 'uid': 'P1809F7CD0C75ACF3'}"),
    "target without datasource": (_target_ds, "target A: datasource None"),
    "__inputs": (_inputs, "__inputs"),
    "no datasource variable": (_no_ds_var, "exactly one variable, named datasource"),
    "wider than the grid": (_too_wide, "outside the 24-column grid"),
    "overlapping panels": (_overlap, "overlaps"),
    "metric not in the scrape": (_unknown_metric, "metric wsaudit_drops is not in"),
    "rate over a fixed window": (_fixed_rate_window, "want [$__rate_interval]"),
    "PromQL that does not parse": (_bad_promql, "does not parse"),
    "no unit": (_no_unit, "has no unit"),
    "id not null": (_id_not_null, "id must be null"),
    "bad uid": (_bad_uid, "is not 1-40 characters"),
}


@pytest.mark.parametrize("what", sorted(BREAKAGES))
def test_checker_catches(what, tmp_path):
    with open(os.path.join(DASHBOARDS, "wsaudit.json"), encoding="utf-8") as f:
        d = json.load(f)
    d = copy.deepcopy(d)
    breakage, message = BREAKAGES[what]
    breakage(d)
    (tmp_path / "wsaudit.json").write_text(json.dumps(d))
    shutil.copy(os.path.join(DASHBOARDS, "alerts.yaml"), tmp_path / "alerts.yaml")
    rc, out = run_checker("--dashboards", str(tmp_path))
    assert rc == 1, out
    assert message in out, out


def test_checker_catches_rules_metric(tmp_path):
    shutil.copy(os.path.join(DASHBOARDS, "wsaudit.json"), tmp_path / "wsaudit.json")
    text = open(os.path.join(DASHBOARDS, "alerts.yaml"), encoding="utf-8").read()
    (tmp_path / "alerts.yaml").write_text(text.replace("wsaudit_log_write_errors_total",
                                                       "wsaudit_log_errors_total"))
    rc, out = run_checker("--dashboards", str(tmp_path))
    assert rc == 1 and "alerts.yaml: metric wsaudit_log_errors_total is not in" in out, out


def test_checker_cli():
    r = subprocess.run([sys.executable, os.path.join(HERE, "check_dashboards.py")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    print(r.stdout, end="")

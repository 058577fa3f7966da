#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Writes dashboards/wsaudit.json, the Grafana dashboard of the agent's /metrics.

Classic JSON model, schemaVersion 39, one `datasource` variable (type datasource, query
prometheus) that every panel and target uses, no __inputs (they only work through the UI's
import, not with file provisioning or the sidecar).  Panel ids and grid positions are computed
here, so editing means editing this file and running it:

    /usr/bin/python3 dashboards/generate.py            # rewrite wsaudit.json and the rule objects
    /usr/bin/python3 dashboards/generate.py --check    # exit 1 if one of them is stale
    /usr/bin/python3 dashboards/generate.py --runbook-base https://git.example.com/ops/wsaudit/blob/main

The PrometheusRule (deploy/components/prometheus-operator) and the GMP Rules
(ClusterRules, deploy/components/gke-managed-prometheus) wrap alerts.yaml's groups as they are.
"""

import json
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "wsaudit.json")
ALERTS = os.path.join(HERE, "alerts.yaml")
DEPLOY = os.path.join(HERE, "..", "deploy", "components")
# The rule objects of deploy/ made from alerts.yaml: (path, apiVersion, kind).
RULE_OBJECTS = [
    (os.path.join(DEPLOY, "prometheus-operator", "prometheusrule.yaml"),
     "monitoring.coreos.com/v1", "PrometheusRule"),
    # Cluster-wide: a namespaced Rules object would only query the wsaudit namespace's series,
    # and the coverage alert reads kube-state-metrics' (GMP scopes rules to their namespace).
    (os.path.join(DEPLOY, "gke-managed-prometheus", "clusterrules.yaml"),
     "monitoring.googleapis.com/v1", "ClusterRules"),
]
RUNBOOK_BASE = "https://github.com/YOUR-ORG/wsaudit/blob/main/docs/runbook.md"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'cluster=~"$cluster",job=~"$job",instance=~"$instance"'


def target(expr, legend, ref, instant):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        # One value per series at the end of the range: tables and stats of $__range.
        t.update({"instant": True, "range": False, "format": "table"})
    else:
        t["range"] = True
    return t


def panel(kind, title, description, unit, targets, w, h, **extra):
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [target(e, l, chr(ord("A") + i), kind == "table")
                    for i, (e, l) in enumerate(targets)],
        "_size": (w, h),
    }
    if kind == "timeseries":
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "fillOpacity": 10,
                                                  "lineWidth": 1, "spanNulls": False}
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    elif kind == "stat":
        p["options"] = {"colorMode": "value", "graphMode": "none", "justifyMode": "auto",
                        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "textMode": "auto"}
    p.update(extra)
    return p


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "datasource": DS, "panels": [],
            "_size": (24, 1)}


def r(metric, extra=""):
    """rate() of a counter over the dashboard's interval, selected by job and instance."""
    sel = SEL + ("," + extra if extra else "")
    return f"rate({metric}{{{sel}}}[$__rate_interval])"


PANELS = [
    row("Agent health"),
    panel("stat", "Agents scraped",
          "Agent targets Prometheus scraped successfully (up == 1) out of all agent targets.",
          "none",
          [(f"sum(up{{{SEL}}})", "up"), (f"count(up{{{SEL}}})", "targets")], 4, 4),
    panel("stat", "Probes failed",
          "BPF programs and uprobes that failed to attach, summed over the agents. Anything but "
          "0 means some traffic is not seen.",
          "none", [(f'sum(wsaudit_probes{{{SEL},state="failed"}})', "failed")], 4, 4,
          fieldConfig={"defaults": {"unit": "none", "thresholds": {
              "mode": "absolute",
              "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}]}},
              "overrides": []}),
    panel("timeseries", "Probes by state",
          "Probes attached and failed, per agent.", "none",
          [(f"sum by (instance, state) (wsaudit_probes{{{SEL}}})", "{{instance}} {{state}}")], 8, 4),
    panel("timeseries", "Processes and connections followed",
          "Processes matching the policy's targets and open WebSocket connections, per agent.",
          "none",
          [(f"sum by (instance) (wsaudit_processes{{{SEL}}})", "{{instance}} processes"),
           (f"sum by (instance) (wsaudit_connections_open{{{SEL}}})", "{{instance}} connections")], 8, 4),
    panel("timeseries", "Agent CPU",
          "CPU time the agent uses per second (1 = one core), per agent: its collector loop, "
          "the decoding and the HTTP server. Throttling at the CPU limit shows as ring buffer "
          "drops.", "none",
          [(f"sum by (cluster, instance) ({r('process_cpu_seconds_total')})",
            "{{cluster}} {{instance}}")], 12, 6),
    panel("timeseries", "Agent memory",
          "Resident memory of the agent, per agent (the ring buffer and BPF maps are charged to "
          "its pod's memory cgroup, not counted here).", "bytes",
          [(f"sum by (cluster, instance) (process_resident_memory_bytes{{{SEL}}})",
            "{{cluster}} {{instance}}")], 12, 6),
    panel("table", "Agent builds",
          "Version and git revision of each agent (wsaudit_build_info).", "none",
          [(f"max by (cluster, instance, version, revision) (wsaudit_build_info{{{SEL}}})", "")],
          24, 4, options={"showHeader": True}),
    row("Traffic"),
    panel("timeseries", "Frames per second by opcode",
          "Outbound WebSocket frames decoded per second, by opcode.", "ops",
          [(f"sum by (opcode) ({r('wsaudit_frames_total')})", "{{opcode}}")], 12, 8),
    panel("timeseries", "Ring buffer events per second",
          "Records read from the BPF ring buffers per second, per agent.", "ops",
          [(f"sum by (instance) ({r('wsaudit_events_total')})", "{{instance}}")], 6, 8),
    panel("timeseries", "Captured bytes per second",
          "Payload bytes captured from the traced sockets per second.", "Bps",
          [(f"sum by (instance) ({r('wsaudit_captured_bytes_total')})", "{{instance}}")], 6, 8),
    panel("timeseries", "Messages by status",
          "WebSocket messages reassembled per second, by status (ok, truncated, "
          "undecodable_gap, inflate_error, too_large).", "ops",
          [(f"sum by (status) ({r('wsaudit_messages_total')})", "{{status}}")], 12, 8),
    panel("timeseries", "New connections by kind",
          "WebSocket connections found per second: from their handshake, or adopted mid-stream.",
          "ops",
          [(f"sum by (kind) ({r('wsaudit_connections_total')})", "{{kind}}")], 12, 8),
    row("Violations"),
    panel("timeseries", "Violations by rule",
          "Policy violations per interval, by rule (bridge_bypass, isolation_breach). Users and "
          "connections are in the violation log, not in metrics.", "none",
          [(f"sum by (rule) (increase(wsaudit_violations_total{{{SEL}}}[$__rate_interval]))",
            "{{rule}}")], 12, 8,
          fieldConfig={"defaults": {"unit": "none", "custom": {"drawStyle": "bars",
                                                               "fillOpacity": 80}},
                       "overrides": []}),
    panel("stat", "Violations in range by rule",
          "Policy violations over the dashboard's time range, by rule.", "none",
          [(f"sum by (rule) (increase(wsaudit_violations_total{{{SEL}}}[$__range]))", "{{rule}}")],
          12, 8),
    panel("table", "Top origins of violations",
          "The Python functions (qualified names) that sent violating frames over the time "
          "range, top 20. Past 50 (rule, function) pairs per agent, new functions count under "
          "origin=\"other\".", "none",
          [(f"topk(20, sum by (rule, origin) "
            f"(increase(wsaudit_violations_by_origin_total{{{SEL}}}[$__range])))", "")], 16, 8,
          options={"showHeader": True, "sortBy": [{"desc": True, "displayName": "Value"}]}),
    panel("timeseries", "Origins past the cap",
          "Violations counted under origin=\"other\" because the per-agent cap on origins was "
          "reached. Non-zero: look at the violation log for the functions.", "none",
          [(f"sum by (instance) (increase(wsaudit_metrics_overflow_total{{{SEL},"
            f"family=\"wsaudit_violations_by_origin_total\"}}[$__rate_interval]))",
            "{{instance}}")], 8, 8),
    panel("table", "Violations by workload",
          "Violations over the time range by Kubernetes namespace and workload (the pod's owner) "
          "of the process that sent the frame, top 20. none: not in a pod; unknown: the agent "
          "could not read the pod on the node; other: past the cap of 50 sets per agent "
          "(docs/metrics.md).", "none",
          [(f"topk(20, sum by (cluster, k8s_namespace, k8s_workload, rule) "
            f"(increase(wsaudit_violations_by_workload_total{{{SEL}}}[$__range])))", "")], 24, 8,
          options={"showHeader": True, "sortBy": [{"desc": True, "displayName": "Value"}]}),
    row("Runs"),
    panel("timeseries", "Incomplete runs by reason",
          "Agent runs (the policy's runs section) that never sent an end event, per interval: "
          "their connection closed first (conn_closed) or they were silent for the policy's "
          "timeout. Each is a run record in the violation log with the user and the last "
          "function seen.", "none",
          [(f"sum by (reason) (increase(wsaudit_runs_incomplete_total{{{SEL}}}[$__rate_interval]))",
            "{{reason}}")], 12, 8,
          fieldConfig={"defaults": {"unit": "none", "custom": {"drawStyle": "bars",
                                                               "fillOpacity": 80}},
                       "overrides": []}),
    panel("timeseries", "Run findings and runs completed",
          "Runs completed, out of order (an event after the end), missing a required event, and "
          "runs not judged (evicted past the bounds, or a message of their connection unreadable), "
          "per interval.", "none",
          [(f"sum(increase(wsaudit_runs_completed_total{{{SEL}}}[$__rate_interval]))", "completed"),
           (f"sum by (reason) (increase(wsaudit_runs_out_of_order_total{{{SEL}}}[$__rate_interval]))",
            "out_of_order {{reason}}"),
           (f"sum(increase(wsaudit_runs_missing_event_total{{{SEL}}}[$__rate_interval]))",
            "missing_event"),
           (f"sum by (reason) (increase(wsaudit_runs_unjudged_total{{{SEL}}}[$__rate_interval]))",
            "unjudged {{reason}}")], 12, 8),
    row("Delivery"),
    panel("timeseries", "Lost frames by origin and type",
          "Frames that never left the service (their write failed or sent part, and the "
          "connection ended first), per interval, by the Python function that wrote them and "
          "the message type (docs/delivery.md).", "none",
          [(f"sum by (origin, type) (increase(wsaudit_lost_frames_total{{{SEL}}}"
            f"[$__rate_interval]))", "{{origin}} {{type}}")], 12, 8),
    panel("timeseries", "Abnormal closes by code and origin",
          "Connections the service closed with 1011, by the function that sent the close frame, "
          "and sockets closed without a close frame (code none), per interval.", "none",
          [(f"sum by (code, origin) (increase(wsaudit_abnormal_closes_total{{{SEL}}}"
            f"[$__rate_interval]))", "{{code}} {{origin}}")], 12, 8),
    panel("timeseries", "Writes still queued at close by origin",
          "Writes handed to a transport that queues them (uvloop) and still queued when their "
          "connection ended, per interval, by the function that wrote them; and connections "
          "that lost frames with no transport followed (asyncio), whose later writes may have "
          "been dropped unseen (docs/delivery.md).", "none",
          [(f"sum by (origin) (increase(wsaudit_queued_at_close_total{{{SEL}}}"
            f"[$__rate_interval]))", "{{origin}}"),
           (f"sum(increase(wsaudit_buffered_unseen_connections_total{{{SEL}}}"
            f"[$__rate_interval]))", "connections, unseen")], 12, 8),
    row("Attribution and loss"),
    panel("timeseries", "Unattributed frames by reason",
          "Frames per second that could not be attributed to a Python function, by reason.",
          "ops",
          [(f"sum by (reason) ({r('wsaudit_unattributed_frames_total')})", "{{reason}}")], 12, 8),
    panel("timeseries", "Attributed share of frames",
          "Attributed frames over attributed plus unattributed.", "percentunit",
          [(f"sum({r('wsaudit_attributed_frames_total')}) / (sum({r('wsaudit_attributed_frames_total')})"
            f" + sum({r('wsaudit_unattributed_frames_total')}))", "attributed")], 12, 8),
    panel("timeseries", "Drops by reason",
          "Times per second the BPF programs could not deliver a record or capture a write, by "
          "reason. Any drop can hide a violation.", "ops",
          [(f"sum by (reason) ({r('wsaudit_drops_total')})", "{{reason}}")], 12, 8),
    panel("timeseries", "Dropped bytes by reason",
          "Payload bytes per second written to traced sockets and not captured: past the "
          "per-syscall capture cap (cap_exceeded: the frame is reported truncated), or lost "
          "(ring buffer full, read fault, zero-copy send).", "Bps",
          [(f"sum by (reason) ({r('wsaudit_dropped_bytes_total')})", "{{reason}}")], 12, 8),
    panel("timeseries", "Parser desyncs and truncated frames",
          "Times a frame parser lost the frame boundaries, and frames not captured in full, "
          "per second.", "ops",
          [(f"sum({r('wsaudit_parser_desyncs_total')})", "parser desyncs"),
           (f"sum({r('wsaudit_truncated_frames_total')})", "truncated frames")], 6, 8),
    panel("timeseries", "Policy reloads and log write errors",
          "Policy reloads by result, and violation records that could not be written, per "
          "interval.", "none",
          [(f"sum by (result) (increase(wsaudit_policy_reloads_total{{{SEL}}}[$__rate_interval]))",
            "reload {{result}}"),
           (f"sum(increase(wsaudit_log_write_errors_total{{{SEL}}}[$__rate_interval]))",
            "log write errors")], 6, 8),
]


def layout(panels):
    """Ids in order; panels flow left to right, wrapping at 24 columns, rows start a line."""
    x = y = line_h = 0
    for i, p in enumerate(panels, 1):
        w, h = p.pop("_size")
        if p["type"] == "row" or x + w > 24:
            y += line_h
            x = line_h = 0
        p["id"] = i
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x += w
        line_h = max(line_h, h)
        if p["type"] == "row":
            y += h
            x = line_h = 0
    return panels


def variable(name, label, query, multi):
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "definition": query, "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2, "sort": 1, "multi": multi, "includeAll": True, "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0, "options": [], "regex": "", "skipUrlSync": False,
    }


def dashboard():
    return {
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": "wsaudit agents: WebSocket frames, policy violations by rule and by "
                       "originating function and workload, attribution failures, drops, probe and "
                       "process health, agent CPU and memory.",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": layout([dict(p) for p in PANELS]),
        "refresh": "30s",
        "schemaVersion": 39,
        "tags": ["wsaudit", "ebpf", "websocket"],
        "templating": {"list": [
            {"name": "datasource", "label": "Data Source", "type": "datasource",
             "query": "prometheus", "current": {}, "hide": 0, "includeAll": False,
             "multi": False, "options": [], "refresh": 1, "regex": "", "skipUrlSync": False},
            variable("cluster", "Cluster", "label_values(wsaudit_build_info, cluster)", True),
            variable("job", "Job", 'label_values(wsaudit_build_info{cluster=~"$cluster"}, job)',
                     True),
            variable("instance", "Instance",
                     'label_values(wsaudit_build_info{cluster=~"$cluster",job=~"$job"}, instance)',
                     True),
        ]},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": "wsaudit",
        "uid": "wsaudit-overview",
        "version": 1,
        "weekStart": "",
    }


def render():
    return json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"


def rule_object(alerts_text, api_version, kind):
    """alerts.yaml's groups wrapped in a PrometheusRule or a GMP Rules object: the same rules,
    the same runbook_url."""
    groups = yaml.safe_load(alerts_text)["groups"]
    obj = {
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": "wsaudit", "labels": {"app.kubernetes.io/name": "wsaudit"}},
        "spec": {"groups": groups},
    }
    head = (f"# SPDX-License-Identifier: GPL-2.0\n# Generated by dashboards/generate.py from "
            f"dashboards/alerts.yaml: edit that file, then run it.\n")
    return head + yaml.safe_dump(obj, sort_keys=False, width=100)


def outputs(runbook_base):
    with open(ALERTS, encoding="utf-8") as f:
        alerts = f.read()
    alerts = alerts.replace(RUNBOOK_BASE, runbook_base)
    out = {OUT: render(), ALERTS: alerts}
    for path, api_version, kind in RULE_OBJECTS:
        out[path] = rule_object(alerts, api_version, kind)
        if kind == "PrometheusRule":
            # kube-prometheus-stack's Prometheus selects rules by its release label.
            out[path] = out[path].replace(
                "metadata:\n  name: wsaudit\n",
                "metadata:\n  name: wsaudit\n  namespace: wsaudit\n").replace(
                "    app.kubernetes.io/name: wsaudit\nspec:",
                "    app.kubernetes.io/name: wsaudit\n    release: kube-prometheus-stack\nspec:")
    return out


def main(argv):
    """--check: exit 1 if a file is stale.  --runbook-base URL: the runbook_url of every alert
    (alerts.yaml and the rule objects) under URL, where you keep docs/runbook.md."""
    check = "--check" in argv
    base = RUNBOOK_BASE
    if "--runbook-base" in argv:
        base = argv[argv.index("--runbook-base") + 1].rstrip("/")
        if not base.endswith("runbook.md"):
            base += "/docs/runbook.md"
    stale = []
    for path, text in outputs(base).items():
        try:
            with open(path, encoding="utf-8") as f:
                same = f.read() == text
        except FileNotFoundError:
            same = False
        if same:
            continue
        if check:
            stale.append(os.path.relpath(path, HERE))
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    for path in stale:
        print(f"{path} is stale: run dashboards/generate.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

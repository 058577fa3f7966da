#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Structural check of deploy/ without a cluster.

  /usr/bin/python3 tests/integration/deploy_check.py [--wsaudit ./wsaudit] [--build]

- every YAML file under deploy/ parses; every manifest has apiVersion and kind;
- the DaemonSet: hostPID, tolerations for every taint, system-node-critical (and the quota
  that lets it be used), the metrics port named `metrics`, /healthz and /readyz probes on it,
  requests and limits, the agent command line (bound to the pod's address, violations on
  stdout), the host mounts read-only, volumes that exist, the privileged default;
- NetworkPolicy: all ingress to the agent denied, and only the scraper of a monitoring
  component let in, on port `metrics`;
- the least-privilege component: the exact capability list, nothing privileged;
- PodMonitoring and PodMonitor point at the named port and at the pods' labels;
- kustomize files name files that exist; with kubectl on PATH, `kubectl kustomize` renders
  deploy/, each overlay, and overlays written as a user would (the base with each component,
  then with several, an image, a policy and an identity-key Secret); the rendered objects pass
  the same checks, name their image's registry, and validate against the Kubernetes schemas
  (tests/integration/k8s_schema/validate.mjs: kubernetes-models, and the Managed Prometheus
  CRDs' own schemas);
- deploy/base/policy.yaml says what policies/default.yaml says, and (with a wsaudit binary)
  passes `wsaudit check-policy`;
- the Dockerfile: bookworm stages, static libbpf/libelf/zlib, the same command line.
  --build runs the Dockerfile's make step on a copy of the sources (no Docker needed) and
  checks that libbpf, libelf and zlib are not dynamic dependencies of the result.

Prints one line per check and exits 1 when any fails.
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")

# The pod's own address (downward API); the image alone listens on its container's.
AGENT_ARGS = ["agent", "-c", "/etc/wsaudit/policy.yaml", "--metrics-addr", "$(POD_IP):9464",
              "--log", "-"]
IMAGE_ARGS = AGENT_ARGS[:4] + ["0.0.0.0:9464"] + AGENT_ARGS[5:]
# host path -> must the mount be read-only
HOST_MOUNTS = {
    "/sys/kernel/tracing": True,
    "/sys/fs/cgroup": True,
    "/run/containerd/io.containerd.runtime.v2.task": True,
}
PROBE_PATHS = {"livenessProbe": "/healthz", "startupProbe": "/healthz", "readinessProbe": "/readyz"}
LEAST_PRIVILEGE_CAPS = {"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"}
OVERLAYS = ["deploy", "deploy/overlays/gke", "deploy/overlays/gke-least-privilege"]

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)
    return ok


def rel(path):
    return os.path.relpath(path, ROOT)


def load_all():
    """Every YAML file under deploy/ -> list of documents."""
    docs = {}
    for dirpath, _, files in os.walk(DEPLOY):
        for f in sorted(files):
            if not f.endswith((".yaml", ".yml")):
                continue
            p = os.path.join(dirpath, f)
            try:
                with open(p) as fh:
                    docs[p] = [d for d in yaml.safe_load_all(fh) if d is not None]
                check(True, f"{rel(p)} parses")
            except yaml.YAMLError as e:
                check(False, f"{rel(p)} parses: {e}")
    return docs


def generator_inputs(docs):
    """Files that configMapGenerator turns into data: not manifests."""
    out = set()
    for p, ds in docs.items():
        if os.path.basename(p) == "kustomization.yaml":
            for g in ds[0].get("configMapGenerator", []):
                out |= {os.path.join(os.path.dirname(p), f.split("=", 1)[-1])
                        for f in g.get("files", [])}
    return out


def objects(docs):
    """Manifests (dicts with a kind) by file; JSON patches (lists) are checked apart."""
    out = []
    data = generator_inputs(docs)
    for p, ds in docs.items():
        if p in data:
            continue
        for d in ds:
            if isinstance(d, list):
                check(all(isinstance(op, dict) and "op" in op and "path" in op for op in d),
                      f"{rel(p)}: JSON patch operations have op and path")
                continue
            check(isinstance(d, dict) and bool(d.get("apiVersion")) and bool(d.get("kind")),
                  f"{rel(p)}: {d.get('kind', '?') if isinstance(d, dict) else '?'} has apiVersion and kind")
            out.append((p, d))
    return out


def by_kind(objs, kind):
    return [d for _, d in objs if d.get("kind") == kind]


def container_of(ds):
    cs = ds["spec"]["template"]["spec"].get("containers", [])
    check(len(cs) == 1, "DaemonSet has one container")
    return cs[0] if cs else {}


def check_probe(c, name, where):
    p = c.get(name) or {}
    g = p.get("httpGet") or {}
    named = {pt.get("name") for pt in c.get("ports", [])}
    path = PROBE_PATHS[name]
    check(g.get("path") == path and g.get("port") == "metrics" and "metrics" in named,
          f"{where}: {name} GET {path} on the container's port `metrics`")


def check_daemonset(ds, where, privileged=True, objs=(), all_taints=True):
    spec = ds["spec"]["template"]["spec"]
    tmpl_labels = ds["spec"]["template"]["metadata"].get("labels", {})
    sel = ds["spec"]["selector"].get("matchLabels", {})
    check(sel and all(tmpl_labels.get(k) == v for k, v in sel.items()),
          f"{where}: selector matches the pod template labels")
    check(spec.get("hostPID") is True, f"{where}: hostPID true")
    check(not spec.get("hostNetwork"), f"{where}: no hostNetwork")
    check(spec.get("priorityClassName") == "system-node-critical",
          f"{where}: priorityClassName system-node-critical")
    tolerates_all = any(t.get("operator") == "Exists" and "key" not in t and "effect" not in t
                        for t in spec.get("tolerations", []))
    check(tolerates_all == all_taints, f"{where}: tolerates every taint" if all_taints else
          f"{where}: tolerates no taint of its own (tolerations-untainted-only)")
    check(spec.get("automountServiceAccountToken") is False, f"{where}: no API token mounted")
    c = container_of(ds)
    check(c.get("args") == AGENT_ARGS, f"{where}: agent command line {' '.join(AGENT_ARGS)}")
    env = {e.get("name"): e for e in c.get("env", [])}
    check(((env.get("POD_IP") or {}).get("valueFrom") or {}).get("fieldRef", {}).get(
        "fieldPath") == "status.podIP", f"{where}: POD_IP from status.podIP (the bind address)")
    ports = {p.get("name"): p for p in c.get("ports", [])}
    m = ports.get("metrics", {})
    check(m.get("containerPort") == 9464 and m.get("protocol", "TCP") == "TCP",
          f"{where}: container port 9464/TCP named metrics")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        check_probe(c, probe, where)
    res = c.get("resources", {})
    check(all(k in res.get("requests", {}) for k in ("cpu", "memory")) and
          all(k in res.get("limits", {}) for k in ("cpu", "memory")),
          f"{where}: cpu and memory requests and limits")
    sc = c.get("securityContext", {})
    caps = set(sc.get("capabilities", {}).get("add", []))
    if privileged:
        check(sc.get("privileged") is True, f"{where}: privileged by default")
    else:
        check(sc.get("privileged") is False, f"{where}: not privileged")
        check(sc.get("allowPrivilegeEscalation") is False, f"{where}: no privilege escalation")
        check(caps == LEAST_PRIVILEGE_CAPS,
              f"{where}: capabilities exactly {sorted(LEAST_PRIVILEGE_CAPS)} (got {sorted(caps)})")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: drops ALL first")
        check((sc.get("appArmorProfile") or {}).get("type") == "Unconfined",
              f"{where}: AppArmor unconfined (ptrace across profiles)")
    check("SYS_ADMIN" not in caps, f"{where}: no SYS_ADMIN")
    check(sc.get("readOnlyRootFilesystem") is True, f"{where}: read-only root filesystem")

    vols = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = c.get("volumeMounts", [])
    check(all(m["name"] in vols for m in mounts), f"{where}: every volumeMount has a volume")
    host = {}
    for mnt in mounts:
        v = vols.get(mnt["name"], {})
        if "hostPath" in v:
            host[v["hostPath"]["path"]] = mnt
    for path, ro in HOST_MOUNTS.items():
        mnt = host.get(path)
        ok = mnt is not None and bool(mnt.get("readOnly")) == ro and mnt["mountPath"] == path
        check(ok, f"{where}: host {path} mounted at the same path{' read-only' if ro else ''}")
    check(all(bool(m.get("readOnly")) for p, m in host.items() if HOST_MOUNTS.get(p, True)),
          f"{where}: every other host mount read-only")
    pol = [m for m in mounts if m["mountPath"] == "/etc/wsaudit"]
    check(len(pol) == 1 and "configMap" in vols.get(pol[0]["name"], {}) and
          "subPath" not in pol[0], f"{where}: policy ConfigMap at /etc/wsaudit, no subPath")
    if objs:
        cm = vols.get(pol[0]["name"], {}).get("configMap", {}).get("name") if pol else None
        names = {o["metadata"]["name"] for o in objs if o.get("kind") == "ConfigMap"}
        check(cm in names, f"{where}: the policy ConfigMap {cm} is rendered")
        cms = [o for o in objs if o.get("kind") == "ConfigMap" and o["metadata"]["name"] == cm]
        check(bool(cms) and "policy.yaml" in cms[0].get("data", {}),
              f"{where}: the ConfigMap holds policy.yaml")
        sa = spec.get("serviceAccountName")
        check(any(o.get("kind") == "ServiceAccount" and o["metadata"]["name"] == sa
                  for o in objs), f"{where}: ServiceAccount {sa} is rendered")
    return tmpl_labels


def check_namespace(objs, ns, where):
    n = [o for o in objs if o.get("kind") == "Namespace" and o["metadata"]["name"] == ns]
    check(len(n) == 1 and n[0]["metadata"].get("labels", {}).get(
        "pod-security.kubernetes.io/enforce") == "privileged",
        f"{where}: namespace {ns} allows privileged pods (Pod Security)")
    quotas = [o for o in objs if o.get("kind") == "ResourceQuota" and
              o["metadata"].get("namespace") == ns]
    covered = any(e.get("scopeName") == "PriorityClass" and e.get("operator") == "In" and
                  "system-node-critical" in e.get("values", [])
                  for q in quotas for e in q["spec"].get("scopeSelector", {}).get(
                      "matchExpressions", []))
    check(covered, f"{where}: a ResourceQuota in {ns} admits system-node-critical (GKE)")


def check_monitors(objs, labels, ns, where):
    for o in objs:
        k = o.get("kind")
        if k == "PodMonitoring":
            check(o["apiVersion"] == "monitoring.googleapis.com/v1", f"{where}: PodMonitoring v1")
            sel = o["spec"]["selector"]["matchLabels"]
            eps = o["spec"]["endpoints"]
        elif k == "PodMonitor":
            check(o["apiVersion"] == "monitoring.coreos.com/v1", f"{where}: PodMonitor v1")
            sel = o["spec"]["selector"]["matchLabels"]
            eps = o["spec"]["podMetricsEndpoints"]
            nss = o["spec"].get("namespaceSelector", {}).get("matchNames", [])
            check(ns in nss or o["metadata"].get("namespace") == ns,
                  f"{where}: PodMonitor looks in namespace {ns}")
        else:
            continue
        check(all(labels.get(a) == b for a, b in sel.items()),
              f"{where}: {k} selects the agent pods")
        check(all(e.get("port") == "metrics" and e.get("path", "/metrics") == "/metrics"
                  for e in eps) and eps, f"{where}: {k} scrapes port `metrics` at /metrics")


def check_network_policies(objs, labels, where, scraper):
    """A deny-all-ingress policy on the agent pods; with a scraper, one policy letting exactly
    it in, on port `metrics`; no policy that lets everyone in."""
    nps = [o for o in objs if o.get("kind") == "NetworkPolicy"]
    mine = [o for o in nps if all(labels.get(k) == v for k, v in
                                  o["spec"]["podSelector"].get("matchLabels", {}).items())
            and o["spec"]["podSelector"].get("matchLabels")]
    check(any(o["spec"].get("policyTypes") == ["Ingress"] and o["spec"].get("ingress") == []
              for o in mine), f"{where}: a NetworkPolicy denies all ingress to the agent pods")
    rules = [r for o in mine for r in o["spec"].get("ingress") or []]
    check(all(r.get("from") and all(p.get("namespaceSelector", {}).get("matchLabels") and
                                    p.get("podSelector", {}).get("matchLabels")
                                    for p in r["from"]) for r in rules),
          f"{where}: every allowed peer is named by namespace and pod labels")
    check(all([p.get("port") for p in r.get("ports", [])] == ["metrics"] for r in rules),
          f"{where}: allowed only on port `metrics`")
    check(bool(rules) == scraper, f"{where}: " + ("the scraper is let in" if scraper else
                                                  "no peer is let in"))


def kustomize_refs(docs):
    """Files named by kustomization.yaml files exist."""
    for p, ds in docs.items():
        if os.path.basename(p) != "kustomization.yaml":
            continue
        k = ds[0]
        base = os.path.dirname(p)
        refs = list(k.get("resources", [])) + list(k.get("components", []))
        refs += [pt["path"] for pt in k.get("patches", []) if "path" in pt]
        for g in k.get("configMapGenerator", []):
            refs += [f.split("=", 1)[-1] for f in g.get("files", [])]
        for r in refs:
            check(os.path.exists(os.path.join(base, r)), f"{rel(p)}: {r} exists")


def json_patch_target(docs, ds):
    """The least-privilege patch replaces a path that exists in the DaemonSet."""
    patch = os.path.join(DEPLOY, "components/least-privilege/securitycontext.yaml")
    ops = docs.get(patch, [[]])[0]
    for op in ops:
        node = ds
        parts = op["path"].strip("/").split("/")
        try:
            for part in parts[:-1]:
                node = node[int(part)] if isinstance(node, list) else node[part]
            ok = parts[-1] in node if isinstance(node, dict) else int(parts[-1]) < len(node)
        except (KeyError, IndexError, ValueError):
            ok = False
        check(ok, f"least-privilege patch: {op['path']} exists in the DaemonSet")
    return ops


def check_policy(wsaudit):
    with open(os.path.join(DEPLOY, "base/policy.yaml")) as f:
        dep = yaml.safe_load(f)
    with open(os.path.join(ROOT, "policies/default.yaml")) as f:
        default = yaml.safe_load(f)
    check(dep == default, "deploy/base/policy.yaml says what policies/default.yaml says")
    if wsaudit:
        r = subprocess.run([wsaudit, "check-policy", os.path.join(DEPLOY, "base/policy.yaml")],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"wsaudit check-policy deploy/base/policy.yaml: exit {r.returncode}"
              + (f" {r.stderr.strip()}" if r.returncode else ""))
    else:
        print("skip  wsaudit check-policy (no binary: --wsaudit PATH)")


def dockerfile():
    """Instructions of deploy/Dockerfile as (stage index, instruction, argument text)."""
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        text = f.read()
    logical, cur = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        cur += " " + s[:-1] if s.endswith("\\") else " " + s
        if not s.endswith("\\"):
            logical.append(cur.strip())
            cur = ""
    out, stage = [], -1
    for ins in logical:
        word, _, arg = ins.partition(" ")
        if word.upper() == "FROM":
            stage += 1
        out.append((stage, word.upper(), arg.strip()))
    return out


def check_dockerfile(ds_args):
    ins = dockerfile()
    froms = [a for _, w, a in ins if w == "FROM"]
    check(len(froms) >= 2, "Dockerfile: multi-stage")
    check(froms and froms[0].split()[0] == "debian:bookworm", "Dockerfile: builds on debian:bookworm")
    check(froms and froms[-1].split()[0].startswith("debian:bookworm"),
          "Dockerfile: runs on debian:bookworm(-slim)")
    runs = [a for s, w, a in ins if w == "RUN" and s == 0 and a.startswith("make ")]
    check(len(runs) == 1, "Dockerfile: one make step in the build stage")
    mk = runs[0] if runs else ""
    static = mk.partition("-Wl,-Bstatic")[2].partition("-Wl,-Bdynamic")[0].split()
    check(all(lib in static for lib in ("-lbpf", "-lelf", "-lz")),
          "Dockerfile: libbpf, libelf and zlib linked static")
    cmd = [a for _, w, a in ins if w == "CMD"]
    import json
    check(bool(cmd) and json.loads(cmd[-1]) == IMAGE_ARGS and ds_args == AGENT_ARGS,
          "Dockerfile: CMD is the DaemonSet's command line (on every address of its own)")
    for s, w, a in ins:
        if w == "COPY" and "--from" not in a:
            srcs = a.split()[:-1]
            check(all(os.path.exists(os.path.join(ROOT, x)) for x in srcs),
                  f"Dockerfile: COPY {' '.join(srcs)} exists in the repository")
    return ins, mk


def build(ins, mk):
    """The Dockerfile's make step on a copy of what the Dockerfile copies."""
    tmp = tempfile.mkdtemp(prefix="wsaudit-image-")
    try:
        for s, w, a in ins:
            if s != 0 or w != "COPY":
                continue
            parts = a.split()
            dest = parts[-1]
            for src in parts[:-1]:
                d = os.path.join(tmp, dest if dest not in ("./", ".") else os.path.basename(src))
                sp = os.path.join(ROOT, src)
                if os.path.isdir(sp):
                    shutil.copytree(sp, d)
                else:
                    shutil.copy(sp, d)
        env = dict(os.environ, GIT_REV="deploycheck")
        r = subprocess.run(["sh", "-ec", mk], cwd=tmp, env=env, capture_output=True, text=True)
        tail = (r.stdout + r.stderr).strip().splitlines()[-3:]
        check(r.returncode == 0, "Dockerfile make step builds wsaudit: " + " | ".join(tail))
        if r.returncode == 0:
            ldd = subprocess.run(["ldd", os.path.join(tmp, "wsaudit")], capture_output=True,
                                 text=True).stdout
            dyn = sorted(l.split()[0] for l in ldd.splitlines() if "=>" in l)
            check(not any(x.startswith(("libbpf.", "libelf.", "libz.", "libjansson.",
                                         "libyaml")) for x in dyn),
                  "built wsaudit: no dynamic libbpf/libelf/zlib/jansson/yaml; dynamic: "
                  + " ".join(dyn))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


SCHEMAS = os.path.join(ROOT, "tests", "integration", "k8s_schema")
# Components a user combines with the base, each rendered alone and all together.
COMPONENTS = ["least-privilege", "gke-managed-prometheus", "prometheus-operator",
              "resources-busy-node", "tolerations-untainted-only"]


def validate(text, what):
    """The rendered objects against the Kubernetes schemas (k8s_schema/validate.mjs)."""
    if not os.path.isdir(os.path.join(SCHEMAS, "node_modules")) or not shutil.which("node"):
        check(False, f"{what}: validated against the Kubernetes schemas (node and "
                     f"tests/integration/k8s_schema/node_modules needed: scripts/deps.sh)")
        return
    r = subprocess.run(["node", os.path.join(SCHEMAS, "validate.mjs")], input=text,
                       capture_output=True, text=True, timeout=120)
    lines = r.stdout.strip().splitlines()
    check(r.returncode == 0, f"{what}: {len(lines)} objects valid against the Kubernetes "
                             f"schemas" + ("" if r.returncode == 0 else ":\n" + r.stdout + r.stderr))


def image_explicit(objs, what, placeholder_ok):
    """An image reference with its registry: nothing resolves to Docker Hub by default."""
    for o in objs:
        for c in (o.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []):
            host = c["image"].split("/")[0] if "/" in c["image"] else ""
            check(("." in host or ":" in host or host == "localhost") and
                  (placeholder_ok or not host.endswith(".invalid")),
                  f"{what}: image {c['image']} names its registry")


def rendered(path, what=None):
    what = what or path
    r = subprocess.run(["kubectl", "kustomize", os.path.join(ROOT, path)], capture_output=True,
                       text=True)
    if not check(r.returncode == 0, f"kubectl kustomize {what}" +
                 (f": {r.stderr.strip()}" if r.returncode else "")):
        return []
    validate(r.stdout, what)
    return [d for d in yaml.safe_load_all(r.stdout) if d]


USER_OVERLAY = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {deploy}/base
components:
{components}
images:
  - name: wsaudit
    newName: registry.example.com/acme/wsaudit
    newTag: 0.1.0
configMapGenerator:
  - name: wsaudit-policy
    namespace: wsaudit
    behavior: replace
    files:
      - policy.yaml
secretGenerator:
  - name: wsaudit-identity
    namespace: wsaudit
    files:
      - key=identity.key
"""


def user_overlays():
    """Overlays as a user writes them (deploy/README.md): the base with each component, then
    with all that go together, their image, their policy and their identity-key Secret."""
    import secrets
    sets = [[c] for c in COMPONENTS] + [
        ["least-privilege", "gke-managed-prometheus", "resources-busy-node",
         "tolerations-untainted-only"],
        ["least-privilege", "prometheus-operator", "resources-busy-node"]]
    for comps in sets:
        tmp = tempfile.mkdtemp(prefix="wsaudit-overlay-")
        try:
            shutil.copy(os.path.join(DEPLOY, "base", "policy.yaml"), tmp)
            with open(os.path.join(tmp, "identity.key"), "w") as f:
                f.write(secrets.token_hex(32))
            with open(os.path.join(tmp, "kustomization.yaml"), "w") as f:
                # kustomize takes bases and components by relative path only.
                dep = os.path.relpath(DEPLOY, tmp)
                f.write(USER_OVERLAY.format(deploy=dep, components="\n".join(
                    f"  - {dep}/components/{c}" for c in comps)))
            what = "overlay of base + " + " + ".join(comps)
            out = rendered(tmp, what)
            if not out:
                continue
            image_explicit(out, what, False)
            d = [o for o in out if o.get("kind") == "DaemonSet"]
            if check(len(d) == 1, f"{what}: renders one DaemonSet"):
                check_daemonset(d[0], what, privileged="least-privilege" not in comps, objs=out,
                                all_taints="tolerations-untainted-only" not in comps)
            check(any(o.get("kind") == "Secret" and o["metadata"]["name"].startswith(
                "wsaudit-identity") for o in out), f"{what}: the identity-key Secret")
            rules = {"gke-managed-prometheus": "ClusterRules",
                     "prometheus-operator": "PrometheusRule"}
            for c, kind in rules.items():
                if c in comps:
                    check(any(o.get("kind") == kind for o in out), f"{what}: includes {kind}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wsaudit", help="a wsaudit binary for check-policy")
    ap.add_argument("--build", action="store_true",
                    help="run the Dockerfile's make step on a copy of the sources")
    args = ap.parse_args()

    docs = load_all()
    objs = objects(docs)
    kustomize_refs(docs)
    dss = by_kind(objs, "DaemonSet")
    check(len(dss) == 1, "one DaemonSet")
    ds = dss[0]
    ns = ds["metadata"]["namespace"]
    labels = check_daemonset(ds, "base DaemonSet")
    check_namespace([d for _, d in objs], ns, "base")
    check_monitors([d for _, d in objs], labels, ns, "components")
    check_network_policies([d for p, d in objs if "/base/" in p], labels, "base", False)
    for comp in ("gke-managed-prometheus", "prometheus-operator"):
        check_network_policies([d for p, d in objs if "/base/" in p or f"/{comp}/" in p],
                               labels, f"base + {comp}", True)
    json_patch_target(docs, ds)
    check_policy(args.wsaudit or (os.path.join(ROOT, "wsaudit")
                                  if os.access(os.path.join(ROOT, "wsaudit"), os.X_OK) else None))
    ins, mk = check_dockerfile(container_of(ds).get("args"))

    if shutil.which("kubectl"):
        for path in OVERLAYS:
            out = rendered(path)
            if not out:
                continue
            image_explicit(out, path, True)
            d = [o for o in out if o.get("kind") == "DaemonSet"]
            if not check(len(d) == 1, f"{path}: renders one DaemonSet"):
                continue
            lp = "least-privilege" in path
            check_daemonset(d[0], path, privileged=not lp, objs=out)
            check_namespace(out, ns, path)
            check_monitors(out, labels, ns, path)
            check_network_policies(out, labels, path, scraper=any(
                o.get("kind") in ("PodMonitoring", "PodMonitor") for o in out))
            if "gke" in path:
                check(any(o.get("kind") == "PodMonitoring" for o in out),
                      f"{path}: includes PodMonitoring")
        check(sorted(COMPONENTS) == sorted(os.listdir(os.path.join(DEPLOY, "components"))),
              "every component of deploy/components is rendered")
        user_overlays()
    else:
        print("skip  kubectl kustomize (kubectl not on PATH)")

    if args.build:
        build(ins, mk)

    print(f"deploy_check: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Writes the pod attribution fixtures of tests/unit/test_podinfo.c.

proc/<pid>/cgroup                       what /proc/PID/cgroup shows for each case
bundles/k8s.io/<container id>/config.json
                                        containerd task bundles (OCI runtime spec, trimmed to
                                        the members containerd writes plus the annotations)

The paths follow reference/production.md section 4.1; the annotations are the ones
containerd's CRI plugin sets (pkg/cri/annotations).  Run it from anywhere; it rewrites the
fixtures in place.  Cases that need large or generated files (over the size bounds, deep
nesting) are built by the test itself in a temporary directory.
"""
import hashlib
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))


def cid(name):
    """A stable 64-hex container id per case name."""
    return hashlib.sha256(name.encode()).hexdigest()


def uid(name):
    h = hashlib.md5(name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def us(u):
    return u.replace("-", "_")


def cgroup(pid, text):
    d = os.path.join(HERE, "proc", str(pid))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "cgroup"), "wb") as f:
        f.write(text if isinstance(text, bytes) else text.encode())


def bundle_path(container):
    d = os.path.join(HERE, "bundles", "k8s.io", container)
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, "config.json")


def bundle_raw(container, raw):
    with open(bundle_path(container), "wb") as f:
        f.write(raw if isinstance(raw, bytes) else raw.encode())


def spec(annotations, cgroups_path):
    return {
        "ociVersion": "1.1.0",
        "process": {
            "user": {"uid": 1000, "gid": 1000},
            "args": ["/usr/bin/python3", "-m", "uvicorn", "app:app"],
            "env": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOSTNAME=" + annotations.get(
                "io.kubernetes.cri.sandbox-name", "x")],
            "cwd": "/srv",
        },
        "root": {"path": "rootfs"},
        "hostname": annotations.get("io.kubernetes.cri.sandbox-name", ""),
        "annotations": annotations,
        "linux": {"cgroupsPath": cgroups_path, "namespaces": [{"type": "pid"}, {"type": "mount"}]},
    }


def annotations(pod, ns, pod_uid, container=None, image="europe-docker.pkg.dev/acme/chat/api:1.42.0",
                sandbox_id=None, ctype="container"):
    a = {
        "io.kubernetes.cri.container-type": ctype,
        "io.kubernetes.cri.sandbox-id": sandbox_id or cid(pod + "/sandbox"),
        "io.kubernetes.cri.sandbox-name": pod,
        "io.kubernetes.cri.sandbox-namespace": ns,
        "io.kubernetes.cri.sandbox-uid": pod_uid,
    }
    if container is not None:
        a["io.kubernetes.cri.container-name"] = container
    if image is not None:
        a["io.kubernetes.cri.image-name"] = image
    return a


def bundle(container, annotations_, cgroups_path=""):
    bundle_raw(container, json.dumps(spec(annotations_, cgroups_path), indent=1))


def main():
    for sub in ("proc", "bundles"):
        shutil.rmtree(os.path.join(HERE, sub), ignore_errors=True)

    # 1001 cgroup v2, systemd driver, burstable QoS, containerd (GKE with systemd cgroups)
    c, u = cid("v2_systemd_burstable"), uid("v2_systemd_burstable")
    cgroup(1001, f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{us(u)}.slice/"
                 f"cri-containerd-{c}.scope\n")
    bundle(c, annotations("chat-api-7d9f8b6c4-x2x9z", "netra", u, "backend"),
           f"kubepods-burstable-pod{us(u)}.slice:cri-containerd:{c}")

    # 1002 systemd driver, guaranteed QoS: no QoS slice
    c, u = cid("v2_systemd_guaranteed"), uid("v2_systemd_guaranteed")
    cgroup(1002, f"0::/kubepods.slice/kubepods-pod{us(u)}.slice/cri-containerd-{c}.scope\n")
    bundle(c, annotations("ws-gateway-0", "edge", u, "gateway"))

    # 1003 systemd driver, besteffort QoS
    c, u = cid("v2_systemd_besteffort"), uid("v2_systemd_besteffort")
    cgroup(1003, f"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{us(u)}.slice/"
                 f"cri-containerd-{c}.scope\n")
    bundle(c, annotations("worker-5c8d7-abcde", "batch", u, "worker", image=None))

    # 1004 cgroupfs driver (GKE COS), burstable
    c, u = cid("v2_cgroupfs_burstable"), uid("v2_cgroupfs_burstable")
    cgroup(1004, f"0::/kubepods/burstable/pod{u}/{c}\n")
    bundle(c, annotations("agent-runner-6f7b9-q8w7e", "netra", u, "runner"),
           f"/kubepods/burstable/pod{u}/{c}")

    # 1005 cgroupfs driver, guaranteed
    c, u = cid("v2_cgroupfs_guaranteed"), uid("v2_cgroupfs_guaranteed")
    cgroup(1005, f"0::/kubepods/pod{u}/{c}\n")
    bundle(c, annotations("redis-0", "data", u, "redis", image="docker.io/library/redis:7.2@sha256:" + c))

    # 1006 cgroup v1, cgroupfs driver: one line per hierarchy, some controllers at the root
    c, u = cid("v1_cgroupfs"), uid("v1_cgroupfs")
    p = f"/kubepods/burstable/pod{u}/{c}"
    lines = ["12:hugetlb:" + p, "11:freezer:" + p, "10:pids:" + p, "9:rdma:/", "8:memory:" + p,
             "7:cpu,cpuacct:" + p, "6:net_cls,net_prio:" + p, "5:blkio:" + p, "4:devices:" + p,
             "3:perf_event:" + p, "2:cpuset:" + p, "1:name=systemd:" + p, "0::/"]
    cgroup(1006, "\n".join(lines) + "\n")
    bundle(c, annotations("legacy-api-1", "legacy", u, "api"))

    # 1007 cgroup v1 hybrid, systemd driver: the unified line at the root
    c, u = cid("v1_hybrid_systemd"), uid("v1_hybrid_systemd")
    p = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{us(u)}.slice/cri-containerd-{c}.scope"
    cgroup(1007, f"5:memory:{p}\n4:pids:{p}\n3:cpu,cpuacct:{p}\n2:devices:{p}\n1:name=systemd:{p}\n0::/\n")
    bundle(c, annotations("hybrid-7f9c-zzz", "default", u, "app"))

    # 1008 cgroup v1, containerd with systemd cgroups nested under containerd.service
    c, u = cid("v1_containerd_service"), uid("v1_containerd_service")
    p = f"/system.slice/containerd.service/kubepods-burstable-pod{us(u)}.slice:cri-containerd:{c}"
    cgroup(1008, f"4:memory:{p}\n3:pids:{p}\n2:cpu,cpuacct:{p}\n1:name=systemd:{p}\n")
    bundle(c, annotations("metal-app-0", "prod", u, "app"))

    # 1009 kind: the node is a docker container; the pod is nested inside it
    c, u = cid("kind_nested"), uid("kind_nested")
    node = cid("kind_node")
    cgroup(1009, f"0::/system.slice/docker-{node}.scope/kubepods/burstable/pod{u}/{c}\n")
    bundle(c, annotations("kind-app-1", "default", u, "app"))

    # 1010 read from a private cgroup namespace (the agent's pod): a relative path
    c, u = cid("cgroupns_relative"), uid("cgroupns_relative")
    cgroup(1010, f"0::/../../kubepods-burstable-pod{us(u)}.slice/cri-containerd-{c}.scope\n")
    bundle(c, annotations("chat-api-7d9f8b6c4-k3k3k", "netra", u, "backend"))

    # 1011 plain docker, no Kubernetes: a container without a pod
    cgroup(1011, f"0::/system.slice/docker-{cid('plain_docker')}.scope\n")

    # 1012 CRI-O pod: ids from the path, bundles of that runtime are not read
    c, u = cid("crio_pod"), uid("crio_pod")
    cgroup(1012, f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{us(u)}.slice/crio-{c}.scope\n")

    # 1013..1015 host processes
    cgroup(1013, "0::/system.slice/ssh.service\n")
    cgroup(1014, "0::/user.slice/user-0.slice/session-3.scope\n")
    cgroup(1015, "0::/\n")

    # 1016 the pod's sandbox (pause) container
    c, u = cid("sandbox"), uid("sandbox")
    cgroup(1016, f"0::/kubepods/besteffort/pod{u}/{c}\n")
    bundle(c, annotations("chat-api-7d9f8b6c4-x2x9z", "netra", u, None, image="registry.k8s.io/pause:3.9",
                          sandbox_id=c, ctype="sandbox"))

    # 1017 a cgroup v2 directory removed while the process still runs
    c, u = cid("deleted"), uid("deleted")
    cgroup(1017, f"0::/kubepods/burstable/pod{u}/{c} (deleted)\n")
    bundle(c, annotations("leaving-0", "default", u, "app"))

    # 1018 the pod-level cgroup itself: a pod UID but no container
    cgroup(1018, f"0::/kubepods/burstable/pod{uid('pod_level')}\n")

    # 1019 v1 lines naming two containers
    u = uid("conflict")
    cgroup(1019, f"2:memory:/kubepods/burstable/pod{u}/{cid('conflict_a')}\n"
                 f"1:name=systemd:/kubepods/burstable/pod{u}/{cid('conflict_b')}\n")

    # 1020..1022 malformed cgroup files
    cgroup(1020, "this is not a cgroup file\n")
    cgroup(1021, "")
    cgroup(1022, b"0::/kubepods/\x00burstable\n")
    # 1023 a relative path
    cgroup(1023, f"0::kubepods/burstable/pod{uid('relative')}/{cid('relative')}\n")

    # 1024: no such process (no directory)

    # 1025 a pod container whose bundle is absent
    c, u = cid("bundle_missing"), uid("bundle_missing")
    cgroup(1025, f"0::/kubepods/burstable/pod{u}/{c}\n")

    # 1026 truncated JSON
    c, u = cid("bundle_truncated"), uid("bundle_truncated")
    cgroup(1026, f"0::/kubepods/burstable/pod{u}/{c}\n")
    full = json.dumps(spec(annotations("t-0", "default", u, "app"), ""))
    bundle_raw(c, full[: len(full) // 2])

    # 1027 JSON, but an array
    c, u = cid("bundle_array"), uid("bundle_array")
    cgroup(1027, f"0::/kubepods/burstable/pod{u}/{c}\n")
    bundle_raw(c, "[1, 2, 3]\n")

    # 1028 an OCI spec without annotations (not created by the CRI plugin)
    c, u = cid("bundle_no_annotations"), uid("bundle_no_annotations")
    cgroup(1028, f"0::/kubepods/burstable/pod{u}/{c}\n")
    s = spec({}, "")
    del s["annotations"]
    bundle_raw(c, json.dumps(s))

    # 1029 annotations without the sandbox name
    c, u = cid("bundle_no_sandbox_name"), uid("bundle_no_sandbox_name")
    cgroup(1029, f"0::/kubepods/burstable/pod{u}/{c}\n")
    a = annotations("x-0", "default", u, "app")
    del a["io.kubernetes.cri.sandbox-name"]
    bundle(c, a)

    # 1030 a non-string annotation
    c, u = cid("bundle_number"), uid("bundle_number")
    cgroup(1030, f"0::/kubepods/burstable/pod{u}/{c}\n")
    a = annotations("x-0", "default", u, "app")
    a["io.kubernetes.cri.sandbox-namespace"] = 42
    bundle(c, a)

    # 1031 terminal escape sequences in the pod name
    c, u = cid("bundle_escape"), uid("bundle_escape")
    cgroup(1031, f"0::/kubepods/burstable/pod{u}/{c}\n")
    bundle(c, annotations("\x1b[31mred\x1b[0m", "default", u, "app"))

    # 1032 the sandbox-uid annotation disagrees with the cgroup path
    c, u = cid("bundle_uid_mismatch"), uid("bundle_uid_mismatch")
    cgroup(1032, f"0::/kubepods/burstable/pod{u}/{c}\n")
    bundle(c, annotations("x-0", "default", uid("someone_else"), "app"))

    # 1033 a key written twice
    c, u = cid("bundle_duplicate"), uid("bundle_duplicate")
    cgroup(1033, f"0::/kubepods/burstable/pod{u}/{c}\n")
    bundle_raw(c, '{"annotations": {"io.kubernetes.cri.sandbox-name": "a-0", '
                  '"io.kubernetes.cri.sandbox-namespace": "default", '
                  '"io.kubernetes.cri.container-name": "app", '
                  '"io.kubernetes.cri.sandbox-name": "b-0"}}')

    # 1034 config.json is a symbolic link (to a valid bundle)
    c, u = cid("bundle_symlink"), uid("bundle_symlink")
    cgroup(1034, f"0::/kubepods/burstable/pod{u}/{c}\n")
    os.makedirs(os.path.dirname(bundle_path(c)), exist_ok=True)
    os.symlink(f"../{cid('v2_cgroupfs_burstable')}/config.json", bundle_path(c))

    # 1035 config.json is a directory
    c, u = cid("bundle_directory"), uid("bundle_directory")
    cgroup(1035, f"0::/kubepods/burstable/pod{u}/{c}\n")
    os.makedirs(bundle_path(c), exist_ok=True)
    with open(os.path.join(bundle_path(c), "README"), "w") as f:
        f.write("config.json is a directory here, on purpose\n")

    # 1036 an unknown container-type
    c, u = cid("bundle_bad_type"), uid("bundle_bad_type")
    cgroup(1036, f"0::/kubepods/burstable/pod{u}/{c}\n")
    bundle(c, annotations("x-0", "default", u, "app", ctype="podsandbox"))

    # 1037 a container (not a sandbox) without a container name
    c, u = cid("bundle_no_container_name"), uid("bundle_no_container_name")
    cgroup(1037, f"0::/kubepods/burstable/pod{u}/{c}\n")
    bundle(c, annotations("x-0", "default", u, None))

    # 1038 a NUL inside a JSON string
    c, u = cid("bundle_nul"), uid("bundle_nul")
    cgroup(1038, f"0::/kubepods/burstable/pod{u}/{c}\n")
    bundle_raw(c, '{"annotations": {"io.kubernetes.cri.sandbox-name": "a\\u0000b", '
                  '"io.kubernetes.cri.sandbox-namespace": "default", '
                  '"io.kubernetes.cri.container-name": "app"}}')

    # 1039 units that look like containers but are not: an unknown prefix, 63 hex digits,
    # "pod" inside a word
    cgroup(1039, f"0::/user.slice/session-{cid('lookalike')}.scope\n"
                 f"1:name=systemd:/system.slice/docker-{cid('lookalike')[:63]}.scope\n"
                 f"2:memory:/kubepodx/ipod{uid('lookalike')}/x\n")

    # 1040 a namespace that breaks the DNS label rule (upper case, over 63 characters)
    c, u = cid("bundle_long_namespace"), uid("bundle_long_namespace")
    cgroup(1040, f"0::/kubepods/burstable/pod{u}/{c}\n")
    bundle(c, annotations("x-0", "N" * 64, u, "app"))

    # 1041 an older containerd without sandbox-uid: the cgroup's UID stands
    c, u = cid("bundle_no_uid"), uid("bundle_no_uid")
    cgroup(1041, f"0::/kubepods/burstable/pod{u}/{c}\n")
    a = annotations("old-0", "default", u, "app")
    del a["io.kubernetes.cri.sandbox-uid"]
    bundle(c, a)

    # 1042 a v1 file with a malformed line after good ones
    c, u = cid("v1_bad_line"), uid("v1_bad_line")
    cgroup(1042, f"2:memory:/kubepods/burstable/pod{u}/{c}\nx:pids:/\n")

    # 1043 podman container outside Kubernetes
    cgroup(1043, f"0::/machine.slice/libpod-{cid('podman')}.scope/container\n")

    # 1044 kind node on a cgroup v1 host: name=systemd stops at the node's container, the
    # other hierarchies go down to the pod's container (an ancestor, not a conflict)
    c, u = cid("v1_nested_shallow"), uid("v1_nested_shallow")
    node = cid("kind_node_v1")
    cgroup(1044, f"3:memory:/docker/{node}/kubepods/burstable/pod{u}/{c}\n"
                 f"2:pids:/docker/{node}/kubepods/burstable/pod{u}/{c}\n"
                 f"1:name=systemd:/docker/{node}\n0::/\n")
    bundle(c, annotations("kind-v1-0", "default", u, "app"))

    # 1045 two pods side by side, neither above the other
    cgroup(1045, f"2:memory:/kubepods/burstable/pod{uid('conflict_pod_a')}\n"
                 f"1:pids:/kubepods/besteffort/pod{uid('conflict_pod_b')}\n")

    write_expected()


CASES = []


def expect(name, pid, kind="container", reason="ok", runtime="unnamed", container_id=None,
           pod_uid=None, pod="", namespace="", container="", image="", sandbox=False):
    """The result podinfo_lookup must give; the id and UID default to the case's own."""
    if kind != "container":
        container_id, pod_uid = "", pod_uid or ""
    CASES.append({
        "name": name, "pid": pid, "kind": kind, "reason": reason, "runtime": runtime,
        "container_id": cid(name) if container_id is None else container_id,
        "pod_uid": uid(name) if pod_uid is None else pod_uid,
        "pod": pod, "namespace": namespace, "container": container, "image": image,
        "sandbox": sandbox,
    })


IMG = "europe-docker.pkg.dev/acme/chat/api:1.42.0"


def write_expected():
    CASES.clear()
    expect("v2_systemd_burstable", 1001, runtime="containerd", pod="chat-api-7d9f8b6c4-x2x9z",
           namespace="netra", container="backend", image=IMG)
    expect("v2_systemd_guaranteed", 1002, runtime="containerd", pod="ws-gateway-0",
           namespace="edge", container="gateway", image=IMG)
    expect("v2_systemd_besteffort", 1003, runtime="containerd", pod="worker-5c8d7-abcde",
           namespace="batch", container="worker")
    expect("v2_cgroupfs_burstable", 1004, pod="agent-runner-6f7b9-q8w7e", namespace="netra",
           container="runner", image=IMG)
    expect("v2_cgroupfs_guaranteed", 1005, pod="redis-0", namespace="data", container="redis",
           image="docker.io/library/redis:7.2@sha256:" + cid("v2_cgroupfs_guaranteed"))
    expect("v1_cgroupfs", 1006, pod="legacy-api-1", namespace="legacy", container="api", image=IMG)
    expect("v1_hybrid_systemd", 1007, runtime="containerd", pod="hybrid-7f9c-zzz",
           namespace="default", container="app", image=IMG)
    expect("v1_containerd_service", 1008, runtime="containerd", pod="metal-app-0",
           namespace="prod", container="app", image=IMG)
    expect("kind_nested", 1009, pod="kind-app-1", namespace="default", container="app", image=IMG)
    expect("cgroupns_relative", 1010, runtime="containerd", pod="chat-api-7d9f8b6c4-k3k3k",
           namespace="netra", container="backend", image=IMG)
    expect("plain_docker", 1011, runtime="docker", pod_uid="")
    expect("crio_pod", 1012, runtime="crio", reason="bundle_unsupported")
    expect("host_service", 1013, kind="host")
    expect("host_session", 1014, kind="host")
    expect("host_root", 1015, kind="host")
    expect("sandbox", 1016, pod="chat-api-7d9f8b6c4-x2x9z", namespace="netra",
           image="registry.k8s.io/pause:3.9", sandbox=True)
    expect("deleted", 1017, pod="leaving-0", namespace="default", container="app", image=IMG)
    expect("pod_level", 1018, kind="unknown", reason="no_container_id", pod_uid=uid("pod_level"))
    expect("conflict", 1019, kind="unknown", reason="cgroup_conflict")
    expect("malformed_text", 1020, kind="unknown", reason="cgroup_malformed")
    expect("malformed_empty", 1021, kind="unknown", reason="cgroup_malformed")
    expect("malformed_nul", 1022, kind="unknown", reason="cgroup_malformed")
    expect("malformed_relative", 1023, kind="unknown", reason="cgroup_malformed")
    expect("no_process", 1024, kind="unknown", reason="no_process")
    expect("bundle_missing", 1025, reason="bundle_missing")
    expect("bundle_truncated", 1026, reason="bundle_bad_json")
    expect("bundle_array", 1027, reason="bundle_bad_json")
    expect("bundle_no_annotations", 1028, reason="no_annotations")
    expect("bundle_no_sandbox_name", 1029, reason="no_annotations")
    expect("bundle_number", 1030, reason="bad_annotation")
    expect("bundle_escape", 1031, reason="bad_annotation")
    expect("bundle_uid_mismatch", 1032, reason="uid_mismatch")
    expect("bundle_duplicate", 1033, reason="bundle_bad_json")
    expect("bundle_symlink", 1034, reason="bundle_unreadable")
    expect("bundle_directory", 1035, reason="bundle_unreadable")
    expect("bundle_bad_type", 1036, reason="bad_annotation")
    expect("bundle_no_container_name", 1037, reason="no_annotations")
    expect("bundle_nul", 1038, reason="bundle_bad_json")
    expect("host_lookalikes", 1039, kind="host")
    expect("bundle_long_namespace", 1040, reason="bad_annotation")
    expect("bundle_no_uid", 1041, pod="old-0", namespace="default", container="app", image=IMG)
    expect("v1_bad_line", 1042, kind="unknown", reason="cgroup_malformed")
    expect("podman", 1043, runtime="podman", pod_uid="")
    expect("v1_nested_shallow", 1044, pod="kind-v1-0", namespace="default", container="app",
           image=IMG)
    expect("conflict_pods", 1045, kind="unknown", reason="cgroup_conflict")
    with open(os.path.join(HERE, "cases.json"), "w") as f:
        json.dump(CASES, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

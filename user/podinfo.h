/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The container and Kubernetes pod a process belongs to, read on the node without the API
 * server or the kubelet (reference/production.md section 4):
 *
 *   /proc/PID/cgroup   -> pod UID and container id, from the cgroup path
 *   <bundle_root>/k8s.io/<container id>/config.json
 *                      -> pod name, namespace, container name and image, from the annotations
 *                         containerd's CRI plugin puts on every container it creates
 *
 * cgroup paths understood (cgroup v2 single line, or every line of a v1 file):
 *   systemd driver   /kubepods.slice/kubepods-burstable.slice/
 *                       kubepods-burstable-pod<uid with _>.slice/cri-containerd-<id>.scope
 *                    (guaranteed pods lack the QoS slice; docker-<id>.scope, crio-<id>.scope,
 *                    crio-conmon-<id>.scope and libpod-<id>.scope name other runtimes)
 *   cgroupfs driver  /kubepods/burstable/pod<uid>/<id>   (GKE), /kubepods/pod<uid>/<id>
 *   v1 containerd.service  /system.slice/containerd.service/
 *                       kubepods-burstable-pod<uid>.slice:cri-containerd:<id>
 *   nested (kind, docker in docker)  /system.slice/docker-<node>.scope/kubepods/.../<id>
 *   relative paths seen from a private cgroup namespace  /../../kubepods-...
 * The container id is the deepest path component holding a 64-hex id (after a runtime
 * prefix, before ".scope", or after the last ':'); the pod UID is the deepest "pod<uid>"
 * token above it, 8-4-4-4-12 hex with '-' or '_', normalised to '-'.  A path with neither is
 * the host.  Of a v1 file's lines, the deepest one that names a container or pod decides;
 * another line naming a different one is a conflict unless its path lies above (a hierarchy
 * not delegated as deep).
 *
 * A container outside any pod (plain docker) is complete with its id: no bundle is read.
 * Only containerd bundles are read (the GKE runtime): a container of another runtime keeps
 * its ids and gets the reason BUNDLE_UNSUPPORTED.  Every way of not getting a value is a named
 * reason and the result keeps what was found before it, so the caller can still report the
 * container id.  Files are read with a size bound and annotation values are checked against
 * the Kubernetes name rules before they reach a log.  Nothing here logs.
 *
 * Not thread-safe: one cache per thread.
 */
#ifndef WSAUDIT_PODINFO_H
#define WSAUDIT_PODINFO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PODINFO_PROC_ROOT "/proc"
/* containerd's runtime v2 state directory; k3s uses /run/k3s/containerd/... */
#define PODINFO_BUNDLE_ROOT "/run/containerd/io.containerd.runtime.v2.task"
/* the containerd namespace of the CRI plugin */
#define PODINFO_CRI_NAMESPACE "k8s.io"

#define PODINFO_MAX_CGROUP_FILE (64u << 10) /* bytes of /proc/PID/cgroup read */
#define PODINFO_MAX_BUNDLE_FILE (2u << 20) /* bytes of config.json (env and mounts inflate it) */
#define PODINFO_CACHE_DEFAULT 512 /* containers remembered by a cache of capacity 0 */

#define PODINFO_ID_LEN 64 /* container id: 64 lowercase hex */
#define PODINFO_UID_LEN 36 /* pod UID: 8-4-4-4-12 hex */
#define PODINFO_POD_NAME_MAX 253 /* DNS-1123 subdomain */
#define PODINFO_NAMESPACE_MAX 63 /* DNS-1123 label */
#define PODINFO_CONTAINER_NAME_MAX 63 /* DNS-1123 label */
#define PODINFO_IMAGE_MAX 511 /* registry/path:tag@sha256:<64 hex> with room to spare */

enum podinfo_kind {
	PODINFO_UNKNOWN = 0, /* the cgroup file could not be read or understood */
	PODINFO_HOST, /* in no container: a node daemon, a process started over ssh */
	PODINFO_CONTAINER, /* in a container; pod fields set when it belongs to a pod */
};

enum podinfo_runtime {
	PODINFO_RT_UNNAMED = 0, /* cgroupfs driver: the path does not name the runtime */
	PODINFO_RT_CONTAINERD,
	PODINFO_RT_DOCKER,
	PODINFO_RT_CRIO,
	PODINFO_RT_PODMAN,
};

enum podinfo_reason {
	PODINFO_OK = 0, /* host, or container with every field its kind has */
	PODINFO_NO_PROCESS, /* /proc/PID/cgroup absent: the process has exited (or pid <= 0) */
	PODINFO_CGROUP_UNREADABLE, /* open or read failed otherwise (EACCES, EIO, ...) */
	PODINFO_CGROUP_TOO_LARGE, /* over PODINFO_MAX_CGROUP_FILE */
	PODINFO_CGROUP_MALFORMED, /* empty, a NUL, or a line not "ID:controllers:/path" */
	PODINFO_CGROUP_CONFLICT, /* v1 lines naming different containers or pods */
	PODINFO_NO_CONTAINER_ID, /* a pod UID but no container id (the pod-level cgroup) */
	PODINFO_BUNDLE_UNSUPPORTED, /* a runtime whose bundles are not read (docker, cri-o) */
	PODINFO_BUNDLE_MISSING, /* no config.json: not containerd, or the mount is missing */
	PODINFO_BUNDLE_UNREADABLE, /* config.json: open or read failed otherwise, or not a file */
	PODINFO_BUNDLE_TOO_LARGE, /* config.json over PODINFO_MAX_BUNDLE_FILE */
	PODINFO_BUNDLE_BAD_JSON, /* config.json is not a JSON object */
	PODINFO_NO_ANNOTATIONS, /* no "annotations" object, or no CRI sandbox annotations */
	PODINFO_BAD_ANNOTATION, /* an annotation is not a string or breaks the name rules */
	PODINFO_UID_MISMATCH, /* the sandbox-uid annotation is not the cgroup's pod UID */
	PODINFO_NO_MEMORY,
	PODINFO__COUNT,
};

struct podinfo {
	enum podinfo_kind kind;
	enum podinfo_runtime runtime;
	enum podinfo_reason reason; /* what stopped the lookup; the fields found before stay set */
	bool sandbox; /* the pod's sandbox (pause) container: no container name */
	char container_id[PODINFO_ID_LEN + 1];
	char pod_uid[PODINFO_UID_LEN + 1]; /* empty outside a pod */
	char pod_name[PODINFO_POD_NAME_MAX + 1]; /* empty until the bundle has been read */
	char pod_namespace[PODINFO_NAMESPACE_MAX + 1];
	char container_name[PODINFO_CONTAINER_NAME_MAX + 1];
	char image[PODINFO_IMAGE_MAX + 1]; /* empty when the annotation is absent */
};

struct podinfo_stats {
	uint64_t hits; /* lookups answered from the cache */
	uint64_t misses; /* config.json reads */
	uint64_t evictions; /* entries dropped to make room */
	uint64_t uncached; /* results not kept because they may change (unreadable, no memory) */
	size_t entries;
	size_t capacity;
};

/* Short stable names for counters and logs ("bundle_missing", "host", "containerd"). */
const char *podinfo_reason_name(enum podinfo_reason r);
const char *podinfo_kind_name(enum podinfo_kind k);
const char *podinfo_runtime_name(enum podinfo_runtime rt);

/*
 * Parses the text of a /proc/PID/cgroup file (not NUL-terminated; len bytes) into kind,
 * runtime, container_id and pod_uid of out, which is cleared first.
 */
enum podinfo_reason podinfo_parse_cgroup(const char *text, size_t len, struct podinfo *out);

/*
 * Parses a containerd bundle config.json (len bytes) into the pod name, namespace, container
 * name, image and sandbox flag of out; the other fields are left alone.  When out->pod_uid
 * is set, the sandbox-uid annotation must equal it.
 */
enum podinfo_reason podinfo_parse_bundle(const char *json, size_t len, struct podinfo *out);

/* A cache of bundle results by container id, LRU.  Capacity 0 means PODINFO_CACHE_DEFAULT. */
struct podinfo_cache;
struct podinfo_cache *podinfo_cache_new(size_t capacity); /* NULL and errno on failure */
void podinfo_cache_free(struct podinfo_cache *c);
void podinfo_cache_stats(const struct podinfo_cache *c, struct podinfo_stats *st);

/*
 * The container and pod of pid: reads <proc_root>/<pid>/cgroup, then for a pod on
 * containerd <bundle_root>/k8s.io/<id>/config.json unless cache (may be NULL) has the
 * container.  NULL roots mean PODINFO_PROC_ROOT and PODINFO_BUNDLE_ROOT.  Returns out->reason.
 */
enum podinfo_reason podinfo_lookup(struct podinfo_cache *cache, const char *proc_root,
				   const char *bundle_root, pid_t pid, struct podinfo *out);

/*
 * Which containers `trace --pod NS/NAME [--container NAME] | --container-id ID |
 * --namespace NS` follows.  NULL members match anything; container_id is a prefix of the
 * 64-hex id.  Names match only when the bundle was read (reason OK), and a pod's sandbox
 * (pause) container only through its id.
 */
struct pod_selector {
	const char *namespace;
	const char *pod;
	const char *container; /* a container name within the pod */
	const char *container_id;
};

bool podinfo_selected(const struct pod_selector *sel, const struct podinfo *pi);

/*
 * pi for a person: "NS/POD/CONTAINER", "container <12 hex>" outside a pod, "host", or
 * "unresolved (<reason>)" with the container id when one was found.
 */
void podinfo_label(const struct podinfo *pi, char *buf, size_t size);

/*
 * The workload of a pod: its owner's name, from the names Kubernetes generates (what the node
 * has: no owner reference reaches containerd's bundle).  <owner>-<5 characters of the
 * generator's alphabet> (ReplicaSet, DaemonSet, Job) loses that suffix, and then a
 * Deployment's <name>-<pod-template-hash> (6 to 10 of them) its hash and a CronJob's
 * <name>-<scheduled minute> its minute; <name>-<ordinal> (StatefulSet) loses its ordinal.
 * Any other name (a bare pod, a static pod <name>-<node>) is its own workload.
 */
void podinfo_workload(const char *pod, char *buf, size_t size);

/*
 * The Kubernetes labels of a process' metrics: its pod's namespace and workload; "none" and
 * "none" outside a pod (the host, a plain container); "unknown" and "unknown" for a pod
 * whose bundle could not be read (the reason is in the process' container record).
 */
#define PODINFO_WORKLOAD_MAX PODINFO_POD_NAME_MAX
void podinfo_k8s_labels(const struct podinfo *pi, char ns[PODINFO_NAMESPACE_MAX + 1],
			char workload[PODINFO_WORKLOAD_MAX + 1]);

/*
 * The "container" member of a JSON line: null for the host, else
 * {"id","pod","namespace","name","pod_uid","runtime"[, "unresolved": reason]} with null for
 * what is not known.  A new reference, or NULL when out of memory.
 */
json_t *podinfo_json(const struct podinfo *pi);

#endif /* WSAUDIT_PODINFO_H */

// SPDX-License-Identifier: GPL-2.0
/*
 * Pod attribution from fixtures: tests/data/podinfo/cases.json names each case and the
 * result podinfo_lookup must give for proc/<pid>/cgroup and bundles/k8s.io/<id>/config.json
 * (written by make_fixtures.py: every cgroup path format, hostile and broken bundles).
 * Cases that need big or special files (over the size bounds, a FIFO, deep nesting) and the
 * cache are tested in a temporary directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "podinfo.h"

static char proc_root[PATH_MAX], bundle_root[PATH_MAX];

static const char *repo_path(const char *rel)
{
	static char buf[PATH_MAX];
	const char *me = __FILE__;
	const char *tail = strstr(me, "tests/unit/test_podinfo.c");

	snprintf(buf, sizeof(buf), "%.*s%s", (int)(tail - me), me, rel);
	return buf;
}

static const char *field(json_t *c, const char *key)
{
	const char *v = json_string_value(json_object_get(c, key));

	assert_non_null(v);
	return v;
}

/* One fixture case: every field of the result against cases.json. */
static void test_case(void **state)
{
	json_t *c = *state;
	struct podinfo pi;
	enum podinfo_reason r;

	r = podinfo_lookup(NULL, proc_root, bundle_root,
			   (pid_t)json_integer_value(json_object_get(c, "pid")), &pi);
	assert_int_equal(r, pi.reason);
	assert_string_equal(podinfo_reason_name(pi.reason), field(c, "reason"));
	assert_string_equal(podinfo_kind_name(pi.kind), field(c, "kind"));
	assert_string_equal(podinfo_runtime_name(pi.runtime), field(c, "runtime"));
	assert_string_equal(pi.container_id, field(c, "container_id"));
	assert_string_equal(pi.pod_uid, field(c, "pod_uid"));
	assert_string_equal(pi.pod_name, field(c, "pod"));
	assert_string_equal(pi.pod_namespace, field(c, "namespace"));
	assert_string_equal(pi.container_name, field(c, "container"));
	assert_string_equal(pi.image, field(c, "image"));
	assert_int_equal(pi.sandbox, json_is_true(json_object_get(c, "sandbox")));
}

/* --- a scratch tree for files that are not committed ------------------------------------------ */

static char tmp_root[] = "/tmp/test_podinfo.XXXXXX";

static void write_file(const char *path, const void *buf, size_t len)
{
	char dir[PATH_MAX], *slash;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s", path);
	for (slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(dir, 0755);
		*slash = '/';
	}
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static const char *tmp_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *tmp_path(const char *fmt, ...)
{
	static char buf[PATH_MAX];
	va_list ap;
	int n = snprintf(buf, sizeof(buf), "%s/", tmp_root);

	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	return buf;
}

/* A container id and pod UID derived from a small number, and its cgroup file. */
static void tmp_container(int pid, char *id, char *uid)
{
	char text[256];
	int n;

	snprintf(id, PODINFO_ID_LEN + 1, "%064x", pid);
	snprintf(uid, PODINFO_UID_LEN + 1, "%08x-0000-4000-8000-%012x", pid, pid);
	n = snprintf(text, sizeof(text), "0::/kubepods/burstable/pod%s/%s\n", uid, id);
	write_file(tmp_path("proc/%d/cgroup", pid), text, (size_t)n);
}

static void tmp_bundle(const char *id, const char *uid, const char *pod)
{
	char text[1024];
	int n = snprintf(text, sizeof(text),
			 "{\"ociVersion\":\"1.1.0\",\"annotations\":{"
			 "\"io.kubernetes.cri.container-type\":\"container\","
			 "\"io.kubernetes.cri.sandbox-name\":\"%s\","
			 "\"io.kubernetes.cri.sandbox-namespace\":\"default\","
			 "\"io.kubernetes.cri.sandbox-uid\":\"%s\","
			 "\"io.kubernetes.cri.container-name\":\"app\"}}",
			 pod, uid);

	write_file(tmp_path("bundles/k8s.io/%s/config.json", id), text, (size_t)n);
}

static enum podinfo_reason tmp_lookup(struct podinfo_cache *c, int pid, struct podinfo *pi)
{
	char procs[PATH_MAX], bundles[PATH_MAX];

	snprintf(procs, sizeof(procs), "%s/proc", tmp_root);
	snprintf(bundles, sizeof(bundles), "%s/bundles", tmp_root);
	return podinfo_lookup(c, procs, bundles, pid, pi);
}

/* The cache answers without reading config.json again, evicts the least recently used. */
static void test_cache_lru(void **state)
{
	char id[4][PODINFO_ID_LEN + 1], uid[4][PODINFO_UID_LEN + 1];
	struct podinfo_cache *c = podinfo_cache_new(2);
	struct podinfo_stats st;
	struct podinfo pi;

	assert_non_null(c);
	for (int i = 1; i <= 3; i++) {
		char pod[32];

		snprintf(pod, sizeof(pod), "pod-%d", i);
		tmp_container(100 + i, id[i], uid[i]);
		tmp_bundle(id[i], uid[i], pod);
	}
	assert_int_equal(tmp_lookup(c, 101, &pi), PODINFO_OK);
	assert_string_equal(pi.pod_name, "pod-1");
	/* the file changes, the cache keeps its answer: proof it was not read again */
	write_file(tmp_path("bundles/k8s.io/%s/config.json", id[1]), "garbage", 7);
	assert_int_equal(tmp_lookup(c, 101, &pi), PODINFO_OK);
	assert_string_equal(pi.pod_name, "pod-1");
	assert_string_equal(pi.container_id, id[1]);
	assert_int_equal(tmp_lookup(c, 102, &pi), PODINFO_OK);
	assert_int_equal(tmp_lookup(c, 103, &pi), PODINFO_OK); /* evicts 101 (least recent) */
	podinfo_cache_stats(c, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 3);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.capacity, 2);
	/* 101 was evicted: read again, and now the garbage shows (and is remembered) */
	assert_int_equal(tmp_lookup(c, 101, &pi), PODINFO_BUNDLE_BAD_JSON);
	assert_string_equal(pi.container_id, id[1]);
	assert_string_equal(pi.pod_name, "");
	assert_int_equal(tmp_lookup(c, 101, &pi), PODINFO_BUNDLE_BAD_JSON);
	/* 103 stayed (more recent than 102) */
	assert_int_equal(tmp_lookup(c, 103, &pi), PODINFO_OK);
	assert_string_equal(pi.pod_name, "pod-3");
	podinfo_cache_stats(c, &st);
	assert_int_equal(st.hits, 3);
	assert_int_equal(st.misses, 4);
	assert_int_equal(st.evictions, 2);
	podinfo_cache_free(c);
}

/* Host processes and unreadable bundles never fill the cache. */
static void test_cache_uncached(void **state)
{
	char id[PODINFO_ID_LEN + 1], uid[PODINFO_UID_LEN + 1];
	struct podinfo_cache *c = podinfo_cache_new(0);
	struct podinfo_stats st;
	struct podinfo pi;

	assert_non_null(c);
	write_file(tmp_path("proc/200/cgroup"), "0::/system.slice/cron.service\n", 30);
	assert_int_equal(tmp_lookup(c, 200, &pi), PODINFO_OK);
	assert_int_equal(pi.kind, PODINFO_HOST);
	/* a FIFO where config.json should be: refused without blocking in open() */
	tmp_container(201, id, uid);
	write_file(tmp_path("bundles/k8s.io/%s/README", id), "x", 1);
	assert_int_equal(mkfifo(tmp_path("bundles/k8s.io/%s/config.json", id), 0600), 0);
	assert_int_equal(tmp_lookup(c, 201, &pi), PODINFO_BUNDLE_UNREADABLE);
	assert_int_equal(tmp_lookup(c, 201, &pi), PODINFO_BUNDLE_UNREADABLE);
	podinfo_cache_stats(c, &st);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.uncached, 2);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.capacity, PODINFO_CACHE_DEFAULT);
	podinfo_cache_free(c);
}

/* Files over the bounds are refused by size, without parsing. */
static void test_size_bounds(void **state)
{
	char id[PODINFO_ID_LEN + 1], uid[PODINFO_UID_LEN + 1];
	size_t big = PODINFO_MAX_BUNDLE_FILE + 1;
	char *buf = malloc(big);
	struct podinfo pi;
	size_t n;

	assert_non_null(buf);
	/* a cgroup file one byte over: valid lines, repeated */
	for (n = 0; n + 8 <= PODINFO_MAX_CGROUP_FILE; n += 8)
		memcpy(buf + n, "1:x:/ab\n", 8);
	buf[n++] = '\n';
	write_file(tmp_path("proc/300/cgroup"), buf, n);
	assert_int_equal(tmp_lookup(NULL, 300, &pi), PODINFO_CGROUP_TOO_LARGE);
	assert_int_equal(pi.kind, PODINFO_UNKNOWN);
	/* exactly at the bound: read and parsed */
	write_file(tmp_path("proc/301/cgroup"), buf, n - 1);
	assert_int_equal(tmp_lookup(NULL, 301, &pi), PODINFO_OK);
	assert_int_equal(pi.kind, PODINFO_HOST);

	/* a bundle one byte over the bound */
	tmp_container(302, id, uid);
	memset(buf, ' ', big);
	buf[0] = '{';
	buf[big - 1] = '}';
	write_file(tmp_path("bundles/k8s.io/%s/config.json", id), buf, big);
	assert_int_equal(tmp_lookup(NULL, 302, &pi), PODINFO_BUNDLE_TOO_LARGE);
	assert_string_equal(pi.container_id, id);
	assert_string_equal(pi.pod_uid, uid);
	free(buf);
}

/* A large but legitimate spec (a long environment) is read in full. */
static void test_large_env(void **state)
{
	char id[PODINFO_ID_LEN + 1], uid[PODINFO_UID_LEN + 1];
	size_t cap = PODINFO_MAX_BUNDLE_FILE, n = 0;
	char *buf = malloc(cap);
	struct podinfo pi;

	assert_non_null(buf);
	tmp_container(400, id, uid);
	n += (size_t)sprintf(buf + n, "{\"process\":{\"env\":[");
	for (int i = 0; n + 200 < cap - 1024; i++)
		n += (size_t)sprintf(buf + n, "%s\"VAR_%06d=%0100d\"", i ? "," : "", i, i);
	n += (size_t)sprintf(buf + n,
			     "]},\"annotations\":{\"io.kubernetes.cri.sandbox-name\":\"big-0\","
			     "\"io.kubernetes.cri.sandbox-namespace\":\"default\","
			     "\"io.kubernetes.cri.sandbox-uid\":\"%s\","
			     "\"io.kubernetes.cri.container-name\":\"app\"}}",
			     uid);
	assert_true(n <= PODINFO_MAX_BUNDLE_FILE);
	write_file(tmp_path("bundles/k8s.io/%s/config.json", id), buf, n);
	assert_int_equal(tmp_lookup(NULL, 400, &pi), PODINFO_OK);
	assert_string_equal(pi.pod_name, "big-0");
	free(buf);
}

/* Nesting far past jansson's depth limit is an error, not a stack overflow. */
static void test_deep_nesting(void **state)
{
	size_t depth = 200000, n = 0;
	char *buf = malloc(2 * depth + 64);
	struct podinfo pi = { 0 };

	assert_non_null(buf);
	n += (size_t)sprintf(buf, "{\"annotations\":");
	memset(buf + n, '[', depth);
	n += depth;
	memset(buf + n, ']', depth);
	n += depth;
	buf[n++] = '}';
	assert_int_equal(podinfo_parse_bundle(buf, n, &pi), PODINFO_BUNDLE_BAD_JSON);
	free(buf);
}

/* The parsers on their own, with what the fixtures do not show. */
static void test_parse_cgroup_direct(void **state)
{
	const char *id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char text[512];
	struct podinfo pi;
	int n;

	/* no trailing newline */
	n = snprintf(text, sizeof(text), "0::/kubepods/pod0a1b2c3d-0000-4000-8000-00000000abcd/%s",
		     id);
	assert_int_equal(podinfo_parse_cgroup(text, (size_t)n, &pi), PODINFO_OK);
	assert_string_equal(pi.container_id, id);
	assert_string_equal(pi.pod_uid, "0a1b2c3d-0000-4000-8000-00000000abcd");
	/* upper-case hex in a UID is normalised; a container id must be lower case */
	n = snprintf(text, sizeof(text), "0::/kubepods/pod0A1B2C3D-0000-4000-8000-00000000ABCD/%s",
		     id);
	assert_int_equal(podinfo_parse_cgroup(text, (size_t)n, &pi), PODINFO_OK);
	assert_string_equal(pi.pod_uid, "0a1b2c3d-0000-4000-8000-00000000abcd");
	n = snprintf(text, sizeof(text),
		     "0::/docker/0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef");
	assert_int_equal(podinfo_parse_cgroup(text, (size_t)n, &pi), PODINFO_OK);
	assert_int_equal(pi.kind, PODINFO_HOST);
	/* a cgroup the container made below its own keeps the container's id */
	n = snprintf(
		text, sizeof(text),
		"0::/kubepods/besteffort/pod0a1b2c3d-0000-4000-8000-00000000abcd/%s/init.scope\n",
		id);
	assert_int_equal(podinfo_parse_cgroup(text, (size_t)n, &pi), PODINFO_OK);
	assert_string_equal(pi.container_id, id);
	/* a UID below the container is not the container's pod */
	n = snprintf(text, sizeof(text),
		     "0::/system.slice/docker-%s.scope/pod0a1b2c3d-0000-4000-8000-00000000abcd\n",
		     id);
	assert_int_equal(podinfo_parse_cgroup(text, (size_t)n, &pi), PODINFO_OK);
	assert_int_equal(pi.runtime, PODINFO_RT_DOCKER);
	assert_string_equal(pi.pod_uid, "");
	/* the hierarchy id must be a number, and the line must have three fields */
	assert_int_equal(podinfo_parse_cgroup("::/\n", 4, &pi), PODINFO_CGROUP_MALFORMED);
	assert_int_equal(podinfo_parse_cgroup("0:/\n", 4, &pi), PODINFO_CGROUP_MALFORMED);
	assert_int_equal(podinfo_parse_cgroup("0::\n", 4, &pi), PODINFO_CGROUP_MALFORMED);
	assert_int_equal(podinfo_parse_cgroup("0::/\n\n0::/\n", 11, &pi), PODINFO_CGROUP_MALFORMED);
	assert_int_equal(pi.kind, PODINFO_UNKNOWN);
}

static void test_parse_bundle_direct(void **state)
{
	static const char ok[] = "{\"annotations\":{\"io.kubernetes.cri.sandbox-name\":\"a.b-0\","
				 "\"io.kubernetes.cri.sandbox-namespace\":\"ns\","
				 "\"io.kubernetes.cri.sandbox-uid\":"
				 "\"0a1b2c3d-0000-4000-8000-00000000abcd\","
				 "\"io.kubernetes.cri.container-name\":\"c\"}}";
	static const char bad_uid[] = "{\"annotations\":{\"io.kubernetes.cri.sandbox-name\":\"a\","
				      "\"io.kubernetes.cri.sandbox-namespace\":\"ns\","
				      "\"io.kubernetes.cri.sandbox-uid\":\"not-a-uid\","
				      "\"io.kubernetes.cri.container-name\":\"c\"}}";
	static const char dot_ns[] = "{\"annotations\":{\"io.kubernetes.cri.sandbox-name\":\"a\","
				     "\"io.kubernetes.cri.sandbox-namespace\":\"n.s\","
				     "\"io.kubernetes.cri.container-name\":\"c\"}}";
	struct podinfo pi = { 0 };

	/* standalone: the UID comes from the annotation */
	assert_int_equal(podinfo_parse_bundle(ok, strlen(ok), &pi), PODINFO_OK);
	assert_string_equal(pi.pod_uid, "0a1b2c3d-0000-4000-8000-00000000abcd");
	assert_string_equal(pi.pod_name, "a.b-0");
	assert_string_equal(pi.image, "");
	memset(&pi, 0, sizeof(pi));
	assert_int_equal(podinfo_parse_bundle(bad_uid, strlen(bad_uid), &pi),
			 PODINFO_BAD_ANNOTATION);
	assert_string_equal(pi.pod_name, ""); /* nothing is taken from a refused bundle */
	assert_int_equal(podinfo_parse_bundle(dot_ns, strlen(dot_ns), &pi), PODINFO_BAD_ANNOTATION);
	assert_int_equal(podinfo_parse_bundle("", 0, &pi), PODINFO_BUNDLE_BAD_JSON);
	assert_int_equal(podinfo_parse_bundle("{}", 2, &pi), PODINFO_NO_ANNOTATIONS);
	assert_int_equal(podinfo_parse_bundle("{\"annotations\":[]}", 18, &pi),
			 PODINFO_NO_ANNOTATIONS);
}

/* make_fixtures.py: cid("sandbox"), uid("sandbox") */
#define SANDBOX_ID "b7ad567477c83756aab9a542b2be04f77dbae25115d85f22070d74d8cc4779dc"
#define SANDBOX_UID "93bc63e0-b4f4-8fbb-ff56-8d9fc0dc3def"

static void test_json(void **state)
{
	struct podinfo pi;
	json_t *j;
	char *s;

	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 1013, &pi), PODINFO_OK);
	j = podinfo_json(&pi);
	assert_true(json_is_null(j));
	json_decref(j);

	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 1016, &pi), PODINFO_OK);
	j = podinfo_json(&pi);
	s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(s, "{\"id\":\"" SANDBOX_ID "\",\"name\":null,"
			       "\"namespace\":\"netra\",\"pod\":\"chat-api-7d9f8b6c4-x2x9z\","
			       "\"pod_uid\":\"" SANDBOX_UID "\",\"runtime\":\"unnamed\","
			       "\"sandbox\":true}");
	free(s);
	json_decref(j);
}

static void test_json_unresolved(void **state)
{
	struct podinfo pi;
	json_t *j;

	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 1025, &pi),
			 PODINFO_BUNDLE_MISSING);
	j = podinfo_json(&pi);
	assert_string_equal(json_string_value(json_object_get(j, "unresolved")), "bundle_missing");
	assert_true(json_is_null(json_object_get(j, "pod")));
	assert_int_equal(json_string_length(json_object_get(j, "id")), PODINFO_ID_LEN);
	assert_int_equal(json_string_length(json_object_get(j, "pod_uid")), PODINFO_UID_LEN);
	json_decref(j);

	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 1021, &pi),
			 PODINFO_CGROUP_MALFORMED);
	j = podinfo_json(&pi);
	assert_true(json_is_null(json_object_get(j, "id")));
	assert_string_equal(json_string_value(json_object_get(j, "unresolved")),
			    "cgroup_malformed");
	json_decref(j);
}

static void test_names(void **state)
{
	for (int r = 0; r < PODINFO__COUNT; r++) {
		assert_non_null(podinfo_reason_name(r));
		assert_string_not_equal(podinfo_reason_name(r), "unknown");
	}
	assert_string_equal(podinfo_reason_name(PODINFO__COUNT), "unknown");
	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 0, &(struct podinfo){ 0 }),
			 PODINFO_NO_PROCESS);
	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, -1, &(struct podinfo){ 0 }),
			 PODINFO_NO_PROCESS);
}

/* --pod, --container, --namespace and --container-id against fixture processes. */
static void test_selector(void **state)
{
	const struct pod_selector by_pod = { .namespace = "netra",
					     .pod = "chat-api-7d9f8b6c4-x2x9z" };
	const struct pod_selector by_container = { .namespace = "netra",
						   .pod = "chat-api-7d9f8b6c4-x2x9z",
						   .container = "backend" };
	const struct pod_selector other_container = { .namespace = "netra",
						      .pod = "chat-api-7d9f8b6c4-x2x9z",
						      .container = "sidecar" };
	const struct pod_selector by_ns = { .namespace = "edge" };
	const struct pod_selector by_id = { .container_id = "9f74a40f7292" };
	const struct pod_selector sandbox_id = { .container_id = SANDBOX_ID };
	struct podinfo pi;

	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 1001, &pi), PODINFO_OK);
	assert_true(podinfo_selected(&by_pod, &pi));
	assert_true(podinfo_selected(&by_container, &pi));
	assert_false(podinfo_selected(&other_container, &pi));
	assert_false(podinfo_selected(&by_ns, &pi));
	assert_true(podinfo_selected(&by_id, &pi));

	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 1002, &pi), PODINFO_OK);
	assert_true(podinfo_selected(&by_ns, &pi));
	assert_false(podinfo_selected(&by_id, &pi));

	/* The pause container: by its id, never by the pod's name. */
	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 1016, &pi), PODINFO_OK);
	assert_true(pi.sandbox);
	assert_false(podinfo_selected(&by_pod, &pi));
	assert_true(podinfo_selected(&sandbox_id, &pi));

	/* Unread names match no name; the host matches nothing. */
	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 1025, &pi),
			 PODINFO_BUNDLE_MISSING);
	assert_false(podinfo_selected(&by_ns, &pi));
	assert_false(podinfo_selected(&(struct pod_selector){ .namespace = "" }, &pi));
	assert_true(
		podinfo_selected(&(struct pod_selector){ .container_id = pi.container_id }, &pi));
	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 1013, &pi), PODINFO_OK);
	assert_false(podinfo_selected(&(struct pod_selector){}, &pi));
}

static void test_label(void **state)
{
	struct podinfo pi;
	char buf[128];

	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 1001, &pi), PODINFO_OK);
	podinfo_label(&pi, buf, sizeof(buf));
	assert_string_equal(buf, "netra/chat-api-7d9f8b6c4-x2x9z/backend");
	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 1013, &pi), PODINFO_OK);
	podinfo_label(&pi, buf, sizeof(buf));
	assert_string_equal(buf, "host");
	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 1025, &pi),
			 PODINFO_BUNDLE_MISSING);
	podinfo_label(&pi, buf, sizeof(buf));
	assert_non_null(strstr(buf, "pod unresolved (bundle_missing)"));
	assert_int_equal(podinfo_lookup(NULL, proc_root, bundle_root, 1021, &pi),
			 PODINFO_CGROUP_MALFORMED);
	podinfo_label(&pi, buf, sizeof(buf));
	assert_string_equal(buf, "unresolved (cgroup_malformed)");
}

/* A pod's owner from the names Kubernetes generates; anything else is its own workload. */
static void test_workload(void **state)
{
	static const char *const cases[][2] = {
		{ "api-7d9f8b6c4-x2x9z", "api" }, /* Deployment: ReplicaSet hash, then suffix */
		{ "chat-api-5b8c6d7f9c-4kq2p", "chat-api" },
		{ "fluentd-x2x9z", "fluentd" }, /* DaemonSet, Job */
		{ "node-exporter-x2x9z", "node-exporter" }, /* "exporter" is not a hash */
		{ "web-0", "web" }, /* StatefulSet */
		{ "redis-cluster-12", "redis-cluster" },
		{ "backup-28391520-bx7kq", "backup" }, /* CronJob: minute, then suffix */
		{ "debug", "debug" }, /* a bare pod */
		{ "kube-proxy-gke-pool-1-abcd", "kube-proxy-gke-pool-1-abcd" }, /* static: vowel */
		{ "api-x2x9a", "api-x2x9a" }, /* 'a' is not in the generator's alphabet */
		{ "api-x2x9", "api-x2x9" }, /* four characters */
		{ "-x2x9z", "-x2x9z" }, /* nothing before the dash */
		{ "x2x9z", "x2x9z" },
		{ "", "" },
	};
	char buf[PODINFO_WORKLOAD_MAX + 1], small[4];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		podinfo_workload(cases[i][0], buf, sizeof(buf));
		assert_string_equal(buf, cases[i][1]);
	}
	podinfo_workload("api-7d9f8b6c4-x2x9z", small, sizeof(small));
	assert_string_equal(small, "api");
}

static void test_k8s_labels(void **state)
{
	char ns[PODINFO_NAMESPACE_MAX + 1], wl[PODINFO_WORKLOAD_MAX + 1];
	struct podinfo pi = { .kind = PODINFO_HOST };

	podinfo_k8s_labels(&pi, ns, wl);
	assert_string_equal(ns, "none");
	assert_string_equal(wl, "none");
	/* A container outside any pod. */
	pi = (struct podinfo){ .kind = PODINFO_CONTAINER, .runtime = PODINFO_RT_DOCKER };
	podinfo_k8s_labels(&pi, ns, wl);
	assert_string_equal(ns, "none");
	/* A pod whose bundle was not read. */
	pi = (struct podinfo){ .kind = PODINFO_CONTAINER, .reason = PODINFO_BUNDLE_MISSING };
	strcpy(pi.pod_uid, "0b7a2c1e-1111-2222-3333-444455556666");
	podinfo_k8s_labels(&pi, ns, wl);
	assert_string_equal(ns, "unknown");
	assert_string_equal(wl, "unknown");
	pi.reason = PODINFO_OK;
	strcpy(pi.pod_name, "api-7d9f8b6c4-x2x9z");
	strcpy(pi.pod_namespace, "chat");
	podinfo_k8s_labels(&pi, ns, wl);
	assert_string_equal(ns, "chat");
	assert_string_equal(wl, "api");
}

/* The real procfs (files of size 0, read to EOF): this process is somewhere definite. */
static void test_live_self(void **state)
{
	struct podinfo pi;

	assert_int_equal(podinfo_lookup(NULL, NULL, NULL, getpid(), &pi), PODINFO_OK);
	assert_int_not_equal(pi.kind, PODINFO_UNKNOWN);
}

static int tmp_setup(void **state)
{
	return mkdtemp(tmp_root) ? 0 : -1;
}

static int tmp_teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	/* the directory is ours (mkdtemp), its name has no shell metacharacters */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest other[] = {
		cmocka_unit_test(test_cache_lru),
		cmocka_unit_test(test_cache_uncached),
		cmocka_unit_test(test_size_bounds),
		cmocka_unit_test(test_large_env),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_parse_cgroup_direct),
		cmocka_unit_test(test_parse_bundle_direct),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_json_unresolved),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_live_self),
		cmocka_unit_test(test_selector),
		cmocka_unit_test(test_label),
		cmocka_unit_test(test_workload),
		cmocka_unit_test(test_k8s_labels),
	};
	struct CMUnitTest *cases;
	json_error_t jerr;
	json_t *all;
	size_t i, n;
	int fails;

	snprintf(proc_root, sizeof(proc_root), "%s", repo_path("tests/data/podinfo/proc"));
	snprintf(bundle_root, sizeof(bundle_root), "%s", repo_path("tests/data/podinfo/bundles"));
	all = json_load_file(repo_path("tests/data/podinfo/cases.json"), 0, &jerr);
	if (!json_is_array(all)) {
		fprintf(stderr, "cases.json: %s\n", jerr.text);
		return 1;
	}
	n = json_array_size(all);
	cases = calloc(n, sizeof(*cases));
	if (!cases)
		return 1;
	for (i = 0; i < n; i++) {
		json_t *c = json_array_get(all, i);

		cases[i].name = json_string_value(json_object_get(c, "name"));
		cases[i].test_func = test_case;
		cases[i].initial_state = c;
	}
	fails = _cmocka_run_group_tests("podinfo_fixtures", cases, n, NULL, NULL);
	fails += cmocka_run_group_tests(other, tmp_setup, tmp_teardown);
	free(cases);
	json_decref(all);
	return fails ? 1 : 0;
}

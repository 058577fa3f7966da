// SPDX-License-Identifier: GPL-2.0
/*
 * PID -> container -> pod, from /proc/PID/cgroup and containerd bundle annotations.  The
 * path rules follow what tetragon, parca-agent and pixie accept (reference/production.md
 * section 4.1); see podinfo.h for the formats.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "podinfo.h"

static const char *const reason_names[PODINFO__COUNT] = {
	[PODINFO_OK] = "ok",
	[PODINFO_NO_PROCESS] = "no_process",
	[PODINFO_CGROUP_UNREADABLE] = "cgroup_unreadable",
	[PODINFO_CGROUP_TOO_LARGE] = "cgroup_too_large",
	[PODINFO_CGROUP_MALFORMED] = "cgroup_malformed",
	[PODINFO_CGROUP_CONFLICT] = "cgroup_conflict",
	[PODINFO_NO_CONTAINER_ID] = "no_container_id",
	[PODINFO_BUNDLE_UNSUPPORTED] = "bundle_unsupported",
	[PODINFO_BUNDLE_MISSING] = "bundle_missing",
	[PODINFO_BUNDLE_UNREADABLE] = "bundle_unreadable",
	[PODINFO_BUNDLE_TOO_LARGE] = "bundle_too_large",
	[PODINFO_BUNDLE_BAD_JSON] = "bundle_bad_json",
	[PODINFO_NO_ANNOTATIONS] = "no_annotations",
	[PODINFO_BAD_ANNOTATION] = "bad_annotation",
	[PODINFO_UID_MISMATCH] = "uid_mismatch",
	[PODINFO_NO_MEMORY] = "no_memory",
};

const char *podinfo_reason_name(enum podinfo_reason r)
{
	return (unsigned int)r < PODINFO__COUNT ? reason_names[r] : "unknown";
}

const char *podinfo_kind_name(enum podinfo_kind k)
{
	switch (k) {
	case PODINFO_HOST:
		return "host";
	case PODINFO_CONTAINER:
		return "container";
	default:
		return "unknown";
	}
}

const char *podinfo_runtime_name(enum podinfo_runtime rt)
{
	switch (rt) {
	case PODINFO_RT_CONTAINERD:
		return "containerd";
	case PODINFO_RT_DOCKER:
		return "docker";
	case PODINFO_RT_CRIO:
		return "crio";
	case PODINFO_RT_PODMAN:
		return "podman";
	default:
		return "unnamed";
	}
}

/* --- cgroup paths ----------------------------------------------------------------------------- */

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool is_hex(char c)
{
	return is_lower_hex(c) || (c >= 'A' && c <= 'F');
}

static bool all_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_lower_hex(s[i]))
			return false;
	return true;
}

static bool has_suffix(const char *s, size_t n, const char *suffix, size_t *stem)
{
	size_t m = strlen(suffix);

	if (n < m || memcmp(s + n - m, suffix, m) != 0)
		return false;
	*stem = n - m;
	return true;
}

/*
 * The runtime a scope or ':'-separated prefix names.  Only these prefixes mark a container
 * id: a unit such as "session-<64 hex>.scope" is not one.
 */
static bool runtime_of_prefix(const char *s, size_t n, enum podinfo_runtime *rt)
{
	static const struct {
		const char *prefix;
		enum podinfo_runtime rt;
	} known[] = {
		{ "cri-containerd", PODINFO_RT_CONTAINERD },
		{ "containerd", PODINFO_RT_CONTAINERD },
		{ "docker", PODINFO_RT_DOCKER },
		{ "crio", PODINFO_RT_CRIO },
		{ "crio-conmon", PODINFO_RT_CRIO },
		{ "libpod", PODINFO_RT_PODMAN },
		{ "libpod-conmon", PODINFO_RT_PODMAN },
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strlen(known[i].prefix) == n && memcmp(s, known[i].prefix, n) == 0) {
			*rt = known[i].rt;
			return true;
		}
	}
	return false;
}

/* A container id in one path component: see podinfo.h for the forms. */
static bool component_container_id(const char *c, size_t n, char *id, enum podinfo_runtime *rt)
{
	const char *colon = memrchr(c, ':', n);
	size_t stem;

	*rt = PODINFO_RT_UNNAMED;
	if (colon) {
		/* <unit>.slice:<runtime>:<id>, cgroup v1 under containerd.service */
		const char *first = memchr(c, ':', n);

		if (first == colon || (size_t)(c + n - colon - 1) != PODINFO_ID_LEN ||
		    !all_lower_hex(colon + 1, PODINFO_ID_LEN) ||
		    !runtime_of_prefix(first + 1, (size_t)(colon - first - 1), rt))
			return false;
		memcpy(id, colon + 1, PODINFO_ID_LEN);
		id[PODINFO_ID_LEN] = '\0';
		return true;
	}
	if (!has_suffix(c, n, ".scope", &stem))
		stem = n;
	if (stem < PODINFO_ID_LEN || !all_lower_hex(c + stem - PODINFO_ID_LEN, PODINFO_ID_LEN))
		return false;
	if (stem > PODINFO_ID_LEN) {
		/* <runtime>-<id>[.scope] */
		if (c[stem - PODINFO_ID_LEN - 1] != '-' ||
		    !runtime_of_prefix(c, stem - PODINFO_ID_LEN - 1, rt))
			return false;
	}
	memcpy(id, c + stem - PODINFO_ID_LEN, PODINFO_ID_LEN);
	id[PODINFO_ID_LEN] = '\0';
	return true;
}

/* 8-4-4-4-12 hex, each separator '-' or '_' (systemd escapes '-' in unit names). */
static bool uid_at(const char *s, size_t n, char *uid)
{
	if (n < PODINFO_UID_LEN)
		return false;
	for (size_t i = 0; i < PODINFO_UID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-' && s[i] != '_')
				return false;
			uid[i] = '-';
		} else {
			if (!is_hex(s[i]))
				return false;
			uid[i] = (char)(s[i] | 0x20); /* lower case: the API server's spelling */
		}
	}
	uid[PODINFO_UID_LEN] = '\0';
	return true;
}

/*
 * "pod<uid>" at the start of the component or after a '-', ending the component or followed
 * by ".slice" or ':'.  "kubepods" itself contains "pod", hence the rule on what precedes.
 */
static bool component_pod_uid(const char *c, size_t n, char *uid)
{
	for (size_t i = 0; i + 3 + PODINFO_UID_LEN <= n; i++) {
		const char *after;
		size_t rest;

		if (memcmp(c + i, "pod", 3) != 0 || (i > 0 && c[i - 1] != '-'))
			continue;
		if (!uid_at(c + i + 3, n - i - 3, uid))
			continue;
		after = c + i + 3 + PODINFO_UID_LEN;
		rest = (size_t)(c + n - after);
		if (rest == 0 || after[0] == ':' ||
		    (rest >= 6 && memcmp(after, ".slice", 6) == 0 &&
		     (rest == 6 || after[6] == ':')))
			return true;
	}
	return false;
}

struct cgroup_line {
	char id[PODINFO_ID_LEN + 1];
	char uid[PODINFO_UID_LEN + 1];
	enum podinfo_runtime rt;
};

/*
 * The deepest container id of a path, and the deepest pod UID at or above it (so a pod
 * nested in a kind node container is found, and a cgroup a container creates below its own
 * keeps the container's id).  Without an id, the deepest pod UID.
 */
static void path_parse(const char *p, size_t n, struct cgroup_line *out)
{
	char uid[PODINFO_UID_LEN + 1] = "", cand[PODINFO_UID_LEN + 1], id[PODINFO_ID_LEN + 1];
	enum podinfo_runtime rt;
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	while (i < n) {
		const char *c;
		size_t len;

		while (i < n && p[i] == '/')
			i++;
		c = p + i;
		while (i < n && p[i] != '/')
			i++;
		len = (size_t)(p + i - c);
		if (len == 0 || (len == 1 && c[0] == '.') ||
		    (len == 2 && c[0] == '.' && c[1] == '.'))
			continue;
		if (component_pod_uid(c, len, cand))
			memcpy(uid, cand, sizeof(uid));
		if (component_container_id(c, len, id, &rt)) {
			memcpy(out->id, id, sizeof(out->id));
			memcpy(out->uid, uid, sizeof(out->uid));
			out->rt = rt;
		}
	}
	if (!out->id[0])
		memcpy(out->uid, uid, sizeof(out->uid));
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/*
 * One line of a cgroup file: the path (without a " (deleted)" mark) in *path and *plen, or
 * false when the line is not "hierarchy-ID:controller-list:/path" (cgroups(7); the path may
 * hold ':').
 */
static bool line_path(const char *line, const char *eol, const char **path, size_t *plen)
{
	const char *c1 = memchr(line, ':', (size_t)(eol - line));
	const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(eol - c1 - 1)) : NULL;
	size_t stem;

	if (!c2 || !all_digits(line, (size_t)(c1 - line)) || c2 + 1 == eol || c2[1] != '/')
		return false;
	*path = c2 + 1;
	*plen = (size_t)(eol - *path);
	/* a removed cgroup still holding this process */
	if (has_suffix(*path, *plen, " (deleted)", &stem))
		*plen = stem;
	return true;
}

/* a is b or an ancestor of b, component-wise */
static bool path_within(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen <= blen && memcmp(a, b, alen) == 0 &&
	       (alen == blen || b[alen] == '/' || (alen == 1 && a[0] == '/'));
}

/*
 * Two passes over the lines.  The first finds the deepest path that names a container or a
 * pod; the second accepts every other such line that agrees with it or lies above it (a v1
 * hierarchy that the runtime did not delegate as deep, e.g. name=systemd at a kind node's
 * container while memory is at the pod's container), and refuses the rest as a conflict.
 */
enum podinfo_reason podinfo_parse_cgroup(const char *text, size_t len, struct podinfo *out)
{
	const char *end = text + len, *line, *best = NULL;
	struct cgroup_line l, top;
	size_t best_len = 0;

	memset(out, 0, sizeof(*out));
	out->kind = PODINFO_UNKNOWN;
	out->reason = PODINFO_CGROUP_MALFORMED;
	if (len == 0 || memchr(text, '\0', len))
		goto out;
	for (line = text; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *eol = nl ? nl : end, *path;
		size_t plen;

		if (!line_path(line, eol, &path, &plen))
			goto out;
		path_parse(path, plen, &l);
		if ((l.id[0] || l.uid[0]) && (!best || plen > best_len)) {
			best = path;
			best_len = plen;
			top = l;
		}
		line = nl ? nl + 1 : end;
	}
	if (!best) {
		out->kind = PODINFO_HOST;
		out->reason = PODINFO_OK;
		goto out;
	}
	for (line = text; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *eol = nl ? nl : end, *path;
		size_t plen;

		if (!line_path(line, eol, &path, &plen)) /* checked by the first pass */
			goto out;
		path_parse(path, plen, &l);
		if ((l.id[0] && strcmp(l.id, top.id) != 0) ||
		    (l.uid[0] && strcmp(l.uid, top.uid) != 0)) {
			if (!path_within(path, plen, best, best_len)) {
				out->reason = PODINFO_CGROUP_CONFLICT;
				goto out;
			}
		} else if (l.rt != PODINFO_RT_UNNAMED && top.rt == PODINFO_RT_UNNAMED) {
			top.rt =
				l.rt; /* the systemd line names the runtime, the cgroupfs one not */
		}
		line = nl ? nl + 1 : end;
	}
	memcpy(out->container_id, top.id, sizeof(out->container_id));
	memcpy(out->pod_uid, top.uid, sizeof(out->pod_uid));
	out->runtime = top.rt;
	if (top.id[0]) {
		out->kind = PODINFO_CONTAINER;
		out->reason = PODINFO_OK;
	} else {
		out->reason = PODINFO_NO_CONTAINER_ID;
	}
out:
	return out->reason;
}

/* --- bundle annotations ----------------------------------------------------------------------- */

#define ANN_PREFIX "io.kubernetes.cri."

/*
 * DNS-1123 label (dots not allowed) or subdomain (dots allowed): lower-case alphanumerics and
 * '-', starting and ending alphanumeric.  Kubernetes enforces this on the names, so anything
 * else in a bundle was not written by the CRI plugin and is not passed on to a log.
 */
static bool dns_name_ok(const char *s, size_t n, size_t max, bool dots)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (alnum)
			continue;
		if ((c == '-' || (dots && c == '.')) && i > 0 && i + 1 < n)
			continue;
		return false;
	}
	return true;
}

/* An image reference: printable ASCII without spaces. */
static bool image_ok(const char *s, size_t n)
{
	if (n == 0 || n > PODINFO_IMAGE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

/*
 * The string annotation key, or NULL when absent.  *bad is set when it is there but not a
 * string (a JSON string holding \u0000 is refused by the parser already).
 */
static const char *annotation(json_t *ann, const char *key, size_t *len, bool *bad)
{
	json_t *v = json_object_get(ann, key);

	if (!v)
		return NULL;
	if (!json_is_string(v)) {
		*bad = true;
		return NULL;
	}
	*len = json_string_length(v);
	return json_string_value(v);
}

enum podinfo_reason podinfo_parse_bundle(const char *json, size_t len, struct podinfo *out)
{
	const char *type, *name, *ns, *uid, *cname, *image;
	size_t type_len = 0, name_len = 0, ns_len = 0, uid_len = 0, cname_len = 0, image_len = 0;
	char norm_uid[PODINFO_UID_LEN + 1];
	enum podinfo_reason r = PODINFO_OK;
	bool bad = false, sandbox = false;
	json_t *root, *ann;
	json_error_t jerr;

	if (len > PODINFO_MAX_BUNDLE_FILE)
		return PODINFO_BUNDLE_TOO_LARGE;
	/* containerd never writes a key twice; a file that does is not taken at its last word */
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return json_error_code(&jerr) == json_error_out_of_memory ? PODINFO_NO_MEMORY :
									    PODINFO_BUNDLE_BAD_JSON;
	if (!json_is_object(root)) {
		r = PODINFO_BUNDLE_BAD_JSON;
		goto out_put;
	}
	ann = json_object_get(root, "annotations");
	if (!json_is_object(ann)) {
		r = PODINFO_NO_ANNOTATIONS;
		goto out_put;
	}
	type = annotation(ann, ANN_PREFIX "container-type", &type_len, &bad);
	name = annotation(ann, ANN_PREFIX "sandbox-name", &name_len, &bad);
	ns = annotation(ann, ANN_PREFIX "sandbox-namespace", &ns_len, &bad);
	uid = annotation(ann, ANN_PREFIX "sandbox-uid", &uid_len, &bad);
	cname = annotation(ann, ANN_PREFIX "container-name", &cname_len, &bad);
	image = annotation(ann, ANN_PREFIX "image-name", &image_len, &bad);
	if (bad) {
		r = PODINFO_BAD_ANNOTATION;
		goto out_put;
	}
	if (!name || !ns) {
		r = PODINFO_NO_ANNOTATIONS;
		goto out_put;
	}
	if (type && strcmp(type, "sandbox") == 0)
		sandbox = true;
	else if (type && strcmp(type, "container") != 0)
		bad = true;
	/* a sandbox has no container name; every other CRI container has one */
	if (!sandbox && !cname) {
		r = PODINFO_NO_ANNOTATIONS;
		goto out_put;
	}
	if (bad || !dns_name_ok(name, name_len, PODINFO_POD_NAME_MAX, true) ||
	    !dns_name_ok(ns, ns_len, PODINFO_NAMESPACE_MAX, false) ||
	    (cname && !dns_name_ok(cname, cname_len, PODINFO_CONTAINER_NAME_MAX, false)) ||
	    (image && !image_ok(image, image_len)) ||
	    (uid &&
	     (uid_len != PODINFO_UID_LEN || !uid_at(uid, uid_len, norm_uid) || strchr(uid, '_')))) {
		r = PODINFO_BAD_ANNOTATION;
		goto out_put;
	}
	/* sandbox-uid is there since containerd 1.6; the cgroup path must agree with it */
	if (uid && out->pod_uid[0] && strcmp(norm_uid, out->pod_uid) != 0) {
		r = PODINFO_UID_MISMATCH;
		goto out_put;
	}
	if (uid && !out->pod_uid[0])
		memcpy(out->pod_uid, norm_uid, sizeof(out->pod_uid));
	out->sandbox = sandbox;
	memcpy(out->pod_name, name, name_len + 1);
	memcpy(out->pod_namespace, ns, ns_len + 1);
	if (cname)
		memcpy(out->container_name, cname, cname_len + 1);
	else
		out->container_name[0] = '\0';
	if (image)
		memcpy(out->image, image, image_len + 1);
	else
		out->image[0] = '\0';

out_put:
	json_decref(root);
	return r;
}

/* --- files ------------------------------------------------------------------------------------ */

/*
 * Reads at most max bytes of path into a new buffer (*buf, *len).  procfs reports size 0, so
 * the size is found by reading; one byte past max tells "too large".  0, -errno, or -EFBIG.
 */
static int file_read(const char *path, size_t max, bool regular, char **buf, size_t *len)
{
	size_t cap = max + 1 < 4096 ? max + 1 : 4096, n = 0;
	struct stat st;
	char *b, *nb;
	int fd, err = 0;

	/*
	 * O_NOFOLLOW: a bundle's config.json is a plain file; a link there is not containerd's.
	 * O_NONBLOCK: a FIFO in its place must not hang the agent in open().
	 */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (regular ? O_NOFOLLOW | O_NONBLOCK : 0));
	if (fd < 0)
		return -errno;
	if (regular) {
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			err = -EINVAL;
			goto out_close;
		}
		/* refused by its size before a byte is read (it may still grow: checked below) */
		if ((uintmax_t)st.st_size > max) {
			err = -EFBIG;
			goto out_close;
		}
	}
	b = malloc(cap);
	if (!b) {
		err = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		ssize_t r;

		if (n == cap) {
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			nb = realloc(b, cap);
			if (!nb) {
				err = -ENOMEM;
				goto out_free;
			}
			b = nb;
		}
		r = read(fd, b + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out_free;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			err = -EFBIG;
			goto out_free;
		}
	}
	*buf = b;
	*len = n;
	goto out_close;

out_free:
	free(b);
out_close:
	close(fd);
	return err;
}

/* --- cache ------------------------------------------------------------------------------------ */

struct cache_entry {
	uint64_t used; /* tick of the last use; 0 = free */
	char id[PODINFO_ID_LEN + 1];
	char uid[PODINFO_UID_LEN + 1]; /* the pod UID the result was checked against */
	enum podinfo_reason reason;
	bool sandbox;
	char pod_name[PODINFO_POD_NAME_MAX + 1];
	char pod_namespace[PODINFO_NAMESPACE_MAX + 1];
	char container_name[PODINFO_CONTAINER_NAME_MAX + 1];
	char image[PODINFO_IMAGE_MAX + 1];
};

/*
 * A flat array searched linearly: it is consulted once per new process, not per frame, and a
 * few hundred 64-byte compares cost less than the open() they save.  Container ids are random
 * and never reused, so an entry never goes stale; it only ages out.
 */
struct podinfo_cache {
	struct cache_entry *e;
	size_t cap, n;
	uint64_t tick;
	struct podinfo_stats st;
};

struct podinfo_cache *podinfo_cache_new(size_t capacity)
{
	struct podinfo_cache *c;

	if (!capacity)
		capacity = PODINFO_CACHE_DEFAULT;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->e = calloc(capacity, sizeof(*c->e));
	if (!c->e) {
		free(c);
		return NULL;
	}
	c->cap = capacity;
	return c;
}

void podinfo_cache_free(struct podinfo_cache *c)
{
	if (!c)
		return;
	free(c->e);
	free(c);
}

void podinfo_cache_stats(const struct podinfo_cache *c, struct podinfo_stats *st)
{
	*st = c->st;
	st->entries = c->n;
	st->capacity = c->cap;
}

static struct cache_entry *cache_find(struct podinfo_cache *c, const struct podinfo *pi)
{
	for (size_t i = 0; i < c->n; i++) {
		struct cache_entry *e = &c->e[i];

		if (strcmp(e->id, pi->container_id) == 0 && strcmp(e->uid, pi->pod_uid) == 0) {
			e->used = ++c->tick;
			return e;
		}
	}
	return NULL;
}

static void cache_store(struct podinfo_cache *c, const struct podinfo *pi)
{
	struct cache_entry *e;

	/* results that may change on the next try are not remembered */
	if (pi->reason == PODINFO_BUNDLE_UNREADABLE || pi->reason == PODINFO_NO_MEMORY) {
		c->st.uncached++;
		return;
	}
	if (c->n < c->cap) {
		e = &c->e[c->n++];
	} else {
		e = &c->e[0];
		for (size_t i = 1; i < c->n; i++)
			if (c->e[i].used < e->used)
				e = &c->e[i];
		c->st.evictions++;
	}
	e->used = ++c->tick;
	memcpy(e->id, pi->container_id, sizeof(e->id));
	memcpy(e->uid, pi->pod_uid, sizeof(e->uid));
	e->reason = pi->reason;
	e->sandbox = pi->sandbox;
	memcpy(e->pod_name, pi->pod_name, sizeof(e->pod_name));
	memcpy(e->pod_namespace, pi->pod_namespace, sizeof(e->pod_namespace));
	memcpy(e->container_name, pi->container_name, sizeof(e->container_name));
	memcpy(e->image, pi->image, sizeof(e->image));
}

static void cache_apply(const struct cache_entry *e, struct podinfo *pi)
{
	pi->reason = e->reason;
	pi->sandbox = e->sandbox;
	memcpy(pi->pod_name, e->pod_name, sizeof(pi->pod_name));
	memcpy(pi->pod_namespace, e->pod_namespace, sizeof(pi->pod_namespace));
	memcpy(pi->container_name, e->container_name, sizeof(pi->container_name));
	memcpy(pi->image, e->image, sizeof(pi->image));
}

/* --- lookup ----------------------------------------------------------------------------------- */

/* -errno of file_read() as a reason; for_bundle picks the bundle's names. */
static enum podinfo_reason read_reason(int err, bool for_bundle)
{
	switch (err) {
	case -ENOENT:
	case -ENOTDIR:
		return for_bundle ? PODINFO_BUNDLE_MISSING : PODINFO_NO_PROCESS;
	case -ESRCH: /* exited between open and read */
		return for_bundle ? PODINFO_BUNDLE_UNREADABLE : PODINFO_NO_PROCESS;
	case -EFBIG:
		return for_bundle ? PODINFO_BUNDLE_TOO_LARGE : PODINFO_CGROUP_TOO_LARGE;
	case -ENOMEM:
		return PODINFO_NO_MEMORY;
	default:
		return for_bundle ? PODINFO_BUNDLE_UNREADABLE : PODINFO_CGROUP_UNREADABLE;
	}
}

static enum podinfo_reason bundle_read(const char *bundle_root, struct podinfo *out)
{
	char path[PATH_MAX];
	size_t len = 0;
	char *buf = NULL;
	int n, err;

	/* the id is 64 hex characters, so it cannot step out of the directory */
	n = snprintf(path, sizeof(path), "%s/%s/%s/config.json", bundle_root, PODINFO_CRI_NAMESPACE,
		     out->container_id);
	if (n < 0 || (size_t)n >= sizeof(path))
		return PODINFO_BUNDLE_UNREADABLE;
	err = file_read(path, PODINFO_MAX_BUNDLE_FILE, true, &buf, &len);
	if (err)
		return read_reason(err, true);
	err = podinfo_parse_bundle(buf, len, out);
	free(buf);
	return err;
}

enum podinfo_reason podinfo_lookup(struct podinfo_cache *cache, const char *proc_root,
				   const char *bundle_root, pid_t pid, struct podinfo *out)
{
	char path[PATH_MAX];
	struct cache_entry *e;
	size_t len = 0;
	char *buf = NULL;
	int n, err;

	memset(out, 0, sizeof(*out));
	out->reason = PODINFO_NO_PROCESS;
	if (pid <= 0)
		goto out;
	n = snprintf(path, sizeof(path), "%s/%d/cgroup", proc_root ? proc_root : PODINFO_PROC_ROOT,
		     (int)pid);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		out->reason = PODINFO_CGROUP_UNREADABLE;
		goto out;
	}
	err = file_read(path, PODINFO_MAX_CGROUP_FILE, false, &buf, &len);
	if (err) {
		out->reason = read_reason(err, false);
		goto out;
	}
	podinfo_parse_cgroup(buf, len, out);
	free(buf);
	if (out->reason != PODINFO_OK || out->kind != PODINFO_CONTAINER || !out->pod_uid[0])
		goto out;
	/* the cgroupfs driver does not name the runtime; on GKE it is containerd */
	if (out->runtime != PODINFO_RT_CONTAINERD && out->runtime != PODINFO_RT_UNNAMED) {
		out->reason = PODINFO_BUNDLE_UNSUPPORTED;
		goto out;
	}
	e = cache ? cache_find(cache, out) : NULL;
	if (e) {
		cache->st.hits++;
		cache_apply(e, out);
		goto out;
	}
	out->reason = bundle_read(bundle_root ? bundle_root : PODINFO_BUNDLE_ROOT, out);
	if (cache) {
		cache->st.misses++;
		cache_store(cache, out);
	}
out:
	return out->reason;
}

/* --- selection -------------------------------------------------------------------------------- */

bool podinfo_selected(const struct pod_selector *sel, const struct podinfo *pi)
{
	if (pi->kind != PODINFO_CONTAINER || !pi->container_id[0])
		return false;
	if (sel->container_id) {
		size_t n = strlen(sel->container_id);

		if (n > PODINFO_ID_LEN || memcmp(pi->container_id, sel->container_id, n) != 0)
			return false;
	}
	if (!sel->namespace && !sel->pod && !sel->container)
		return true;
	/* A name is only known from a bundle that was read whole. */
	if (pi->reason != PODINFO_OK || !pi->pod_uid[0] || pi->sandbox)
		return false;
	if (sel->namespace && strcmp(sel->namespace, pi->pod_namespace) != 0)
		return false;
	if (sel->pod && strcmp(sel->pod, pi->pod_name) != 0)
		return false;
	return !sel->container || strcmp(sel->container, pi->container_name) == 0;
}

void podinfo_label(const struct podinfo *pi, char *buf, size_t size)
{
	if (pi->kind == PODINFO_HOST)
		snprintf(buf, size, "host");
	else if (pi->kind == PODINFO_CONTAINER && pi->reason == PODINFO_OK && pi->pod_uid[0])
		snprintf(buf, size, "%s/%s/%s", pi->pod_namespace, pi->pod_name,
			 pi->sandbox ? "(sandbox)" : pi->container_name);
	else if (pi->kind == PODINFO_CONTAINER && pi->reason == PODINFO_OK)
		snprintf(buf, size, "container %.12s", pi->container_id);
	else if (pi->container_id[0])
		snprintf(buf, size, "container %.12s, pod unresolved (%s)", pi->container_id,
			 podinfo_reason_name(pi->reason));
	else
		snprintf(buf, size, "unresolved (%s)", podinfo_reason_name(pi->reason));
}

/* --- workload --------------------------------------------------------------------------------- */

/* k8s.io/apimachinery/pkg/util/rand: generated names and pod-template-hash use these. */
static const char name_alphabet[] = "bcdfghjklmnpqrstvwxz2456789";

static bool generated(const char *s, size_t n, size_t min, size_t max)
{
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(name_alphabet, s[i]))
			return false;
	return true;
}

static bool digits(const char *s, size_t n, size_t min)
{
	if (n < min)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* The index of the last '-' before end, or 0 when there is none past the first character. */
static size_t last_dash(const char *s, size_t end)
{
	while (end > 1 && s[end - 1] != '-')
		end--;
	return end > 1 ? end - 1 : 0;
}

void podinfo_workload(const char *pod, char *buf, size_t size)
{
	size_t end = strlen(pod), d = last_dash(pod, end), d2;

	if (d && generated(pod + d + 1, end - d - 1, 5, 5)) {
		end = d;
		d2 = last_dash(pod, end);
		/* A Deployment's ReplicaSet, or a CronJob's Job (the minute it was scheduled). */
		if (d2 && (generated(pod + d2 + 1, end - d2 - 1, 6, 10) ||
			   digits(pod + d2 + 1, end - d2 - 1, 8)))
			end = d2;
	} else if (d && digits(pod + d + 1, end - d - 1, 1)) {
		end = d;
	}
	snprintf(buf, size, "%.*s", (int)end, pod);
}

void podinfo_k8s_labels(const struct podinfo *pi, char ns[PODINFO_NAMESPACE_MAX + 1],
			char workload[PODINFO_WORKLOAD_MAX + 1])
{
	if (pi->kind == PODINFO_HOST ||
	    (pi->kind == PODINFO_CONTAINER && !pi->pod_uid[0] && pi->reason == PODINFO_OK)) {
		snprintf(ns, PODINFO_NAMESPACE_MAX + 1, "none");
		snprintf(workload, PODINFO_WORKLOAD_MAX + 1, "none");
	} else if (pi->kind == PODINFO_CONTAINER && pi->reason == PODINFO_OK && pi->pod_name[0] &&
		   pi->pod_namespace[0]) {
		snprintf(ns, PODINFO_NAMESPACE_MAX + 1, "%s", pi->pod_namespace);
		podinfo_workload(pi->pod_name, workload, PODINFO_WORKLOAD_MAX + 1);
	} else {
		snprintf(ns, PODINFO_NAMESPACE_MAX + 1, "unknown");
		snprintf(workload, PODINFO_WORKLOAD_MAX + 1, "unknown");
	}
}

/* --- output ----------------------------------------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

json_t *podinfo_json(const struct podinfo *pi)
{
	json_t *o;

	if (pi->kind == PODINFO_HOST)
		return json_null();
	o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:s}", "id", str_or_null(pi->container_id), "pod",
		      str_or_null(pi->pod_name), "namespace", str_or_null(pi->pod_namespace),
		      "name", str_or_null(pi->container_name), "pod_uid", str_or_null(pi->pod_uid),
		      "runtime", podinfo_runtime_name(pi->runtime));
	if (o && pi->sandbox)
		json_object_set_new(o, "sandbox", json_true());
	if (o && pi->reason != PODINFO_OK)
		json_object_set_new(o, "unresolved", json_string(podinfo_reason_name(pi->reason)));
	return o;
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What wsaudit needs from the system it runs on: the kernel's BPF features, BTF, tracefs,
 * lockdown, capabilities.  `wsaudit check-system` prints every check; trace and agent run the
 * required ones before loading any BPF and stop with the first failure's one-line reason.
 * docs/kernels.md lists the same features with the kernels the matrix proves.
 */
#ifndef WSAUDIT_SYSREQ_H
#define WSAUDIT_SYSREQ_H

#include <stdbool.h>
#include <stdint.h>

/* The oldest kernel the kernel matrix (make kernels) runs every test on. */
#define SYSREQ_MIN_MAJOR 6
#define SYSREQ_MIN_MINOR 1

enum sysreq_status {
	SYSREQ_PASS,
	SYSREQ_WARN, /* works, with a limit stated in the detail */
	SYSREQ_FAIL,
};

struct sysreq_check {
	const char *name;
	enum sysreq_status status;
	bool required; /* trace and agent cannot run when it fails */
	char detail[160];
	const char *fix; /* when it does not pass */
};

#define SYSREQ_MAX 24

/* Runs every check into out[]; returns how many. */
int sysreq_run(struct sysreq_check *out, int max);

/*
 * The required checks, for trace and agent: 0 when all pass, else -1 after one log line
 * naming the first failure and its fix.
 */
int sysreq_preflight(void);

const char *sysreq_status_name(enum sysreq_status s);

/* Mounts tracefs at /sys/kernel/tracing when no tracefs is mounted (libbpf needs it). */
void sysreq_tracefs_ensure(void);

/* Pure parts, unit-tested. */

struct kver {
	unsigned int major, minor, patch;
};

/* "6.1.0-37-amd64" -> 6.1.0; -1 when it does not start with MAJOR.MINOR. */
int sysreq_parse_release(const char *release, struct kver *out);
int sysreq_kver_cmp(const struct kver *a, const struct kver *b);

enum lockdown_mode {
	LOCKDOWN_UNKNOWN,
	LOCKDOWN_NONE,
	LOCKDOWN_INTEGRITY,
	LOCKDOWN_CONFIDENTIALITY,
};

/* The bracketed word of /sys/kernel/security/lockdown ("none [integrity] confidentiality"). */
enum lockdown_mode sysreq_parse_lockdown(const char *text);

/* CapEff of /proc/self/status text; -1 when absent. */
int sysreq_parse_capeff(const char *status, uint64_t *caps);

enum cgroup_version {
	CGROUP_NONE,
	CGROUP_V1,
	CGROUP_V2,
	CGROUP_HYBRID, /* v1 controllers with the v2 hierarchy beside them */
};

/* From /proc/self/mounts text: what is mounted at /sys/fs/cgroup. */
enum cgroup_version sysreq_cgroup_version(const char *mounts);

#endif /* WSAUDIT_SYSREQ_H */

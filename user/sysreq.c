// SPDX-License-Identifier: GPL-2.0
/*
 * The system checks of `wsaudit check-system` and of the start of trace and agent.  Kernel
 * features are probed the way libbpf does (a tiny program or map loaded and dropped), never
 * inferred from the version: distributions backport, and the version only says whether the
 * kernel matrix has proven this line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "sysreq.h"

#define STR_(x) #x
#define STR(x) STR_(x)

#define CAP_SYS_PTRACE 19
#define CAP_SYS_ADMIN 21
#define CAP_PERFMON 38
#define CAP_BPF 39
/* The kernel's ENOTSUPP (not ENOTSUP), returned by some BPF loads. */
#define ENOTSUPP_ERRNO 524

const char *sysreq_status_name(enum sysreq_status s)
{
	switch (s) {
	case SYSREQ_PASS:
		return "pass";
	case SYSREQ_WARN:
		return "warn";
	case SYSREQ_FAIL:
		return "FAIL";
	}
	return "?";
}

int sysreq_parse_release(const char *release, struct kver *out)
{
	char *end;

	*out = (struct kver){ 0 };
	out->major = strtoul(release, &end, 10);
	if (end == release || *end != '.')
		return -1;
	release = end + 1;
	out->minor = strtoul(release, &end, 10);
	if (end == release)
		return -1;
	if (*end == '.') {
		release = end + 1;
		out->patch = strtoul(release, &end, 10);
	}
	return 0;
}

int sysreq_kver_cmp(const struct kver *a, const struct kver *b)
{
	if (a->major != b->major)
		return a->major < b->major ? -1 : 1;
	if (a->minor != b->minor)
		return a->minor < b->minor ? -1 : 1;
	if (a->patch != b->patch)
		return a->patch < b->patch ? -1 : 1;
	return 0;
}

enum lockdown_mode sysreq_parse_lockdown(const char *text)
{
	static const struct {
		const char *word;
		enum lockdown_mode mode;
	} modes[] = {
		{ "[none]", LOCKDOWN_NONE },
		{ "[integrity]", LOCKDOWN_INTEGRITY },
		{ "[confidentiality]", LOCKDOWN_CONFIDENTIALITY },
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strstr(text, modes[i].word))
			return modes[i].mode;
	}
	return LOCKDOWN_UNKNOWN;
}

int sysreq_parse_capeff(const char *status, uint64_t *caps)
{
	const char *p = status;
	char *end;

	while (p && *p) {
		if (!strncmp(p, "CapEff:", 7)) {
			p += 7;
			while (*p == ' ' || *p == '\t')
				p++;
			errno = 0;
			*caps = strtoull(p, &end, 16);
			if (end == p || errno || (*end && *end != '\n'))
				return -1;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

enum cgroup_version sysreq_cgroup_version(const char *mounts)
{
	bool v1 = false, v2 = false, unified = false;
	const char *line = mounts;
	char dev[64], dir[256], type[32];

	while (line && *line) {
		if (sscanf(line, "%63s %255s %31s", dev, dir, type) == 3) {
			if (!strcmp(dir, "/sys/fs/cgroup") && !strcmp(type, "cgroup2"))
				v2 = true;
			else if (!strcmp(dir, "/sys/fs/cgroup/unified") && !strcmp(type, "cgroup2"))
				unified = true;
			else if (!strncmp(dir, "/sys/fs/cgroup/", 15) && !strcmp(type, "cgroup"))
				v1 = true;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (v2)
		return CGROUP_V2;
	if (v1)
		return unified ? CGROUP_HYBRID : CGROUP_V1;
	return CGROUP_NONE;
}

/* --- probes --------------------------------------------------------------------------------- */

/* Up to size-1 bytes of a small file of /proc or /sys; -1 when unreadable. */
static int read_small(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return 0;
}

static struct sysreq_check *add(struct sysreq_check *out, int *n, int max, const char *name,
				bool required)
{
	struct sysreq_check *c;

	if (*n >= max)
		return NULL;
	c = &out[(*n)++];
	*c = (struct sysreq_check){ .name = name, .required = required, .status = SYSREQ_PASS };
	return c;
}

static void set(struct sysreq_check *c, enum sysreq_status st, const char *fix, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));

static void set(struct sysreq_check *c, enum sysreq_status st, const char *fix, const char *fmt,
		...)
{
	va_list ap;

	if (!c)
		return;
	c->status = st;
	c->fix = st == SYSREQ_PASS ? NULL : fix;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
}

static void check_kernel(struct sysreq_check *c)
{
	const struct kver min = { SYSREQ_MIN_MAJOR, SYSREQ_MIN_MINOR, 0 };
	struct utsname u;
	struct kver v;

	if (uname(&u) || sysreq_parse_release(u.release, &v)) {
		set(c, SYSREQ_WARN, NULL, "release unknown");
		return;
	}
	if (sysreq_kver_cmp(&v, &min) < 0)
		set(c, SYSREQ_WARN,
		    "use a node image with Linux " STR(SYSREQ_MIN_MAJOR) "." STR(
			    SYSREQ_MIN_MINOR) " or newer (docs/kernels.md lists the features)",
		    "%s is older than %u.%u, the oldest kernel the kernel matrix proves: its "
		    "features are probed one by one",
		    u.release, min.major, min.minor);
	else
		set(c, SYSREQ_PASS, NULL, "%s (the matrix proves %u.%u and newer)", u.release,
		    min.major, min.minor);
}

static void check_caps(struct sysreq_check *c)
{
	char status[4096];
	uint64_t caps;
	bool bpf, ptrace;

	if (read_small("/proc/self/status", status, sizeof(status)) ||
	    sysreq_parse_capeff(status, &caps)) {
		set(c, SYSREQ_FAIL, "mount /proc", "cannot read CapEff from /proc/self/status");
		return;
	}
	bpf = (caps >> CAP_SYS_ADMIN & 1) || ((caps >> CAP_BPF & 1) && (caps >> CAP_PERFMON & 1));
	ptrace = caps >> CAP_SYS_PTRACE & 1;
	if (bpf && ptrace)
		set(c, SYSREQ_PASS, NULL, "CapEff %016llx", (unsigned long long)caps);
	else
		set(c, SYSREQ_FAIL,
		    "run as root, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE "
		    "(deploy/ sets them for the agent)",
		    "missing %s%s%s (CapEff %016llx)",
		    bpf ? "" : "CAP_BPF+CAP_PERFMON (or CAP_SYS_ADMIN) to load BPF",
		    bpf || ptrace ? "" : ", ",
		    ptrace ? "" : "CAP_SYS_PTRACE to read the interpreters' memory",
		    (unsigned long long)caps);
}

static void check_lockdown(struct sysreq_check *c)
{
	char text[128];

	if (read_small("/sys/kernel/security/lockdown", text, sizeof(text))) {
		set(c, SYSREQ_PASS, NULL, "no lockdown LSM");
		return;
	}
	text[strcspn(text, "\n")] = '\0';
	switch (sysreq_parse_lockdown(text)) {
	case LOCKDOWN_NONE:
	case LOCKDOWN_INTEGRITY:
		set(c, SYSREQ_PASS, NULL, "%s", text);
		break;
	case LOCKDOWN_CONFIDENTIALITY:
		set(c, SYSREQ_FAIL,
		    "boot with lockdown=integrity (or none); Secure Boot alone does not need "
		    "confidentiality",
		    "%s: the kernel refuses BPF reads of kernel memory", text);
		break;
	case LOCKDOWN_UNKNOWN:
		set(c, SYSREQ_WARN, NULL, "unrecognised: %s", text);
		break;
	}
}

static void check_btf(struct sysreq_check *c)
{
	struct btf *btf;

	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		set(c, SYSREQ_FAIL, "use a kernel built with CONFIG_DEBUG_INFO_BTF=y",
		    "/sys/kernel/btf/vmlinux: %s", strerror(errno));
		return;
	}
	btf = btf__load_vmlinux_btf();
	if (!btf) {
		set(c, SYSREQ_FAIL, "use a kernel built with CONFIG_DEBUG_INFO_BTF=y",
		    "the kernel's BTF does not load: %s", strerror(errno));
		return;
	}
	set(c, SYSREQ_PASS, NULL, "/sys/kernel/btf/vmlinux, %u types", btf__type_cnt(btf));
	btf__free(btf);
}

static const char *tracefs_dir(void)
{
	struct stat st;

	if (!stat("/sys/kernel/tracing/events", &st))
		return "/sys/kernel/tracing";
	if (!stat("/sys/kernel/debug/tracing/events", &st))
		return "/sys/kernel/debug/tracing";
	return NULL;
}

void sysreq_tracefs_ensure(void)
{
	/* libbpf reads tracepoint ids from tracefs, not mounted at boot everywhere (bpftrace
	 * mounts it too). */
	if (tracefs_dir())
		return;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
		log_warn("failed to mount tracefs on /sys/kernel/tracing: %s", strerror(errno));
}

static void check_tracefs(struct sysreq_check *c, struct sysreq_check *sc)
{
	const char *dir = tracefs_dir();
	char path[256];

	if (!dir) {
		set(c, SYSREQ_FAIL, "mount -t tracefs tracefs /sys/kernel/tracing",
		    "not mounted (trace and agent mount it at /sys/kernel/tracing when allowed)");
		set(sc, SYSREQ_FAIL, "mount tracefs first", "not checked: tracefs not mounted");
		return;
	}
	set(c, SYSREQ_PASS, NULL, "%s", dir);
	snprintf(path, sizeof(path), "%s/events/syscalls/sys_enter_write/id", dir);
	if (access(path, R_OK))
		set(sc, SYSREQ_FAIL, "use a kernel built with CONFIG_FTRACE_SYSCALLS=y", "%s: %s",
		    path, strerror(errno));
	else
		set(sc, SYSREQ_PASS, NULL, "events/syscalls present");
}

static void check_cgroup(struct sysreq_check *c)
{
	static char mounts[65536];

	if (read_small("/proc/self/mounts", mounts, sizeof(mounts))) {
		set(c, SYSREQ_WARN, "mount /proc", "cannot read /proc/self/mounts");
		return;
	}
	switch (sysreq_cgroup_version(mounts)) {
	case CGROUP_V2:
		set(c, SYSREQ_PASS, NULL, "v2 at /sys/fs/cgroup");
		break;
	case CGROUP_HYBRID:
		set(c, SYSREQ_PASS, NULL, "v1 controllers, v2 at /sys/fs/cgroup/unified");
		break;
	case CGROUP_V1:
		set(c, SYSREQ_PASS, NULL, "v1 at /sys/fs/cgroup");
		break;
	case CGROUP_NONE:
		set(c, SYSREQ_WARN, "mount cgroup2 at /sys/fs/cgroup",
		    "none mounted at /sys/fs/cgroup: processes are not matched to containers");
		break;
	}
}

static void check_uprobe(struct sysreq_check *c)
{
	if (access("/sys/bus/event_source/devices/uprobe/type", R_OK))
		set(c, SYSREQ_FAIL, "use a kernel built with CONFIG_UPROBE_EVENTS=y",
		    "no uprobe PMU (/sys/bus/event_source/devices/uprobe): uvloop's writes "
		    "cannot be attributed");
	else
		set(c, SYSREQ_PASS, NULL, "uprobe PMU");
}

/* A libbpf probe's answer: 1 supported, 0 not, < 0 could not tell. */
static void probe_result(struct sysreq_check *c, int r, const char *what, const char *since)
{
	if (r > 0)
		set(c, SYSREQ_PASS, NULL, "%s", what);
	else if (r == 0)
		set(c, SYSREQ_FAIL, "use a kernel with it (docs/kernels.md)",
		    "%s: not supported by this kernel (Linux %s)", what, since);
	else
		set(c, SYSREQ_FAIL, "run as root to probe the kernel", "%s: cannot probe: %s", what,
		    strerror(-r));
}

static int probe_mmapable_array(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "wsaudit_probe", 4, 8, 1, &opts);

	if (fd < 0)
		return errno == EINVAL ? 0 : -errno;
	close(fd);
	return 1;
}

/*
 * libbpf's probe of BPF_PROG_TYPE_TRACING loads an fentry program, which kernels may refuse
 * while they accept tp_btf (this one's kind): load "return 0" at the tracepoint fork_tp uses.
 */
static int probe_tp_btf(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_RAW_TP);
	struct btf *btf = btf__load_vmlinux_btf();
	int id, fd;

	if (!btf)
		return -errno;
	id = btf__find_by_name_kind(btf, "btf_trace_sched_process_fork", BTF_KIND_TYPEDEF);
	btf__free(btf);
	if (id < 0)
		return 0;
	opts.attach_btf_id = id;
	fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, NULL, "GPL", insns, 2, &opts);
	if (fd < 0)
		return errno == EINVAL || errno == ENOTSUPP_ERRNO ? 0 : -errno;
	close(fd);
	return 1;
}

/* The BPF features the programs use, each with the kernel that brought it. */
static const struct {
	const char *name, *what, *since;
	enum { P_PROG, P_TP_BTF, P_MAP, P_HELPER, P_MMAP } kind;
	int id;
} features[] = {
	{ "prog: tracepoint", "tracepoint programs", "4.7", P_PROG, BPF_PROG_TYPE_TRACEPOINT },
	{ "prog: tp_btf", "BTF-typed raw tracepoints", "5.5", P_TP_BTF, 0 },
	{ "prog: uprobe", "kprobe/uprobe programs", "4.1", P_PROG, BPF_PROG_TYPE_KPROBE },
	{ "map: ringbuf", "BPF ring buffer", "5.8", P_MAP, BPF_MAP_TYPE_RINGBUF },
	{ "map: mmapable array", "memory-mapped array maps", "5.5", P_MMAP, 0 },
	{ "helper: probe_read_user", "bpf_probe_read_user", "5.5", P_HELPER,
	  BPF_FUNC_probe_read_user },
	{ "helper: ringbuf_output", "bpf_ringbuf_output", "5.8", P_HELPER,
	  BPF_FUNC_ringbuf_output },
	{ "helper: current_task_btf", "bpf_get_current_task_btf", "5.11", P_HELPER,
	  BPF_FUNC_get_current_task_btf },
};

static void check_feature(struct sysreq_check *c, size_t i)
{
	int r = -EINVAL;

	switch (features[i].kind) {
	case P_PROG:
		r = libbpf_probe_bpf_prog_type(features[i].id, NULL);
		break;
	case P_TP_BTF:
		r = probe_tp_btf();
		break;
	case P_MAP:
		r = libbpf_probe_bpf_map_type(features[i].id, NULL);
		break;
	case P_HELPER:
		r = libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, features[i].id, NULL);
		break;
	case P_MMAP:
		r = probe_mmapable_array();
		break;
	}
	probe_result(c, r, features[i].what, features[i].since);
}

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

int sysreq_run(struct sysreq_check *out, int max)
{
	libbpf_print_fn_t prev;
	int n = 0;
	struct sysreq_check *tracefs, *sc;

	check_kernel(add(out, &n, max, "kernel", false));
	check_caps(add(out, &n, max, "capabilities", true));
	check_lockdown(add(out, &n, max, "lockdown", true));
	check_btf(add(out, &n, max, "btf", true));
	tracefs = add(out, &n, max, "tracefs", true);
	sc = add(out, &n, max, "syscall tracepoints", true);
	check_tracefs(tracefs, sc);
	check_uprobe(add(out, &n, max, "uprobes", true));
	/* A probe that fails is the answer, not an error to print. */
	prev = libbpf_set_print(quiet_print);
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
		check_feature(add(out, &n, max, features[i].name, true), i);
	libbpf_set_print(prev);
	check_cgroup(add(out, &n, max, "cgroup", false));
	return n;
}

static bool passes(const struct sysreq_check *c, int n, const char *name)
{
	for (int i = 0; i < n; i++) {
		if (!strcmp(c[i].name, name))
			return c[i].status != SYSREQ_FAIL;
	}
	return false;
}

int sysreq_preflight(void)
{
	struct sysreq_check c[SYSREQ_MAX];
	int n;

	n = sysreq_run(c, SYSREQ_MAX);
	/* Mounting tracefs is tried only with the privileges it takes, then checked again. */
	if (!passes(c, n, "tracefs") && passes(c, n, "capabilities")) {
		sysreq_tracefs_ensure();
		n = sysreq_run(c, SYSREQ_MAX);
	}
	for (int i = 0; i < n; i++) {
		if (c[i].status == SYSREQ_WARN && !c[i].required)
			log_warn("%s: %s", c[i].name, c[i].detail);
		if (c[i].status != SYSREQ_FAIL || !c[i].required)
			continue;
		log_err("%s: %s; fix: %s (wsaudit check-system lists every check)", c[i].name,
			c[i].detail, c[i].fix ? c[i].fix : "see docs/kernels.md");
		return -1;
	}
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "elfsym.h"
#include "log.h"
#include "procmaps.h"
#include "testrun.h"

#define VAR "PYTEST_CURRENT_TEST="
#define VAR_LEN (sizeof(VAR) - 1)
/* Bounds of what is read from a process per look. */
#define ENV_MAX_ENTRIES 4096
#define VALUE_MAX 1024
#define INITIAL_ENV_MAX (1 << 20)

struct proc {
	pid_t pid; /* 0: free */
	dev_t exe_dev; /* the image env_addr belongs to (an exec replaces it) */
	ino_t exe_ino;
	bool resolved; /* environ looked up (env_addr 0: it could not be) */
	unsigned long long env_addr; /* of the process's `environ` variable */
	int index; /* of PYTEST_CURRENT_TEST in the environ array last time, or -1 */
	bool pytest; /* it set PYTEST_CURRENT_TEST itself (not inherited) */
	bool inherited_checked;
	char inherited[VALUE_MAX]; /* the value it was started with, "" when none */
	/* The running test (node id, "" for none), since when it has been seen running. */
	char test[VALUE_MAX];
	uint64_t since_ns; /* end of the first read that saw it */
};

struct testrun {
	struct proc p[TESTRUN_MAX_PROCS];
	pid_t root; /* ancestors of writers are looked at up to this one */
};

struct testrun *testrun_new(void)
{
	return calloc(1, sizeof(struct testrun));
}

void testrun_free(struct testrun *t)
{
	free(t);
}

size_t testrun_node_id(const char *value, char *out, size_t size)
{
	size_t n = strlen(value);

	/* "FILE::NAME (setup|call|teardown)": the phase is not part of the test's name. */
	if (n && value[n - 1] == ')') {
		const char *open = strrchr(value, '(');

		if (open && open > value && open[-1] == ' ')
			n = (size_t)(open - value) - 1;
	}
	if (!size)
		return n;
	if (n >= size)
		n = size - 1;
	memcpy(out, value, n);
	out[n] = '\0';
	return n;
}

/* Up to len bytes at addr; how many could be read (a string may end near its mapping). */
static ssize_t read_some(pid_t pid, unsigned long long addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

	/* A read crossing into an unmapped page fails whole: retry up to the page's end. */
	if (n < 0 && errno == EFAULT && ((addr & 4095) + len) > 4096) {
		local.iov_len = remote.iov_len = 4096 - (addr & 4095);
		n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	}
	return n;
}

static int environ_sym(void *ctx, const char *name, const GElf_Sym *sym)
{
	unsigned long long *value = ctx;

	if (GELF_ST_TYPE(sym->st_info) != STT_OBJECT ||
	    (strcmp(name, "__environ") && strcmp(name, "environ")))
		return 0;
	*value = sym->st_value;
	return 1;
}

/* The address of a defined data symbol named environ or __environ in an ELF file. */
static int elf_environ(int fd, unsigned long long start, unsigned long long *addr)
{
	unsigned long long vaddr0 = 0, value = 0;
	struct elf_file f;

	if (elf_file_open(&f, fd))
		return -ENOENT;
	if (!elf_file_base(&f, &vaddr0))
		elf_file_syms(&f, ELF_SYMS_DYNAMIC, environ_sym, &value);
	if (value)
		*addr = (f.eh.e_type == ET_EXEC ? 0 : start - (vaddr0 & ~0xfffULL)) + value;
	elf_file_close(&f);
	return value ? 0 : -ENOENT;
}

/*
 * Where the process keeps `environ`.  The executable first: one that refers to environ
 * (CPython does) holds the variable itself (a copy relocation) and libc's is unused.
 */
static int find_environ(pid_t pid, unsigned long long *addr)
{
	char path[64], exe[PATH_MAX] = "";
	int pass, err = -ENOENT, oerr;
	struct procmaps_entry e;
	struct procmaps m;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n > 0)
		exe[n] = '\0';
	for (pass = 0; pass < 2 && err; pass++) {
		oerr = procmaps_open(&m, pid);
		if (oerr)
			return oerr;
		while (err && procmaps_next(&m, &e)) {
			const char *file = e.name, *base;
			char mf[96];
			int fd;

			if (e.offset)
				continue;
			base = strrchr(file, '/');
			base = base ? base + 1 : file;
			if (pass == 0 ? strcmp(file, exe) :
					(strncmp(base, "libc.so", 7) && strncmp(base, "libc-", 5)))
				continue;
			snprintf(mf, sizeof(mf), "/proc/%d/map_files/%llx-%llx", pid, e.start,
				 e.end);
			fd = open(mf, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			err = elf_environ(fd, e.start, addr);
			close(fd);
		}
		procmaps_close(&m);
	}
	return err;
}

/* PYTEST_CURRENT_TEST as the process was started with (/proc/PID/environ), "" if none. */
static void read_inherited(struct proc *p)
{
	char path[64], *buf = malloc(INITIAL_ENV_MAX);
	ssize_t n = 0, r;
	int fd;

	p->inherited[0] = '\0';
	p->inherited_checked = true;
	snprintf(path, sizeof(path), "/proc/%d/environ", p->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return;
	}
	while (n < INITIAL_ENV_MAX - 1 && (r = read(fd, buf + n, INITIAL_ENV_MAX - 1 - n)) > 0)
		n += r;
	close(fd);
	buf[n] = '\0';
	for (char *s = buf; s < buf + n; s += strlen(s) + 1) {
		if (!strncmp(s, VAR, VAR_LEN)) {
			snprintf(p->inherited, sizeof(p->inherited), "%s", s + VAR_LEN);
			break;
		}
	}
	free(buf);
}

/* The value at one environ entry when it is PYTEST_CURRENT_TEST; 1 found, 0 not, -errno. */
static int entry_value(pid_t pid, unsigned long long entry, char *value)
{
	char buf[VAR_LEN + VALUE_MAX];
	ssize_t n;

	if (!entry)
		return 0;
	n = read_some(pid, entry, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if ((size_t)n < VAR_LEN || strncmp(buf, VAR, VAR_LEN))
		return 0;
	snprintf(value, VALUE_MAX, "%s", buf + VAR_LEN);
	return 1;
}

/*
 * The process's live PYTEST_CURRENT_TEST ("" when unset): 0, or -errno when its memory
 * cannot be read.  The entry found last time is tried first: setenv replaces a variable in
 * its slot, so one look usually takes three reads.
 */
static int read_live(struct proc *p, char *value)
{
	unsigned long long envp, ptrs[64];
	int r;

	value[0] = '\0';
	if (read_some(p->pid, p->env_addr, &envp, sizeof(envp)) != sizeof(envp))
		return -EFAULT;
	if (p->index >= 0 && read_some(p->pid, envp + 8ULL * p->index, ptrs, 8) == 8 &&
	    entry_value(p->pid, ptrs[0], value) == 1)
		return 0;
	p->index = -1;
	for (int base = 0; base < ENV_MAX_ENTRIES; base += 64) {
		ssize_t n = read_some(p->pid, envp + 8ULL * base, ptrs, sizeof(ptrs));

		if (n < 8)
			return n < 0 ? -errno : -EFAULT;
		for (int i = 0; i < n / 8; i++) {
			if (!ptrs[i])
				return 0;
			r = entry_value(p->pid, ptrs[i], value);
			if (r == 1) {
				p->index = base + i;
				return 0;
			}
		}
	}
	return 0;
}

static struct proc *find(struct testrun *t, pid_t pid, bool add)
{
	struct proc *free_slot = NULL;

	for (int i = 0; i < TESTRUN_MAX_PROCS; i++) {
		if (t->p[i].pid == pid)
			return &t->p[i];
		if (!t->p[i].pid && !free_slot)
			free_slot = &t->p[i];
	}
	if (!add || !free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->pid = pid;
	free_slot->index = -1;
	return free_slot;
}

void testrun_watch(struct testrun *t, pid_t pid)
{
	find(t, pid, true);
}

void testrun_set_root(struct testrun *t, pid_t root)
{
	t->root = root;
	find(t, root, true);
}

/* One look at a process; false when it is gone or cannot be read. */
static bool sample(struct proc *p)
{
	char value[VALUE_MAX], test[VALUE_MAX], path[64];
	struct stat st;
	int err;

	snprintf(path, sizeof(path), "/proc/%d/exe", p->pid);
	if (stat(path, &st))
		return false;
	if (p->resolved && (st.st_dev != p->exe_dev || st.st_ino != p->exe_ino)) {
		/* It runs a new program: its environ is elsewhere, its start-up values new. */
		pid_t pid = p->pid;

		memset(p, 0, sizeof(*p));
		p->pid = pid;
		p->index = -1;
	}
	p->exe_dev = st.st_dev;
	p->exe_ino = st.st_ino;
	if (!p->resolved) {
		p->resolved = true;
		err = find_environ(p->pid, &p->env_addr);
		if (err) {
			log_info("pid %d: its running test cannot be read: no environ (%s)", p->pid,
				 strerror(-err));
			p->env_addr = 0;
		}
	}
	if (!p->env_addr)
		return false;
	if (read_live(p, value))
		return false;
	if (!p->inherited_checked)
		read_inherited(p);
	/* A value it was started with and never changed is its parent's test, not its own. */
	if (value[0] && strcmp(value, p->inherited))
		p->pytest = true;
	if (!p->pytest)
		value[0] = '\0';
	testrun_node_id(value, test, sizeof(test));
	if (strcmp(test, p->test)) {
		snprintf(p->test, sizeof(p->test), "%s", test);
		p->since_ns = mono_ns();
	}
	return true;
}

void testrun_sample(struct testrun *t)
{
	for (int i = 0; i < TESTRUN_MAX_PROCS; i++) {
		/* One gone (or unreadable) is dropped; it is added again if it writes. */
		if (t->p[i].pid && !sample(&t->p[i]) && kill(t->p[i].pid, 0) && errno == ESRCH)
			t->p[i].pid = 0;
	}
}

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *close_paren;
	int ppid = 0, fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: the fields resume after the last ')'. */
	close_paren = strrchr(buf, ')');
	if (!close_paren || sscanf(close_paren + 1, " %*c %d", &ppid) != 1)
		return 0;
	return ppid;
}

enum test_unknown testrun_at(struct testrun *t, pid_t writer, uint64_t ts_ns, char *out,
			     size_t size)
{
	struct proc *p;
	pid_t pid = writer;

	out[0] = '\0';
	for (int depth = 0; pid > 1 && depth < TESTRUN_MAX_DEPTH; depth++, pid = parent_of(pid)) {
		p = find(t, pid, true);
		if (!p)
			break;
		if (!sample(p) || !p->pytest) {
			if (pid == t->root)
				break;
			continue;
		}
		if (!p->test[0])
			return TEST_NONE_RUNNING;
		/*
		 * Seen running by a read that ended before the write (since_ns) and by the read
		 * just made, after it: it ran throughout.
		 */
		if (p->since_ns > ts_ns)
			return TEST_CHANGED;
		snprintf(out, size, "%s", p->test);
		return TEST_FOUND;
	}
	return TEST_NONE_RUNNING;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * walk_check PID THREAD_ID...: inspects a CPython process with pyproc, walks each thread's
 * stack with pywalk (the reads the BPF walk does) and names the frames with pysym.
 *
 * Output, one record per line, tab-separated:
 *   python <version> <path> <runtime address> <flags>
 *   validate ok                                   (pywalk_validate passed)
 *   thread <thread_id> <native_id> <frames> <skipped> <truncated>
 *   frame <function> <name> <file> <line> <class or -> <lasti>
 *   error <thread_id> <message>
 * Exit status: 0 when every thread was walked and symbolized, 1 otherwise, 2 on usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyproc.h"
#include "pysym.h"
#include "pywalk.h"

static int thread_print(pid_t pid, const struct pyproc_info *info, struct pysym *sym,
			unsigned long long tid)
{
	struct pywalk_frame frames[PYWALK_MAX_FRAMES];
	struct pywalk_thread t;
	struct pywalk_stats st;
	int n, i, err;

	err = pywalk_find_thread(pid, &info->off, tid, &t);
	if (err) {
		printf("error\t%llu\tfind thread: %s\n", tid, strerror(-err));
		return err;
	}
	n = pywalk_stack(pid, &info->off, tid, frames, PYWALK_MAX_FRAMES, &st);
	if (n < 0) {
		printf("error\t%llu\twalk: %s\n", tid, strerror(-n));
		return n;
	}
	printf("thread\t%llu\t%llu\t%d\t%u\t%u\n", tid, t.native_id, n, st.skipped, st.truncated);
	for (i = 0; i < n; i++) {
		struct pysym_loc loc;
		char cls[PYSYM_NAME_MAX];

		err = pysym_lookup(sym, pid, info, frames[i].code, frames[i].lasti, &loc);
		if (err) {
			printf("error\t%llu\tsymbolize frame %d: %s\n", tid, i, strerror(-err));
			return err;
		}
		/* On 3.9/3.10 the walk recorded the first argument: name methods from it. */
		err = pysym_qualify(pid, info, frames[i].code, frames[i].first_arg, &loc);
		if (err && err != -ENOENT) {
			printf("error\t%llu\tqualify frame %d: %s\n", tid, i, strerror(-err));
			return err;
		}
		if (pysym_method_class(pid, info, frames[i].frame, frames[i].code, cls,
				       sizeof(cls)))
			snprintf(cls, sizeof(cls), "-");
		printf("frame\t%s\t%s\t%s\t%d\t%s\t%d\n", loc.function, loc.name, loc.file,
		       loc.line, cls, frames[i].lasti);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pyproc_info *info;
	struct pysym *sym;
	struct pysym_stats ss;
	char why[256];
	pid_t pid;
	int i, err, ret = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: %s PID THREAD_ID...\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	pid = (pid_t)strtol(argv[1], NULL, 10);
	info = calloc(1, sizeof(*info));
	sym = pysym_new(1024);
	if (!info || !sym) {
		ret = 1;
		goto out_free;
	}
	err = pyproc_inspect(pid, info);
	if (err || !info->is_python) {
		printf("error\t0\tnot python: %s%s%s\n", info->reason, err ? ": " : "",
		       err ? strerror(-err) : "");
		ret = 1;
		goto out_free;
	}
	printf("python\t%s\t%s\t%#llx\t%#x\n", info->version, info->path, info->off.runtime_addr,
	       info->off.flags);
	err = pywalk_validate(pid, &info->off, why, sizeof(why));
	if (err) {
		printf("error\t0\tvalidate: %s\n", why);
		ret = 1;
	} else {
		printf("validate\tok\n");
	}
	for (i = 2; i < argc; i++)
		if (thread_print(pid, info, sym, strtoull(argv[i], NULL, 10)))
			ret = 1;
	/* A second pass must come from the cache, validated, with identical results. */
	for (i = 2; i < argc; i++)
		if (thread_print(pid, info, sym, strtoull(argv[i], NULL, 10)))
			ret = 1;
	pysym_get_stats(sym, &ss);
	printf("stats\thits=%llu misses=%llu stale=%llu evictions=%llu read_errors=%llu "
	       "not_code=%llu no_line=%llu unknown_offset=%llu\n",
	       ss.hits, ss.misses, ss.stale, ss.evictions, ss.read_errors, ss.not_code, ss.no_line,
	       ss.unknown_offset);
	pysym_forget_pid(sym, pid);
out_free:
	pysym_free(sym);
	free(info);
	return ret;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Where `wsaudit trace`'s start-up goes: loads every program of wsaudit's BPF object (the
 * skeleton ./wsaudit uses) with the verifier's statistics on, and prints per program its
 * instructions, the instructions the verifier went through and its verification time, then
 * the whole load and attach times.  Markdown on stdout.  Root.
 *
 * usage: bench_verifier
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "wsaudit.skel.h"

#define MAX_PROGS 64
#define LOG_SIZE (1 << 16)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

int main(void)
{
	static char logs[MAX_PROGS][LOG_SIZE];
	double t_load, t_attach, total_us = 0;
	struct bpf_program *prog;
	struct wsaudit *skel;
	unsigned int n = 0;
	const char *v;
	int err;

	libbpf_set_print(quiet);
	skel = wsaudit__open();
	if (!skel) {
		fprintf(stderr, "bench_verifier: cannot open the BPF object: %s\n",
			strerror(errno));
		return 1;
	}
	/* BPF_LOG_STATS (4): the verifier's summary only, with its time. */
	bpf_object__for_each_program(prog, skel->obj) {
		if (n == MAX_PROGS)
			break;
		bpf_program__set_log_buf(prog, logs[n++], LOG_SIZE);
		bpf_program__set_log_level(prog, 4);
	}
	t_load = now_s();
	err = wsaudit__load(skel);
	t_load = now_s() - t_load;
	if (err) {
		fprintf(stderr, "bench_verifier: load failed: %s\n", strerror(-err));
		wsaudit__destroy(skel);
		return 1;
	}
	t_attach = now_s();
	err = wsaudit__attach(skel);
	t_attach = now_s() - t_attach;
	printf("## Verifier: where the start-up goes (bench_verifier)\n\n");
	printf("Every program of wsaudit's BPF object loaded at once, as `trace` does; per program "
	       "the instructions loaded, the instructions the verifier went through "
	       "(`verified_insns`) and its own time (BPF_LOG_STATS).\n\n");
	printf("| program | instructions | verified | verifier (ms) |\n|---|---|---|---|\n");
	n = 0;
	bpf_object__for_each_program(prog, skel->obj) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		double us = -1;

		if (n == MAX_PROGS)
			break;
		v = strstr(logs[n++], "verification time ");
		if (v)
			us = atof(v + strlen("verification time "));
		bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len);
		if (us >= 0)
			total_us += us;
		printf("| %s | %u | %u | %.1f |\n", bpf_program__name(prog),
		       info.xlated_prog_len / 8, info.verified_insns, us / 1e3);
	}
	printf("\nVerifier total %.0f ms; the whole load %.0f ms; auto-attach %.1f ms%s.\n",
	       total_us / 1e3, t_load * 1e3, t_attach * 1e3, err ? " (failed)" : "");
	wsaudit__destroy(skel);
	return 0;
}

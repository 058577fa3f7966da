// SPDX-License-Identifier: GPL-2.0
/*
 * Attaches the empty_* programs of bench/floor.bpf.c, an empty program on every hook point
 * wsaudit attaches, prints "ATTACHED N" and waits for SIGINT or SIGTERM.
 * bench/walk_cost.py runs it as the floor its configurations are compared with.
 *
 * usage: bench_floor_attach
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "floor.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

int main(void)
{
	struct bpf_program *prog;
	struct floor_bpf *skel;
	int n = 0, err;

	skel = floor_bpf__open();
	if (!skel) {
		fprintf(stderr, "bench_floor_attach: cannot open the programs: %s\n",
			strerror(errno));
		return 1;
	}
	bpf_object__for_each_program(prog, skel->obj) {
		bool empty = !strncmp(bpf_program__name(prog), "empty_", 6);

		bpf_program__set_autoload(prog, empty);
		n += empty;
	}
	err = floor_bpf__load(skel);
	if (!err)
		err = floor_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "bench_floor_attach: cannot load or attach: %s\n", strerror(-err));
		floor_bpf__destroy(skel);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("ATTACHED %d\n", n);
	fflush(stdout);
	while (!stop)
		pause();
	floor_bpf__destroy(skel);
	return 0;
}

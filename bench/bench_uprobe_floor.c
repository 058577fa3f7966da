// SPDX-License-Identifier: GPL-2.0
/*
 * Attaches an empty BPF program where wsaudit hooks uvloop's transport writes in process
 * PID (user/uvhook.c finds them the same way), prints "ATTACHED N" and waits for SIGINT or
 * SIGTERM.  bench/service_cost.py runs it as the floor of what hooking those writes costs.
 *
 * usage: bench_uprobe_floor -p PID
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "uprobe_floor.skel.h"
#include "uvhook.h"

#define LINKS_MAX 64

struct floor {
	struct uprobe_floor_bpf *skel;
	struct bpf_link *links[LINKS_MAX];
	int nlinks;
	pid_t pid;
	int err;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

static void site(void *ctx, const char *path, dev_t dev, ino_t ino, unsigned long long offset)
{
	struct floor *f = ctx;
	struct bpf_link *link;

	if (f->nlinks == LINKS_MAX)
		return;
	link = bpf_program__attach_uprobe(f->skel->progs.empty_transport_write, false, f->pid, path,
					  offset);
	if (!link) {
		f->err = -errno;
		return;
	}
	f->links[f->nlinks++] = link;
}

int main(int argc, char **argv)
{
	struct floor f = { .pid = 0 };
	int opt, n, ret = 1;

	while ((opt = getopt(argc, argv, "p:")) != -1) {
		if (opt != 'p') {
			fprintf(stderr, "usage: %s -p PID\n", argv[0]);
			return 2;
		}
		f.pid = atoi(optarg);
	}
	if (f.pid <= 0) {
		fprintf(stderr, "usage: %s -p PID\n", argv[0]);
		return 2;
	}
	f.skel = uprobe_floor_bpf__open_and_load();
	if (!f.skel) {
		fprintf(stderr, "bench_uprobe_floor: cannot load the program: %s\n",
			strerror(errno));
		return 1;
	}
	n = uvhook_find_in_process(f.pid, site, &f);
	if (n <= 0 || f.err || !f.nlinks) {
		fprintf(stderr,
			"bench_uprobe_floor: pid %d: %d uvloop write sites, %d attached (%s)\n",
			f.pid, n, f.nlinks, strerror(-f.err));
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("ATTACHED %d\n", f.nlinks);
	fflush(stdout);
	while (!stop)
		pause();
	ret = 0;
out:
	for (int i = 0; i < f.nlinks; i++)
		bpf_link__destroy(f.links[i]);
	uprobe_floor_bpf__destroy(f.skel);
	return ret;
}

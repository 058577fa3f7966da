// SPDX-License-Identifier: GPL-2.0
/*
 * The cost floor of hooking uvloop's transport writes: an empty program on the same uprobes
 * wsaudit attaches (bpf/pystack.bpf.c, transport_write_uprobe), for bench_uprobe_floor.  What
 * it costs the service is what any tool that sees each write at the moment Python hands it
 * over pays, before it does anything.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("uprobe")
int empty_transport_write(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

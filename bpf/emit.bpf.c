// SPDX-License-Identifier: GPL-2.0
/* The chunk emitter of the syscall exits (bpf/lib/chunks.bpf.h). */
#include "lib/common.bpf.h"
#include "lib/chunks.bpf.h"

SEC("tracepoint")
int emit_chunks(void *ctx)
{
	return emit_chunks_run(ctx, &emit_progs);
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * Where work handed to another task, callback or thread was created (docs/causal.md).
 *
 * asyncio runs a Task's steps, a scheduled callback (call_soon, call_later,
 * call_soon_threadsafe) and a function given to asyncio.to_thread each in a copy of the
 * contextvars context current when the work was created: PyContext_CopyCurrent, called by
 * the C Task's init, by contextvars.copy_context() (Handle, the pure-Python Task, to_thread)
 * and by uvloop's handles and tasks.  This return probe, attached by the collector in the
 * interpreter's ELF file for each traced process, records the creator's stack with the new
 * context as token; the later send's walk reads the context its thread runs in
 * (PyThreadState.context), and user space joins the two (user/causal.c).
 */
#include "lib/common.bpf.h"
#include "lib/pywalk.bpf.h"

SEC("uretprobe")
int BPF_KRETPROBE(context_copy_uretprobe, void *ctx_obj)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0, tgid = id >> 32;
	const struct py_offsets *off;
	struct walk_scratch *w;
	struct evt_stack *e;

	if (!ctx_obj || !tgid_traced(tgid))
		return 0;
	off = bpf_map_lookup_elem(&py_procs, &tgid);
	w = bpf_map_lookup_elem(&walk_heap, &zero);
	if (!off || !w)
		return 0;
	e = stack_begin(w, id, STACK_AT_CONTEXT_COPY);
	if (!e)
		return 0;
	e->token = (__u64)ctx_obj;
	/*
	 * A copy made under a code object of copy_skips (asyncio.sleep's timer handle) is never
	 * the context of a send: its walk ends there and nothing is sent, counted.
	 */
	py_walk(e, off, w, id, bpf_map_lookup_elem(&copy_skips, &tgid));
	if (e->stopped) {
		count_stat(STAT_COPIES_SKIPPED, 1);
		return 0;
	}
	stack_submit(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

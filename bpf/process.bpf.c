// SPDX-License-Identifier: GPL-2.0
/*
 * Process lifecycle: children of traced processes are traced too (uvicorn and gunicorn fork
 * their workers), exits drop the state, execs are reported while executables are matched and
 * for traced processes (a new image), and close() ends a connection record so a reused inode
 * starts a new generation.
 */
#include "lib/common.bpf.h"

static __always_inline struct evt_proc *proc_event(__u16 type)
{
	struct evt_proc *e;

	e = evt_reserve(sizeof(*e), type);
	if (!e)
		return NULL;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(fork_tp, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	struct py_names_layout *names;
	struct py_offsets *py;
	struct evt_proc *e;

	/* Threads share the tgid and need nothing. */
	if (ctgid == ptgid || !tgid_traced(ptgid))
		return 0;
	if (!tgid_set_traced(ctgid, true)) {
		count_drop(DROP_MAP_FULL);
		return 0;
	}
	/* A forked child has its parent's address space: the same interpreter, same offsets. */
	py = bpf_map_lookup_elem(&py_procs, &ptgid);
	if (py && bpf_map_update_elem(&py_procs, &ctgid, py, BPF_ANY))
		count_drop(DROP_MAP_FULL);
	names = bpf_map_lookup_elem(&py_names, &ptgid);
	if (names && bpf_map_update_elem(&py_names, &ctgid, names, BPF_ANY))
		count_drop(DROP_MAP_FULL);
	e = proc_event(EVT_PROC_FORK);
	if (!e)
		return 0;
	e->pid = ctgid;
	e->ppid = ptgid;
	/*
	 * At once: the collector hooks the child's transports (uvloop) on this record, and
	 * what the child writes before that goes unattributed.
	 */
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int exec_tp(struct trace_event_raw_sched_process_exec *ctx)
{
	unsigned int off = ctx->__data_loc_filename & 0xffff;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	bool traced = tgid_traced(tgid);
	struct evt_proc *e;

	/*
	 * A traced process that runs a new program (a shell starting python) has a new address
	 * space: what was learned of the old image must not be used to walk the new one.  The
	 * collector inspects the new image on the record.
	 */
	if (traced) {
		bpf_map_delete_elem(&py_procs, &tgid);
		bpf_map_delete_elem(&py_names, &tgid);
		bpf_map_delete_elem(&ctx_procs, &tgid);
	}
	if (!cfg_follow_exec && !traced)
		return 0;
	e = proc_event(EVT_PROC_EXEC);
	if (!e)
		return 0;
	e->pid = tgid;
	e->traced = traced;
	e->by_leader = ctx->old_pid == ctx->pid;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + off);
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int exit_tp(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct evt_proc *e;

	bpf_map_delete_elem(&inflight_map, &id);
	bpf_map_delete_elem(&tstate_cache, &id);
	/* The process is gone when its last thread exits. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0 || !tgid_traced(tgid))
		return 0;
	tgid_set_traced(tgid, false);
	bpf_map_delete_elem(&py_procs, &tgid);
	bpf_map_delete_elem(&py_names, &tgid);
	/* The collector drops the marks too; this keeps a reused pid from reading them. */
	bpf_map_delete_elem(&ctx_procs, &tgid);
	e = proc_event(EVT_PROC_EXIT);
	if (!e)
		return 0;
	e->pid = tgid;
	e->exit_code = BPF_CORE_READ(task, exit_code);
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int close_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, zero = 0;
	struct sock_ref ref;
	struct conn_info *c;
	struct io_desc *io;
	bool walk;

	if (!tgid_traced(tgid) || sock_from_fd(ctx->args[0], &ref))
		return 0;
	c = bpf_map_lookup_elem(&conn_map, &ref.ino);
	if (!c)
		return 0;
	/* close(dup(fd)): the socket stays open through its other references. */
	if (file_shared(ref.file))
		return 0;
	/* Bytes sent after the last write seen, by writes none of ours captured. */
	if (c->state != CONN_IGNORE)
		conn_tx_seq(c, &ref, ctx->args[0], 0, 0);
	/*
	 * Who closes a WebSocket of a Python process: its stack goes first, then the close
	 * record (py_stack_walk, bpf/pystack.bpf.c).
	 */
	walk = c->state == CONN_WS && bpf_map_lookup_elem(&py_procs, &tgid);
	io = bpf_map_lookup_elem(&io_heap, &zero);
	if (io) {
		io->conn.ino = ref.ino;
		io->conn.gen = c->gen;
		io->io_pos = c->tx_pos;
		io->fd = ctx->args[0];
		io->closing = walk;
	}
	bpf_map_delete_elem(&conn_map, &ref.ino);
	/* A verdict the connection never lived to read. */
	bpf_map_delete_elem(&verdict_map, &ref.ino);
	if (!io)
		return 0;
	if (walk)
		bpf_tail_call(ctx, &emit_progs, TAIL_PY_STACK);
	io->closing = 0;
	conn_close_emit(io);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

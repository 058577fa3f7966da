// SPDX-License-Identifier: GPL-2.0
/*
 * The Python stack of the thread that made a WebSocket write, at the syscall's exit (see
 * bpf/lib/pywalk.bpf.h), entered by tail call from the write family's exit programs, unless
 * the write sends only buffers whose hand-over to a transport was walked already; and of the
 * thread that closes a WebSocket connection, entered from close_enter.
 */
#include "lib/common.bpf.h"
#include "lib/pywalk.bpf.h"
#include "lib/tls.bpf.h"

SEC("tracepoint")
int py_stack_walk(void *ctx)
{
	return py_stack_walk_run(ctx, &emit_progs, true);
}

/*
 * uvloop's UVStream.write (and the other METH_O "write" methods of its transports) queue the
 * object they are given and send it later from the event loop, when the function that wrote
 * it is gone from the stack.  This uprobe, attached by user/uvhook.c at those methods, records
 * the stack at hand-over with the object's address as token and the transport (self); user
 * space matches the token with the address of the bytes the later writev sends, and links
 * the transport to that writev's connection.  The object's data address goes in
 * handover_map too, so that the writev is not walked again (handed_over).
 */
SEC("uprobe")
int BPF_KPROBE(transport_write_uprobe, void *self, void *data)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0, tgid = id >> 32;
	const struct py_offsets *off;
	struct walk_scratch *w;
	struct evt_stack *e;

	off = bpf_map_lookup_elem(&py_procs, &tgid);
	w = bpf_map_lookup_elem(&walk_heap, &zero);
	if (!off || !w || !data)
		return 0;
	/*
	 * uvloop's SSL transport hands its ciphertext over right after SSL_write: the writer's
	 * stack was taken there, with the plaintext.
	 */
	if (tls_handover((__u64)data))
		return 0;
	e = stack_begin(w, id, STACK_AT_TRANSPORT_WRITE);
	if (!e)
		return 0;
	e->token = (__u64)data;
	/*
	 * The transport, and the object's type and length as they are now: a write still
	 * queued when its connection closes is reported with them (user/handed.c).  Read
	 * after stack_begin, which clears the fields.  PyVarObject: ob_size follows ob_type.
	 */
	e->handed.transport = (__u64)self;
	if (bpf_probe_read_user(&e->handed.obj_type, sizeof(e->handed.obj_type),
				(char *)data + off->object_type) ||
	    bpf_probe_read_user(&e->handed.obj_size, sizeof(e->handed.obj_size),
				(char *)data + off->object_type + 8))
		e->handed.obj_type = e->handed.obj_size = 0;
	py_walk(e, off, w, id, bpf_map_lookup_elem(&stop_sets, &tgid));
	if (stack_submit(e) && off->bytes_data) {
		struct handover_key k = { .tgid = tgid, .data = (__u64)data + off->bytes_data };
		struct handover h = { .ts_ns = e->hdr.ts_ns, .tid = (__u32)id };

		/* Full (LRU): an older entry goes, and its buffer's write is walked. */
		bpf_map_update_elem(&handover_map, &k, &h, BPF_ANY);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

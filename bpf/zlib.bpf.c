// SPDX-License-Identifier: GPL-2.0
/*
 * zlib's deflate() in traced processes (uprobe and uretprobe, attached by the collector for
 * processes with adopted connections; user/zflush.c): when a call that ends a message
 * (Z_SYNC_FLUSH, Z_FULL_FLUSH: permessage-deflate's message end) returns, one small record
 * names the compressor and its output count.  The write of that message follows on the same
 * thread, so the collector learns which compressor is which connection's, and where in its
 * output each message ends, without guessing from content (docs/adoption.md).
 */
#include "lib/common.bpf.h"

#define Z_SYNC_FLUSH 2
#define Z_FULL_FLUSH 3
/* offsetof(z_stream, total_out) on LP64: zlib.h, a public ABI */
#define ZSTREAM_TOTAL_OUT 40

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* pid_tgid */
	__type(value, __u64); /* strm */
} zflush_calls SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(zlib_deflate_entry, void *strm, int flush)
{
	__u64 id = bpf_get_current_pid_tgid(), s = (__u64)strm;

	if (!tgid_traced(id >> 32) || (flush != Z_SYNC_FLUSH && flush != Z_FULL_FLUSH) || !s)
		return 0;
	bpf_map_update_elem(&zflush_calls, &id, &s, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(zlib_deflate_return, int ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct evt_zflush *e;
	__u64 *strm;

	strm = bpf_map_lookup_elem(&zflush_calls, &id);
	if (!strm)
		return 0;
	e = bpf_ringbuf_reserve(&events_rb, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_RINGBUF_FULL);
		goto out;
	}
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->hdr.type = EVT_ZFLUSH;
	e->hdr.version = EVT_VERSION;
	e->hdr.size = sizeof(*e);
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->strm = *strm;
	e->total_out = 0;
	/* ret < 0: the call failed and ended nothing; the record says so with total_out 0 */
	if (ret >= 0 && bpf_probe_read_user(&e->total_out, sizeof(e->total_out),
					    (void *)(*strm + ZSTREAM_TOTAL_OUT)))
		e->total_out = 0;
	bpf_ringbuf_submit(e, 0);
out:
	bpf_map_delete_elem(&zflush_calls, &id);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * The names of the code objects a walk meets, sent while the process lives (docs/names.md).
 *
 * The collector names a frame by reading its code object from the process, often well after
 * the walk: behind a flood it may be seconds, and a process that exits meanwhile takes its
 * code objects with it.  So the walk copies the raw bytes of a code object's header, its
 * co_qualname, co_name, co_filename and line table into a record the first time it meets the
 * object in a process, before the stack that names it.  names_seen keeps what identified each
 * object sent (the fields a freed and reused address would change): while they match, the
 * record already sent names it; when they do not, or nothing was sent, a record goes again.
 * A record that cannot be sent leaves the frame PYF_UNNAMED (counted as names_lost): the
 * collector then reads the process, as without records.
 *
 * A global function, verified once whatever the walk's state at its call.
 */
#include "lib/common.bpf.h"
#include "lib/names.bpf.h"

static __always_inline __u64 head_u64(const __u8 *head, __u16 off)
{
	return *(const __u64 *)(head + (off & (NAMES_CODE_HEAD - 1)));
}

static __always_inline __u64 obj_u64(const struct names_obj *o, __u16 off)
{
	return *(const __u64 *)(o->head + (off & (NAMES_OBJ_HEAD - 1)));
}

static __always_inline __u32 obj_u32(const struct names_obj *o, __u16 off)
{
	return *(const __u32 *)(o->head + (off & (NAMES_OBJ_HEAD - 1)));
}

/*
 * Copies the object at addr: its first NAMES_OBJ_HEAD bytes and at most cap bytes of its data
 * (characters of a str of any kind, or a bytes object's contents).
 */
static __always_inline void copy_obj(const struct py_names_layout *nl, struct names_obj *o,
				     __u8 *data, __u32 cap, __u64 addr, bool is_bytes)
{
	__u64 n, start;
	__u32 state, kind;

	o->len = 0;
	if (!addr) {
		o->status = NAMES_OBJ_NONE;
		return;
	}
	if (bpf_probe_read_user(o->head, NAMES_OBJ_HEAD, (void *)addr)) {
		o->status = NAMES_OBJ_FAULT;
		return;
	}
	if (is_bytes) {
		n = obj_u64(o, nl->var_size);
		start = nl->bytes_data;
	} else {
		state = obj_u32(o, nl->unicode_state);
		kind = (state >> (nl->unicode_kind_shift & 31)) & 7;
		n = obj_u64(o, nl->unicode_length) * kind;
		start = state & nl->unicode_ascii_bit ? nl->unicode_ascii_data :
							nl->unicode_compact_data;
	}
	o->status = NAMES_OBJ_OK;
	if (n > cap) {
		n = cap;
		o->status = NAMES_OBJ_CUT;
	}
	if (n && bpf_probe_read_user(data, n, (void *)(addr + start))) {
		o->status = NAMES_OBJ_FAULT;
		return;
	}
	o->len = n;
}

static __always_inline bool same_ident(const struct names_ident *a, const struct names_ident *b)
{
	return a->filename == b->filename && a->name == b->name && a->qualname == b->qualname &&
	       a->linetable == b->linetable && a->firstlineno == b->firstlineno;
}

__noinline int py_code_names(const struct py_names_layout *nl, __u32 tgid, __u64 code)
{
	struct names_key k = { .tgid = tgid, .code = code };
	struct names_ident id = {}, *seen;
	struct evt_code_names *r;
	struct names_slot *slot;
	__u32 zero = 0, span, si;

	if (!nl)
		return 1;
	k.gen = nl->gen;
	span = nl->code_span;
	r = bpf_map_lookup_elem(&names_heap, &zero);
	if (!r || span > NAMES_CODE_HEAD)
		return 1;
	if (bpf_probe_read_user(r->code_head, span, (void *)code)) {
		count_drop(DROP_NAMES_LOST);
		return 1;
	}
	id.filename = head_u64(r->code_head, nl->code_filename);
	id.name = head_u64(r->code_head, nl->code_name);
	id.qualname = nl->code_qualname == PY_OFF_NONE ? 0 :
							 head_u64(r->code_head, nl->code_qualname);
	id.linetable = head_u64(r->code_head, nl->code_linetable);
	id.firstlineno = (__u32)head_u64(r->code_head, nl->code_firstlineno);
	/* Code objects are 16-byte aligned: the bits above pick the slot. */
	si = (__u32)((code >> 4) ^ (code >> 14) ^ tgid) & (NAMES_CACHE_SLOTS - 1);
	slot = bpf_map_lookup_elem(&names_cache, &si);
	if (slot && slot->key.tgid == k.tgid && slot->key.gen == k.gen && slot->key.code == code &&
	    same_ident(&slot->id, &id))
		return 0;
	seen = bpf_map_lookup_elem(&names_seen, &k);
	if (seen && same_ident(seen, &id)) {
		if (slot) {
			slot->key = k;
			slot->id = id;
		}
		return 0;
	}
	r->hdr.type = EVT_CODE_NAMES;
	r->hdr.version = EVT_VERSION;
	r->hdr.size = sizeof(*r);
	r->hdr.ts_ns = bpf_ktime_get_ns();
	r->tgid = tgid;
	r->gen = nl->gen;
	r->code = code;
	copy_obj(nl, &r->obj[NAMES_QUALNAME], r->qualname, NAMES_NAME_MAX, id.qualname, false);
	copy_obj(nl, &r->obj[NAMES_NAME], r->name, NAMES_NAME_MAX, id.name, false);
	copy_obj(nl, &r->obj[NAMES_FILE], r->file, NAMES_FILE_MAX, id.filename, false);
	copy_obj(nl, &r->obj[NAMES_TABLE], r->table, NAMES_TABLE_MAX, id.linetable, true);
	if (bpf_ringbuf_output(&events_rb, r, sizeof(*r), ringbuf_flags(sizeof(*r), false))) {
		count_drop(DROP_NAMES_LOST);
		/* Sent again at the next walk that meets it. */
		if (seen)
			bpf_map_delete_elem(&names_seen, &k);
		return 1;
	}
	count_stat(STAT_EVENTS, 1);
	bpf_map_update_elem(&names_seen, &k, &id, BPF_ANY);
	if (slot) {
		slot->key = k;
		slot->id = id;
	}
	return 0;
}

__noinline int py_walk_names(const struct py_names_layout *nl, struct evt_stack *e)
{
	__u32 i, n;

	if (!nl || !e)
		return 0;
	n = e->nframes;
	for (i = 0; i < PY_FRAMES_MAX && i < n; i++) {
		if (e->frames[i].flags & PYF_SKIP)
			continue;
		if (py_code_names(nl, e->tgid, e->frames[i].code))
			e->frames[i].flags |= PYF_UNNAMED;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

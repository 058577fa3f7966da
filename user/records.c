// SPDX-License-Identifier: GPL-2.0
#include <errno.h>

#include "records.h"

/*
 * Whether a record is whole for its kind (the header's size within what was read, this
 * version, the fixed part and the variable part), and the process it is about.  0, or
 * -EINVAL for a malformed record or a kind this collector does not know.
 */
static int check(const struct evt_hdr *h, size_t size, pid_t *tgid)
{
	*tgid = 0;
	if (size < sizeof(*h) || h->size > size || h->version != EVT_VERSION)
		return -EINVAL;
	switch (h->type) {
	case EVT_DATA: {
		const struct evt_data *e = (const void *)h;

		if (size < sizeof(*e) || size < sizeof(*e) + e->len)
			return -EINVAL;
		*tgid = (pid_t)e->tgid;
		return 0;
	}
	case EVT_STACK:
		if (!evt_stack_complete(h, size))
			return -EINVAL;
		*tgid = (pid_t)((const struct evt_stack *)h)->tgid;
		return 0;
	case EVT_SEGS: {
		const struct evt_segs *e = (const void *)h;

		if (size < EVT_SEGS_SIZE(0) || e->n > SEGS_PER_CALL || size < EVT_SEGS_SIZE(e->n))
			return -EINVAL;
		*tgid = (pid_t)e->tgid;
		return 0;
	}
	case EVT_ZFLUSH:
		if (size < sizeof(struct evt_zflush))
			return -EINVAL;
		*tgid = (pid_t)((const struct evt_zflush *)h)->tgid;
		return 0;
	case EVT_TLS_LINK:
		return size < sizeof(struct evt_tls_link) ? -EINVAL : 0;
	case EVT_CONN_NEW:
	case EVT_CONN_CLOSE:
	case EVT_CONN_PASSED:
		if (size < sizeof(struct evt_conn))
			return -EINVAL;
		*tgid = (pid_t)((const struct evt_conn *)h)->tgid;
		return 0;
	case EVT_PROC_EXEC:
	case EVT_PROC_EXIT:
	case EVT_PROC_FORK:
		if (size < sizeof(struct evt_proc))
			return -EINVAL;
		*tgid = (pid_t)((const struct evt_proc *)h)->pid;
		return 0;
	case EVT_CODE_NAMES:
		if (size < sizeof(struct evt_code_names))
			return -EINVAL;
		*tgid = (pid_t)((const struct evt_code_names *)h)->tgid;
		return 0;
	}
	/* A kind the kernel side sends and this side does not know: a build out of step. */
	return -EINVAL;
}

int records_dispatch(const struct records *r, const void *data, size_t size)
{
	const struct evt_hdr *h = data;
	const struct record_route *to;
	pid_t tgid;
	int err = check(h, size, &tgid);

	if (err || h->type >= RECORD_KINDS) {
		if (r->malformed.fn)
			r->malformed.fn(r->malformed.ctx, data, size);
		return -EINVAL;
	}
	to = &r->on[h->type];
	return to->fn ? to->fn(to->ctx, data, size) : 0;
}

pid_t records_tgid(const void *data, size_t size)
{
	pid_t tgid;

	return check(data, size, &tgid) ? 0 : tgid;
}

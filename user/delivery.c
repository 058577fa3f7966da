// SPDX-License-Identifier: GPL-2.0
/* Unsent bytes of a connection's writes (see delivery.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "attrib.h"
#include "conntrack.h"
#include "delivery.h"

static void unsent_reset(struct delivery_unsent *u, uint64_t pos)
{
	u->len = 0;
	u->beyond = 0;
	u->pos = pos;
}

/* Whether the kept bytes from pos on start with data: the same bytes tried again. */
static bool unsent_same(const struct delivery_unsent *u, uint64_t pos, const uint8_t *data,
			size_t len)
{
	uint64_t end = u->pos + u->len, n = end - pos;

	if (n > len)
		n = len;
	return !memcmp(u->buf + (pos - u->pos), data, n);
}

uint64_t delivery_unsent_add(struct delivery_unsent *u, uint64_t pos, const uint8_t *data,
			     size_t len, int err, bool first)
{
	uint64_t end = u->pos + u->len, at, over;
	size_t keep, want;
	uint8_t *nb;

	if (first) {
		u->delta = 0;
		if ((!u->len && !u->beyond) || pos < u->pos || pos > end)
			unsent_reset(u, pos);
		else if (u->beyond || !unsent_same(u, pos, data, len))
			u->delta = end + u->beyond - pos;
	}
	at = pos + u->delta;
	end = u->pos + u->len;
	u->err = err;
	/* Bytes tried again are those kept already. */
	over = at < end ? end - at : 0;
	if (over > len)
		over = len;
	if (over == len)
		return at;
	keep = len - over;
	/* A hole before these bytes (a record lost): what follows is not kept. */
	if (at + over != end || u->beyond)
		keep = 0;
	if (u->len + keep > DELIVERY_UNSENT_MAX)
		keep = DELIVERY_UNSENT_MAX - u->len;
	if (u->len + keep > u->cap) {
		want = u->cap ? u->cap : 4096;
		while (want < u->len + keep)
			want *= 2;
		nb = realloc(u->buf, want);
		if (!nb) {
			u->beyond += len - over;
			return UINT64_MAX;
		}
		u->buf = nb;
		u->cap = want;
	}
	if (keep)
		memcpy(u->buf + u->len, data + over, keep);
	u->len += keep;
	u->beyond += len - over - keep;
	return keep || over ? at : UINT64_MAX;
}

void delivery_unsent_sent(struct delivery_unsent *u, uint64_t end)
{
	uint64_t n;

	if (!delivery_unsent_any(u) || end <= u->pos)
		return;
	if (end >= u->pos + u->len + u->beyond) {
		unsent_reset(u, end);
		return;
	}
	n = end - u->pos;
	if (n >= u->len) {
		u->beyond -= n - u->len;
		u->len = 0;
	} else {
		memmove(u->buf, u->buf + n, u->len - n);
		u->len -= n;
	}
	u->pos = end;
}

void delivery_unsent_free(struct delivery_unsent *u)
{
	free(u->buf);
	memset(u, 0, sizeof(*u));
}

const char *delivery_err_name(int err)
{
	switch (err) {
	case 0:
		return "partial";
	case EPIPE:
		return "EPIPE";
	case ECONNRESET:
		return "ECONNRESET";
	case EAGAIN:
		return "EAGAIN";
	case ENOTCONN:
		return "ENOTCONN";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EBADF:
		return "EBADF";
	case ENOBUFS:
		return "ENOBUFS";
	case ENOMEM:
		return "ENOMEM";
	default:
		return "other";
	}
}

bool delivery_abrupt_close(const struct ct_conn *c, const char *why)
{
	return c->state == CT_WEBSOCKET && !c->close_sent &&
	       (!strcmp(why, "closed") || !strcmp(why, "process_exit"));
}

void delivery_abrupt_detail(const struct ct_conn *c, char *buf, size_t size)
{
	const struct attrib_stack *s = c->closer;
	const struct attrib_frame *o = s && s->origin >= 0 ? &s->frames[s->origin] : NULL;

	if (o)
		snprintf(buf, size,
			 "the socket was closed by %s (%s:%d) without a close frame (1006 to the "
			 "client)",
			 o->function, o->file, o->line);
	else
		snprintf(buf, size,
			 "the socket was closed without a close frame (1006 to the client); the "
			 "function that closed it is not known (%s)",
			 s ? unattributed_name(s->why) : "not_walked");
}

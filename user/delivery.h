/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What a connection's writes were given but did not send (DATA_UNSENT records: a write that
 * failed, or sent part), kept by stream position until the stream moves past them (a retry
 * sent them after all) or the connection ends (they never left: lost frames).  Pure and
 * bounded; one per connection, owned by the connection table.  docs/delivery.md.
 */
#ifndef WSAUDIT_DELIVERY_H
#define WSAUDIT_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Unsent bytes kept per connection; past it they are counted, not kept. */
#define DELIVERY_UNSENT_MAX (256 * 1024)

struct delivery_unsent {
	uint8_t *buf;
	size_t len, cap;
	uint64_t pos; /* stream position of buf[0] */
	int err; /* errno of the last write that failed (0: it sent part) */
	uint64_t beyond; /* bytes past DELIVERY_UNSENT_MAX, not kept */
};

/*
 * Bytes [pos, pos + len) a write did not send; err its errno, 0 when it sent part.  A write
 * that tries the same positions again replaces what an earlier one left there.
 */
int delivery_unsent_add(struct delivery_unsent *u, uint64_t pos, const uint8_t *data, size_t len,
			int err);
/* The stream was sent up to position end: what was kept below it left after all. */
void delivery_unsent_sent(struct delivery_unsent *u, uint64_t end);
static inline bool delivery_unsent_any(const struct delivery_unsent *u)
{
	return u->len || u->beyond;
}
void delivery_unsent_free(struct delivery_unsent *u);

struct ct_conn;

#define DELIVERY_ABRUPT_DETAIL "the socket was closed without a close frame (1006 to the client)"

/*
 * A WebSocket connection whose socket was closed (why "closed"), or whose process exited,
 * before the server sent a close frame: the client sees 1006.
 */
bool delivery_abrupt_close(const struct ct_conn *c, const char *why);

/* "EPIPE", "ECONNRESET", "EAGAIN", ...; "partial" for 0 (part of the write was sent). */
const char *delivery_err_name(int err);

#endif /* WSAUDIT_DELIVERY_H */

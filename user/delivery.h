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
	uint64_t beyond; /* bytes past DELIVERY_UNSENT_MAX (or after a hole), not kept */
	uint64_t delta; /* of the write being added: where its bytes go, past pos */
};

/*
 * Bytes [pos, pos + len) a write did not send; err its errno, 0 when it sent part; first:
 * the first such bytes of their write.  A write that tries the same bytes again (a retry)
 * keeps them where they are, and adds what it has more; a write of other bytes at the same positions
 * (after a failure that was not retried) is kept after them, as the stream would have had
 * them.  Returns the position the bytes were kept at, or UINT64_MAX when they were not.
 */
uint64_t delivery_unsent_add(struct delivery_unsent *u, uint64_t pos, const uint8_t *data,
			     size_t len, int err, bool first);
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
/* The abnormal_close detail of such a connection, naming the function that closed it if known. */
void delivery_abrupt_detail(const struct ct_conn *c, char *buf, size_t size);

/* "EPIPE", "ECONNRESET", "EAGAIN", ...; "partial" for 0 (part of the write was sent). */
const char *delivery_err_name(int err);

#endif /* WSAUDIT_DELIVERY_H */

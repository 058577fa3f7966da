/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one reader of kernel records (include/wsaudit/events.h): a record is checked against
 * its kind's layout once, here, and handed to the handler routed for its kind.  Handlers get
 * records whose fixed part and variable part (data bytes, segments, frames) are all there.
 */
#ifndef WSAUDIT_RECORDS_H
#define WSAUDIT_RECORDS_H

#include <stddef.h>
#include <sys/types.h>

#include "wsaudit/events.h"

/*
 * The kinds a route table has room for (enum evt_type starts at 1): its last kind.  A kind
 * added after it, or one this file does not check, is counted malformed, never passed over.
 */
#define RECORD_KINDS (EVT_CODE_NAMES + 1)

/* A handler: rec is a whole record of its kind, size its length.  0 or -errno. */
typedef int (*record_fn)(void *ctx, const void *rec, size_t size);

struct record_route {
	record_fn fn; /* NULL: records of this kind are nobody's, and passed over */
	void *ctx;
};

struct records {
	struct record_route on[RECORD_KINDS];
	/* Told of every malformed record (a short one, a foreign version); optional. */
	struct record_route malformed;
};

/*
 * Hands a record to its kind's route.  Returns the handler's result, 0 for a kind routed
 * nowhere, or -EINVAL for a malformed record or an unknown kind (after the malformed route).
 */
int records_dispatch(const struct records *r, const void *data, size_t size);
/* The process a well-formed record is about; 0 when it names none or is malformed. */
pid_t records_tgid(const void *data, size_t size);

#endif

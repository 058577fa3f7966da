/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The collector's hash tables: uthash (Debian's uthash-dev), intrusive (an entry carries its
 * UT_hash_handle, named hh), set up here once for every table:
 *   - keys are hashed by SipHash under the process's random key (keyhash_table()): neither a
 *     traced process nor a peer can choose keys that share a bucket;
 *   - running out of memory is not fatal: an entry that could not be added is not in the
 *     table (htable_added() is false), and a table that could not grow keeps its buckets.
 * Include this, never uthash.h itself.
 */
#ifndef WSAUDIT_HTABLE_H
#define WSAUDIT_HTABLE_H

#include "keyhash.h"

#define HASH_FUNCTION(keyptr, keylen, hashv) \
	((hashv) = (unsigned int)keyhash_table((keyptr), (keylen)))
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

/* After HASH_ADD_*: whether elt is in its table. */
#define htable_added(elt) ((elt)->hh.tbl != NULL)

#endif

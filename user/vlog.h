/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The agent's violation log: JSON lines to a file or to standard output, never lost in
 * silence.  A record that cannot be written (full disk, removed directory, a short write) is
 * counted, said on stderr (at most once every VLOG_REPORT_EVERY_S seconds) and kept in a
 * bounded queue, in order, until the log takes it; one that finds the queue full is counted
 * as dropped.  A record is never left half written before the next one: a regular file is cut
 * back to the record's start (the whole record goes again later), a pipe or terminal gets the
 * rest of it before anything else.
 *
 * A file is created 0600 and rotated by size, logrotate's way: FILE becomes FILE.1, FILE.1
 * FILE.2 and so on, FILE.N (N = max_files) is removed; the record that would have taken FILE
 * past max_size starts the new one.  vlog_reopen() opens FILE again (after an outside
 * rotation).  One thread only.
 */
#ifndef WSAUDIT_VLOG_H
#define WSAUDIT_VLOG_H

#include <stddef.h>
#include <stdint.h>

#define VLOG_DEFAULT_MAX_SIZE (100ULL << 20)
#define VLOG_DEFAULT_MAX_FILES 5
#define VLOG_DEFAULT_QUEUE (16U << 20)
#define VLOG_REPORT_EVERY_S 10

struct vlog_opts {
	const char *path; /* NULL or "-": standard output */
	uint64_t max_size; /* bytes of FILE before it is rotated; 0: never rotated */
	unsigned int max_files; /* rotated files kept (FILE.1 .. FILE.N), at least 1 */
	size_t queue_max; /* bytes of records held while the log cannot take them */
};

struct vlog_stats {
	uint64_t written; /* records written whole */
	uint64_t write_errors; /* records that could not be written when they came */
	uint64_t dropped; /* records lost: the queue was full */
	uint64_t queued; /* records waiting now */
	uint64_t rotations;
};

struct vlog;

/* NULL with the reason in err when the file cannot be opened. */
struct vlog *vlog_open(const struct vlog_opts *o, char *err, size_t errlen);
/* Writes what the queue holds if it can (what it cannot is said), and frees. */
void vlog_close(struct vlog *l);
/* One record: line is len bytes ending with '\n'. */
void vlog_write(struct vlog *l, const char *line, size_t len);
/* Retries the queue; cheap when it is empty.  Call it every turn of the loop. */
void vlog_flush(struct vlog *l);
/* Opens FILE again (SIGHUP); a failure is said and retried at the next flush. */
void vlog_reopen(struct vlog *l);
void vlog_stats(const struct vlog *l, struct vlog_stats *st);

#endif /* WSAUDIT_VLOG_H */

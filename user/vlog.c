// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "vlog.h"

struct vlog_rec {
	struct vlog_rec *next;
	size_t len;
	size_t done; /* bytes of it already in a log that cannot be cut back */
	char line[];
};

struct vlog {
	struct vlog_opts o;
	char *path; /* NULL: standard output */
	int fd; /* -1: to be opened again */
	bool seekable; /* a regular file: a partial record is cut back */
	uint64_t size; /* of the file, as far as we wrote it */
	struct vlog_rec *head, **tail;
	size_t queue_bytes;
	struct vlog_stats st;
	int last_err; /* the failure being reported; 0 while the log is writable */
	time_t last_report;
};

static int open_file(struct vlog *l)
{
	struct stat sb;
	int fd;

	fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb)) {
		int err = -errno;

		close(fd);
		return err;
	}
	l->fd = fd;
	l->seekable = S_ISREG(sb.st_mode);
	l->size = (uint64_t)sb.st_size;
	return 0;
}

static void close_file(struct vlog *l)
{
	if (l->path && l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

/* FILE.N-1 -> FILE.N ... FILE -> FILE.1, then a new FILE.  Failures are said, not fatal. */
static void rotate(struct vlog *l)
{
	size_t n = strlen(l->path) + 16;
	char from[PATH_MAX], to[PATH_MAX];
	int err;

	if (n > sizeof(from))
		return;
	close_file(l);
	snprintf(to, sizeof(to), "%s.%u", l->path, l->o.max_files);
	if (unlink(to) && errno != ENOENT)
		log_warn("violation log: cannot remove %s: %s", to, strerror(errno));
	for (unsigned int i = l->o.max_files; i > 1; i--) {
		snprintf(from, sizeof(from), "%s.%u", l->path, i - 1);
		snprintf(to, sizeof(to), "%s.%u", l->path, i);
		if (rename(from, to) && errno != ENOENT)
			log_warn("violation log: cannot rename %s: %s", from, strerror(errno));
	}
	snprintf(to, sizeof(to), "%s.1", l->path);
	if (rename(l->path, to))
		log_warn("violation log: cannot rotate %s: %s", l->path, strerror(errno));
	else
		l->st.rotations++;
	err = open_file(l);
	if (err)
		l->last_err = -err;
}

/*
 * Writes rec from rec->done on.  0 when it is whole in the log; -errno otherwise, with a
 * regular file cut back to where the record started so that no half line stays in it.
 */
static int put(struct vlog *l, struct vlog_rec *rec)
{
	ssize_t n;
	int err = 0;

	if (l->fd < 0 && (err = open_file(l)))
		return err;
	if (l->seekable && l->o.max_size && l->size && l->size + rec->len > l->o.max_size) {
		rotate(l);
		if (l->fd < 0)
			return -l->last_err;
	}
	while (rec->done < rec->len) {
		n = write(l->fd, rec->line + rec->done, rec->len - rec->done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -ENOSPC;
			break;
		}
		rec->done += (size_t)n;
		l->size += (uint64_t)n;
	}
	if (!err)
		return 0;
	if (rec->done && l->seekable) {
		/* lseek as well: standard output redirected to a file is not in append mode. */
		if (!ftruncate(l->fd, (off_t)(l->size - rec->done)) &&
		    lseek(l->fd, (off_t)(l->size - rec->done), SEEK_SET) >= 0) {
			l->size -= rec->done;
			rec->done = 0;
		} else {
			/* The file cannot be cut: the next write completes the record. */
			log_warn("violation log: cannot remove a partly written record: %s",
				 strerror(errno));
		}
	}
	return err;
}

/* Said at once the first time, then at most every VLOG_REPORT_EVERY_S seconds. */
static void report(struct vlog *l, int err)
{
	time_t now = time(NULL);

	if (l->last_err && now - l->last_report < VLOG_REPORT_EVERY_S)
		return;
	l->last_err = err;
	l->last_report = now;
	log_err("cannot write the violation log %s: %s (%llu records waiting, %llu not written "
		"at once and %llu dropped in all)",
		l->path ? l->path : "(standard output)", strerror(err),
		(unsigned long long)l->st.queued, (unsigned long long)l->st.write_errors,
		(unsigned long long)l->st.dropped);
}

static void pop(struct vlog *l)
{
	struct vlog_rec *r = l->head;

	l->head = r->next;
	if (!l->head)
		l->tail = &l->head;
	l->queue_bytes -= r->len;
	l->st.queued--;
	free(r);
}

void vlog_flush(struct vlog *l)
{
	int err;

	if (!l->head)
		return;
	while (l->head) {
		err = put(l, l->head);
		if (err) {
			report(l, -err);
			return;
		}
		l->st.written++;
		pop(l);
	}
	log_warn("violation log %s writable again: every waiting record written (%llu dropped "
		 "in all)",
		 l->path ? l->path : "(standard output)", (unsigned long long)l->st.dropped);
	l->last_err = 0;
}

void vlog_write(struct vlog *l, const char *line, size_t len)
{
	struct vlog_rec *rec;
	int err = 0;

	vlog_flush(l);
	if (!len)
		return;
	rec = malloc(sizeof(*rec) + len);
	if (!rec) {
		l->st.write_errors++;
		l->st.dropped++;
		report(l, ENOMEM);
		return;
	}
	rec->next = NULL;
	rec->len = len;
	rec->done = 0;
	memcpy(rec->line, line, len);
	/* Behind a waiting record it waits too: records stay in order. */
	if (!l->head) {
		err = put(l, rec);
		if (!err) {
			l->st.written++;
			free(rec);
			return;
		}
	}
	l->st.write_errors++;
	if (l->queue_bytes + len > l->o.queue_max) {
		l->st.dropped++;
		free(rec);
	} else {
		*l->tail = rec;
		l->tail = &rec->next;
		l->queue_bytes += len;
		l->st.queued++;
	}
	report(l, err ? -err : l->last_err ? l->last_err : EAGAIN);
}

void vlog_reopen(struct vlog *l)
{
	int err;

	if (!l->path)
		return;
	close_file(l);
	err = open_file(l);
	if (err)
		report(l, -err);
}

struct vlog *vlog_open(const struct vlog_opts *o, char *err, size_t errlen)
{
	struct vlog *l = calloc(1, sizeof(*l));
	int ret;

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->o = *o;
	if (!l->o.max_files)
		l->o.max_files = 1;
	l->tail = &l->head;
	l->fd = -1;
	if (!o->path || !strcmp(o->path, "-")) {
		struct stat sb;

		l->fd = STDOUT_FILENO;
		l->seekable = !fstat(l->fd, &sb) && S_ISREG(sb.st_mode);
		l->size = l->seekable ? (uint64_t)lseek(l->fd, 0, SEEK_CUR) : 0;
		/* Standard output is not ours to rename. */
		l->o.max_size = 0;
		return l;
	}
	l->path = strdup(o->path);
	if (!l->path) {
		snprintf(err, errlen, "out of memory");
		free(l);
		return NULL;
	}
	ret = open_file(l);
	if (ret) {
		snprintf(err, errlen, "cannot open the violation log %s: %s", o->path,
			 strerror(-ret));
		free(l->path);
		free(l);
		return NULL;
	}
	return l;
}

void vlog_close(struct vlog *l)
{
	if (!l)
		return;
	vlog_flush(l);
	if (l->head)
		log_err("violation log: %llu records could not be written before exit",
			(unsigned long long)l->st.queued);
	l->st.dropped += l->st.queued;
	while (l->head)
		pop(l);
	close_file(l);
	free(l->path);
	free(l);
}

void vlog_stats(const struct vlog *l, struct vlog_stats *st)
{
	*st = l->st;
}

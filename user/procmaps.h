/* SPDX-License-Identifier: GPL-2.0 */
/*
 * /proc/PID/maps: the one reader of its lines (procmaps_open/next/close), and the files a
 * process maps executable.
 */
#ifndef WSAUDIT_PROCMAPS_H
#define WSAUDIT_PROCMAPS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

/* One line of maps. */
struct procmaps_entry {
	unsigned long long start, end; /* [start, end) */
	unsigned long long offset; /* in the file */
	unsigned long long inode; /* 0: not a file */
	dev_t dev;
	char perms[5]; /* "r-xp" */
	/*
	 * The rest of the line: a path as the process sees it (possibly with spaces, or
	 * " (deleted)"), "[heap]", "[stack]", ..., or "" for an anonymous mapping.  Valid until
	 * the next procmaps_next().
	 */
	const char *name;
};

/* Parses one line of maps (its '\n' is dropped in place).  false: not such a line. */
bool procmaps_parse(char *line, struct procmaps_entry *e);

struct procmaps {
	FILE *f;
	char *line;
	size_t cap;
};

/* 0, or -errno when pid's maps cannot be opened. */
int procmaps_open(struct procmaps *m, pid_t pid);
/* The next mapping in *e (lines of any length; one that does not parse is skipped). */
bool procmaps_next(struct procmaps *m, struct procmaps_entry *e);
void procmaps_close(struct procmaps *m);

/*
 * For each distinct file (device, inode) that pid maps executable and match(name) accepts
 * (name: the path as maps shows it, in the process's mount namespace; match NULL: every
 * file), at most max of them: fn gets a path the kernel can open from any mount namespace
 * (/proc/PID/map_files/...), name, and the file's device and inode.  Returns how many, or
 * -errno.
 */
int procmaps_each_file(pid_t pid, bool (*match)(const char *name), int max,
		       void (*fn)(void *ctx, const char *path, const char *name, dev_t dev,
				  ino_t ino),
		       void *ctx);

#endif /* WSAUDIT_PROCMAPS_H */

// SPDX-License-Identifier: GPL-2.0
/* /proc/PID/maps.  See procmaps.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "procmaps.h"

struct file_id {
	dev_t dev;
	ino_t ino;
};

bool procmaps_parse(char *line, struct procmaps_entry *e)
{
	unsigned int maj, min;
	int pos = 0;

	line[strcspn(line, "\n")] = '\0';
	if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu %n", &e->start, &e->end, e->perms,
		   &e->offset, &maj, &min, &e->inode, &pos) < 7 ||
	    !pos)
		return false;
	e->dev = makedev(maj, min);
	e->name = line + pos;
	return true;
}

int procmaps_open(struct procmaps *m, pid_t pid)
{
	char path[64];

	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	m->f = fopen(path, "re");
	return m->f ? 0 : -errno;
}

bool procmaps_next(struct procmaps *m, struct procmaps_entry *e)
{
	while (getline(&m->line, &m->cap, m->f) > 0)
		if (procmaps_parse(m->line, e))
			return true;
	return false;
}

void procmaps_close(struct procmaps *m)
{
	if (m->f)
		fclose(m->f);
	free(m->line);
	memset(m, 0, sizeof(*m));
}

int procmaps_each_file(pid_t pid, bool (*match)(const char *name), int max,
		       void (*fn)(void *ctx, const char *path, const char *name, dev_t dev,
				  ino_t ino),
		       void *ctx)
{
	struct procmaps_entry e;
	struct file_id *seen;
	struct procmaps m;
	char path[96];
	int n = 0, err;

	if (max <= 0)
		return 0;
	seen = calloc((size_t)max, sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	err = procmaps_open(&m, pid);
	if (err) {
		free(seen);
		return err;
	}
	while (n < max && procmaps_next(&m, &e)) {
		bool dup = false;

		if (e.perms[2] != 'x' || !e.inode || !e.name[0] || (match && !match(e.name)))
			continue;
		for (int i = 0; i < n; i++)
			dup |= seen[i].dev == e.dev && seen[i].ino == (ino_t)e.inode;
		if (dup)
			continue;
		seen[n].dev = e.dev;
		seen[n].ino = (ino_t)e.inode;
		n++;
		snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid, e.start,
			 e.end);
		fn(ctx, path, e.name, e.dev, (ino_t)e.inode);
	}
	procmaps_close(&m);
	free(seen);
	return n;
}

// SPDX-License-Identifier: GPL-2.0
/* The files a process maps.  See procmaps.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "procmaps.h"

#define MAPS_LINE_MAX 4096

struct file_id {
	dev_t dev;
	ino_t ino;
};

int procmaps_each_file(pid_t pid, bool (*match)(const char *name), int max,
		       void (*fn)(void *ctx, const char *path, const char *name, dev_t dev,
				  ino_t ino),
		       void *ctx)
{
	char maps[64], line[MAPS_LINE_MAX], path[96], file[MAPS_LINE_MAX];
	struct file_id *seen;
	int n = 0;
	FILE *f;

	if (max <= 0)
		return 0;
	seen = calloc((size_t)max, sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)pid);
	f = fopen(maps, "re");
	if (!f) {
		free(seen);
		return -errno;
	}
	while (fgets(line, sizeof(line), f) && n < max) {
		unsigned long long lo, hi, inode;
		unsigned int maj, min;
		char perms[8];
		bool dup = false;

		if (sscanf(line, "%llx-%llx %7s %*s %x:%x %llu %4095s", &lo, &hi, perms, &maj, &min,
			   &inode, file) != 7 ||
		    perms[2] != 'x' || !inode || (match && !match(file)))
			continue;
		for (int i = 0; i < n; i++)
			dup |= seen[i].dev == makedev(maj, min) && seen[i].ino == (ino_t)inode;
		if (dup)
			continue;
		seen[n].dev = makedev(maj, min);
		seen[n].ino = (ino_t)inode;
		n++;
		snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid, lo, hi);
		fn(ctx, path, file, makedev(maj, min), (ino_t)inode);
	}
	fclose(f);
	free(seen);
	return n;
}

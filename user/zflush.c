// SPDX-License-Identifier: GPL-2.0
/* Finding a process's zlib.  See zflush.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "zflush.h"

#define MAPS_LINE_MAX 4096
#define LIBS_MAX 4

static bool is_libz(const char *path)
{
	const char *base = strrchr(path, '/');

	return base && !strncmp(base + 1, "libz.so", 7);
}

int zflush_find_libz(pid_t pid, void (*fn)(void *ctx, const char *path, dev_t dev, ino_t ino),
		     void *ctx)
{
	char maps[64], line[MAPS_LINE_MAX], path[96];
	struct {
		dev_t dev;
		ino_t ino;
	} seen[LIBS_MAX];
	int n = 0;
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)pid);
	f = fopen(maps, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f) && n < LIBS_MAX) {
		unsigned long long lo, hi, inode;
		unsigned int maj, min;
		char perms[8], file[MAPS_LINE_MAX];
		bool dup = false;

		if (sscanf(line, "%llx-%llx %7s %*s %x:%x %llu %4095s", &lo, &hi, perms, &maj, &min,
			   &inode, file) != 7 ||
		    perms[2] != 'x' || !inode || !is_libz(file))
			continue;
		for (int i = 0; i < n; i++)
			dup |= seen[i].dev == makedev(maj, min) && seen[i].ino == (ino_t)inode;
		if (dup)
			continue;
		seen[n].dev = makedev(maj, min);
		seen[n].ino = (ino_t)inode;
		n++;
		snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid, lo, hi);
		fn(ctx, path, makedev(maj, min), (ino_t)inode);
	}
	fclose(f);
	return n;
}

// SPDX-License-Identifier: GPL-2.0
/* Finding a process's zlib.  See zflush.h. */
#include <stdbool.h>
#include <string.h>

#include "procmaps.h"
#include "zflush.h"

#define LIBS_MAX 4

static bool is_libz(const char *path)
{
	const char *base = strrchr(path, '/');

	return base && !strncmp(base + 1, "libz.so", 7);
}

struct libz_fn {
	void (*fn)(void *ctx, const char *path, dev_t dev, ino_t ino);
	void *ctx;
};

static void libz_found(void *ctx, const char *path, const char *name, dev_t dev, ino_t ino)
{
	struct libz_fn *z = ctx;

	z->fn(z->ctx, path, dev, ino);
}

int zflush_find_libz(pid_t pid, void (*fn)(void *ctx, const char *path, dev_t dev, ino_t ino),
		     void *ctx)
{
	struct libz_fn z = { .fn = fn, .ctx = ctx };

	return procmaps_each_file(pid, is_libz, LIBS_MAX, libz_found, &z);
}

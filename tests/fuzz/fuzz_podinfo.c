// SPDX-License-Identifier: GPL-2.0
/* The cgroup and containerd bundle parsers on hostile bytes (files a container controls). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "podinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct podinfo pi;

	memset(&pi, 0, sizeof(pi));
	podinfo_parse_cgroup((const char *)data, size, &pi);
	/* The bundle of a container whose cgroup this was, as the lookup does. */
	podinfo_parse_bundle((const char *)data, size, &pi);
	memset(&pi, 0, sizeof(pi));
	podinfo_parse_bundle((const char *)data, size, &pi);
	return 0;
}

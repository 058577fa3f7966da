/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A synthetic memory image of Python objects laid out as CPython 3.11 lays them out, at a
 * fixed address, for the readers of user/pyscope.c (its unit test and its fuzz harness).
 */
#ifndef WSAUDIT_PYSCOPE_IMAGE_H
#define WSAUDIT_PYSCOPE_IMAGE_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "pyscope.h"

#define IMG_BASE 0x7f0010000000ull
#define IMG_SIZE (256u * 1024)

struct img {
	uint8_t b[IMG_SIZE];
	size_t top;
};

/* Type objects live elsewhere: only their addresses are compared. */
static const struct pyscope_layout img_layout = {
	.tuple_type = 0x5500000a1000ull,
	.long_type = 0x5500000a2000ull,
	.str_type = 0x5500000a3000ull,
	.bytes_type = 0x5500000a4000ull,
	.list_type = 0x5500000a5000ull,
	.obj_type = 8,
	.var_size = 16,
	.tuple_item = 24,
	.bytes_data = 32,
	.list_items = 24,
	.str_length = 16,
	.str_state = 32,
	.str_ascii_data = 40,
	.str_compact_bit = 0x20,
	.str_ascii_bit = 0x40,
	.long_tag = false,
	.refcnt_check = true,
	.inst = PYSCOPE_INST_VALUES,
	.type_type = 0x5500000a6000ull,
	.dict_type = 0x5500000a7000ull,
	.member_descr_type = 0x5500000a8000ull,
	.ht_cached_keys = 872,
	.ht_name = 848,
};

static inline int img_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct img *m = ctx;

	if (addr < IMG_BASE || addr - IMG_BASE > IMG_SIZE || len > IMG_SIZE - (addr - IMG_BASE))
		return -EFAULT;
	memcpy(buf, m->b + (addr - IMG_BASE), len);
	return 0;
}

#endif /* WSAUDIT_PYSCOPE_IMAGE_H */

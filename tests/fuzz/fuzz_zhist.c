// SPDX-License-Identifier: GPL-2.0
/*
 * What user/zhist.c makes of a traced process's zlib state: the deflate_state prefix and the
 * z_stream are untrusted bytes.  Input: a state prefix, then a z_stream, then a message to
 * check against two histories built from the rest.  Whatever the bytes, the ranges it
 * derives stay inside the window and the check reads inside its buffers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zhist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct zhist_snap old, now;
	struct zhist_state st;
	uint64_t off;
	uint32_t len;
	size_t rest, n;

	if (size < ZHIST_STATE_PREFIX + ZHIST_STREAM_SIZE + 16)
		return 0;
	if (!zhist_parse_state(data, ZHIST_STATE_PREFIX, 0x7f0000001000ull, &st)) {
		/* the z_stream must point back at the state */
		st.state = 0x7f0000001000ull;
		if (!zhist_parse_stream(data + ZHIST_STATE_PREFIX, ZHIST_STREAM_SIZE, &st)) {
			(void)zhist_at_boundary(&st);
			if (zhist_dict_range(&st, &off, &len)) {
				if (len > st.w_size || off + len > 2ull * st.w_size)
					abort();
			}
		}
	}
	/* Two histories and a message from the rest: counters from the input too. */
	data += ZHIST_STATE_PREFIX + ZHIST_STREAM_SIZE;
	rest = size - ZHIST_STATE_PREFIX - ZHIST_STREAM_SIZE;
	memcpy(&old.total_in, data, 8);
	memcpy(&now.total_in, data + 8, 8);
	old.strm = now.strm = 1;
	data += 16;
	rest -= 16;
	n = rest / 2 < ZHIST_WINDOW_MAX ? rest / 2 : ZHIST_WINDOW_MAX;
	now.len = n;
	memcpy(now.dict, data, n);
	(void)zhist_verify(&old, &now, data + n, rest - n);
	return 0;
}

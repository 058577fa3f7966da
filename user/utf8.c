// SPDX-License-Identifier: GPL-2.0
/*
 * UTF-8 validation.  Written here rather than taken from a library: the check is a few
 * lines, and neither jansson nor zlib exposes one for arbitrary buffers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* Bytes of the well-formed sequence at s[0..len), 0 when there is none. */
static size_t seq_len(const uint8_t *s, size_t len)
{
	uint8_t c = s[0];
	uint32_t cp;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 1;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len - 1 < n)
		return 0;
	for (size_t k = 1; k <= n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n + 1;
}

bool utf8_valid(const void *data, size_t len)
{
	const uint8_t *s = data;
	size_t i = 0, n;

	while (i < len) {
		n = seq_len(s + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

char *utf8_escape(const char *str)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *s = (const uint8_t *)str;
	size_t len = strlen(str), i = 0, o = 0, n;
	char *out = malloc(4 * len + 1);

	if (!out)
		return NULL;
	while (i < len) {
		n = seq_len(s + i, len - i);
		if (n) {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
			continue;
		}
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[s[i] >> 4];
		out[o++] = hex[s[i] & 15];
		i++;
	}
	out[o] = '\0';
	return out;
}

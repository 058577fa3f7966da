/* SPDX-License-Identifier: GPL-2.0 */
/* Token builders shared by the JWT and identity unit tests. */
#ifndef WSAUDIT_TEST_JWT_TOKENS_H
#define WSAUDIT_TEST_JWT_TOKENS_H

#include <stddef.h>
#include <stdio.h>

/* base64url without padding into out (NUL-terminated); returns the length. */
static inline size_t b64url(const void *in, size_t len, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *s = in;
	size_t o = 0, i;

	for (i = 0; i + 2 < len; i += 3) {
		out[o++] = a[s[i] >> 2];
		out[o++] = a[(s[i] & 3) << 4 | s[i + 1] >> 4];
		out[o++] = a[(s[i + 1] & 15) << 2 | s[i + 2] >> 6];
		out[o++] = a[s[i + 2] & 63];
	}
	if (len - i == 1) {
		out[o++] = a[s[i] >> 2];
		out[o++] = a[(s[i] & 3) << 4];
	} else if (len - i == 2) {
		out[o++] = a[s[i] >> 2];
		out[o++] = a[(s[i] & 3) << 4 | s[i + 1] >> 4];
		out[o++] = a[(s[i + 1] & 15) << 2];
	}
	out[o] = '\0';
	return o;
}

/* header.payload.signature with a fixed HS256 header and a dummy signature. */
static inline size_t make_jwt(const char *payload, size_t len, char *out)
{
	size_t o = (size_t)sprintf(out, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.");

	o += b64url(payload, len, out + o);
	o += (size_t)sprintf(out + o, ".c2lnbmF0dXJl");
	return o;
}

/* base64url(JWT), as browsers put it in a subprotocol entry. */
static inline size_t make_wrapped(const char *payload, size_t len, char *out, char *tmp)
{
	size_t n = make_jwt(payload, len, tmp);

	return b64url(tmp, n, out);
}

#endif /* WSAUDIT_TEST_JWT_TOKENS_H */

// SPDX-License-Identifier: GPL-2.0
/*
 * JWT payload extraction.  The base64url decoder is written here because none of the
 * libraries wsaudit links decodes the URL-safe alphabet strictly (OpenSSL's EVP_DecodeBlock
 * takes only '+' '/' and padded input); it is small and fuzzed.
 */
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

ssize_t jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t size)
{
	size_t o = 0, pad = 0;
	unsigned int acc = 0, bits = 0;

	/* Padding, when present, must complete the last quantum exactly. */
	while (pad < len && pad < 3 && in[len - 1 - pad] == '=')
		pad++;
	if (pad && (len % 4 || pad > 2))
		return -1;
	len -= pad;
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6 | (unsigned int)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= size)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* Non-zero leftover bits mean a second spelling of the same bytes: refuse it. */
	if (acc & ((1u << bits) - 1))
		return -1;
	return (ssize_t)o;
}

static bool all_b64url(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (b64url_value((unsigned char)s[i]) < 0)
			return false;
	return true;
}

enum identity_reason jwt_payload(const char *token, size_t len, bool wrapped, json_t **payload)
{
	unsigned char *inner = NULL, *json = NULL;
	const char *dot1, *dot2, *seg;
	enum identity_reason r;
	json_t *root = NULL;
	ssize_t n;

	*payload = NULL;
	if (len > IDENTITY_MAX_TOKEN)
		return IDENTITY_TOO_LONG;
	if (!len)
		return IDENTITY_NOT_JWT;
	if (wrapped) {
		inner = malloc(len);
		if (!inner)
			return IDENTITY_NO_MEMORY;
		n = jwt_b64url_decode(token, len, inner, len);
		if (n < 0) {
			r = IDENTITY_BAD_BASE64;
			goto out;
		}
		token = (const char *)inner;
		len = (size_t)n;
	}
	/* header.payload.signature: exactly two dots (five parts would be JWE: not readable). */
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', token + len - dot1 - 1) : NULL;
	if (!dot1 || !dot2 || memchr(dot2 + 1, '.', token + len - dot2 - 1) || dot1 == token ||
	    dot2 == dot1 + 1) {
		r = IDENTITY_NOT_JWT;
		goto out;
	}
	/* Any other byte (NUL, space, '+') means this is not a compact JWS. */
	if (!all_b64url(token, dot1 - token) || !all_b64url(dot2 + 1, token + len - dot2 - 1)) {
		r = IDENTITY_NOT_JWT;
		goto out;
	}
	seg = dot1 + 1;
	json = malloc(dot2 - seg);
	if (!json) {
		r = IDENTITY_NO_MEMORY;
		goto out;
	}
	n = jwt_b64url_decode(seg, dot2 - seg, json, dot2 - seg);
	if (n < 0) {
		r = IDENTITY_BAD_BASE64;
		goto out;
	}
	r = identity_json_parse(json, (size_t)n, &root);
	if (r != IDENTITY_OK)
		goto out;
	if (!json_is_object(root)) {
		json_decref(root);
		r = IDENTITY_NOT_OBJECT;
		goto out;
	}
	*payload = root;
out:
	free(json);
	free(inner);
	return r;
}

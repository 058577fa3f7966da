/* SPDX-License-Identifier: GPL-2.0 */
/*
 * JSON Web Tokens (RFC 7519, JWS compact serialization RFC 7515 section 7.1), read only far
 * enough to get at the payload's claims.  Signatures are NOT verified and the header's alg
 * is not looked at: wsaudit names the user a connection claims to be, it does not
 * authenticate.  Hostile input (bad base64url, huge, deeply nested, not an object, embedded
 * NULs) gives a named reason, never a crash or a partial value.
 */
#ifndef WSAUDIT_JWT_H
#define WSAUDIT_JWT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "idjson.h"

/*
 * base64url (RFC 4648 section 5): '=' padding optional, no whitespace, unused trailing bits
 * zero.  Returns the decoded length, or -1 when the input is not base64url or out[size] is
 * too small.
 */
ssize_t jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t size);

/*
 * The payload of token[len] as a JSON object (*payload, to json_decref), set only when the
 * result is IDENTITY_OK; NOT_OBJECT when it is valid JSON but not an object.  wrapped: the token is
 * itself base64url-encoded, as browsers put it in a Sec-WebSocket-Protocol entry (whose
 * syntax forbids the dots of a JWT).
 */
enum identity_reason jwt_payload(const char *token, size_t len, bool wrapped, json_t **payload);

#endif /* WSAUDIT_JWT_H */

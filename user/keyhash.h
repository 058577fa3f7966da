/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Keyed hashing of values an untrusted party chooses (libsodium).  Two keys, two jobs:
 *
 * - Tables: SipHash-2-4 under a random key drawn once per process (getrandom), for every
 *   hash table whose keys come from traffic or from a traced process (ownership keys,
 *   buffer and code addresses).  Without the key nobody can choose values that land in one
 *   bucket, so a lookup stays short whatever the traffic.
 * - Identities: the `u#` display of a user id is keyed BLAKE2b under a key per deployment
 *   (a file, mounted from a Secret), so displays correlate across the nodes of one cluster
 *   and an id cannot be recovered by hashing guesses without the key.  Without a key file,
 *   a random key is made for the run: displays then correlate only within the run.
 */
#ifndef WSAUDIT_KEYHASH_H
#define WSAUDIT_KEYHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 of data under the process's random key. */
uint64_t keyhash_table(const void *data, size_t len);
/* The same of two integers (an address and a pid, ...). */
uint64_t keyhash_table2(uint64_t a, uint64_t b);

/* Bytes of an identity key file: at least this much entropy is asked for. */
#define KEYHASH_KEY_MIN 16
#define KEYHASH_KEY_MAX 4096
/* "u#" + 12 hex digits + NUL */
#define KEYHASH_DISPLAY_LEN 15
/* "k#" + 12 hex digits + NUL */
#define KEYHASH_FINGERPRINT_LEN 15

/* The environment variable naming the identity key file when no option does. */
#define KEYHASH_ENV "WSAUDIT_IDENTITY_KEY"

/*
 * Sets the identity key from a file (NULL: the file named by $WSAUDIT_IDENTITY_KEY, or a
 * random key for this run when that is unset).  The file's bytes are the key material
 * (KEYHASH_KEY_MIN..KEYHASH_KEY_MAX bytes; a trailing newline is part of it).  Returns 0,
 * or -errno with a reason in err; the key is unchanged on failure.
 */
int keyhash_identity_setup(const char *path, char *err, size_t errsz);
/* "file:PATH" or "generated": where the identity key came from. */
const char *keyhash_identity_source(void);
/*
 * A fingerprint of the identity key ("k#" + 12 hex), safe to print: two nodes that show
 * the same fingerprint show the same displays.
 */
const char *keyhash_identity_fingerprint(void);
/*
 * The display of a user id: "u#" and 12 hex digits of keyed BLAKE2b.  Uses a random key
 * when keyhash_identity_setup() was not called.
 */
void keyhash_identity_display(const char *value, char out[KEYHASH_DISPLAY_LEN]);
/* The same for a value of another kind (prefix "t" for a message type: "t#..."). */
void keyhash_identity_display_as(const char *prefix, const char *value, char *out, size_t size);

#endif /* WSAUDIT_KEYHASH_H */

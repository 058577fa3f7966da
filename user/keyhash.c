// SPDX-License-Identifier: GPL-2.0
/* Keyed hashing of untrusted values with libsodium.  See keyhash.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <sodium.h>

#include "keyhash.h"

static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static uint8_t table_key[crypto_shorthash_siphash24_KEYBYTES];

static pthread_once_t identity_once = PTHREAD_ONCE_INIT;
static bool identity_set;
static uint8_t identity_key[crypto_generichash_KEYBYTES];
static char identity_source[4096 + 8] = "generated";
static char identity_fp[KEYHASH_FINGERPRINT_LEN];
static unsigned int identity_gen; /* bumped by each new key: the display caches start afresh */

static void random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* No randomness means no keyed hashing: refuse to run unkeyed. */
			perror("wsaudit: getrandom");
			abort();
		}
		p += n;
		len -= (size_t)n;
	}
}

static void table_init(void)
{
	if (sodium_init() < 0)
		abort();
	random_bytes(table_key, sizeof(table_key));
}

uint64_t keyhash_table(const void *data, size_t len)
{
	uint8_t h[crypto_shorthash_siphash24_BYTES];
	uint64_t v;

	pthread_once(&table_once, table_init);
	crypto_shorthash_siphash24(h, data, len, table_key);
	memcpy(&v, h, sizeof(v));
	return v;
}

uint64_t keyhash_table2(uint64_t a, uint64_t b)
{
	uint64_t in[2] = { a, b };

	return keyhash_table(in, sizeof(in));
}

static void hex12(const uint8_t *h, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 6; i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 15];
	}
	out[12] = '\0';
}

static void set_key(const uint8_t *material, size_t len, const char *source)
{
	static const char fp_domain[] = "wsaudit identity key fingerprint";
	uint8_t h[crypto_generichash_BYTES];

	/* Any length of key material becomes one BLAKE2b key. */
	crypto_generichash(identity_key, sizeof(identity_key), material, len, NULL, 0);
	crypto_generichash(h, sizeof(h), (const uint8_t *)fp_domain, sizeof(fp_domain) - 1,
			   identity_key, sizeof(identity_key));
	memcpy(identity_fp, "k#", 2);
	hex12(h, identity_fp + 2);
	snprintf(identity_source, sizeof(identity_source), "%s", source);
	identity_set = true;
	__atomic_add_fetch(&identity_gen, 1, __ATOMIC_RELEASE);
}

static void identity_generate(void)
{
	uint8_t material[32];

	if (sodium_init() < 0)
		abort();
	if (identity_set)
		return;
	random_bytes(material, sizeof(material));
	set_key(material, sizeof(material), "generated");
	sodium_memzero(material, sizeof(material));
}

static int read_key_file(const char *path, uint8_t *buf, size_t *len, char *err, size_t errsz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;

	if (fd < 0) {
		int e = errno;

		snprintf(err, errsz, "identity key %s: %s", path, strerror(e));
		return -e;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, KEYHASH_KEY_MAX + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			close(fd);
			snprintf(err, errsz, "identity key %s: %s", path, strerror(e));
			return -e;
		}
		if (!r)
			break;
		n += (size_t)r;
		if (n > KEYHASH_KEY_MAX)
			break;
	}
	close(fd);
	if (n < KEYHASH_KEY_MIN || n > KEYHASH_KEY_MAX) {
		snprintf(err, errsz, "identity key %s: %zu bytes (%d to %d expected)", path, n,
			 KEYHASH_KEY_MIN, KEYHASH_KEY_MAX);
		return -EINVAL;
	}
	*len = n;
	return 0;
}

int keyhash_identity_setup(const char *path, char *err, size_t errsz)
{
	uint8_t buf[KEYHASH_KEY_MAX + 1];
	char source[sizeof(identity_source)];
	size_t len = 0;
	int ret;

	if (errsz)
		err[0] = '\0';
	if (sodium_init() < 0) {
		snprintf(err, errsz, "libsodium failed to initialise");
		return -EIO;
	}
	if (!path || !*path)
		path = getenv(KEYHASH_ENV);
	if (!path || !*path) {
		pthread_once(&identity_once, identity_generate);
		return 0;
	}
	ret = read_key_file(path, buf, &len, err, errsz);
	if (ret)
		return ret;
	snprintf(source, sizeof(source), "file:%s", path);
	set_key(buf, len, source);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

const char *keyhash_identity_source(void)
{
	pthread_once(&identity_once, identity_generate);
	return identity_source;
}

const char *keyhash_identity_fingerprint(void)
{
	pthread_once(&identity_once, identity_generate);
	return identity_fp;
}

/*
 * The last displays of short values, per thread: a frame names the same few users and types
 * again and again, and a keyed BLAKE2b per name was a tenth of the collector's CPU per
 * frame.  Direct-mapped on a hash anyone can collide: a collision only costs the BLAKE2b.
 */
#define DISPLAY_CACHE 256
#define DISPLAY_CACHE_KEY 64 /* prefix, NUL and value: longer ones are not cached */

struct display_entry {
	unsigned int gen; /* identity_gen when made; 0: empty */
	unsigned char len;
	char key[DISPLAY_CACHE_KEY];
	char hex[13];
};

static __thread struct display_entry display_cache[DISPLAY_CACHE];

static void identity_hex(const char *prefix, const char *value, char hex[13])
{
	crypto_generichash_state st;
	uint8_t h[16];

	/* The prefix with its NUL separates the kinds: a type never shows as a user's hash. */
	crypto_generichash_init(&st, identity_key, sizeof(identity_key), sizeof(h));
	crypto_generichash_update(&st, (const uint8_t *)prefix, strlen(prefix) + 1);
	crypto_generichash_update(&st, (const uint8_t *)value, strlen(value));
	crypto_generichash_final(&st, h, sizeof(h));
	hex12(h, hex);
}

void keyhash_identity_display_as(const char *prefix, const char *value, char *out, size_t size)
{
	size_t pl = strlen(prefix) + 1, vl = strlen(value);
	struct display_entry *e = NULL;
	unsigned int gen;
	char hex[13];

	pthread_once(&identity_once, identity_generate);
	gen = __atomic_load_n(&identity_gen, __ATOMIC_ACQUIRE);
	if (pl + vl <= DISPLAY_CACHE_KEY) {
		uint32_t h = 2166136261u; /* FNV-1a */

		for (size_t i = 0; i < pl; i++)
			h = (h ^ (unsigned char)prefix[i]) * 16777619u;
		for (size_t i = 0; i < vl; i++)
			h = (h ^ (unsigned char)value[i]) * 16777619u;
		e = &display_cache[h % DISPLAY_CACHE];
		if (e->gen != gen || e->len != pl + vl || memcmp(e->key, prefix, pl) ||
		    memcmp(e->key + pl, value, vl)) {
			identity_hex(prefix, value, e->hex);
			memcpy(e->key, prefix, pl);
			memcpy(e->key + pl, value, vl);
			e->len = (unsigned char)(pl + vl);
			e->gen = gen;
		}
		memcpy(hex, e->hex, sizeof(hex));
	} else {
		identity_hex(prefix, value, hex);
	}
	if (size >= strlen(prefix) + sizeof("#") + 12)
		snprintf(out, size, "%s#%s", prefix, hex);
	else if (size)
		out[0] = '\0';
}

void keyhash_identity_display(const char *value, char out[KEYHASH_DISPLAY_LEN])
{
	keyhash_identity_display_as("u", value, out, KEYHASH_DISPLAY_LEN);
}

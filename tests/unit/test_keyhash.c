// SPDX-License-Identifier: GPL-2.0
/*
 * Keyed hashing: the identity display against an independent BLAKE2b (Python's hashlib,
 * values below), its dependence on the key, and the table hash's spread of values chosen
 * to collide under the unkeyed FNV-1a it replaced.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "keyhash.h"

static char *key_file(const char *content)
{
	char *path = strdup("/tmp/wsaudit-keyhash-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	return path;
}

/*
 * key = blake2b(material, 32); display = blake2b(b"u\0" + id, key=key, 16)[:6] in hex:
 *   python3 -c 'import hashlib; k = hashlib.blake2b(b"0123456789abcdef-wsaudit-test",
 *     digest_size=32).digest(); print(hashlib.blake2b(b"u\0alice", key=k,
 *     digest_size=16).hexdigest()[:12])'
 */
static void test_identity_display_reference(void **state)
{
	char *path = key_file("0123456789abcdef-wsaudit-test"), err[256], out[KEYHASH_DISPLAY_LEN];
	char type[32], src[300];

	assert_int_equal(keyhash_identity_setup(path, err, sizeof(err)), 0);
	keyhash_identity_display("alice", out);
	assert_string_equal(out, "u#7be934a692f9");
	keyhash_identity_display_as("t", "alice", type, sizeof(type));
	assert_string_equal(type, "t#2aeadcb6afef");
	assert_string_equal(keyhash_identity_fingerprint(), "k#8a2b193292bc");
	/*
	 * The same again, cached or not (values up to 62 bytes are cached with "u"), after
	 * hundreds of other values have gone through the cache:
	 * ... hashlib.blake2b(b"u\0" + b"a" * N, key=k, digest_size=16).hexdigest()[:12]
	 */
	for (int round = 0; round < 3; round++) {
		static const char *const want[] = { "u#108295e4173b", "u#88802c67e298",
						    "u#788271e9977c" };
		char many[32], aaa[64];

		for (int i = 0; i < 600; i++) {
			snprintf(many, sizeof(many), "user-%d", i);
			keyhash_identity_display(many, out);
		}
		for (int n = 61; n <= 63; n++) {
			memset(aaa, 'a', (size_t)n);
			aaa[n] = '\0';
			keyhash_identity_display(aaa, out);
			assert_string_equal(out, want[n - 61]);
		}
		keyhash_identity_display("alice", out);
		assert_string_equal(out, "u#7be934a692f9");
	}
	snprintf(src, sizeof(src), "file:%s", path);
	assert_string_equal(keyhash_identity_source(), src);
	unlink(path);
	free(path);
}

static void test_identity_display_depends_on_key(void **state)
{
	char *a = key_file("first deployment key......"),
	     *b = key_file("second deployment key.....");
	char err[256], da[KEYHASH_DISPLAY_LEN], db[KEYHASH_DISPLAY_LEN], da2[KEYHASH_DISPLAY_LEN];

	assert_int_equal(keyhash_identity_setup(a, err, sizeof(err)), 0);
	keyhash_identity_display("user4711@example.com", da);
	assert_int_equal(keyhash_identity_setup(b, err, sizeof(err)), 0);
	keyhash_identity_display("user4711@example.com", db);
	assert_string_not_equal(da, db);
	/* and the same key gives the same display: nodes of one cluster agree */
	assert_int_equal(keyhash_identity_setup(a, err, sizeof(err)), 0);
	keyhash_identity_display("user4711@example.com", da2);
	assert_string_equal(da, da2);
	unlink(a);
	unlink(b);
	free(a);
	free(b);
}

static void test_identity_key_file_errors(void **state)
{
	char *shortkey = key_file("short"), err[256], before[KEYHASH_DISPLAY_LEN],
	     after[KEYHASH_DISPLAY_LEN];

	keyhash_identity_display("bob", before);
	assert_int_equal(keyhash_identity_setup(shortkey, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "5 bytes"));
	assert_int_equal(keyhash_identity_setup("/nonexistent/key", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/key"));
	/* a refused key changes nothing */
	keyhash_identity_display("bob", after);
	assert_string_equal(before, after);
	unlink(shortkey);
	free(shortkey);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Values that all share one FNV-1a bucket of 8192 spread over the keyed table hash. */
static void test_table_hash_spreads_fnv_collisions(void **state)
{
	enum { N = 200, BUCKETS = 8192 };
	static unsigned short count[BUCKETS];
	char key[64];
	unsigned int found = 0, worst = 0;

	for (unsigned long i = 0; found < N; i++) {
		snprintf(key, sizeof(key), "thread_id=t-%lu", i);
		if (fnv1a(key) % BUCKETS)
			continue;
		found++;
		if (++count[keyhash_table(key, strlen(key)) % BUCKETS] > worst)
			worst = count[keyhash_table(key, strlen(key)) % BUCKETS];
	}
	/* 200 balls in 8192 bins: a chain of 5 has odds below 1e-7 */
	assert_true(worst < 5);
	assert_int_equal(keyhash_table("x", 1), keyhash_table("x", 1));
	assert_true(keyhash_table2(1, 2) != keyhash_table2(2, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_display_reference),
		cmocka_unit_test(test_identity_display_depends_on_key),
		cmocka_unit_test(test_identity_key_file_errors),
		cmocka_unit_test(test_table_hash_spreads_fnv_collisions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

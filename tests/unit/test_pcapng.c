// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pcapng.h"

static uint32_t u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint16_t u16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A block's type and total length, checked: a multiple of 4, the same at both ends. */
static uint32_t block(const struct pcapng_buf *b, size_t off, uint32_t *type)
{
	uint32_t len;

	assert_true(off + 12 <= b->len);
	*type = u32(b->p + off);
	len = u32(b->p + off + 4);
	assert_int_equal(len % 4, 0);
	assert_true(off + len <= b->len);
	assert_int_equal(u32(b->p + off + len - 4), len);
	return len;
}

/* The options at p (up to end): the comments, in order, into out. */
static size_t options(const uint8_t *p, const uint8_t *end, uint16_t want, char out[][5000],
		      size_t max)
{
	size_t n = 0;

	while (p + 4 <= end) {
		uint16_t code = u16(p), len = u16(p + 2);

		if (code == 0) {
			assert_int_equal(len, 0);
			return n;
		}
		assert_true(p + 4 + len <= end);
		if (code == want && n < max) {
			memcpy(out[n], p + 4, len);
			out[n][len] = '\0';
			n++;
		}
		p += 4 + ((len + 3u) & ~3u);
	}
	fail_msg("options without their end");
	return n;
}

static void test_header(void **state)
{
	struct pcapng_buf b = {};
	char got[2][5000];
	uint32_t type, len, len2;

	(void)state;
	assert_int_equal(pcapng_header(&b, "wsaudit test"), 0);
	len = block(&b, 0, &type);
	assert_int_equal(type, 0x0A0D0D0A);
	assert_int_equal(u32(b.p + 8), 0x1A2B3C4D);
	assert_int_equal(u16(b.p + 12), 1);
	assert_int_equal(u16(b.p + 14), 0);
	assert_int_equal(options(b.p + 24, b.p + len - 4, 4, got, 2), 1);
	assert_string_equal(got[0], "wsaudit test");

	len2 = block(&b, len, &type);
	assert_int_equal(type, 1);
	assert_int_equal(u16(b.p + len + 8), PCAPNG_LINKTYPE_RAW);
	assert_int_equal(options(b.p + len + 16, b.p + len + len2 - 4, 9, got, 2), 1);
	assert_int_equal((unsigned char)got[0][0], 9); /* nanoseconds */
	assert_int_equal(len + len2, b.len);
	pcapng_buf_free(&b);
}

static void addrs(struct pcapng_addr *src, struct pcapng_addr *dst, bool v6)
{
	assert_int_equal(pcapng_parse_addr(v6 ? "[2001:db8::1]:8765" : "10.1.2.3:8765", src), 0);
	assert_int_equal(pcapng_parse_addr(v6 ? "[2001:db8::2]:40000" : "10.9.8.7:40000", dst), 0);
}

/* One packet with comments: every field as given, both checksums valid. */
static void check_packet(bool v6)
{
	static const uint8_t payload[] = { 0x81, 0x05, 'h', 'e', 'l', 'l', 'o' };
	const char *comments[] = { "frame 1: text len 5", "é, and a second one" };
	struct pcapng_addr src, dst;
	struct pcapng_seg s = {
		.src = &src,
		.dst = &dst,
		.seq = 0xfffffff0U,
		.ack = 0x20000011U,
		.flags = PCAPNG_TCP_PSH | PCAPNG_TCP_ACK,
		.ts_ns = 1764770000123456789ULL,
		.data = payload,
		.len = sizeof(payload),
	};
	struct pcapng_buf b = {};
	size_t iph = v6 ? 40 : 20, caplen;
	const uint8_t *pkt, *tcp;
	char got[4][5000];
	uint32_t type, len, sum = 0;

	addrs(&src, &dst, v6);
	assert_int_equal(pcapng_packet(&b, &s, comments, 2), 0);
	len = block(&b, 0, &type);
	assert_int_equal(len, b.len);
	assert_int_equal(type, 6);
	assert_int_equal(u32(b.p + 8), 0);
	assert_int_equal(((uint64_t)u32(b.p + 12) << 32) | u32(b.p + 16), s.ts_ns);
	caplen = u32(b.p + 20);
	assert_int_equal(caplen, iph + 20 + sizeof(payload));
	assert_int_equal(u32(b.p + 24), caplen);
	pkt = b.p + 28;
	tcp = pkt + iph;
	if (v6) {
		assert_int_equal(pkt[0] >> 4, 6);
		assert_int_equal(be16(pkt + 4), 20 + sizeof(payload));
		assert_int_equal(pkt[6], 6);
		assert_memory_equal(pkt + 8, src.ip, 16);
		assert_memory_equal(pkt + 24, dst.ip, 16);
		for (int i = 8; i < 40; i += 2)
			sum += be16(pkt + i);
	} else {
		assert_int_equal(pkt[0], 0x45);
		assert_int_equal(be16(pkt + 2), caplen);
		assert_int_equal(pkt[9], 6);
		assert_memory_equal(pkt + 12, src.ip, 4);
		assert_memory_equal(pkt + 16, dst.ip, 4);
		/* A header with its checksum sums to 0xffff: the checksum of it is 0. */
		assert_int_equal(pcapng_csum(0, pkt, 20), 0);
		for (int i = 12; i < 20; i += 2)
			sum += be16(pkt + i);
	}
	assert_int_equal(be16(tcp), 8765);
	assert_int_equal(be16(tcp + 2), 40000);
	assert_int_equal(be32(tcp + 4), s.seq);
	assert_int_equal(be32(tcp + 8), s.ack);
	assert_int_equal(tcp[12] >> 4, 5);
	assert_int_equal(tcp[13], PCAPNG_TCP_PSH | PCAPNG_TCP_ACK);
	assert_memory_equal(tcp + 20, payload, sizeof(payload));
	/* The pseudo-header, the header and the payload with its checksum sum to 0xffff. */
	sum += 6 + 20 + sizeof(payload);
	assert_int_equal(pcapng_csum(sum, tcp, 20 + sizeof(payload)), 0);
	assert_int_equal(options(pkt + ((caplen + 3) & ~3u), b.p + len - 4, 1, got, 4), 2);
	assert_string_equal(got[0], comments[0]);
	assert_string_equal(got[1], comments[1]);
	pcapng_buf_free(&b);
}

static void test_ipv4_packet(void **state)
{
	(void)state;
	check_packet(false);
}

static void test_ipv6_packet(void **state)
{
	(void)state;
	check_packet(true);
}

/* An empty segment (a SYN, a FIN, a comment's carrier), no comments: no options at all. */
static void test_empty_segment(void **state)
{
	struct pcapng_addr src, dst;
	struct pcapng_seg s = { .src = &src, .dst = &dst, .seq = 7, .flags = PCAPNG_TCP_SYN };
	struct pcapng_buf b = {};
	uint32_t type;

	(void)state;
	addrs(&src, &dst, false);
	assert_int_equal(pcapng_packet(&b, &s, NULL, 0), 0);
	assert_int_equal(block(&b, 0, &type), 28 + 40 + 4);
	/* No ACK flag: the acknowledgment number is 0, as on a real SYN. */
	assert_int_equal(be32(b.p + 28 + 20 + 8), 0);
	/* A second block goes after the first. */
	s.flags = PCAPNG_TCP_FIN | PCAPNG_TCP_ACK;
	assert_int_equal(pcapng_packet(&b, &s, NULL, 0), 0);
	assert_int_equal(block(&b, 72, &type), 72);
	assert_int_equal(b.len, 144);
	pcapng_buf_free(&b);
}

static void test_refused(void **state)
{
	struct pcapng_addr v4, v6;
	uint8_t *big = calloc(1, PCAPNG_SEG_MAX + 1);
	struct pcapng_seg s = { .src = &v4, .dst = &v6 };
	struct pcapng_buf b = {};

	(void)state;
	assert_non_null(big);
	assert_int_equal(pcapng_parse_addr("127.0.0.1:1", &v4), 0);
	assert_int_equal(pcapng_parse_addr("[::1]:1", &v6), 0);
	assert_int_equal(pcapng_packet(&b, &s, NULL, 0), -EINVAL);
	s.dst = &v4;
	s.data = big;
	s.len = PCAPNG_SEG_MAX + 1;
	assert_int_equal(pcapng_packet(&b, &s, NULL, 0), -EINVAL);
	s.len = PCAPNG_SEG_MAX;
	assert_int_equal(pcapng_packet(&b, &s, NULL, 0), 0);
	/* The largest segment still fits an IPv4 packet's length. */
	assert_int_equal(be16(b.p + 28 + 2), PCAPNG_SEG_MAX + 40);
	s.data = NULL;
	assert_int_equal(pcapng_packet(&b, &s, NULL, 0), -EINVAL);
	free(big);
	pcapng_buf_free(&b);
}

/* A comment past the bound is cut, never inside a UTF-8 sequence. */
static void test_long_comment_cut(void **state)
{
	char *text = malloc(PCAPNG_COMMENT_MAX + 16);
	const char *comments[1] = { text };
	struct pcapng_addr src, dst;
	struct pcapng_seg s = { .src = &src, .dst = &dst, .flags = PCAPNG_TCP_ACK };
	struct pcapng_buf b = {};
	char got[1][5000];
	uint32_t type, len;

	(void)state;
	assert_non_null(text);
	addrs(&src, &dst, false);
	memset(text, 'a', PCAPNG_COMMENT_MAX - 1);
	/* "é" is two bytes: its second one would be the first past the bound. */
	memcpy(text + PCAPNG_COMMENT_MAX - 1, "\xc3\xa9tail", 7);
	assert_int_equal(pcapng_packet(&b, &s, comments, 1), 0);
	len = block(&b, 0, &type);
	assert_int_equal(options(b.p + 28 + 40, b.p + len - 4, 1, got, 1), 1);
	assert_int_equal(strlen(got[0]), PCAPNG_COMMENT_MAX - 1);
	free(text);
	pcapng_buf_free(&b);
}

/* Control characters and bytes that are not UTF-8 are '?': a name cannot forge a line. */
static void test_comment_shown_as_text(void **state)
{
	const char *comments[1] = { "origin: f\nverdict: ok\x7f \xff\xc3x\xe2\x82\xac\xf0\x9f" };
	struct pcapng_addr src, dst;
	struct pcapng_seg s = { .src = &src, .dst = &dst, .flags = PCAPNG_TCP_ACK };
	struct pcapng_buf b = {};
	char got[1][5000];
	uint32_t type, len;

	(void)state;
	addrs(&src, &dst, false);
	assert_int_equal(pcapng_packet(&b, &s, comments, 1), 0);
	len = block(&b, 0, &type);
	assert_int_equal(options(b.p + 28 + 40, b.p + len - 4, 1, got, 1), 1);
	assert_string_equal(got[0], "origin: f?verdict: ok? ??x\xe2\x82\xac??");
	pcapng_buf_free(&b);
}

static void test_parse_addr(void **state)
{
	static const char *const bad[] = {
		"unknown", "1.2.3.4", "1.2.3.4:",     "1.2.3.4:65536", "1.2.3.4:-1", "[::1]80",
		"[::1]:",  "::1:80",  "300.1.1.1:80", "[1.2.3.4]:80",  "1.2.3.4:8x"
	};
	struct pcapng_addr a;

	(void)state;
	assert_int_equal(pcapng_parse_addr("127.0.0.1:8080", &a), 0);
	assert_false(a.v6);
	assert_int_equal(a.port, 8080);
	assert_memory_equal(a.ip, "\x7f\x00\x00\x01", 4);
	assert_int_equal(pcapng_parse_addr("[::ffff:10.0.0.1]:65535", &a), 0);
	assert_true(a.v6);
	assert_int_equal(a.port, 65535);
	assert_memory_equal(a.ip + 12, "\x0a\x00\x00\x01", 4);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(pcapng_parse_addr(bad[i], &a), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_ipv4_packet),
		cmocka_unit_test(test_ipv6_packet),
		cmocka_unit_test(test_empty_segment),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_long_comment_cut),
		cmocka_unit_test(test_comment_shown_as_text),
		cmocka_unit_test(test_parse_addr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

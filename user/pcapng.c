// SPDX-License-Identifier: GPL-2.0
/*
 * Written by hand: libpcap writes only the old pcap format (no per-packet comments), and
 * what is needed here (three block types, two headers) is a few dozen lines.  Blocks are in
 * host byte order, as the section header's byte-order magic tells readers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pcapng.h"
#include "utf8.h"

#define BT_SHB 0x0A0D0D0AU
#define BT_IDB 0x00000001U
#define BT_EPB 0x00000006U
#define BYTE_ORDER_MAGIC 0x1A2B3C4DU
#define OPT_END 0
#define OPT_COMMENT 1
#define SHB_USERAPPL 4
#define IF_TSRESOL 9
#define IPV4_HDR 20
#define IPV6_HDR 40
#define TCP_HDR 20

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

static int reserve(struct pcapng_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 4096;
	uint8_t *p;

	if (n <= b->cap - b->len)
		return 0;
	while (cap - b->len < n)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Callers reserve first: these only copy. */
static void put(struct pcapng_buf *b, const void *p, size_t n)
{
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put32(struct pcapng_buf *b, uint32_t v)
{
	put(b, &v, 4);
}

static void put16(struct pcapng_buf *b, uint16_t v)
{
	put(b, &v, 2);
}

static void put_pad(struct pcapng_buf *b, size_t n)
{
	memset(b->p + b->len, 0, pad4(n) - n);
	b->len += pad4(n) - n;
}

static void put_opt(struct pcapng_buf *b, uint16_t code, const void *v, size_t n)
{
	put16(b, code);
	put16(b, (uint16_t)n);
	put(b, v, n);
	put_pad(b, n);
}

static void put_end(struct pcapng_buf *b)
{
	put16(b, OPT_END);
	put16(b, 0);
}

/* The block's total length, at its start (after the type) and at its end. */
static void close_block(struct pcapng_buf *b, size_t start)
{
	uint32_t total = (uint32_t)(b->len - start + 4);

	memcpy(b->p + start + 4, &total, 4);
	put32(b, total);
}

int pcapng_header(struct pcapng_buf *b, const char *app)
{
	size_t alen = strlen(app) < PCAPNG_COMMENT_MAX ? strlen(app) : PCAPNG_COMMENT_MAX;
	uint8_t tsresol = 9; /* nanoseconds */
	uint64_t section_len = UINT64_MAX; /* not given */
	size_t start;

	if (reserve(b, 28 + 4 + pad4(alen) + 4 + 4 + 20 + 4 + 4 + 4 + 4))
		return -ENOMEM;
	start = b->len;
	put32(b, BT_SHB);
	put32(b, 0);
	put32(b, BYTE_ORDER_MAGIC);
	put16(b, 1);
	put16(b, 0);
	put(b, &section_len, 8);
	put_opt(b, SHB_USERAPPL, app, alen);
	put_end(b);
	close_block(b, start);

	start = b->len;
	put32(b, BT_IDB);
	put32(b, 0);
	put16(b, PCAPNG_LINKTYPE_RAW);
	put16(b, 0);
	put32(b, 0); /* snap length: none */
	put_opt(b, IF_TSRESOL, &tsresol, 1);
	put_end(b);
	close_block(b, start);
	return 0;
}

uint16_t pcapng_csum(uint32_t sum, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (i < len)
		sum += (uint32_t)p[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The pseudo-header's sum (RFC 793, RFC 8200 8.1), not folded. */
static uint32_t pseudo_sum(const struct pcapng_seg *s, size_t tcp_len)
{
	size_t n = s->src->v6 ? 16 : 4;
	uint32_t sum = 6 + (uint32_t)tcp_len; /* protocol TCP */

	for (size_t i = 0; i < n; i += 2) {
		sum += (uint32_t)s->src->ip[i] << 8 | s->src->ip[i + 1];
		sum += (uint32_t)s->dst->ip[i] << 8 | s->dst->ip[i + 1];
	}
	return sum;
}

/* The IP and TCP headers and the payload, at b->p + b->len (reserved). */
static void put_packet(struct pcapng_buf *b, const struct pcapng_seg *s)
{
	size_t tcp_len = TCP_HDR + s->len;
	uint8_t *ip = b->p + b->len, *tcp;
	uint16_t v16;
	uint32_t v32;

	if (s->src->v6) {
		memset(ip, 0, IPV6_HDR);
		ip[0] = 0x60;
		v16 = htons((uint16_t)tcp_len);
		memcpy(ip + 4, &v16, 2);
		ip[6] = 6; /* TCP */
		ip[7] = 64;
		memcpy(ip + 8, s->src->ip, 16);
		memcpy(ip + 24, s->dst->ip, 16);
		tcp = ip + IPV6_HDR;
	} else {
		memset(ip, 0, IPV4_HDR);
		ip[0] = 0x45;
		v16 = htons((uint16_t)(IPV4_HDR + tcp_len));
		memcpy(ip + 2, &v16, 2);
		ip[6] = 0x40; /* don't fragment */
		ip[8] = 64;
		ip[9] = 6;
		memcpy(ip + 12, s->src->ip, 4);
		memcpy(ip + 16, s->dst->ip, 4);
		v16 = htons(pcapng_csum(0, ip, IPV4_HDR));
		memcpy(ip + 10, &v16, 2);
		tcp = ip + IPV4_HDR;
	}
	memset(tcp, 0, TCP_HDR);
	v16 = htons(s->src->port);
	memcpy(tcp, &v16, 2);
	v16 = htons(s->dst->port);
	memcpy(tcp + 2, &v16, 2);
	v32 = htonl(s->seq);
	memcpy(tcp + 4, &v32, 4);
	v32 = htonl(s->flags & PCAPNG_TCP_ACK ? s->ack : 0);
	memcpy(tcp + 8, &v32, 4);
	tcp[12] = (TCP_HDR / 4) << 4;
	tcp[13] = s->flags;
	tcp[14] = tcp[15] = 0xff; /* window */
	if (s->len)
		memcpy(tcp + TCP_HDR, s->data, s->len);
	v16 = htons(pcapng_csum(pseudo_sum(s, tcp_len), tcp, tcp_len));
	memcpy(tcp + 16, &v16, 2);
	b->len += (size_t)(tcp + tcp_len - ip);
}

/*
 * A comment as an option, shown as text: a control character, or a byte that is not part of
 * well-formed UTF-8, is written as '?' (names in it come from the traced process, which could
 * forge a line of its own with a newline).
 */
static void put_comment(struct pcapng_buf *b, const char *text, size_t n)
{
	const unsigned char *t = (const unsigned char *)text;
	uint8_t *out;

	put16(b, OPT_COMMENT);
	put16(b, (uint16_t)n);
	out = b->p + b->len;
	for (size_t i = 0; i < n;) {
		size_t k = t[i] < 0x80 ? 1 : t[i] >= 0xf0 ? 4 : t[i] >= 0xe0 ? 3 : 2;

		if (t[i] < 0x80 && t[i] >= 0x20 && t[i] != 0x7f) {
			out[i] = t[i];
			i++;
		} else if (t[i] >= 0x80 && k <= n - i && utf8_valid(t + i, k)) {
			memcpy(out + i, t + i, k);
			i += k;
		} else {
			out[i++] = '?';
		}
	}
	b->len += n;
	put_pad(b, n);
}

int pcapng_packet(struct pcapng_buf *b, const struct pcapng_seg *s, const char *const *comments,
		  size_t ncomments)
{
	size_t plen, need, start;
	uint32_t cap_len;

	if (s->src->v6 != s->dst->v6 || s->len > PCAPNG_SEG_MAX || (s->len && !s->data))
		return -EINVAL;
	plen = (s->src->v6 ? IPV6_HDR : IPV4_HDR) + TCP_HDR + s->len;
	need = 28 + pad4(plen) + 4 + 4;
	for (size_t i = 0; i < ncomments; i++) {
		size_t n = strlen(comments[i]);

		need += 4 + pad4(n < PCAPNG_COMMENT_MAX ? n : PCAPNG_COMMENT_MAX);
	}
	if (reserve(b, need))
		return -ENOMEM;
	start = b->len;
	put32(b, BT_EPB);
	put32(b, 0);
	put32(b, 0); /* interface */
	put32(b, (uint32_t)(s->ts_ns >> 32));
	put32(b, (uint32_t)s->ts_ns);
	cap_len = (uint32_t)plen;
	put32(b, cap_len);
	put32(b, cap_len);
	put_packet(b, s);
	put_pad(b, plen);
	for (size_t i = 0; i < ncomments; i++) {
		size_t n = strlen(comments[i]);

		/* A cut never splits a UTF-8 sequence: Wireshark wants the comment valid. */
		if (n > PCAPNG_COMMENT_MAX) {
			n = PCAPNG_COMMENT_MAX;
			while (n && ((unsigned char)comments[i][n] & 0xc0) == 0x80)
				n--;
		}
		put_comment(b, comments[i], n);
	}
	if (ncomments)
		put_end(b);
	close_block(b, start);
	return 0;
}

int pcapng_parse_addr(const char *s, struct pcapng_addr *a)
{
	char ip[64];
	const char *colon;
	char *end;
	unsigned long port;
	size_t n;

	memset(a, 0, sizeof(*a));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		n = (size_t)(close - s - 1);
		colon = close + 1;
		s++;
		a->v6 = true;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - s);
	}
	if (n >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, n);
	ip[n] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port > 65535)
		return -EINVAL;
	a->port = (uint16_t)port;
	if (inet_pton(a->v6 ? AF_INET6 : AF_INET, ip, a->ip) != 1)
		return -EINVAL;
	return 0;
}

void pcapng_buf_reset(struct pcapng_buf *b)
{
	b->len = 0;
}

void pcapng_buf_free(struct pcapng_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

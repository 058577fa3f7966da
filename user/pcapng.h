/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pcapng blocks (the IETF draft "PCAP Now Generic", draft-ietf-opsawg-pcapng) for one TCP
 * connection whose bytes were read at the socket, not on a wire: the IPv4/IPv6 and TCP
 * headers are made up from the socket's addresses and the bytes' stream positions, so that
 * Wireshark and tshark reassemble the stream and dissect it.  Pure: blocks are built in
 * memory, the caller writes them.
 */
#ifndef WSAUDIT_PCAPNG_H
#define WSAUDIT_PCAPNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Payload bytes in one packet: an IPv4 packet's length field is 16 bits. */
#define PCAPNG_SEG_MAX 65000
/* Bytes of one comment kept (an option's length field is 16 bits). */
#define PCAPNG_COMMENT_MAX 4096

#define PCAPNG_TCP_FIN 0x01
#define PCAPNG_TCP_SYN 0x02
#define PCAPNG_TCP_PSH 0x08
#define PCAPNG_TCP_ACK 0x10

/* The link type of the one interface: raw IPv4 or IPv6 packets (LINKTYPE_RAW). */
#define PCAPNG_LINKTYPE_RAW 101

struct pcapng_buf {
	uint8_t *p;
	size_t len, cap;
};

struct pcapng_addr {
	bool v6;
	uint8_t ip[16]; /* IPv4 in the first 4 bytes */
	uint16_t port;
};

/* One TCP segment. */
struct pcapng_seg {
	const struct pcapng_addr *src, *dst; /* the same family */
	uint32_t seq, ack;
	uint8_t flags; /* PCAPNG_TCP_* */
	uint64_t ts_ns; /* Unix time */
	const uint8_t *data;
	size_t len; /* <= PCAPNG_SEG_MAX */
};

/* The section header (naming app) and the interface: the start of a file.  0 or -ENOMEM. */
int pcapng_header(struct pcapng_buf *b, const char *app);
/*
 * An enhanced packet block with the segment and its comments (each cut to
 * PCAPNG_COMMENT_MAX bytes).  0, -EINVAL (families differ, too long) or -ENOMEM.
 */
int pcapng_packet(struct pcapng_buf *b, const struct pcapng_seg *s, const char *const *comments,
		  size_t ncomments);
/* "IP:PORT" or "[IPv6]:PORT", as connections are named.  0 or -EINVAL. */
int pcapng_parse_addr(const char *s, struct pcapng_addr *a);
/* The Internet checksum (RFC 1071) of len bytes, added to sum. */
uint16_t pcapng_csum(uint32_t sum, const uint8_t *p, size_t len);
void pcapng_buf_reset(struct pcapng_buf *b);
void pcapng_buf_free(struct pcapng_buf *b);

#endif /* WSAUDIT_PCAPNG_H */

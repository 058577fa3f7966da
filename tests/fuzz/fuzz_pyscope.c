// SPDX-License-Identifier: GPL-2.0
/*
 * What user/pyscope.c makes of a traced process's memory: the input is the memory image
 * itself, at a fixed address, with the type objects at fixed addresses it can name, so the
 * fuzzer can build tuples, strs, ints, lists and dict tables that point anywhere.  Whatever
 * the bytes, every read stays inside the image or is refused, and a request found is made of
 * C strings inside its bounds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/pyscope_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct img m;
	const struct http1_message *req;
	struct pyscope_scan *s;
	char ip[PYSCOPE_IP_MAX + 1];
	uint16_t port;
	size_t n;
	int err;

	if (size < 8)
		return 0;
	/* the first bytes name the peer looked up, as a connection's text would */
	n = data[0] < size - 1 ? data[0] : size - 1;
	if (n < sizeof(ip) + 8) {
		char peer[sizeof(ip) + 8];

		memcpy(peer, data + 1, n);
		peer[n] = 0;
		if (pyscope_parse_peer(peer, ip, &port))
			snprintf(ip, sizeof(ip), "127.0.0.1"), port = 1;
	} else {
		snprintf(ip, sizeof(ip), "127.0.0.1");
		port = 1;
	}
	data += 1 + n;
	size -= 1 + n;
	m.top = size < IMG_SIZE ? size & ~7ul : IMG_SIZE;
	memset(m.b, 0, sizeof(m.b));
	memcpy(m.b, data, m.top);
	s = pyscope_scan_new(&img_layout, img_read, &m);
	if (!s)
		return 0;
	for (int pass = 0; pass < 2; pass++) {
		/* two chunks overlapping by 64 bytes, as the process walk reads them */
		size_t half = (m.top / 2) & ~7ul;

		pyscope_scan_chunk(s, pass, m.b, half + 64 < m.top ? half + 64 : m.top, IMG_BASE);
		if (half + 64 < m.top)
			pyscope_scan_chunk(s, pass, m.b + half, m.top - half, IMG_BASE + half);
		if (!pass)
			pyscope_scan_pass_done(s);
	}
	req = pyscope_lookup(s, ip, port, &err);
	if (req) {
		size_t total = strlen(req->method) + strlen(req->target) + strlen(req->query);

		if (req->nheaders > HTTP1_MAX_HEADERS)
			abort();
		for (size_t i = 0; i < req->nheaders; i++)
			total += strlen(req->headers[i].name) + strlen(req->headers[i].value);
		if (total > PYSCOPE_REQ_MAX)
			abort();
	}
	pyscope_scan_free(s);
	return 0;
}

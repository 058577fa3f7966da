// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <string.h>

#include "filter.h"

/* An address as parsed: an IPv4 address is kept as its IPv4-mapped IPv6 form. */
struct addr {
	bool has_ip;
	unsigned char ip[16];
	unsigned int port; /* 0: any */
};

static bool ip_parse(const char *s, size_t n, bool v6, unsigned char out[16])
{
	char buf[INET6_ADDRSTRLEN + 1];
	unsigned char v4[4];

	if (!n || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (v6)
		return inet_pton(AF_INET6, buf, out) == 1;
	if (inet_pton(AF_INET, buf, v4) != 1)
		return false;
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, v4, 4);
	return true;
}

static bool port_parse(const char *s, unsigned int *port)
{
	unsigned long v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return false;
	}
	*port = (unsigned int)v;
	return v > 0;
}

/* IP, IP:PORT, [IPv6], [IPv6]:PORT, a bare IPv6 address or :PORT. */
static int addr_parse(const char *arg, struct addr *a)
{
	const char *end, *colon;

	memset(a, 0, sizeof(*a));
	if (arg[0] == ':' && arg[1] != ':')
		return port_parse(arg + 1, &a->port) ? 0 : -EINVAL;
	a->has_ip = true;
	if (arg[0] == '[') {
		end = strchr(arg, ']');
		if (!end || !ip_parse(arg + 1, (size_t)(end - arg - 1), true, a->ip))
			return -EINVAL;
		return !end[1] || (end[1] == ':' && port_parse(end + 2, &a->port)) ? 0 : -EINVAL;
	}
	colon = strchr(arg, ':');
	/* Two colons: a bare IPv6 address (with a port it is bracketed). */
	if (colon && strchr(colon + 1, ':'))
		return ip_parse(arg, strlen(arg), true, a->ip) ? 0 : -EINVAL;
	if (!colon)
		return ip_parse(arg, strlen(arg), false, a->ip) ? 0 : -EINVAL;
	return ip_parse(arg, (size_t)(colon - arg), false, a->ip) &&
			       port_parse(colon + 1, &a->port) ?
		       0 :
		       -EINVAL;
}

int filter_parse_peer(const char *arg)
{
	struct addr a;

	return addr_parse(arg, &a);
}

/*
 * Compared as addresses, not strings: "::1" and "0::1" are one, and an IPv4 client of an
 * IPv6 socket ("[::ffff:a.b.c.d]:port" in the output) is named by a.b.c.d too.
 */
bool filter_peer_matches(const char *want, const char *peer)
{
	struct addr w, p;

	if (addr_parse(want, &w) || addr_parse(peer, &p) || !p.has_ip || !p.port)
		return false;
	if (w.has_ip && memcmp(w.ip, p.ip, sizeof(w.ip)))
		return false;
	return !w.port || w.port == p.port;
}

bool filter_function_matches(const char *glob, const char *function)
{
	return function && !fnmatch(glob, function, 0);
}

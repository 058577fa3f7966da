/* SPDX-License-Identifier: GPL-2.0 */
/* The options of `wsaudit decode`, parsed without side effects so tests can drive it. */
#ifndef WSAUDIT_DECODE_OPTS_H
#define WSAUDIT_DECODE_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct decode_opts {
	const char *extensions; /* negotiated Sec-WebSocket-Extensions; NULL: the response's */
	const char *path; /* "-": standard input */
	const char *identity_key;
	size_t max_message; /* 0: the decoder's default */
	bool payload;
	bool show_identities;
	bool help;
};

/*
 * Fills opts from argv (argv[0] is "decode").  Returns 0, or -EINVAL with a message for the
 * user in err.  Does not print or exit.
 */
int decode_parse_args(int argc, char **argv, struct decode_opts *opts, char *err, size_t errlen);
void decode_usage(FILE *out);

#endif /* WSAUDIT_DECODE_OPTS_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * `trace --write DIR`: each WebSocket connection's bytes kept in files, so that an incident's
 * bytes can be read again later: DIR/ID.pcapng (its upgrade, both directions, and its
 * server-to-client stream, in TCP/IP packets made up for Wireshark, each frame's origin and
 * verdict a packet comment, every hole said) and DIR/ID.ws (the raw server-to-client stream
 * from the 101 response on, for `wsaudit decode`, cut at the first hole).  Bounded per
 * connection and per run; what is not written is said, counted and in the stats record.
 */
#ifndef WSAUDIT_STREAMWRITE_H
#define WSAUDIT_STREAMWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "conntrack.h"
#include "output.h"

/* Defaults of the per-connection and per-run bounds (bytes of files). */
#define STREAMWRITE_CONN_MAX_DEFAULT (64ULL << 20)
#define STREAMWRITE_RUN_MAX_DEFAULT (1ULL << 30)
/* Connections written at once (each holds two files open). */
#define STREAMWRITE_OPEN_MAX 128

/* Why a connection, or the rest of one, is not written. */
#define STREAMWRITE_SKIP_REASONS(X)                                              \
	X(SW_SKIP_TOO_MANY_OPEN, "too_many_open") /* STREAMWRITE_OPEN_MAX */     \
	X(SW_SKIP_RUN_MAX, "run_max") /* the run's bound was reached */          \
	X(SW_SKIP_CONN_MAX, "conn_max") /* the connection's bound was reached */ \
	X(SW_SKIP_WRITE_ERROR, "write_error") /* a file could not be made or written */

#define SW_SKIP_ENUM(name, str) name,
enum streamwrite_skip { STREAMWRITE_SKIP_REASONS(SW_SKIP_ENUM) SW_SKIP__COUNT };
#undef SW_SKIP_ENUM

const char *streamwrite_skip_name(enum streamwrite_skip r);

struct streamwrite_stats {
	uint64_t conns; /* connections given files */
	uint64_t conns_open; /* of those, being written now */
	uint64_t bytes; /* bytes written to files */
	uint64_t packets;
	uint64_t frames; /* frames described in packet comments */
	uint64_t comments_dropped; /* frames past the bound of comments per packet */
	uint64_t holes; /* holes in streams, each said in a packet comment */
	uint64_t hole_bytes;
	uint64_t raw_cut; /* raw stream files ended at a hole */
	uint64_t write_errors; /* failed writes (and files that could not be made) */
	uint64_t bytes_not_written; /* stream bytes not written (bounds, errors) */
	/* Connections not written, or not to their end, by reason. */
	uint64_t skipped[SW_SKIP__COUNT];
};

struct streamwrite_opts {
	const char *dir;
	uint64_t conn_max; /* 0: STREAMWRITE_CONN_MAX_DEFAULT */
	uint64_t run_max; /* 0: STREAMWRITE_RUN_MAX_DEFAULT */
};

struct streamwrite;

/*
 * Opens DIR (made 0700 if missing) and checks that a file can be made in it.  NULL with the
 * reason in err.
 */
struct streamwrite *streamwrite_open(const struct streamwrite_opts *o, char *err, size_t errlen);
/* Ends every connection still written (their files stay valid) and frees. */
void streamwrite_close(struct streamwrite *w);

/* The session's hooks (user/session.c). */
void streamwrite_conn_open(struct streamwrite *w, const struct ct_conn *c, uint64_t ts_ns);
void streamwrite_bytes(struct streamwrite *w, const struct ct_conn *c, uint64_t pos,
		       const uint8_t *data, size_t len, uint64_t ts_ns);
void streamwrite_frame(struct streamwrite *w, const struct frame_view *fv);
void streamwrite_conn_close(struct streamwrite *w, const struct ct_conn *c, uint64_t ts_ns,
			    const char *why);

const struct streamwrite_stats *streamwrite_stats(const struct streamwrite *w);
const char *streamwrite_dir(const struct streamwrite *w);

#endif /* WSAUDIT_STREAMWRITE_H */

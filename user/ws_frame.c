// SPDX-License-Identifier: GPL-2.0
/*
 * Streaming RFC 6455 frame parser.  See ws_frame.h for the contract.
 *
 * States: HDR (collecting a header, possibly across feeds), PAYLOAD (counting down the
 * declared length, keeping a prefix), DESYNC (scanning for a header after a hole swallowed
 * one).  A header found by scanning is trusted only when the frame it declares is followed
 * by another valid header, or ends exactly where a feed ends (writes start with frames);
 * until then the frame is on probation and is not reported.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "ws_frame.h"

#define WS_MAX_HEADER 14
#define WS_MAX_CONTROL 125
/*
 * A header found by scanning whose frame runs past the bytes at hand must not declare
 * more than this: a random byte pair declaring gigabytes would otherwise swallow the
 * rest of the stream while waiting for confirmation.
 */
#define WS_RESYNC_MAX_PAYLOAD (16u << 20)

enum parser_state {
	ST_HDR,
	ST_PAYLOAD,
	ST_DESYNC,
};

enum frag_state {
	FRAG_NONE, /* between messages */
	FRAG_OPEN, /* a fragmented data message is open */
	FRAG_UNKNOWN, /* after a loss of sync: either */
};

struct hdr_info {
	uint8_t opcode;
	bool fin, rsv1, rsv2, rsv3, masked;
	uint8_t header_len;
	uint8_t mask_key[4];
	uint64_t payload_len;
	int error; /* non-fatal violation */
};

struct ws_parser {
	struct ws_parser_opts opts;
	ws_frame_cb cb;
	void *ctx;
	enum parser_state st;
	enum frag_state frag;
	uint64_t pos;
	uint8_t hdr[WS_MAX_HEADER];
	uint8_t hdr_have;
	/* the frame in progress */
	struct ws_frame cur;
	uint64_t remaining;
	uint64_t payload_off;
	size_t keep; /* keep limit of the current frame */
	bool keeping; /* no hole yet: still appending to the kept prefix */
	bool zero_copy; /* cur.payload points into the current feed */
	bool unconfirmed; /* found by scanning, not yet confirmed */
	bool pending; /* cur is complete but waits for confirmation */
	bool resync_mark; /* the next reported frame follows a loss */
	uint8_t *kbuf;
	size_t kcap;
	size_t klen;
	struct ws_parser_stats stats;
};

#define OPCODE_NAME(name, value, str) [value] = str,
static const char *const opcode_names[16] = { WS_OPCODES(OPCODE_NAME) };
#undef OPCODE_NAME

const char *ws_opcode_name(unsigned int opcode)
{
	if (opcode < 16 && opcode_names[opcode])
		return opcode_names[opcode];
	return "reserved";
}

bool ws_opcode_is_control(unsigned int opcode)
{
	return opcode & 0x8;
}

bool ws_opcode_assigned(unsigned int opcode)
{
	return opcode < 16 && opcode_names[opcode];
}

static const char *const error_names[WS_ERR__COUNT] = {
	[WS_ERR_NONE] = "none",
	[WS_ERR_RESERVED_OPCODE] = "reserved_opcode",
	[WS_ERR_CONTROL_TOO_LONG] = "control_too_long",
	[WS_ERR_CONTROL_FRAGMENTED] = "control_fragmented",
	[WS_ERR_BAD_LENGTH] = "bad_length",
	[WS_ERR_MASK_MISMATCH] = "mask_mismatch",
	[WS_ERR_UNEXPECTED_CONTINUATION] = "unexpected_continuation",
	[WS_ERR_EXPECTED_CONTINUATION] = "expected_continuation",
	[WS_ERR_RSV_BITS] = "rsv_bits",
};

const char *ws_parse_error_name(enum ws_parse_error err)
{
	if ((unsigned int)err < WS_ERR__COUNT)
		return error_names[err];
	return "unknown";
}

bool ws_close_code_valid(int code)
{
	if (code >= 1000 && code <= 1003)
		return true;
	/* 1004 reserved; 1005, 1006 and 1015 must never be sent. */
	if (code >= 1007 && code <= 1014)
		return true;
	return code >= 3000 && code <= 4999;
}

/*
 * Decodes a header from the n bytes at b.  Returns the header length when complete and
 * acceptable, 0 when more bytes are needed (and the bytes so far are acceptable), or
 * -error.  strict rejects every violation (used while scanning); otherwise only the ones
 * that make the header meaningless are fatal and the others are noted in h->error.
 */
static int hdr_decode(const uint8_t *b, size_t n, enum ws_direction dir, bool allow_rsv1,
		      bool strict, struct hdr_info *h)
{
	uint8_t len7;
	unsigned int ext;

	if (n < 1)
		return 0;
	h->fin = b[0] & 0x80;
	h->rsv1 = b[0] & 0x40;
	h->rsv2 = b[0] & 0x20;
	h->rsv3 = b[0] & 0x10;
	h->opcode = b[0] & 0x0f;
	h->error = WS_ERR_NONE;
	if (!ws_opcode_assigned(h->opcode))
		return -WS_ERR_RESERVED_OPCODE;
	if (h->rsv2 || h->rsv3)
		return -WS_ERR_RSV_BITS;
	/* RFC 7692 6: RSV1 marks the first frame of a compressed message only. */
	if (h->rsv1 &&
	    (!allow_rsv1 || ws_opcode_is_control(h->opcode) || h->opcode == WS_OP_CONTINUATION))
		h->error = WS_ERR_RSV_BITS;
	if (ws_opcode_is_control(h->opcode) && !h->fin && !h->error)
		h->error = WS_ERR_CONTROL_FRAGMENTED;
	if (strict && h->error)
		return -h->error;
	if (n < 2)
		return 0;
	h->masked = b[1] & 0x80;
	len7 = b[1] & 0x7f;
	if (h->masked != (dir == WS_CLIENT_TO_SERVER)) {
		if (strict)
			return -WS_ERR_MASK_MISMATCH;
		if (!h->error)
			h->error = WS_ERR_MASK_MISMATCH;
	}
	if (ws_opcode_is_control(h->opcode) && len7 > WS_MAX_CONTROL) {
		if (strict)
			return -WS_ERR_CONTROL_TOO_LONG;
		if (!h->error)
			h->error = WS_ERR_CONTROL_TOO_LONG;
	}
	ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
	h->header_len = 2 + ext + (h->masked ? 4 : 0);
	if (len7 == 127 && n >= 3 && (b[2] & 0x80))
		return -WS_ERR_BAD_LENGTH;
	if (n < h->header_len)
		return 0;
	if (len7 == 126) {
		h->payload_len = (uint64_t)b[2] << 8 | b[3];
	} else if (len7 == 127) {
		h->payload_len = 0;
		for (int i = 0; i < 8; i++)
			h->payload_len = h->payload_len << 8 | b[2 + i];
	} else {
		h->payload_len = len7;
	}
	if ((len7 == 126 && h->payload_len < 126) || (len7 == 127 && h->payload_len <= 0xffff)) {
		if (strict)
			return -WS_ERR_BAD_LENGTH;
		if (!h->error)
			h->error = WS_ERR_BAD_LENGTH;
	}
	if (h->masked)
		memcpy(h->mask_key, b + 2 + ext, 4);
	else
		memset(h->mask_key, 0, 4);
	return h->header_len;
}

struct ws_parser *ws_parser_new(const struct ws_parser_opts *opts, ws_frame_cb cb, void *ctx)
{
	struct ws_parser *p;

	if (!opts || !cb) {
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->opts = *opts;
	p->cb = cb;
	p->ctx = ctx;
	p->st = ST_HDR;
	p->frag = FRAG_NONE;
	return p;
}

void ws_parser_free(struct ws_parser *p)
{
	if (!p)
		return;
	free(p->kbuf);
	free(p);
}

void ws_parser_set_allow_rsv1(struct ws_parser *p, bool allow)
{
	p->opts.allow_rsv1 = allow;
}

void ws_parser_set_pos(struct ws_parser *p, uint64_t pos)
{
	p->pos = pos;
}

uint64_t ws_parser_pos(const struct ws_parser *p)
{
	return p->pos;
}

bool ws_parser_desynced(const struct ws_parser *p)
{
	return p->st == ST_DESYNC;
}

const struct ws_parser_stats *ws_parser_stats(const struct ws_parser *p)
{
	return &p->stats;
}

static void lose_sync(struct ws_parser *p, int err)
{
	if (err > 0 && err < WS_ERR__COUNT)
		p->stats.errors[err]++;
	if (p->pending) {
		/* The probation frame was not followed by a header: it was not a frame. */
		p->stats.skipped_bytes += p->cur.header_len + p->cur.captured_len;
		p->pending = false;
	}
	if (p->st != ST_DESYNC && !p->unconfirmed)
		p->stats.desyncs++;
	p->st = ST_DESYNC;
	p->hdr_have = 0;
	p->unconfirmed = false;
	p->frag = FRAG_UNKNOWN;
	p->resync_mark = true;
}

static int kbuf_reserve(struct ws_parser *p, size_t need)
{
	size_t cap;
	uint8_t *nb;

	if (need <= p->kcap)
		return 0;
	cap = p->kcap ? p->kcap : 256;
	while (cap < need)
		cap *= 2;
	nb = realloc(p->kbuf, cap);
	if (!nb)
		return -ENOMEM;
	p->kbuf = nb;
	p->kcap = cap;
	return 0;
}

static void set_close(struct ws_frame *f)
{
	const uint8_t *b = f->payload;

	f->close_code = -1;
	f->close_valid = false;
	f->close_reason = NULL;
	f->close_reason_len = 0;
	if (f->payload_len == 0) {
		f->close_valid = true;
		return;
	}
	if (f->payload_kept < 2)
		return;
	f->close_code = b[0] << 8 | b[1];
	f->close_reason = (const char *)b + 2;
	f->close_reason_len = f->payload_kept - 2;
	f->close_valid = f->payload_len >= 2 && !f->truncated &&
			 ws_close_code_valid(f->close_code) &&
			 utf8_valid(f->close_reason, f->close_reason_len);
}

static void emit(struct ws_parser *p)
{
	struct ws_frame *f = &p->cur;

	if (!p->zero_copy) {
		f->payload = p->klen ? p->kbuf : NULL;
		f->payload_kept = p->klen;
	}
	f->payload_gap = false;
	f->truncated = f->captured_len < f->payload_len;
	if (f->opcode == WS_OP_CLOSE)
		set_close(f);
	else
		f->close_code = 0;
	f->resynced = p->resync_mark;
	if (p->resync_mark)
		p->stats.resyncs++;
	p->resync_mark = false;
	p->stats.frames++;
	if (f->truncated)
		p->stats.truncated_frames++;
	if (f->error)
		p->stats.errors[f->error]++;
	p->cb(p->ctx, f);
	p->zero_copy = false;
}

/* Applies the fragmentation rules of RFC 6455 5.4 and notes violations on the frame. */
static void track_fragments(struct ws_parser *p, struct ws_frame *f)
{
	if (ws_opcode_is_control(f->opcode))
		return;
	if (f->opcode == WS_OP_CONTINUATION) {
		if (p->frag == FRAG_NONE && !f->error)
			f->error = WS_ERR_UNEXPECTED_CONTINUATION;
	} else if (p->frag == FRAG_OPEN && !f->error) {
		f->error = WS_ERR_EXPECTED_CONTINUATION;
	}
	p->frag = f->fin ? FRAG_NONE : FRAG_OPEN;
}

/* Starts the frame whose header h begins at stream position off. */
static void frame_start(struct ws_parser *p, const struct hdr_info *h, uint64_t off)
{
	struct ws_frame *f = &p->cur;

	memset(f, 0, sizeof(*f));
	f->stream_off = off;
	f->payload_len = h->payload_len;
	f->opcode = h->opcode;
	f->fin = h->fin;
	f->rsv1 = h->rsv1;
	f->rsv2 = h->rsv2;
	f->rsv3 = h->rsv3;
	f->masked = h->masked;
	f->header_len = h->header_len;
	memcpy(f->mask_key, h->mask_key, 4);
	f->error = h->error;
	track_fragments(p, f);
	p->remaining = h->payload_len;
	p->payload_off = 0;
	p->klen = 0;
	p->keeping = true;
	p->zero_copy = false;
	p->keep = ws_opcode_is_control(h->opcode) ? WS_MAX_CONTROL : p->opts.keep_payload;
	p->st = ST_PAYLOAD;
}

/* A frame's payload is complete; at_feed_end: it ended exactly where the bytes at hand end. */
static void frame_end(struct ws_parser *p, bool at_feed_end)
{
	p->st = ST_HDR;
	p->hdr_have = 0;
	if (p->unconfirmed && !at_feed_end) {
		p->pending = true;
		return;
	}
	p->unconfirmed = false;
	emit(p);
}

/* A header was accepted in sync: a frame on probation is now confirmed. */
static void confirm_pending(struct ws_parser *p)
{
	if (!p->pending)
		return;
	p->pending = false;
	p->unconfirmed = false;
	emit(p);
}

/* Copies payload bytes at payload offset p->payload_off into the kept prefix. */
static int keep_bytes(struct ws_parser *p, const uint8_t *src, size_t n)
{
	size_t off = p->klen, take;
	int err;

	if (!p->keeping || off >= p->keep)
		return 0;
	take = p->keep - off < n ? p->keep - off : n;
	err = kbuf_reserve(p, off + take);
	if (err)
		return err;
	if (p->cur.masked) {
		for (size_t i = 0; i < take; i++)
			p->kbuf[off + i] = src[i] ^ p->cur.mask_key[(off + i) & 3];
	} else {
		memcpy(p->kbuf + off, src, take);
	}
	p->klen += take;
	return 0;
}

/* Whether a frame with header h may follow in fragmentation state st (RFC 6455 5.4). */
static bool frag_ok(enum frag_state st, const struct hdr_info *h)
{
	if (ws_opcode_is_control(h->opcode))
		return true;
	if (h->opcode == WS_OP_CONTINUATION)
		return st != FRAG_NONE;
	return st != FRAG_OPEN;
}

static enum frag_state frag_next(enum frag_state st, const struct hdr_info *h)
{
	if (ws_opcode_is_control(h->opcode))
		return st;
	return h->fin ? FRAG_NONE : FRAG_OPEN;
}

/*
 * What a scanned frame's payload must look like when it is at hand: a whole unmasked text
 * message is UTF-8 (RFC 6455 8.1) and a close frame carries a code an endpoint may send.
 * Random bytes rarely pass either.
 */
static bool scan_payload_ok(const struct hdr_info *h, const uint8_t *payload)
{
	if (h->masked || h->rsv1)
		return true;
	if (h->opcode == WS_OP_TEXT && h->fin)
		return utf8_valid(payload, h->payload_len);
	if (h->opcode == WS_OP_CLOSE) {
		if (!h->payload_len)
			return true;
		return h->payload_len >= 2 && ws_close_code_valid(payload[0] << 8 | payload[1]) &&
		       utf8_valid(payload + 2, h->payload_len - 2);
	}
	return true;
}

enum chain_end {
	CHAIN_BROKEN, /* a header that cannot be, or breaks the fragmentation rules */
	CHAIN_EXACT, /* the last frame ends exactly at the end of the bytes */
	CHAIN_CUT, /* the last frame or header runs past the end of the bytes */
	CHAIN_LONG, /* enough consecutive headers to trust the first */
};

/*
 * Headers a chain found by scanning needs before its first frame is trusted.  Random bytes
 * pass as a header about once in 30 positions, so each header required divides the rate of
 * false chains by about 30 (with 5, 64 MiB of random bytes yield none); real streams cut
 * by a hole usually offer a write boundary or a run of small frames soon after.
 */
#define WS_RESYNC_CHAIN 5
/* Masked frames carry four free key bytes and no payload can be checked: one more. */
#define WS_RESYNC_CHAIN_MASKED 6

/*
 * Looks for a trustworthy header in b[0..n).  A header is trusted when it starts a chain of
 * WS_RESYNC_CHAIN valid frames that obey the fragmentation rules, or at the start of a feed
 * (a write boundary, where frames usually start) when its chain ends exactly at the end of
 * the bytes.  When the chain runs past the end with less evidence, its first frame goes on
 * probation: it is reported only once the header after it proves valid or it ends where a
 * feed ends.  Returns the index of the header, or n.
 */
static size_t scan(const struct ws_parser *p, const uint8_t *b, size_t n, struct hdr_info *h,
		   bool *unconfirmed)
{
	enum ws_direction dir = p->opts.direction;
	bool rsv1 = p->opts.allow_rsv1;
	unsigned int need = dir == WS_CLIENT_TO_SERVER ? WS_RESYNC_CHAIN_MASKED : WS_RESYNC_CHAIN;

	for (size_t j = 0; j + 2 <= n; j++) {
		enum frag_state st = FRAG_UNKNOWN;
		enum chain_end how = CHAIN_BROKEN;
		struct hdr_info hh;
		unsigned int cnt = 0;
		uint64_t at = j;

		for (;;) {
			int r = hdr_decode(b + at, n - at, dir, rsv1, true, &hh);
			uint64_t end;

			if (r < 0 || (r > 0 && !frag_ok(st, &hh)))
				break;
			if (r == 0) {
				how = CHAIN_CUT;
				break;
			}
			/*
			 * Resynchronise at a message or control frame, never mid-message, and
			 * not on an empty fragment (runs of zero bytes would pass otherwise) or
			 * an implausibly long frame.
			 */
			if ((!cnt && hh.opcode == WS_OP_CONTINUATION) ||
			    (!hh.fin && !hh.payload_len) || hh.payload_len > WS_RESYNC_MAX_PAYLOAD)
				break;
			end = at + r + hh.payload_len;
			if (end <= n && !scan_payload_ok(&hh, b + at + r))
				break;
			if (!cnt++)
				*h = hh;
			st = frag_next(st, &hh);
			if (end == n) {
				how = CHAIN_EXACT;
				break;
			}
			if (end > n) {
				how = CHAIN_CUT;
				break;
			}
			if (cnt == need) {
				how = CHAIN_LONG;
				break;
			}
			at = end;
		}
		switch (how) {
		case CHAIN_BROKEN:
			continue;
		case CHAIN_LONG:
			*unconfirmed = false;
			return j;
		case CHAIN_EXACT:
			if (j && cnt < need - 1)
				continue;
			*unconfirmed = false;
			return j;
		case CHAIN_CUT:
			if (!cnt || (j && cnt < need - 1))
				continue;
			*unconfirmed = true;
			return j;
		}
	}
	return n;
}

static int process(struct ws_parser *p, const uint8_t *data, size_t len)
{
	size_t i = 0;
	int err;

	while (i < len) {
		switch (p->st) {
		case ST_HDR: {
			struct hdr_info h;
			uint64_t off;
			int r;

			if (p->hdr_have == 0) {
				r = hdr_decode(data + i, len - i, p->opts.direction,
					       p->opts.allow_rsv1, p->pending, &h);
				if (r > 0) {
					off = p->pos + i;
					i += r;
					goto header_done;
				}
				if (r < 0) {
					lose_sync(p, p->pending ? 0 : -r);
					break;
				}
			}
			/* A header cut by the end of a feed: collect it byte by byte. */
			p->hdr[p->hdr_have++] = data[i++];
			r = hdr_decode(p->hdr, p->hdr_have, p->opts.direction, p->opts.allow_rsv1,
				       p->pending, &h);
			if (r < 0) {
				lose_sync(p, p->pending ? 0 : -r);
				break;
			}
			if (r == 0)
				break;
			off = p->pos + i - p->hdr_have;
header_done:
			if (p->pending && !frag_ok(p->frag, &h)) {
				lose_sync(p, 0);
				break;
			}
			confirm_pending(p);
			frame_start(p, &h, off);
			if (h.payload_len == 0)
				frame_end(p, i == len);
			break;
		}
		case ST_PAYLOAD: {
			size_t avail = len - i;
			size_t n = p->remaining < avail ? (size_t)p->remaining : avail;

			if (p->payload_off == 0 && n == p->remaining && !p->cur.masked &&
			    !p->unconfirmed) {
				/* The whole payload is here: point at it. */
				p->zero_copy = true;
				p->cur.payload = n ? data + i : NULL;
				p->cur.payload_kept = n < p->keep ? n : p->keep;
				if (!p->cur.payload_kept)
					p->cur.payload = NULL;
			} else {
				err = keep_bytes(p, data + i, n);
				if (err)
					return err;
			}
			p->remaining -= n;
			p->payload_off += n;
			p->cur.captured_len += n;
			i += n;
			if (!p->remaining)
				frame_end(p, i == len);
			break;
		}
		case ST_DESYNC: {
			struct hdr_info h;
			bool unconfirmed = false;
			size_t j = scan(p, data + i, len - i, &h, &unconfirmed);

			p->stats.skipped_bytes += j;
			i += j;
			if (i >= len)
				break;
			p->unconfirmed = unconfirmed;
			frame_start(p, &h, p->pos + i);
			i += h.header_len;
			if (h.payload_len == 0)
				frame_end(p, i == len);
			break;
		}
		}
	}
	return 0;
}

static void gap(struct ws_parser *p, uint64_t glen)
{
	p->stats.gap_bytes += glen;
	p->pos += glen;
	while (glen) {
		switch (p->st) {
		case ST_HDR:
			/* A hole where a header starts (or inside one): the frame is lost. */
			lose_sync(p, 0);
			return;
		case ST_PAYLOAD: {
			uint64_t n = p->remaining < glen ? p->remaining : glen;

			p->remaining -= n;
			p->payload_off += n;
			p->keeping = false;
			glen -= n;
			if (!p->remaining)
				frame_end(p, false);
			break;
		}
		case ST_DESYNC:
			return;
		}
	}
}

int ws_parser_gap(struct ws_parser *p, uint64_t pos, uint64_t len)
{
	uint64_t end = pos + len;

	if (end <= p->pos || len == 0)
		return 0;
	if (pos > p->pos)
		gap(p, pos - p->pos);
	gap(p, end - p->pos);
	return 0;
}

int ws_parser_feed(struct ws_parser *p, uint64_t pos, const void *data, size_t len)
{
	const uint8_t *b = data;
	int err;

	if (len == 0 || pos + len <= p->pos)
		return 0;
	if (pos < p->pos) {
		uint64_t skip = p->pos - pos;

		b += skip;
		len -= skip;
	} else if (pos > p->pos) {
		gap(p, pos - p->pos);
	}
	p->stats.bytes += len;
	err = process(p, b, len);
	p->pos += len;
	return err;
}

void ws_parser_finish(struct ws_parser *p)
{
	if (p->st == ST_PAYLOAD) {
		/* The rest of the payload never came: the frame is truncated. */
		p->keeping = false;
		p->remaining = 0;
		frame_end(p, false);
	}
	if (p->pending) {
		p->stats.skipped_bytes += p->cur.header_len + p->cur.captured_len;
		p->pending = false;
		p->unconfirmed = false;
	}
	if (p->st == ST_HDR && p->hdr_have) {
		p->stats.skipped_bytes += p->hdr_have;
		p->hdr_have = 0;
	}
}

bool ws_looks_like_frames(const void *data, size_t len, enum ws_direction dir)
{
	return ws_write_looks_like_frames(data, len, len, dir);
}

bool ws_write_looks_like_frames(const void *data, size_t len, uint64_t write_len,
				enum ws_direction dir)
{
	const uint8_t *b = data;
	unsigned int whole = 0;
	struct hdr_info h;
	size_t i = 0;

	if (!len || len > write_len)
		return false;
	while (i < len) {
		int r = hdr_decode(b + i, len - i, dir, true, true, &h);

		/* A header cut by the end of the bytes given: only a chunk's may be. */
		if (r == 0)
			return len < write_len && whole >= 2;
		if (r < 0 || h.payload_len > write_len - i - r)
			return false;
		/* A frame that goes on past the bytes given, inside the write. */
		if (h.payload_len > len - i - r)
			return whole >= 2;
		i += r + h.payload_len;
		whole++;
	}
	return len == write_len || whole >= 2;
}

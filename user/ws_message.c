// SPDX-License-Identifier: GPL-2.0
/* Message assembly and inflation on top of the frame parser.  See ws_message.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ws_message.h"

/*
 * Compressed payload bytes the parser keeps beyond the decoded bound: deflate can grow
 * incompressible data a little, and a frame cut at the bound breaks the context.
 */
#define WS_STREAM_WIRE_SLACK 65536

struct ws_stream {
	struct ws_stream_opts opts;
	ws_stream_frame_cb frame_cb;
	ws_stream_message_cb message_cb;
	void *ctx;
	struct ws_parser *parser;
	struct ws_deflate_params deflate;
	struct ws_inflater *inflater;
	bool ctx_trusted; /* the inflater's context matches the sender's */
	bool seen_compressed;
	bool adopted; /* its start was not seen */
	bool recovered; /* its history came from the history source */
	bool seen_data; /* a data message began */
	ws_stream_history_cb history_cb;
	void *history_ctx;
	bool collect; /* keeping the open message's compressed bytes for the history source */
	struct ws_buf wire;
	/* the message being assembled */
	bool open;
	bool start_seen;
	bool lost; /* bytes of it are missing */
	bool undecodable;
	bool inflate_failed;
	bool too_large; /* compressed bytes beyond the kept bound */
	bool decoding; /* still appending decoded bytes */
	struct ws_message msg;
	struct ws_buf buf;
	struct ws_stream_stats stats;
};

#define STATUS_NAME(name, str) [WS_MSG_##name] = str,
static const char *const status_names[WS_MSG__COUNT] = { WS_MSG_STATUSES(STATUS_NAME) };
#undef STATUS_NAME

const char *ws_msg_status_name(enum ws_msg_status status)
{
	if ((unsigned int)status < WS_MSG__COUNT)
		return status_names[status];
	return "unknown";
}

static void context_lost(struct ws_stream *s)
{
	/* Only a context in use can be lost: plain streams do not count losses. */
	if (s->ctx_trusted && (s->deflate.enabled || s->seen_compressed))
		s->stats.context_losses++;
	s->ctx_trusted = false;
}

static enum ws_msg_status message_status(const struct ws_stream *s)
{
	if (s->undecodable)
		return WS_MSG_UNDECODABLE_GAP;
	if (s->inflate_failed)
		return WS_MSG_INFLATE_ERROR;
	if (s->lost || !s->start_seen)
		return WS_MSG_TRUNCATED;
	if (s->too_large || s->buf.total > s->buf.limit)
		return WS_MSG_TOO_LARGE;
	return WS_MSG_OK;
}

/* Completes the open message; the data pointer was set by the caller when not in buf. */
static void message_deliver(struct ws_stream *s, bool zero_copy)
{
	struct ws_message *m = &s->msg;

	m->status = message_status(s);
	if (!zero_copy) {
		m->data = s->buf.len ? s->buf.data : NULL;
		m->len = s->buf.len;
		m->decoded_len = s->buf.total;
	}
	if (m->status == WS_MSG_UNDECODABLE_GAP) {
		m->data = NULL;
		m->len = 0;
	}
	/* A compressed message cut at the bound was not decoded to its end: length unknown. */
	if (m->status != WS_MSG_OK && (m->status != WS_MSG_TOO_LARGE || m->compressed))
		m->decoded_len = 0;
	s->stats.messages[m->status]++;
	s->open = false;
	if (s->message_cb)
		s->message_cb(s->ctx, m);
}

/* Frames or bytes were lost: an open message is cut, the context is in doubt. */
static void stream_lost(struct ws_stream *s)
{
	if (s->open) {
		s->lost = true;
		if (s->msg.compressed)
			context_lost(s);
		message_deliver(s, false);
	}
	/* The lost frames may have carried compressed data. */
	context_lost(s);
}

static void message_begin(struct ws_stream *s, const struct ws_frame *f, bool start_seen)
{
	struct ws_message *m = &s->msg;

	memset(m, 0, sizeof(*m));
	m->opcode = f->opcode;
	m->compressed = start_seen && f->rsv1;
	m->stream_off = f->stream_off;
	s->open = true;
	s->start_seen = start_seen;
	s->lost = !start_seen;
	s->undecodable = false;
	s->inflate_failed = false;
	s->too_large = false;
	s->decoding = start_seen;
	ws_buf_reset(&s->buf, s->opts.max_message);
	s->collect = false;
	if (!start_seen) {
		/* It may have been compressed: with deflate in use its bytes mean nothing. */
		s->undecodable = s->deflate.enabled;
		return;
	}
	s->seen_data = true;
	if (!m->compressed)
		return;
	s->seen_compressed = true;
	if (ws_deflate_no_takeover(&s->deflate, s->opts.direction == WS_SERVER_TO_CLIENT)) {
		if (!s->ctx_trusted)
			s->stats.context_recoveries++;
		s->ctx_trusted = true;
		/* None yet: the one made for the first compressed message starts empty. */
		if (s->inflater)
			ws_inflater_begin(s->inflater, true);
	} else if (!s->ctx_trusted) {
		s->undecodable = true;
		s->decoding = false;
		if (s->history_cb) {
			s->collect = true;
			ws_buf_reset(&s->wire, WS_STREAM_HISTORY_WIRE_MAX);
		}
	}
}

/* The history source may know what the open message was compressed after. */
static void message_recover(struct ws_stream *s, const struct ws_frame *last)
{
	const uint8_t *dict = NULL;
	size_t dict_len = 0;
	int err;

	s->collect = false;
	if (s->lost || s->wire.total > s->wire.len ||
	    s->history_cb(s->history_ctx, last, s->msg.opcode, s->wire.data, s->wire.len, &dict,
			  &dict_len))
		return;
	if (!s->inflater) {
		s->inflater = ws_inflater_new();
		if (!s->inflater)
			return;
	}
	if (ws_inflater_prime(s->inflater, dict, dict_len))
		return;
	ws_buf_reset(&s->buf, s->opts.max_message);
	err = ws_inflater_feed(s->inflater, s->wire.data, s->wire.len, true, &s->buf);
	if (err) {
		/* The source vouched for a history that does not decode: still untrusted. */
		ws_buf_reset(&s->buf, s->opts.max_message);
		return;
	}
	s->undecodable = false;
	s->ctx_trusted = true;
	s->recovered = true;
	s->stats.context_recoveries++;
	s->stats.history_recovered++;
}

/* Adds one data frame's payload to the open message; returns 0 or -ENOMEM. */
static int message_add(struct ws_stream *s, const struct ws_frame *f, bool *zero_copy)
{
	struct ws_message *m = &s->msg;
	bool missing = f->truncated;
	bool cut = f->payload_kept < f->captured_len;
	int err;

	m->wire_len += f->payload_len;
	m->frames++;
	if (s->collect) {
		if (missing || cut || ws_buf_append(&s->wire, f->payload, f->payload_kept))
			s->collect = false;
	}
	if (!s->decoding)
		goto out;
	if (m->compressed) {
		/* Made on first use: most connections never negotiate compression. */
		if (!s->inflater) {
			s->inflater = ws_inflater_new();
			if (!s->inflater)
				return -ENOMEM;
		}
		err = ws_inflater_feed(s->inflater, f->payload, f->payload_kept,
				       f->fin && !missing && !cut, &s->buf);
		if (err == -ENOMEM)
			return err;
		if (err == -E2BIG) {
			/*
			 * Cut at the bound, the rest left undecoded: the inflater is now
			 * mid-stream, so the context is lost as it is for a hole.
			 */
			s->too_large = true;
			s->decoding = false;
			context_lost(s);
		} else if (err) {
			s->inflate_failed = true;
			s->decoding = false;
			context_lost(s);
		}
		if (cut && !missing) {
			/* compressed bytes beyond the bound were dropped */
			s->too_large = true;
			context_lost(s);
		}
	} else if (m->frames == 1 && f->fin && !cut) {
		/* single-frame message: hand the frame's payload over as it is */
		m->data = f->payload;
		m->len = f->payload_kept < s->buf.limit ? f->payload_kept : s->buf.limit;
		m->decoded_len = f->payload_len;
		s->buf.total = f->payload_len;
		*zero_copy = true;
	} else {
		err = ws_buf_append(&s->buf, f->payload, f->payload_kept);
		if (err)
			return err;
		/* bytes past the kept bound still count towards the size */
		s->buf.total += f->captured_len - f->payload_kept;
	}
out:
	if (missing) {
		s->lost = true;
		s->decoding = false;
		if (m->compressed)
			context_lost(s);
	}
	return 0;
}

static void on_frame(void *ctx, const struct ws_frame *f)
{
	struct ws_stream *s = ctx;
	struct ws_frame_info info = { .compressed_known = true };
	bool zero_copy = false;

	if (f->resynced)
		stream_lost(s);
	if (ws_opcode_is_control(f->opcode)) {
		if (s->frame_cb)
			s->frame_cb(s->ctx, f, &info);
		return;
	}
	if (f->opcode != WS_OP_CONTINUATION) {
		if (s->open) {
			/* RFC 6455 5.4 broken: the open message never got its last frame */
			s->lost = true;
			message_deliver(s, false);
		}
		message_begin(s, f, true);
	} else if (!s->open) {
		message_begin(s, f, false);
	}
	info.compressed = s->msg.compressed;
	info.compressed_known = s->start_seen;
	if (message_add(s, f, &zero_copy))
		s->lost = true; /* out of memory: say the bytes are missing */
	if (f->fin) {
		if (s->collect)
			message_recover(s, f);
		message_deliver(s, zero_copy);
		info.message = &s->msg;
	}
	if (s->frame_cb)
		s->frame_cb(s->ctx, f, &info);
}

struct ws_stream *ws_stream_new(const struct ws_stream_opts *opts, ws_stream_frame_cb frame_cb,
				ws_stream_message_cb message_cb, void *ctx)
{
	struct ws_parser_opts po = { 0 };
	struct ws_stream *s;

	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->opts = *opts;
	if (!s->opts.max_message)
		s->opts.max_message = WS_STREAM_DEFAULT_MAX_MESSAGE;
	s->frame_cb = frame_cb;
	s->message_cb = message_cb;
	s->ctx = ctx;
	s->ctx_trusted = true; /* an empty context at the start of the stream */
	s->deflate.server_max_window_bits = 15;
	s->deflate.client_max_window_bits = 15;
	po.direction = opts->direction;
	po.keep_payload = s->opts.max_message + WS_STREAM_WIRE_SLACK;
	s->parser = ws_parser_new(&po, on_frame, s);
	if (!s->parser)
		goto err_free;
	return s;

err_free:
	free(s);
	errno = ENOMEM;
	return NULL;
}

void ws_stream_free(struct ws_stream *s)
{
	if (!s)
		return;
	ws_parser_free(s->parser);
	ws_inflater_free(s->inflater);
	ws_buf_free(&s->buf);
	ws_buf_free(&s->wire);
	free(s);
}

int ws_stream_set_extensions(struct ws_stream *s, const char *value, char *err, size_t errsz)
{
	struct ws_deflate_params prm;
	int ret = ws_deflate_parse(value, &prm, err, errsz);

	if (ret)
		return ret;
	s->deflate = prm;
	ws_parser_set_allow_rsv1(s->parser, prm.enabled);
	return 0;
}

const struct ws_deflate_params *ws_stream_deflate(const struct ws_stream *s)
{
	return &s->deflate;
}

void ws_stream_adopt(struct ws_stream *s, uint64_t pos)
{
	ws_parser_set_pos(s->parser, pos);
	/* Its handshake was not seen: permessage-deflate may have been negotiated. */
	ws_parser_set_allow_rsv1(s->parser, true);
	s->adopted = true;
	context_lost(s);
}

void ws_stream_set_history(struct ws_stream *s, ws_stream_history_cb cb, void *ctx)
{
	s->history_cb = cb;
	s->history_ctx = ctx;
}

bool ws_stream_history_unknown(const struct ws_stream *s)
{
	return s->adopted && !s->recovered && (s->seen_compressed || !s->seen_data);
}

static void check_sync(struct ws_stream *s)
{
	/* Sync lost and not found again within this call: cut the open message now. */
	if (ws_parser_desynced(s->parser) && (s->open || s->ctx_trusted))
		stream_lost(s);
}

int ws_stream_feed(struct ws_stream *s, uint64_t pos, const void *data, size_t len)
{
	int err = ws_parser_feed(s->parser, pos, data, len);

	check_sync(s);
	return err;
}

int ws_stream_gap(struct ws_stream *s, uint64_t pos, uint64_t len)
{
	int err = ws_parser_gap(s->parser, pos, len);

	check_sync(s);
	return err;
}

void ws_stream_finish(struct ws_stream *s)
{
	ws_parser_finish(s->parser);
	if (!s->open)
		return;
	s->lost = true;
	message_deliver(s, false);
}

const struct ws_stream_stats *ws_stream_stats(const struct ws_stream *s)
{
	return &s->stats;
}

const struct ws_parser_stats *ws_stream_parser_stats(const struct ws_stream *s)
{
	return ws_parser_stats(s->parser);
}

struct ws_parser *ws_stream_parser(struct ws_stream *s)
{
	return s->parser;
}

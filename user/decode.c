// SPDX-License-Identifier: GPL-2.0
/*
 * wsaudit decode: prints the frames of a raw server-to-client byte stream as JSON lines.
 * For captured streams (incidents) and for tests; needs no privileges.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "decode_opts.h"
#include "http1.h"
#include "keyhash.h"
#include "log.h"
#include "utf8.h"
#include "ws_message.h"

#define READ_CHUNK 65536

struct decode_ctx {
	bool payload;
	bool show_identities; /* message types as they are (also with payload) */
	FILE *out;
	json_t *message; /* built by the message callback, attached to the next frame */
	uint64_t message_off;
	int out_err;
};

static void emit(struct decode_ctx *d, json_t *obj)
{
	if (json_dumpf(obj, d->out, JSON_COMPACT) || fputc('\n', d->out) == EOF)
		d->out_err = -EIO;
	json_decref(obj);
}

/*
 * The message's type as its JSON says ("type", else "event"), for text messages.  The
 * traffic chooses it: a keyed hash unless the messages or identities are shown.
 */
static json_t *message_type(const struct decode_ctx *d, const struct ws_message *m)
{
	static const char *const keys[] = { "type", "event" };
	json_t *root, *ret = json_null();

	if (m->opcode != WS_OP_TEXT || m->status != WS_MSG_OK || !m->len)
		return ret;
	root = json_loadb((const char *)m->data, m->len, JSON_DISABLE_EOF_CHECK, NULL);
	if (!json_is_object(root))
		goto out;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(root, keys[i]);

		if (json_is_string(v)) {
			char shown[KEYHASH_DISPLAY_LEN];

			if (d->payload || d->show_identities) {
				ret = json_incref(v);
				break;
			}
			keyhash_identity_display_as("t", json_string_value(v), shown,
						    sizeof(shown));
			ret = json_string(shown);
			break;
		}
	}
out:
	json_decref(root);
	return ret;
}

static void set_bytes(json_t *obj, const char *text_key, const char *hex_key, const uint8_t *data,
		      size_t len, bool text)
{
	static const char hex[] = "0123456789abcdef";
	char *h;

	if (text && utf8_valid(data, len)) {
		json_object_set_new(obj, text_key, json_stringn((const char *)data, len));
		return;
	}
	h = malloc(2 * len + 1);
	if (!h)
		return;
	for (size_t i = 0; i < len; i++) {
		h[2 * i] = hex[data[i] >> 4];
		h[2 * i + 1] = hex[data[i] & 15];
	}
	json_object_set_new(obj, hex_key, json_stringn(h, 2 * len));
	free(h);
}

static void on_message(void *ctx, const struct ws_message *m)
{
	struct decode_ctx *d = ctx;
	json_t *o = json_object();

	json_object_set_new(o, "opcode", json_string(ws_opcode_name(m->opcode)));
	json_object_set_new(o, "status", json_string(ws_msg_status_name(m->status)));
	json_object_set_new(o, "compressed", json_boolean(m->compressed));
	json_object_set_new(o, "frames", json_integer(m->frames));
	json_object_set_new(o, "wire_len", json_integer(m->wire_len));
	/* Not for a compressed too_large message: inflation stopped at the bound. */
	if (m->status == WS_MSG_OK || (m->status == WS_MSG_TOO_LARGE && !m->compressed))
		json_object_set_new(o, "decoded_len", json_integer(m->decoded_len));
	json_object_set_new(o, "type", message_type(d, m));
	if (d->payload && m->len)
		set_bytes(o, "payload", "payload_hex", m->data, m->len, m->opcode == WS_OP_TEXT);
	json_decref(d->message);
	d->message = o;
	d->message_off = m->stream_off;
}

static void on_frame(void *ctx, const struct ws_frame *f, const struct ws_frame_info *info)
{
	struct decode_ctx *d = ctx;
	json_t *o = json_object();

	json_object_set_new(o, "type", json_string("frame"));
	json_object_set_new(o, "offset", json_integer(f->stream_off));
	json_object_set_new(o, "opcode", json_string(ws_opcode_name(f->opcode)));
	json_object_set_new(o, "fin", json_boolean(f->fin));
	json_object_set_new(o, "rsv1", json_boolean(f->rsv1));
	json_object_set_new(o, "compressed",
			    info->compressed_known ? json_boolean(info->compressed) : json_null());
	json_object_set_new(o, "masked", json_boolean(f->masked));
	json_object_set_new(o, "payload_len", json_integer(f->payload_len));
	json_object_set_new(o, "captured_len", json_integer(f->captured_len));
	json_object_set_new(o, "truncated", json_boolean(f->truncated));
	if (f->opcode == WS_OP_CLOSE) {
		json_object_set_new(o, "close_code",
				    f->close_code > 0 ? json_integer(f->close_code) : json_null());
		json_object_set_new(o, "close_valid", json_boolean(f->close_valid));
		if (d->payload && f->close_reason)
			set_bytes(o, "close_reason", "close_reason_hex",
				  (const uint8_t *)f->close_reason, f->close_reason_len, true);
	}
	if (f->error)
		json_object_set_new(o, "error", json_string(ws_parse_error_name(f->error)));
	if (f->resynced)
		json_object_set_new(o, "resynced", json_true());
	if (info->message && d->message) {
		json_object_set_new(o, "message", d->message);
		d->message = NULL;
	} else if (!ws_opcode_is_control(f->opcode)) {
		json_object_set_new(o, "message", json_null());
	}
	emit(d, o);
}

/* A message cut by a loss or the end of input: it has no final frame to ride on. */
static void flush_message(struct decode_ctx *d)
{
	json_t *o;

	if (!d->message)
		return;
	o = json_object();
	json_object_set_new(o, "type", json_string("message"));
	json_object_set_new(o, "offset", json_integer(d->message_off));
	json_object_set_new(o, "message", d->message);
	d->message = NULL;
	emit(d, o);
}

static json_t *counts(const uint64_t *v, size_t n, const char *(*name)(unsigned int), size_t first)
{
	json_t *o = json_object();

	for (size_t i = first; i < n; i++)
		json_object_set_new(o, name(i), json_integer(v[i]));
	return o;
}

static const char *status_name(unsigned int i)
{
	return ws_msg_status_name(i);
}

static const char *error_name(unsigned int i)
{
	return ws_parse_error_name(i);
}

static void emit_stats(struct decode_ctx *d, struct ws_stream *s)
{
	const struct ws_parser_stats *ps = ws_stream_parser_stats(s);
	const struct ws_stream_stats *ss = ws_stream_stats(s);
	json_t *o = json_object();
	uint64_t msgs = 0;

	for (int i = 0; i < WS_MSG__COUNT; i++)
		msgs += ss->messages[i];
	json_object_set_new(o, "type", json_string("stats"));
	json_object_set_new(o, "bytes", json_integer(ps->bytes));
	json_object_set_new(o, "frames", json_integer(ps->frames));
	json_object_set_new(o, "truncated_frames", json_integer(ps->truncated_frames));
	json_object_set_new(o, "messages_total", json_integer(msgs));
	json_object_set_new(o, "messages", counts(ss->messages, WS_MSG__COUNT, status_name, 0));
	json_object_set_new(o, "desyncs", json_integer(ps->desyncs));
	json_object_set_new(o, "resyncs", json_integer(ps->resyncs));
	json_object_set_new(o, "skipped_bytes", json_integer(ps->skipped_bytes));
	json_object_set_new(o, "gap_bytes", json_integer(ps->gap_bytes));
	json_object_set_new(o, "context_losses", json_integer(ss->context_losses));
	json_object_set_new(o, "errors", counts(ps->errors, WS_ERR__COUNT, error_name, 1));
	emit(d, o);
}

/*
 * Parses the HTTP response at the start of the input.  buf holds the bytes read so far;
 * more are read from in as needed.  On success *head_len is the head's size and the
 * handshake record has been printed.
 */
static int read_response(struct decode_ctx *d, FILE *in, uint8_t *buf, size_t *have,
			 const char *cli_ext, struct ws_stream *s, size_t *head_len)
{
	struct http1_parser *hp = http1_parser_new(HTTP1_RESPONSE);
	const struct http1_message *m = NULL;
	size_t fed = 0, used;
	char err[160];
	const char *ext;
	json_t *o;
	int ret = -EINVAL;

	if (!hp)
		return -ENOMEM;
	for (;;) {
		enum http1_result r = http1_parser_feed(hp, buf + fed, *have - fed, &m, &used);

		if (r == HTTP1_DONE) {
			*head_len = fed + used;
			break;
		}
		if (r == HTTP1_ERROR) {
			log_err("failed to parse the HTTP response: %s", http1_parser_error(hp));
			goto out;
		}
		/* The head is bounded well below the buffer: it cannot fill it. */
		fed = *have;
		used = fread(buf + *have, 1, READ_CHUNK - *have, in);
		if (!used) {
			if (ferror(in)) {
				ret = -EIO;
				log_err("failed to read input: %s", strerror(errno));
			} else {
				log_err("failed to parse the HTTP response: input ends inside it");
			}
			goto out;
		}
		*have += used;
	}
	o = json_object();
	json_object_set_new(o, "type", json_string("handshake"));
	json_object_set_new(o, "offset", json_integer(0));
	json_object_set_new(o, "status", json_integer(m->status));
	json_object_set_new(o, "head_len", json_integer(m->head_len));
	ext = http1_header(m, "Sec-WebSocket-Extensions");
	json_object_set_new(o, "extensions", ext ? json_string(ext) : json_null());
	if (m->status != 101) {
		emit(d, o);
		log_err("the response has status %d, not 101 Switching Protocols: no frames follow",
			m->status);
		goto out;
	}
	if (!cli_ext && ws_stream_set_extensions(s, ext, err, sizeof(err))) {
		/* Still decode the frames; compressed ones inflate with context takeover. */
		json_object_set_new(o, "extensions_error", json_string(err));
		log_warn("invalid Sec-WebSocket-Extensions in the response: %s", err);
	}
	emit(d, o);
	ret = 0;
out:
	http1_parser_free(hp);
	return ret;
}

int cmd_decode(int argc, char **argv)
{
	int parsed;
	struct decode_ctx d = { .out = stdout };
	struct ws_stream_opts so = { .direction = WS_SERVER_TO_CLIENT };
	const char *ext, *path, *key;
	struct ws_stream *s = NULL;
	struct decode_opts o;
	uint8_t *buf = NULL;
	size_t have = 0, head_len = 0, n;
	uint64_t pos;
	FILE *in = stdin;
	char err[160];
	int ret = EXIT_RUNTIME;

	parsed = cli_parsed(decode_parse_args(argc, argv, &o, err, sizeof(err)), &o.help, "decode",
			    err, decode_usage);
	if (parsed != CLI_GO_ON)
		return parsed;
	ext = o.extensions;
	path = o.path;
	key = o.identity_key;
	d.payload = o.payload;
	d.show_identities = o.show_identities;
	so.max_message = o.max_message;
	if (keyhash_identity_setup(key, err, sizeof(err))) {
		fprintf(stderr, "wsaudit decode: %s\n", err);
		return EXIT_USAGE;
	}

	s = ws_stream_new(&so, on_frame, on_message, &d);
	if (!s) {
		log_err("failed to create the stream decoder: %s", strerror(errno));
		return EXIT_RUNTIME;
	}
	if (ext && ws_stream_set_extensions(s, ext, err, sizeof(err))) {
		fprintf(stderr, "wsaudit decode: invalid --extensions: %s\n", err);
		ret = EXIT_USAGE;
		goto out_free;
	}
	if (strcmp(path, "-")) {
		in = fopen(path, "rb");
		if (!in) {
			log_err("failed to open %s: %s", path, strerror(errno));
			goto out_free;
		}
	}
	buf = malloc(READ_CHUNK);
	if (!buf) {
		log_err("failed to allocate the read buffer");
		goto out_close;
	}
	/* Enough bytes to tell an HTTP response from frames. */
	while (have < 5 && (n = fread(buf + have, 1, READ_CHUNK - have, in)) > 0)
		have += n;
	if (ferror(in)) {
		log_err("failed to read %s: %s", path, strerror(errno));
		goto out_close;
	}
	if (have >= 5 && !memcmp(buf, "HTTP/", 5)) {
		int r = read_response(&d, in, buf, &have, ext, s, &head_len);

		if (r)
			goto out_close;
		/* Offsets stay offsets in the input: the frames start after the head. */
		ws_parser_set_pos(ws_stream_parser(s), head_len);
	}
	pos = 0;
	for (;;) {
		if (have > head_len &&
		    ws_stream_feed(s, pos + head_len, buf + head_len, have - head_len)) {
			log_err("failed to decode: out of memory");
			goto out_close;
		}
		flush_message(&d);
		pos += have;
		head_len = 0;
		have = fread(buf, 1, READ_CHUNK, in);
		if (!have)
			break;
	}
	if (ferror(in)) {
		log_err("failed to read %s: %s", path, strerror(errno));
		goto out_close;
	}
	ws_stream_finish(s);
	flush_message(&d);
	emit_stats(&d, s);
	if (fflush(d.out) || d.out_err) {
		log_err("failed to write output: %s", strerror(errno));
		goto out_close;
	}
	ret = EXIT_OK;
out_close:
	if (in != stdin)
		fclose(in);
out_free:
	json_decref(d.message);
	free(buf);
	ws_stream_free(s);
	return ret;
}

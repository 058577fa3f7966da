// SPDX-License-Identifier: GPL-2.0
/*
 * Message assembly and inflation (ws_stream): the RFC 7692 section 7 frames, streams recorded
 * from the websockets library (tests/data/record_ws_streams.py) split at every byte boundary,
 * holes and losses of sync with and without context takeover, and the status of each case.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "http1.h"
#include "ws_message.h"

#define MAX_EV 64

struct ev {
	bool control;
	uint8_t opcode;
	enum ws_msg_status status;
	bool compressed;
	int close_code;
	uint8_t *data;
	size_t len;
};

struct run {
	size_t n;
	struct ev ev[MAX_EV];
	/* frame offsets and lengths seen */
	size_t nframes;
	uint64_t frame_off[MAX_EV];
	uint64_t frame_end[MAX_EV];
	bool frame_compressed[MAX_EV];
	bool zero_copy_seen;
};

static void run_clear(struct run *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->ev[i].data);
	memset(r, 0, sizeof(*r));
}

static struct ev *ev_add(struct run *r)
{
	assert_true(r->n < MAX_EV);
	return &r->ev[r->n++];
}

static void on_message(void *ctx, const struct ws_message *m)
{
	struct run *r = ctx;
	struct ev *e = ev_add(r);

	e->opcode = m->opcode;
	e->status = m->status;
	e->compressed = m->compressed;
	e->len = m->len;
	e->data = malloc(m->len + 1);
	if (m->len)
		memcpy(e->data, m->data, m->len);
}

static void on_frame(void *ctx, const struct ws_frame *f, const struct ws_frame_info *info)
{
	struct run *r = ctx;

	if (r->nframes < MAX_EV) {
		r->frame_off[r->nframes] = f->stream_off;
		r->frame_end[r->nframes] = f->stream_off + f->header_len + f->payload_len;
		r->frame_compressed[r->nframes] = info->compressed;
		r->nframes++;
	}
	if (info->message && info->message->len && info->message->data == f->payload)
		r->zero_copy_seen = true;
	if (ws_opcode_is_control(f->opcode)) {
		struct ev *e = ev_add(r);

		e->control = true;
		e->opcode = f->opcode;
		e->close_code = f->close_code;
		e->len = f->payload_kept;
		e->data = malloc(e->len + 1);
		if (e->len)
			memcpy(e->data, f->payload, e->len);
	}
}

struct recording {
	uint8_t *bytes;
	size_t len;
	size_t head_len;
	char *extensions;
	json_t *manifest;
};

static void load(struct recording *rec, const char *name)
{
	char path[256];
	FILE *f;
	long n;
	const struct http1_message *m = NULL;
	struct http1_parser *hp = http1_parser_new(HTTP1_RESPONSE);
	const char *ext;
	size_t used;

	snprintf(path, sizeof(path), "tests/data/%s.bin", name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s (run the tests from the repository root)", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	rec->bytes = malloc(n);
	assert_int_equal(fread(rec->bytes, 1, n, f), n);
	fclose(f);
	rec->len = n;
	assert_int_equal(http1_parser_feed(hp, rec->bytes, rec->len, &m, &used), HTTP1_DONE);
	assert_int_equal(m->status, 101);
	rec->head_len = m->head_len;
	ext = http1_header(m, "Sec-WebSocket-Extensions");
	rec->extensions = ext ? strdup(ext) : NULL;
	http1_parser_free(hp);
	snprintf(path, sizeof(path), "tests/data/%s.json", name);
	rec->manifest = json_load_file(path, 0, NULL);
	assert_non_null(rec->manifest);
}

static void unload(struct recording *rec)
{
	free(rec->bytes);
	free(rec->extensions);
	json_decref(rec->manifest);
}

static struct ws_stream *stream_for(const struct recording *rec, struct run *r, size_t max)
{
	struct ws_stream_opts o = { .direction = WS_SERVER_TO_CLIENT, .max_message = max };
	struct ws_stream *s = ws_stream_new(&o, on_frame, on_message, r);
	char err[128];

	assert_non_null(s);
	assert_int_equal(ws_stream_set_extensions(s, rec->extensions, err, sizeof(err)), 0);
	ws_parser_set_pos(ws_stream_parser(s), rec->head_len);
	return s;
}

static size_t hex_decode(const char *hex, uint8_t *out)
{
	size_t n = strlen(hex) / 2;

	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
	return n;
}

/* The events in r are exactly what the manifest says the server sent. */
static void check_against_manifest(const struct recording *rec, const struct run *r)
{
	json_t *msgs = json_object_get(rec->manifest, "messages"), *m;
	size_t i, k = 0;
	uint8_t *buf = malloc(rec->len);

	json_array_foreach(msgs, i, m)
	{
		const char *op = json_string_value(json_object_get(m, "opcode"));
		const char *text = json_string_value(json_object_get(m, "text"));
		const char *hex = json_string_value(json_object_get(m, "hex"));
		const struct ev *e;
		size_t n;

		assert_true(k < r->n);
		e = &r->ev[k++];
		if (!strcmp(op, "ping")) {
			assert_true(e->control);
			assert_int_equal(e->opcode, WS_OP_PING);
		} else {
			assert_false(e->control);
			assert_int_equal(e->status, WS_MSG_OK);
			assert_int_equal(e->compressed, rec->extensions != NULL);
			assert_int_equal(e->opcode, strcmp(op, "text") ? WS_OP_BINARY : WS_OP_TEXT);
		}
		if (text) {
			assert_int_equal(e->len, strlen(text));
			assert_memory_equal(e->data, text, e->len);
		} else {
			n = hex_decode(hex, buf);
			assert_int_equal(e->len, n);
			assert_memory_equal(e->data, buf, n);
		}
	}
	assert_int_equal(r->n, k + 1);
	assert_true(r->ev[k].control);
	assert_int_equal(r->ev[k].opcode, WS_OP_CLOSE);
	assert_int_equal(r->ev[k].close_code, 1000);
	assert_memory_equal(r->ev[k].data + 2, "done", 4);
	free(buf);
}

/* Feeds the frames of rec cut at the given sorted stream positions. */
static void run_cuts(const struct recording *rec, struct run *r, const size_t *cuts, size_t n)
{
	struct ws_stream *s = stream_for(rec, r, 0);
	size_t at = rec->head_len;

	for (size_t i = 0; i <= n; i++) {
		/* cppcheck-suppress nullPointer ; cuts is read below n only, and is NULL for n 0 */
		size_t end = i < n ? cuts[i] : rec->len;

		if (end < at)
			continue;
		assert_int_equal(ws_stream_feed(s, at, rec->bytes + at, end - at), 0);
		at = end;
	}
	ws_stream_finish(s);
	assert_int_equal(ws_stream_parser_stats(s)->desyncs, 0);
	ws_stream_free(s);
}

static void check_recording_splits(const char *name)
{
	struct recording rec = { 0 };
	struct run *r = calloc(1, sizeof(*r)), ref_frames;
	size_t cut, cuts[64];
	uint32_t x = 7692;

	load(&rec, name);
	/* whole */
	run_cuts(&rec, r, NULL, 0);
	check_against_manifest(&rec, r);
	memcpy(&ref_frames, r, sizeof(ref_frames));
	memset(&ref_frames.ev, 0, sizeof(ref_frames.ev));
	ref_frames.n = 0;
	run_clear(r);
	/* one byte per feed: every byte boundary is a cut */
	{
		struct ws_stream *s = stream_for(&rec, r, 0);

		for (size_t i = rec.head_len; i < rec.len; i++)
			assert_int_equal(ws_stream_feed(s, i, rec.bytes + i, 1), 0);
		ws_stream_finish(s);
		ws_stream_free(s);
		check_against_manifest(&rec, r);
		run_clear(r);
	}
	/* two pieces, cut at every byte of the first frames and around every frame boundary */
	for (cut = rec.head_len; cut < rec.len; cut++) {
		bool near = cut < rec.head_len + 1500;

		for (size_t f = 0; f < ref_frames.nframes && !near; f++)
			near = cut + 16 >= ref_frames.frame_off[f] &&
			       cut <= ref_frames.frame_off[f] + 16;
		if (!near)
			continue;
		run_cuts(&rec, r, &cut, 1);
		check_against_manifest(&rec, r);
		run_clear(r);
	}
	/* many random cuts */
	for (int round = 0; round < 200; round++) {
		size_t n = 1 + round % 60;

		for (size_t i = 0; i < n; i++) {
			x = x * 1664525 + 1013904223;
			cuts[i] = rec.head_len + x % (rec.len - rec.head_len);
		}
		for (size_t i = 1; i < n; i++) {
			for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
				size_t t = cuts[j];

				cuts[j] = cuts[j - 1];
				cuts[j - 1] = t;
			}
		}
		run_cuts(&rec, r, cuts, n);
		check_against_manifest(&rec, r);
		run_clear(r);
	}
	unload(&rec);
	free(r);
}

static void test_recorded_deflate_takeover_every_split(void **state)
{
	check_recording_splits("ws_deflate_takeover");
}

static void test_recorded_deflate_no_takeover_every_split(void **state)
{
	check_recording_splits("ws_deflate_no_takeover");
}

static void test_recorded_plain_every_split(void **state)
{
	check_recording_splits("ws_plain");
}

/* The index of the first frame whose payload is at least min bytes, from frame `from`. */
static size_t frame_at_least(const struct run *r, size_t from, uint64_t min)
{
	for (size_t f = from; f < r->nframes; f++) {
		if (r->frame_end[f] - r->frame_off[f] >= min)
			return f;
	}
	fail_msg("no frame of %llu bytes", (unsigned long long)min);
	return 0;
}

/* Feeds rec with the hole [hole, hole + len) and returns the stream stats. */
static struct ws_stream_stats feed_with_hole(const struct recording *rec, struct run *r,
					     uint64_t hole, uint64_t len,
					     struct ws_parser_stats *ps)
{
	struct ws_stream *s = stream_for(rec, r, 0);
	struct ws_stream_stats st;

	assert_int_equal(ws_stream_feed(s, rec->head_len, rec->bytes + rec->head_len,
					hole - rec->head_len),
			 0);
	assert_int_equal(ws_stream_gap(s, hole, len), 0);
	assert_int_equal(
		ws_stream_feed(s, hole + len, rec->bytes + hole + len, rec->len - hole - len), 0);
	ws_stream_finish(s);
	st = *ws_stream_stats(s);
	if (ps)
		*ps = *ws_stream_parser_stats(s);
	ws_stream_free(s);
	return st;
}

static void reference(const struct recording *rec, struct run *ref)
{
	run_cuts(rec, ref, NULL, 0);
}

/* Index of the data message event that covers frame f (events: messages and controls). */
static void hole_in_payload(const char *name, bool takeover)
{
	struct recording rec = { 0 };
	struct run *ref = calloc(1, sizeof(*ref)), *r = calloc(1, sizeof(*r));
	struct ws_stream_stats st;
	size_t f, cut_ev = 0, seen_cut = 0;

	load(&rec, name);
	reference(&rec, ref);
	/* the ~1 KiB message: a hole in the middle of its payload */
	f = frame_at_least(ref, 0, 200);
	st = feed_with_hole(&rec, r, ref->frame_off[f] + 20, 30, NULL);
	assert_int_equal(r->n, ref->n);
	for (size_t i = 0; i < r->n; i++) {
		const struct ev *e = &r->ev[i], *want = &ref->ev[i];

		if (e->control) {
			assert_true(want->control);
			continue;
		}
		if (e->status == WS_MSG_TRUNCATED && !seen_cut) {
			seen_cut = 1;
			cut_ev = i;
			/* what was decoded before the hole is right */
			assert_true(e->len < want->len);
			assert_memory_equal(e->data, want->data, e->len);
			continue;
		}
		if (!seen_cut || !takeover) {
			assert_int_equal(e->status, WS_MSG_OK);
			assert_int_equal(e->len, want->len);
			assert_memory_equal(e->data, want->data, e->len);
		} else {
			assert_int_equal(e->status, WS_MSG_UNDECODABLE_GAP);
			assert_int_equal(e->len, 0);
		}
	}
	assert_true(seen_cut);
	assert_true(cut_ev > 0);
	assert_int_equal(st.messages[WS_MSG_TRUNCATED], 1);
	assert_int_equal(st.context_losses, rec.extensions ? 1 : 0);
	if (takeover)
		assert_true(st.messages[WS_MSG_UNDECODABLE_GAP] > 3);
	else
		assert_int_equal(st.messages[WS_MSG_UNDECODABLE_GAP], 0);
	run_clear(ref);
	run_clear(r);
	free(ref);
	free(r);
	unload(&rec);
}

static void test_hole_in_compressed_payload_takeover(void **state)
{
	hole_in_payload("ws_deflate_takeover", true);
}

static void test_hole_in_compressed_payload_no_takeover(void **state)
{
	hole_in_payload("ws_deflate_no_takeover", false);
}

static void test_hole_in_plain_payload(void **state)
{
	hole_in_payload("ws_plain", false);
}

/* A hole that swallows whole frames: sync is lost and found; nothing wrong is decoded. */
static void hole_over_frames(const char *name, bool takeover)
{
	struct recording rec = { 0 };
	struct run *ref = calloc(1, sizeof(*ref)), *r = calloc(1, sizeof(*r));
	struct ws_parser_stats ps;
	struct ws_stream_stats st;
	size_t k = 0, ok_after = 0;

	load(&rec, name);
	reference(&rec, ref);
	/* from inside frame 1 to inside frame 3 */
	st = feed_with_hole(&rec, r, ref->frame_off[1] + 3,
			    ref->frame_off[3] + 3 - (ref->frame_off[1] + 3), &ps);
	assert_int_equal(ps.desyncs, 1);
	assert_int_equal(ps.resyncs, 1);
	/* every event decoded is one the server sent, in order */
	for (size_t i = 0; i < r->n; i++) {
		const struct ev *e = &r->ev[i];

		if (!e->control && e->status != WS_MSG_OK)
			continue;
		while (k < ref->n &&
		       (ref->ev[k].control != e->control || ref->ev[k].opcode != e->opcode ||
			ref->ev[k].len != e->len || memcmp(ref->ev[k].data, e->data, e->len)))
			k++;
		assert_true(k < ref->n);
		k++;
		if (!e->control && i > 2)
			ok_after++;
	}
	if (takeover) {
		assert_int_equal(ok_after, 0);
		assert_true(st.messages[WS_MSG_UNDECODABLE_GAP] > 3);
	} else {
		assert_true(ok_after >= 5);
	}
	run_clear(ref);
	run_clear(r);
	free(ref);
	free(r);
	unload(&rec);
}

static void test_hole_over_frames_takeover(void **state)
{
	hole_over_frames("ws_deflate_takeover", true);
}

static void test_hole_over_frames_no_takeover(void **state)
{
	hole_over_frames("ws_deflate_no_takeover", false);
}

static void test_hole_over_frames_plain(void **state)
{
	hole_over_frames("ws_plain", false);
}

/*
 * Messages past the bound (1 KiB and 72 KiB texts, 300-byte binary, limit 200): inflation
 * stops at the bound, so the inflater is cut mid-stream.  With no_context_takeover the
 * next message starts afresh and decodes; with takeover every later compressed message is
 * undecodable_gap, as after a hole.
 */
static void too_large(const char *name, bool takeover)
{
	struct recording rec = { 0 };
	struct run *r = calloc(1, sizeof(*r));
	struct ws_stream *s;
	const struct ws_stream_stats *st;
	size_t big = 0, gap = 0, ok_after = 0;

	load(&rec, name);
	s = stream_for(&rec, r, 200);
	assert_int_equal(ws_stream_feed(s, rec.head_len, rec.bytes + rec.head_len,
					rec.len - rec.head_len),
			 0);
	for (size_t i = 0; i < r->n; i++) {
		if (r->ev[i].control)
			continue;
		if (r->ev[i].status == WS_MSG_TOO_LARGE) {
			big++;
			assert_int_equal(r->ev[i].len, 200);
		} else if (r->ev[i].status == WS_MSG_UNDECODABLE_GAP) {
			assert_true(takeover && big);
			gap++;
		} else {
			assert_int_equal(r->ev[i].status, WS_MSG_OK);
			if (big)
				ok_after++;
		}
	}
	st = ws_stream_stats(s);
	if (takeover) {
		assert_int_equal(big, 1);
		assert_int_equal(ok_after, 0);
		assert_int_equal(gap, 6);
		assert_int_equal(st->context_losses, 1);
	} else {
		assert_int_equal(big, 3);
		assert_int_equal(ok_after, 4);
		assert_int_equal(st->context_losses, 3);
		assert_int_equal(st->context_recoveries, 3);
	}
	ws_stream_free(s);
	run_clear(r);
	free(r);
	unload(&rec);
}

static void test_too_large_takeover(void **state)
{
	too_large("ws_deflate_takeover", true);
}

static void test_too_large_no_takeover(void **state)
{
	too_large("ws_deflate_no_takeover", false);
}

static struct ws_stream *small_stream(struct run *r, const char *ext)
{
	struct ws_stream_opts o = { .direction = WS_SERVER_TO_CLIENT };
	struct ws_stream *s = ws_stream_new(&o, on_frame, on_message, r);
	char err[128];

	assert_non_null(s);
	if (ext)
		assert_int_equal(ws_stream_set_extensions(s, ext, err, sizeof(err)), 0);
	return s;
}

/* RFC 7692 7.2.3.1 and 7.2.3.2 as frames: "Hello" twice, the window shared. */
static const uint8_t rfc_two_hellos[] = { 0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
					  0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00 };

static void test_rfc7692_frames_takeover(void **state)
{
	struct run *r = calloc(1, sizeof(*r));
	struct ws_stream *s = small_stream(r, "permessage-deflate");

	assert_int_equal(ws_stream_feed(s, 0, rfc_two_hellos, sizeof(rfc_two_hellos)), 0);
	assert_int_equal(r->n, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r->ev[i].status, WS_MSG_OK);
		assert_true(r->ev[i].compressed);
		assert_int_equal(r->ev[i].len, 5);
		assert_memory_equal(r->ev[i].data, "Hello", 5);
	}
	ws_stream_free(s);
	run_clear(r);
	free(r);
}

static void test_rfc7692_frames_no_takeover(void **state)
{
	static const uint8_t same_twice[] = { 0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00,
					      0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
	struct run *r = calloc(1, sizeof(*r));
	struct ws_stream *s = small_stream(r, "permessage-deflate; server_no_context_takeover");

	assert_int_equal(ws_stream_feed(s, 0, same_twice, sizeof(same_twice)), 0);
	assert_int_equal(r->n, 2);
	assert_int_equal(r->ev[1].status, WS_MSG_OK);
	assert_memory_equal(r->ev[1].data, "Hello", 5);
	/* the shared-window form is not valid without takeover */
	assert_int_equal(ws_stream_feed(s, sizeof(same_twice), rfc_two_hellos + 9, 7), 0);
	assert_int_equal(r->n, 3);
	assert_int_equal(r->ev[2].status, WS_MSG_INFLATE_ERROR);
	assert_int_equal(ws_stream_stats(s)->messages[WS_MSG_INFLATE_ERROR], 1);
	/* and the next message starts fresh: decodable */
	assert_int_equal(ws_stream_feed(s, sizeof(same_twice) + 7, same_twice, 9), 0);
	assert_int_equal(r->ev[3].status, WS_MSG_OK);
	ws_stream_free(s);
	run_clear(r);
	free(r);
}

static void test_rfc7692_fragmented_frames_are_compressed(void **state)
{
	/* 7.2.3.1 fragmented, with a ping between the fragments */
	static const uint8_t b[] = { 0x41, 0x03, 0xf2, 0x48, 0xcd, 0x89, 0x00,
				     0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00 };
	struct run *r = calloc(1, sizeof(*r));
	struct ws_stream *s = small_stream(r, "permessage-deflate");

	assert_int_equal(ws_stream_feed(s, 0, b, sizeof(b)), 0);
	assert_int_equal(r->nframes, 3);
	assert_true(r->frame_compressed[0]);
	assert_false(r->frame_compressed[1]); /* the ping is not part of the message */
	assert_true(r->frame_compressed[2]);
	assert_int_equal(r->n, 2);
	assert_true(r->ev[0].control);
	assert_int_equal(r->ev[1].status, WS_MSG_OK);
	assert_memory_equal(r->ev[1].data, "Hello", 5);
	ws_stream_free(s);
	run_clear(r);
	free(r);
}

static void test_single_frame_message_is_not_copied(void **state)
{
	static const uint8_t b[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
	struct run *r = calloc(1, sizeof(*r));
	struct ws_stream *s = small_stream(r, NULL);

	assert_int_equal(ws_stream_feed(s, 0, b, sizeof(b)), 0);
	assert_true(r->zero_copy_seen);
	ws_stream_free(s);
	run_clear(r);
	free(r);
}

static void test_continuation_without_start(void **state)
{
	static const uint8_t b[] = { 0x80, 0x02, 'l', 'o', 0x81, 0x01, 'x' };
	struct run *r = calloc(1, sizeof(*r));
	struct ws_stream *s = small_stream(r, NULL);

	assert_int_equal(ws_stream_feed(s, 0, b, sizeof(b)), 0);
	assert_int_equal(r->n, 2);
	assert_int_equal(r->ev[0].status, WS_MSG_TRUNCATED);
	assert_int_equal(r->ev[0].opcode, WS_OP_CONTINUATION);
	assert_int_equal(r->ev[1].status, WS_MSG_OK);
	ws_stream_free(s);
	run_clear(r);
	/* with deflate in use its bytes cannot be read */
	s = small_stream(r, "permessage-deflate");
	assert_int_equal(ws_stream_feed(s, 0, b, sizeof(b)), 0);
	assert_int_equal(r->ev[0].status, WS_MSG_UNDECODABLE_GAP);
	ws_stream_free(s);
	run_clear(r);
	free(r);
}

static void test_message_cut_by_new_message(void **state)
{
	static const uint8_t b[] = { 0x01, 0x01, 'a', 0x81, 0x01, 'b' };
	struct run *r = calloc(1, sizeof(*r));
	struct ws_stream *s = small_stream(r, NULL);

	assert_int_equal(ws_stream_feed(s, 0, b, sizeof(b)), 0);
	assert_int_equal(r->n, 2);
	assert_int_equal(r->ev[0].status, WS_MSG_TRUNCATED);
	assert_int_equal(r->ev[1].status, WS_MSG_OK);
	ws_stream_free(s);
	run_clear(r);
	free(r);
}

static void test_finish_cuts_open_message(void **state)
{
	static const uint8_t b[] = { 0x01, 0x01, 'a' };
	struct run *r = calloc(1, sizeof(*r));
	struct ws_stream *s = small_stream(r, NULL);

	assert_int_equal(ws_stream_feed(s, 0, b, sizeof(b)), 0);
	assert_int_equal(r->n, 0);
	ws_stream_finish(s);
	assert_int_equal(r->n, 1);
	assert_int_equal(r->ev[0].status, WS_MSG_TRUNCATED);
	assert_int_equal(r->ev[0].len, 1);
	ws_stream_free(s);
	run_clear(r);
	free(r);
}

static void test_bad_extensions_rejected(void **state)
{
	struct ws_stream_opts o = { .direction = WS_SERVER_TO_CLIENT };
	struct ws_stream *s = ws_stream_new(&o, NULL, NULL, NULL);
	char err[128];

	assert_int_equal(ws_stream_set_extensions(s, "permessage-deflate; bogus", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "bogus"));
	assert_false(ws_stream_deflate(s)->enabled);
	ws_stream_free(s);
	assert_string_equal(ws_msg_status_name(WS_MSG_UNDECODABLE_GAP), "undecodable_gap");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recorded_deflate_takeover_every_split),
		cmocka_unit_test(test_recorded_deflate_no_takeover_every_split),
		cmocka_unit_test(test_recorded_plain_every_split),
		cmocka_unit_test(test_hole_in_compressed_payload_takeover),
		cmocka_unit_test(test_hole_in_compressed_payload_no_takeover),
		cmocka_unit_test(test_hole_in_plain_payload),
		cmocka_unit_test(test_hole_over_frames_takeover),
		cmocka_unit_test(test_hole_over_frames_no_takeover),
		cmocka_unit_test(test_hole_over_frames_plain),
		cmocka_unit_test(test_too_large_takeover),
		cmocka_unit_test(test_too_large_no_takeover),
		cmocka_unit_test(test_rfc7692_frames_takeover),
		cmocka_unit_test(test_rfc7692_frames_no_takeover),
		cmocka_unit_test(test_rfc7692_fragmented_frames_are_compressed),
		cmocka_unit_test(test_single_frame_message_is_not_copied),
		cmocka_unit_test(test_continuation_without_start),
		cmocka_unit_test(test_message_cut_by_new_message),
		cmocka_unit_test(test_finish_cuts_open_message),
		cmocka_unit_test(test_bad_extensions_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

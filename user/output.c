// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "adopt.h"
#include "clock.h"
#include "pyscope.h"
#include "keyhash.h"
#include "log.h"
#include "output.h"
#include "runs.h"
#include "streamwrite.h"
#include "delivery.h"
#include "handed.h"
#include "utf8.h"

/* The columns a text line fits in (a terminal's usual width), unless --wide. */
#define TEXT_WIDTH 120
/* Processes whose code roots are remembered; more take the oldest's place. */
#define CODE_ROOTS 64

/*
 * A process's code root: the longest directory holding every file its frames came from so
 * far, so that those files are printed relative to it.
 */
struct code_root {
	uint32_t pid;
	char dir[512]; /* ends with '/'; "" for a free slot */
};

struct output {
	FILE *out;
	output_line_fn sink;
	void *sink_ctx;
	enum output_format format;
	bool payload;
	bool stack;
	/* One record's JSON, reused: a record goes out with one write to the stream. */
	char *buf;
	size_t cap;
	/* Strings every frame record repeats, made once and shared by reference. */
	json_t *s_frame;
	json_t *s_opcode[16];
	json_t *s_unattributed[UNATTR__COUNT];
	json_t *s_rule[RULE__COUNT];
	uint64_t errors; /* records that could not be built or written */
	/* Text: one record's lines, fitted to TEXT_WIDTH columns unless wide. */
	bool wide;
	bool header_done;
	char *tbuf;
	size_t tlen, tcap;
	struct code_root roots[CODE_ROOTS];
	unsigned int next_root;
};

/* The offset from CLOCK_MONOTONIC (the kernel's event clock) to the wall clock. */
static int64_t mono_to_real_ns(void)
{
	static int64_t offset;
	static bool known;

	if (!known) {
		offset = mono_to_real_offset();
		known = true;
	}
	return offset;
}

void output_format_time(char *buf, size_t size, uint64_t mono_ns)
{
	/* Records come many to a second: the calendar part is formatted once per second. */
	static __thread time_t last_secs = -1;
	static __thread char last[32];
	static __thread size_t last_len;
	int64_t real = (int64_t)mono_ns + mono_to_real_ns();
	time_t secs = real / 1000000000LL;
	struct tm tm;
	size_t n;

	if (secs != last_secs) {
		gmtime_r(&secs, &tm);
		last_len = strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%S", &tm);
		last_secs = secs;
	}
	n = last_len < size ? last_len : 0;
	memcpy(buf, last, n);
	snprintf(buf + n, size - n, ".%09lldZ", (long long)(real % 1000000000LL));
}

struct output *output_new(FILE *out, enum output_format format, bool payload, bool stack)
{
	struct output *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->out = out;
	o->format = format;
	o->payload = payload;
	o->stack = stack;
	mono_to_real_ns();
	return o;
}

void output_free(struct output *o)
{
	if (!o)
		return;
	fflush(o->out);
	free(o->buf);
	free(o->tbuf);
	json_decref(o->s_frame);
	for (size_t i = 0; i < sizeof(o->s_opcode) / sizeof(o->s_opcode[0]); i++)
		json_decref(o->s_opcode[i]);
	for (size_t i = 0; i < UNATTR__COUNT; i++)
		json_decref(o->s_unattributed[i]);
	for (size_t i = 0; i < RULE__COUNT; i++)
		json_decref(o->s_rule[i]);
	free(o);
}

void output_set_stream(struct output *o, FILE *out)
{
	fflush(o->out);
	o->out = out;
}

void output_set_sink(struct output *o, output_line_fn fn, void *ctx)
{
	o->sink = fn;
	o->sink_ctx = ctx;
}

/* A record lost: counted (stats "output.errors") and said, never silent. */
static void record_error(struct output *o, const char *why)
{
	if (!o->errors++ || !(o->errors & (o->errors - 1)))
		log_warn("an output record %s (%llu so far)", why, (unsigned long long)o->errors);
}

/*
 * stdio says that a write failed (a full disk, a closed pipe) on the call that flushed, which
 * may come records later: the stream's error flag is checked after every record and flush.
 * What the failed flush held is lost; that is one error, whatever number of records it held.
 * @err is the errno of the call that failed here, 0 when the flag was set by an earlier one.
 */
static void check_stream(struct output *o, int err)
{
	char why[96];

	if (o->sink || !ferror_unlocked(o->out))
		return;
	snprintf(why, sizeof(why), "could not be written%s%s%s", err ? " (" : "",
		 err ? strerror(err) : "", err ? ")" : "");
	record_error(o, why);
	clearerr_unlocked(o->out);
}

void output_flush(struct output *o)
{
	check_stream(o, fflush(o->out) ? errno : 0);
}

uint64_t output_errors(const struct output *o)
{
	return o->errors;
}

/* Makes room for @more bytes after the first @n of o->buf; false: no memory. */
static bool buf_room(struct output *o, size_t n, size_t more)
{
	size_t cap = o->cap ? o->cap : 4096;
	char *nb;

	if (n + more <= o->cap)
		return true;
	while (cap < n + more)
		cap *= 2;
	nb = realloc(o->buf, cap);
	if (!nb)
		return false;
	o->buf = nb;
	o->cap = cap;
	return true;
}

static bool buf_put(struct output *o, size_t *n, const void *s, size_t len)
{
	if (!buf_room(o, *n, len))
		return false;
	memcpy(o->buf + *n, s, len);
	*n += len;
	return true;
}

/* A string as jansson's dump_string writes it without JSON_ENSURE_ASCII or _ESCAPE_SLASH. */
static bool dump_string(struct output *o, size_t *n, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t run = 0;
	bool high = false;

	/* Every byte may become \u00XX: room for the worst case, then no check per byte. */
	if (!buf_room(o, *n, 6 * len + 2))
		return false;
	o->buf[(*n)++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		static const char hex[] = "0123456789ABCDEF";
		char *w;

		if (c >= 0x20 && c != '"' && c != '\\') {
			high |= c >= 0x80;
			continue;
		}
		memcpy(o->buf + *n, s + run, i - run);
		*n += i - run;
		run = i + 1;
		w = o->buf + *n;
		w[0] = '\\';
		switch (c) {
		case '"':
		case '\\':
			w[1] = (char)c;
			break;
		case '\b':
			w[1] = 'b';
			break;
		case '\f':
			w[1] = 'f';
			break;
		case '\n':
			w[1] = 'n';
			break;
		case '\r':
			w[1] = 'r';
			break;
		case '\t':
			w[1] = 't';
			break;
		default:
			memcpy(w + 1, "u00", 3);
			w[4] = hex[c >> 4];
			w[5] = hex[c & 15];
			*n += 4;
			break;
		}
		*n += 2;
	}
	/* jansson refuses to dump a string that is not UTF-8: so does this. */
	if (high && !utf8_valid(str, len))
		return false;
	memcpy(o->buf + *n, s + run, len - run);
	*n += len - run;
	o->buf[(*n)++] = '"';
	return true;
}

/*
 * A record's tree written compact, in its keys' order, into o->buf from *n: exactly what
 * json_dumpb(JSON_COMPACT | JSON_PRESERVE_ORDER) writes, at a fraction of its cost (it calls
 * back per token).  false: a real number (jansson's formatting of reals is its own), a string
 * that is not UTF-8, or no memory; the caller then asks jansson.
 */
static bool dump_value(struct output *o, size_t *n, const json_t *v)
{
	char num[32];
	const char *key;
	json_t *e;
	size_t i;
	bool first = true;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (!buf_put(o, n, "{", 1))
			return false;
		json_object_foreach((json_t *)v, key, e)
		{
			if ((!first && !buf_put(o, n, ",", 1)) ||
			    !dump_string(o, n, key, strlen(key)) || !buf_put(o, n, ":", 1) ||
			    !dump_value(o, n, e))
				return false;
			first = false;
		}
		return buf_put(o, n, "}", 1);
	case JSON_ARRAY:
		if (!buf_put(o, n, "[", 1))
			return false;
		json_array_foreach(v, i, e)
		{
			if ((i && !buf_put(o, n, ",", 1)) || !dump_value(o, n, e))
				return false;
		}
		return buf_put(o, n, "]", 1);
	case JSON_STRING:
		return dump_string(o, n, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return buf_put(o, n, num,
			       (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
						json_integer_value(v)));
	case JSON_TRUE:
		return buf_put(o, n, "true", 4);
	case JSON_FALSE:
		return buf_put(o, n, "false", 5);
	case JSON_NULL:
		return buf_put(o, n, "null", 4);
	default:
		return false;
	}
}

/*
 * The record is dumped into o->buf and written with one call: dumping straight to the
 * stream costs one locked stdio call per token.
 */
static void emit_json(struct output *o, json_t *obj)
{
	const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
	/*
	 * Every record starts with the contract's version (docs/records.md): written ahead of
	 * the dump, whose own '{' it replaces, so that it comes first without rebuilding the
	 * object.
	 */
	static const char head[] = "{\"v\":" OUTPUT_RECORD_VERSION_STR ",";
	const size_t hl = sizeof(head) - 1;
	size_t n = hl - 1;
	char *nb;

	if (!obj) {
		record_error(o, "could not be built (no memory)");
		return;
	}
	if (dump_value(o, &n, obj) && buf_room(o, n, 1)) {
		n -= hl - 1;
		goto write;
	}
	n = json_dumpb(obj, o->cap > hl ? o->buf + hl - 1 : NULL, o->cap > hl ? o->cap - hl : 0,
		       flags);
	if (n && n + hl + 1 > o->cap) {
		nb = realloc(o->buf, n + hl + 1 + 1024);
		if (!nb)
			goto out;
		o->buf = nb;
		o->cap = n + hl + 1 + 1024;
		n = json_dumpb(obj, o->buf + hl - 1, o->cap - hl, flags);
	}
write:
	if (n < 3) {
		record_error(o, "could not be written");
		goto out;
	}
	memcpy(o->buf, head, hl);
	n += hl - 1;
	o->buf[n] = '\n';
	if (o->sink)
		o->sink(o->sink_ctx, o->buf, n + 1);
	else
		check_stream(o, fwrite_unlocked(o->buf, 1, n + 1, o->out) < n + 1 ? errno : 0);
out:
	json_decref(obj);
}

/*
 * Sets @key to @v, taking the reference; false when @v is NULL (a string that is not UTF-8,
 * or no memory), where json_pack would have failed the whole object.
 */
static bool put(json_t *obj, const char *key, json_t *v)
{
	return v && !json_object_set_new_nocheck(obj, key, v);
}

/*
 * A string from the traced process or its peer (thread name, function, file, identity):
 * bytes that are not UTF-8 are escaped as \xNN rather than failing the record.
 */
static json_t *text_json(const char *s)
{
	json_t *v;
	char *esc;

	if (!s)
		return json_null();
	v = json_string(s);
	if (v)
		return v;
	esc = utf8_escape(s);
	v = esc ? json_string(esc) : NULL;
	free(esc);
	return v;
}

static json_t *shared(json_t **slot, const char *s)
{
	if (!*slot)
		*slot = json_string(s);
	return json_incref(*slot);
}

static json_t *conn_json(const struct ct_conn *c)
{
	json_t *obj = json_object();

	if (!obj)
		return NULL;
	if (!put(obj, "id", json_string(c->id_str)) || !put(obj, "local", json_string(c->local)) ||
	    !put(obj, "peer", json_string(c->peer)) || !put(obj, "tls", json_boolean(c->tls)) ||
	    !put(obj, "user", json_null()) || !put(obj, "adopted", json_boolean(c->adopted)) ||
	    !put(obj, "user_unknown", json_boolean(c->user_unknown != NULL)) ||
	    !put(obj, "history_unknown", json_boolean(c->history_unknown))) {
		json_decref(obj);
		return NULL;
	}
	if (c->identity_from)
		json_object_set_new(obj, "identity_from", json_string(c->identity_from));
	if (c->tls_link)
		json_object_set_new(obj, "tls_link", json_string(c->tls_link));
	if (c->gap_bytes)
		json_object_set_new(obj, "gap_bytes", json_integer((json_int_t)c->gap_bytes));
	if (c->has_user)
		json_object_set_new(obj, "user", text_json(c->user_shown));
	else if (c->user_ambiguous)
		json_object_set_new(obj, "user",
				    json_pack("{s:s}", "ambiguous", c->user_ambiguous));
	else if (c->user_unknown)
		json_object_set_new(obj, "user", json_pack("{s:s}", "unknown", c->user_unknown));
	return obj;
}

static json_t *time_json(uint64_t ts_ns)
{
	char ts[48];

	output_format_time(ts, sizeof(ts), ts_ns);
	return json_string(ts);
}

void output_set_wide(struct output *o, bool wide)
{
	o->wide = wide;
}

/* A text record is built in o->tbuf, then fitted and written by text_flush(). */
__attribute__((format(printf, 2, 3))) static void tput(struct output *o, const char *fmt, ...)
{
	va_list ap;
	size_t need;
	char *nb;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->tbuf ? o->tbuf + o->tlen : NULL, o->tcap - o->tlen, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	need = o->tlen + (size_t)n + 1;
	if (need > o->tcap) {
		nb = realloc(o->tbuf, need + 1024);
		if (!nb) {
			record_error(o, "could not be written (no memory)");
			return;
		}
		o->tbuf = nb;
		o->tcap = need + 1024;
		va_start(ap, fmt);
		vsnprintf(o->tbuf + o->tlen, o->tcap - o->tlen, fmt, ap);
		va_end(ap);
	}
	o->tlen += (size_t)n;
}

/* Columns of n bytes of UTF-8 (continuation bytes take none). */
static size_t text_cols(const char *s, size_t n)
{
	size_t cols = 0;

	for (size_t i = 0; i < n; i++)
		cols += ((unsigned char)s[i] & 0xc0) != 0x80;
	return cols;
}

/* The bytes of s that fit in cols columns, not splitting a character. */
static size_t text_fit(const char *s, size_t n, size_t cols)
{
	size_t i = 0, c = 0;

	while (i < n) {
		size_t j = i + 1;

		while (j < n && ((unsigned char)s[j] & 0xc0) == 0x80)
			j++;
		if (++c > cols)
			break;
		i = j;
	}
	return i;
}

/*
 * Writes the record's lines.  In a terminal's width a longer line is wrapped at its spaces
 * (continuations indented), or cut where it has none; --wide writes them as they are.
 */
static void text_flush(struct output *o)
{
	const char *p = o->tbuf, *end = o->tbuf + o->tlen;

	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		bool first = true;

		while (!o->wide && text_cols(p, n) > TEXT_WIDTH - (first ? 0 : 4)) {
			size_t width = TEXT_WIDTH - (first ? 0 : 4);
			size_t fit = text_fit(p, n, width), cut = fit;

			while (cut > width / 2 && p[cut] != ' ')
				cut--;
			if (p[cut] != ' ')
				cut = fit;
			fprintf(o->out, "%s%.*s\n", first ? "" : "    ", (int)cut, p);
			while (cut < n && p[cut] == ' ')
				cut++;
			p += cut;
			n -= cut;
			first = false;
		}
		fprintf(o->out, "%s%.*s\n", first ? "" : "    ", (int)n, p);
		p += n + (nl ? 1 : 0);
	}
	o->tlen = 0;
	check_stream(o, 0);
}

/* HH:MM:SS.mmm (UTC) in a terminal's width; the whole RFC 3339 time when wide. */
static void text_time(const struct output *o, char *buf, size_t size, uint64_t mono_ns)
{
	char iso[48];

	output_format_time(iso, sizeof(iso), mono_ns);
	if (o->wide || strlen(iso) < 23)
		snprintf(buf, size, "%s", iso);
	else
		snprintf(buf, size, "%.12s", iso + 11);
}

/* The user a frame is sent to, always as its keyed hash: "-" when the connection has none. */
static void text_user(const struct ct_conn *c, char *out)
{
	if (c->has_user)
		keyhash_identity_display(c->user, out);
	else
		snprintf(out, KEYHASH_DISPLAY_LEN, "%s",
			 c->user_ambiguous ? "ambiguous" :
			 c->user_unknown   ? "unknown" :
					     "-");
}

/*
 * The process's code root after file: the common directory of the files seen.  Returns it,
 * and says a new or moved root on its own line, so that relative paths can be read back.
 */
static const char *code_root(struct output *o, uint32_t pid, const char *file, const char *ts)
{
	struct code_root *r = NULL;
	size_t n, common;
	const char *slash;

	if (file[0] != '/')
		return NULL;
	for (unsigned int i = 0; i < CODE_ROOTS; i++) {
		if (o->roots[i].dir[0] && o->roots[i].pid == pid) {
			r = &o->roots[i];
			break;
		}
	}
	if (!r) {
		r = &o->roots[o->next_root++ % CODE_ROOTS];
		slash = strrchr(file, '/');
		n = (size_t)(slash - file) + 1;
		if (n >= sizeof(r->dir))
			return NULL;
		r->pid = pid;
		memcpy(r->dir, file, n);
		r->dir[n] = '\0';
		tput(o, "%s %u code root %s (files below are relative to it)\n", ts, pid, r->dir);
		return r->dir;
	}
	n = strlen(r->dir);
	if (!strncmp(file, r->dir, n))
		return r->dir;
	/* The longest common prefix that ends with '/'. */
	for (common = 0; common < n && file[common] == r->dir[common]; common++)
		;
	while (common > 0 && r->dir[common - 1] != '/')
		common--;
	r->dir[common] = '\0';
	tput(o, "%s %u code root %s (files below are relative to it)\n", ts, pid, r->dir);
	return r->dir;
}

static const char *short_opcode(const struct ws_frame *w)
{
	switch (w->opcode) {
	case WS_OP_CONTINUATION:
		return "cont";
	case WS_OP_TEXT:
		return "text";
	case WS_OP_BINARY:
		return "bin";
	default:
		return ws_opcode_name(w->opcode);
	}
}

void output_conn_open(struct output *o, const struct ct_conn *c, const char *subprotocol,
		      uint64_t ts_ns)
{
	char ts[48];

	if (o->format == OUTPUT_TEXT) {
		text_time(o, ts, sizeof(ts), ts_ns);
		tput(o, "%s %u %s conn_open %s %s -> %s%s%s%s%s%s%s\n", ts, c->tgid, c->comm,
		     c->id_str, c->local, c->peer, c->adopted ? " adopted" : "",
		     c->adopted && c->identity_from ? " user_recovered" : "",
		     c->user_unknown ? " user_unknown" : "",
		     c->history_unknown ? " history_unknown" : "", c->extensions ? " ext=" : "",
		     c->extensions ? c->extensions : "");
		text_flush(o);
		return;
	}
	emit_json(o, json_pack("{s:s, s:o, s:I, s:o, s:o, s:o, s:o}", "type", "conn_open", "ts",
			       time_json(ts_ns), "pid", (json_int_t)c->tgid, "comm",
			       text_json(c->comm), "conn", conn_json(c), "subprotocol",
			       text_json(subprotocol), "extensions", text_json(c->extensions)));
}

static json_t *frame_json(const struct attrib_frame *f)
{
	json_t *obj = json_object();

	if (obj && put(obj, "function", text_json(f->function)) &&
	    put(obj, "file", text_json(f->file)) && put(obj, "line", json_integer(f->line)))
		return obj;
	json_decref(obj);
	return NULL;
}

void output_conn_close(struct output *o, const struct ct_conn *c, uint64_t ts_ns, const char *why,
		       uint64_t queued, bool unseen)
{
	bool abrupt = delivery_abrupt_close(c, why);
	const struct attrib_stack *s = c->closer;
	char ts[48], detail[1400];
	json_t *obj;

	if (!ts_ns)
		ts_ns = mono_ns();
	if (abrupt)
		delivery_abrupt_detail(c, detail, sizeof(detail));
	if (o->format == OUTPUT_TEXT) {
		text_time(o, ts, sizeof(ts), ts_ns);
		tput(o, "%s %u %s conn_close %s %s frames=%llu (%s)", ts, c->tgid, c->comm,
		     c->id_str, c->peer, (unsigned long long)c->frames, why);
		if (c->close_sent)
			tput(o, " close_code=%d", c->close_code);
		if (c->lost_frames)
			tput(o, " lost=%llu", (unsigned long long)c->lost_frames);
		if (queued)
			tput(o, " queued=%llu", (unsigned long long)queued);
		if (unseen)
			tput(o, " buffered_unseen");
		if (s && s->origin >= 0)
			tput(o, " closed_by=%s", s->frames[s->origin].function);
		tput(o, "\n");
		if (abrupt)
			tput(o, "  ! abnormal_close: %s\n", detail);
		text_flush(o);
		return;
	}
	obj = json_pack(
		"{s:s, s:o, s:I, s:o, s:o, s:I, s:s, s:o, s:I}", "type", "conn_close", "ts",
		time_json(ts_ns), "pid", (json_int_t)c->tgid, "comm", text_json(c->comm), "conn",
		conn_json(c), "frames", (json_int_t)c->frames, "reason", why, "close_code",
		c->close_sent && c->close_code > 0 ? json_integer(c->close_code) : json_null(),
		"lost_frames", (json_int_t)c->lost_frames);
	if (obj)
		json_object_set_new(obj, "queued_at_close", json_integer((json_int_t)queued));
	if (obj && unseen)
		json_object_set_new(obj, "buffered_unseen", json_true());
	if (obj && s && s->origin >= 0)
		json_object_set_new(obj, "closed_by", frame_json(&s->frames[s->origin]));
	else if (obj) {
		/* Who closed it is not known: said, as for a frame's origin. */
		json_object_set_new(obj, "closed_by", json_null());
		json_object_set_new(obj, "closed_by_unattributed",
				    json_string(s ? unattributed_name(s->why) : "not_walked"));
	}
	if (obj && abrupt)
		json_object_set_new(obj, "violations",
				    json_pack("[{s:s, s:s}]", "rule", "abnormal_close", "detail",
					      detail));
	emit_json(o, obj);
}

void output_conn_skipped(struct output *o, const struct ct_conn *c, const struct evt_conn *e,
			 const char *why)
{
	char ts[48], comm[sizeof(e->comm) + 1];
	uint64_t ts_ns = e ? e->hdr.ts_ns : 0;
	/* cppcheck-suppress nullPointerRedundantCheck ; c is NULL only with e (output.h) */
	uint32_t pid = e ? e->tgid : c->tgid;
	json_t *conn, *obj;

	if (!ts_ns)
		ts_ns = mono_ns();
	/* cppcheck-suppress nullPointerRedundantCheck ; c is NULL only with e (output.h) */
	memcpy(comm, e ? (const char *)e->comm : c->comm, sizeof(comm) - 1);
	comm[sizeof(comm) - 1] = '\0';
	if (o->format == OUTPUT_TEXT) {
		text_time(o, ts, sizeof(ts), ts_ns);
		if (e)
			tput(o, "%s %u %s conn_skipped %s (%s) to pid %u\n", ts, pid, comm,
			     c ? c->id_str : "?", why, e->peer_pid);
		else
			tput(o, "%s %u %s conn_skipped %s %s -> %s (%s)\n", ts, pid, comm,
			     c->id_str, c->local, c->peer, why);
		text_flush(o);
		return;
	}
	conn = c ? conn_json(c) : json_null();
	obj = json_pack("{s:s, s:o, s:I, s:o, s:o, s:s}", "type", "conn_skipped", "ts",
			time_json(ts_ns), "pid", (json_int_t)pid, "comm", text_json(comm), "conn",
			conn, "reason", why);
	if (obj && e) {
		json_object_set_new(obj, "fd", json_integer(e->fd));
		json_object_set_new(obj, "peer_pid", json_integer(e->peer_pid));
	}
	emit_json(o, obj);
}

static json_t *payload_json(const struct ws_frame *f, const char **key)
{
	static const char hex[] = "0123456789abcdef";
	json_t *s;
	char *buf;

	*key = "payload";
	s = json_stringn((const char *)f->payload, f->payload_kept);
	if (s)
		return s;
	/* Not UTF-8: hex keeps it exact. */
	buf = malloc(f->payload_kept * 2 + 1);
	if (!buf)
		return NULL;
	for (size_t i = 0; i < f->payload_kept; i++) {
		buf[2 * i] = hex[f->payload[i] >> 4];
		buf[2 * i + 1] = hex[f->payload[i] & 15];
	}
	buf[f->payload_kept * 2] = '\0';
	*key = "payload_hex";
	s = json_string(buf);
	free(buf);
	return s;
}

/* A stack, one frame a line; files relative to root when they are under it. */
static void stack_text(struct output *o, const struct attrib_stack *s, const char *root)
{
	for (size_t i = 0; i < s->nframes; i++) {
		const char *fr = s->frames[i].file;

		if (root && !strncmp(fr, root, strlen(root)))
			fr += strlen(root);
		tput(o, "    %s %s:%d%s\n", s->frames[i].function, fr, s->frames[i].line,
		     s->frames[i].transport ? "" : " *");
	}
}

/* With --stack: the creation stacks after the send's, innermost hand-off first. */
static void creators_text(struct output *o, const struct causal_link *l, const char *root)
{
	for (size_t i = 0; l && i < l->n; i++) {
		tput(o, "   created (%s) at:\n", causal_via_name(l->vias[i]));
		stack_text(o, l->creators[i], root);
	}
}

/*
 * A frame on one line of a terminal's width: time, pid, user, opcode (+ when more frames
 * follow), length, peer and origin, file relative to the process's code root; what does
 * not fit of the origin is cut from the left of its path.  Violations follow, one a line.
 */
static void frame_text(struct output *o, const struct frame_view *fv)
{
	const struct ct_frame *f = fv->frame;
	const struct attrib_stack *s = fv->stack;
	const struct ws_frame *w = f->frame;
	char ts[48], user[KEYHASH_DISPLAY_LEN], op[16], extra[256] = "", origin[640];
	enum causal_via via;
	const struct attrib_frame *af = causal_origin(s, fv->link, &via);
	const char *root = NULL, *file;
	size_t head, room, flen;
	int n = 0;

	text_time(o, ts, sizeof(ts), f->ts_ns);
	if (!o->header_done) {
		tput(o, "%-12s %-7s %-14s %-5s %7s %-21s %s\n", "TIME(UTC)", "PID", "USER", "OP",
		     "LEN", "PEER", "ORIGIN (file:line)  [type, pod, flags]");
		o->header_done = true;
	}
	if (af)
		root = code_root(o, f->pid, af->file, ts);
	text_user(f->conn, user);
	snprintf(op, sizeof(op), "%s%s", short_opcode(w), w->fin ? "" : "+");

	if (f->lost)
		n += snprintf(extra + n, sizeof(extra) - n, " LOST error=%s",
			      delivery_err_name(f->lost_err));
	if (w->truncated && n < (int)sizeof(extra))
		n += snprintf(extra + n, sizeof(extra) - n, " truncated");
	if (f->compressed && n < (int)sizeof(extra))
		n += snprintf(extra + n, sizeof(extra) - n, " deflate");
	if (w->opcode == WS_OP_CLOSE && w->close_code > 0 && n < (int)sizeof(extra))
		n += snprintf(extra + n, sizeof(extra) - n, " code=%d", w->close_code);
	if (fv->msg_type && n < (int)sizeof(extra))
		n += snprintf(extra + n, sizeof(extra) - n, " type=%s", fv->msg_type);
	if (fv->container && json_is_object(fv->container) &&
	    json_string_value(json_object_get(fv->container, "pod")) && n < (int)sizeof(extra))
		n += snprintf(extra + n, sizeof(extra) - n, " pod=%s/%s",
			      json_string_value(json_object_get(fv->container, "namespace")) ?: "?",
			      json_string_value(json_object_get(fv->container, "pod")));
	if (via != VIA_NONE && n < (int)sizeof(extra))
		n += snprintf(extra + n, sizeof(extra) - n, " via=%s", causal_via_name(via));
	if (fv->verdict && fv->verdict->via_bridge == 1 && n < (int)sizeof(extra))
		n += snprintf(extra + n, sizeof(extra) - n, " via_bridge");
	if (f->conn->adopted && n < (int)sizeof(extra))
		n += snprintf(extra + n, sizeof(extra) - n, " adopted%s%s",
			      f->conn->user_unknown ? " user_unknown" : "",
			      f->conn->history_unknown ? " history_unknown" : "");
	if (fv->name_tests && n < (int)sizeof(extra))
		snprintf(extra + n, sizeof(extra) - n, " test=%s",
			 fv->test_why == TEST_FOUND ? fv->test : test_unknown_name(fv->test_why));

	/* The columns before the origin: 12+1+7+1+14+1+5+1+7+1+21+1 = 72 at most. */
	head = text_cols(ts, strlen(ts)) + 1 + 8 + 15 + 6 + 8 + 22;
	if (strlen(f->conn->peer) > 21)
		head += strlen(f->conn->peer) - 21;
	room = TEXT_WIDTH > head + text_cols(extra, strlen(extra)) ?
		       TEXT_WIDTH - head - text_cols(extra, strlen(extra)) :
		       0;
	if (af) {
		file = root ? af->file + strlen(root) : af->file;
		snprintf(origin, sizeof(origin), "%s %s:%d", af->function, file, af->line);
		flen = strlen(origin);
		if (text_cols(origin, flen) > room && room > 8) {
			/* Cut from the left: the end of a path and the line number say most. */
			size_t cols = text_cols(origin, flen);
			const char *tail = origin;

			while (cols > room - 3) {
				tail++;
				if (((unsigned char)*tail & 0xc0) != 0x80)
					cols--;
			}
			memmove(origin + 3, tail, strlen(tail) + 1);
			memcpy(origin, "...", 3);
		}
	} else {
		snprintf(origin, sizeof(origin), "unattributed: %s", unattributed_name(s->why));
	}
	tput(o, "%-12s %-7u %-14s %-5s %7llu %-21s %s%s\n", ts, f->pid, user, op,
	     (unsigned long long)w->payload_len, f->conn->peer, origin, extra);
	for (size_t i = 0; fv->verdict && i < fv->verdict->nviolations; i++) {
		const char *d = fv->verdict->v[i].detail;
		const char *at = root ? strstr(d, root) : NULL;

		/* The detail names the origin's file too: relative to the root likewise. */
		if (at)
			tput(o, "  ! %s: %.*s%s\n", rule_name(fv->verdict->v[i].rule),
			     (int)(at - d), d, at + strlen(root));
		else
			tput(o, "  ! %s: %s\n", rule_name(fv->verdict->v[i].rule), d);
	}
	if (!o->stack)
		return;
	stack_text(o, s, root);
	creators_text(o, fv->link, root);
}

static void frame_text_wide(struct output *o, const struct frame_view *fv)
{
	const struct ct_frame *f = fv->frame;
	const struct attrib_stack *s = fv->stack;
	const struct ws_frame *w = f->frame;
	const struct attrib_frame *af;
	enum causal_via via;
	char ts[48], user[KEYHASH_DISPLAY_LEN];

	output_format_time(ts, sizeof(ts), f->ts_ns);
	text_user(f->conn, user);
	tput(o, "%s %u/%u %s user=%s %s %s%-12s %s%s len=%llu", ts, f->pid, f->tid, f->comm, user,
	     f->conn->peer, f->lost ? "LOST " : "", ws_opcode_name(w->opcode),
	     w->fin ? "fin" : "more", f->compressed ? " deflate" : "",
	     (unsigned long long)w->payload_len);
	if (f->lost)
		tput(o, " error=%s", delivery_err_name(f->lost_err));
	if (w->truncated)
		tput(o, " captured=%llu truncated", (unsigned long long)w->captured_len);
	if (w->opcode == WS_OP_CLOSE && w->close_code > 0)
		tput(o, " code=%d reason_len=%zu", w->close_code, w->close_reason_len);
	af = causal_origin(s, fv->link, &via);
	if (af) {
		tput(o, " from %s (%s:%d)", af->function, af->file, af->line);
		if (via != VIA_NONE)
			tput(o, " via %s", causal_via_name(via));
	} else {
		tput(o, " unattributed: %s", unattributed_name(s->why));
	}
	if (fv->msg_type)
		tput(o, " type=%s", fv->msg_type);
	if (fv->container && json_is_object(fv->container) &&
	    json_string_value(json_object_get(fv->container, "pod")))
		tput(o, " pod=%s/%s",
		     json_string_value(json_object_get(fv->container, "namespace")) ?: "?",
		     json_string_value(json_object_get(fv->container, "pod")));
	if (fv->verdict && fv->verdict->via_bridge == 1)
		tput(o, " via bridge");
	if (f->conn->adopted)
		tput(o, " adopted%s%s", f->conn->user_unknown ? " user_unknown" : "",
		     f->conn->history_unknown ? " history_unknown" : "");
	if (fv->name_tests)
		tput(o, " test=%s%s",
		     fv->test_why == TEST_FOUND ? fv->test : test_unknown_name(fv->test_why),
		     fv->test_why == TEST_FOUND && !strcmp(fv->test_via, "running") ? " (running)" :
										      "");
	tput(o, "\n");
	for (size_t i = 0; fv->verdict && i < fv->verdict->nviolations; i++)
		tput(o, "  ! %s: %s\n", rule_name(fv->verdict->v[i].rule),
		     fv->verdict->v[i].detail);
	if (!o->stack)
		return;
	stack_text(o, s, NULL);
	creators_text(o, fv->link, NULL);
}

static json_t *stack_json(const struct attrib_stack *s)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < s->nframes; i++)
		json_array_append_new(arr, frame_json(&s->frames[i]));
	return arr;
}

/* With --stack: the stacks that created the work that sent, innermost hand-off first. */
static json_t *creators_json(const struct causal_link *l)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < l->n; i++)
		json_array_append_new(arr,
				      json_pack("{s:s, s:o}", "via", causal_via_name(l->vias[i]),
						"stack", stack_json(l->creators[i])));
	return arr;
}

/* identity.context as read: the bridge function and its user argument (or why not). */
static json_t *context_json(const struct output *o, const struct frame_view *fv)
{
	static const char *const status[] = {
		[CTX_NONE] = "none",	     [CTX_OK] = "ok",
		[CTX_NOT_STR] = "not_str",   [CTX_READ_FAULT] = "read_fault",
		[CTX_TOO_LONG] = "too_long",
	};
	const struct attrib_stack *s = fv->stack;
	json_t *obj = json_pack("{s:o, s:s}", "function", text_json(s->ctx_function), "status",
				s->ctx_status < sizeof(status) / sizeof(status[0]) ?
					status[s->ctx_status] :
					"unknown");

	if (obj && fv->ctx_user_shown)
		json_object_set_new(obj, "user", text_json(fv->ctx_user_shown));
	(void)o;
	return obj;
}

static json_t *violations_json(struct output *o, const struct rules_verdict *rv)
{
	const struct violation *v;
	json_t *arr = json_array(), *obj;

	for (size_t i = 0; rv && i < rv->nviolations; i++) {
		v = &rv->v[i];
		obj = json_object();
		if (!obj)
			continue;
		if (!put(obj, "rule",
			 v->rule < RULE__COUNT ? shared(&o->s_rule[v->rule], rule_name(v->rule)) :
						 json_string(rule_name(v->rule))) ||
		    !put(obj, "detail", text_json(v->detail))) {
			json_decref(obj);
			continue;
		}
		if (v->rule == RULE_ISOLATION_BREACH) {
			json_object_set_new(obj, "between",
					    json_pack("[s, s]", identity_kind_name(v->a),
						      identity_kind_name(v->b)));
			json_object_set_new(obj, "values",
					    json_pack("[o, o]", text_json(v->a_value),
						      text_json(v->b_value)));
			if (v->key[0])
				json_object_set_new(obj, "key", text_json(v->key));
		}
		if (v->rule == RULE_UNJUDGED) {
			json_object_set_new(obj, "reason", text_json(v->reason));
			json_object_set_new(obj, "severity", text_json(v->severity));
			json_object_set_new(obj, "best_origin",
					    v->best ? frame_json(v->best) : json_null());
		}
		json_array_append_new(arr, obj);
	}
	return arr;
}

void output_frame(struct output *o, const struct frame_view *fv)
{
	const struct ct_frame *f = fv->frame;
	const struct attrib_stack *s = fv->stack;
	const struct ws_frame *w = f->frame;
	const struct attrib_frame *origin;
	enum causal_via via;
	const char *key;
	json_t *obj;

	if (o->format == OUTPUT_TEXT) {
		if (o->wide)
			frame_text_wide(o, fv);
		else
			frame_text(o, fv);
		text_flush(o);
		return;
	}
	/* Built key by key: json_pack parses its format and checks every key, every record. */
	obj = json_object();
	if (!obj)
		return;
	if (!put(obj, "type", f->lost ? json_string("lost") : shared(&o->s_frame, "frame")) ||
	    !put(obj, "ts", time_json(f->ts_ns)) || !put(obj, "pid", json_integer(f->pid)) ||
	    !put(obj, "tid", json_integer(f->tid)) || !put(obj, "comm", text_json(f->comm)) ||
	    !put(obj, "container",
		 fv->container ? json_incref((json_t *)fv->container) : json_null()) ||
	    !put(obj, "conn", conn_json(f->conn)) ||
	    !put(obj, "opcode",
		 w->opcode < 16 ? shared(&o->s_opcode[w->opcode], ws_opcode_name(w->opcode)) :
				  json_string(ws_opcode_name(w->opcode))) ||
	    !put(obj, "fin", json_boolean(w->fin)) ||
	    !put(obj, "compressed", json_boolean(f->compressed)) ||
	    !put(obj, "payload_len", json_integer((json_int_t)w->payload_len)) ||
	    !put(obj, "captured_len", json_integer((json_int_t)w->captured_len)) ||
	    !put(obj, "truncated", json_boolean(w->truncated))) {
		json_decref(obj);
		record_error(o, "could not be built (no memory)");
		return;
	}
	if (w->opcode == WS_OP_CLOSE) {
		json_object_set_new(obj, "close_code",
				    w->close_code > 0 ? json_integer(w->close_code) : json_null());
		json_object_set_new(obj, "close_reason_len",
				    json_integer((json_int_t)w->close_reason_len));
	}
	if (f->lost)
		json_object_set_new(obj, "error", json_string(delivery_err_name(f->lost_err)));
	if (f->after_close)
		json_object_set_new(obj, "after_close", json_true());
	if (fv->msg_type || fv->msg_user)
		json_object_set_new(
			obj, "message",
			/* "type" is msg_type's former name, kept for v1 readers. */
			json_pack("{s:o, s:o, s:o}", "msg_type", text_json(fv->msg_type), "type",
				  text_json(fv->msg_type), "user", text_json(fv->msg_user)));
	else
		json_object_set_new(obj, "message", json_null());
	if (f->message && f->message->status != WS_MSG_OK)
		json_object_set_new(obj, "message_status",
				    json_string(ws_msg_status_name(f->message->status)));
	origin = causal_origin(s, fv->link, &via);
	if (origin) {
		json_t *oj = frame_json(origin);

		if (oj && via != VIA_NONE)
			json_object_set_new(oj, "via", json_string(causal_via_name(via)));
		json_object_set_new(obj, "origin", oj);
	} else {
		json_object_set_new(obj, "origin", json_null());
		json_object_set_new(obj, "unattributed",
				    s->why < UNATTR__COUNT ?
					    shared(&o->s_unattributed[s->why],
						   unattributed_name(s->why)) :
					    json_string(unattributed_name(s->why)));
	}
	if (s->partial)
		json_object_set_new(obj, "stack_partial", json_true());
	if (s->ctx_status != CTX_NONE)
		json_object_set_new(obj, "context", context_json(o, fv));
	json_object_set_new(obj, "via_bridge",
			    !fv->verdict || fv->verdict->via_bridge < 0 ?
				    json_null() :
				    json_boolean(fv->verdict->via_bridge));
	if (o->stack) {
		json_object_set_new(obj, "stack", stack_json(s));
		if (fv->link && fv->link->n)
			json_object_set_new(obj, "creators", creators_json(fv->link));
	}
	if (!f->writer_known)
		json_object_set_new(obj, "writer_unknown", json_true());
	if (fv->name_tests) {
		json_object_set_new(obj, "test",
				    fv->test_why == TEST_FOUND ? text_json(fv->test) : json_null());
		if (fv->test_why == TEST_FOUND)
			json_object_set_new(obj, "test_via", json_string(fv->test_via));
		else
			json_object_set_new(obj, "test_unknown",
					    json_string(test_unknown_name(fv->test_why)));
	}
	json_object_set_new(obj, "violations", violations_json(o, fv->verdict));
	if (o->payload && w->payload && !w->payload_gap) {
		json_t *p = payload_json(w, &key);

		if (p)
			json_object_set_new(obj, key, p);
	}
	emit_json(o, obj);
}

void output_queued_detail(const struct queued_view *qv, char *buf, size_t size)
{
	enum causal_via via;
	const struct attrib_frame *o = causal_origin(qv->write->stack, qv->link, &via);

	if (o)
		snprintf(buf, size,
			 "%llu bytes handed to the transport by %s (%s:%d) were still queued when "
			 "the connection closed: they never reached the socket",
			 (unsigned long long)qv->write->len, o->function, o->file, o->line);
	else
		snprintf(buf, size,
			 "%llu bytes handed to the transport were still queued when the connection "
			 "closed: they never reached the socket; the function that wrote them is "
			 "not known (%s)",
			 (unsigned long long)qv->write->len,
			 unattributed_name(qv->write->stack->why));
}

void output_queued(struct output *o, const struct queued_view *qv)
{
	const struct handed_write *w = qv->write;
	const struct attrib_stack *s = w->stack;
	const struct ct_conn *c = qv->conn;
	const struct attrib_frame *origin;
	char ts[48], detail[1400];
	enum causal_via via;
	json_t *obj, *oj;

	output_queued_detail(qv, detail, sizeof(detail));
	origin = causal_origin(s, qv->link, &via);
	if (o->format == OUTPUT_TEXT) {
		text_time(o, ts, sizeof(ts), w->ts_ns);
		tput(o, "%s %u %s QUEUED %s %s bytes=%llu origin=%s\n", ts, c->tgid, c->comm,
		     c->id_str, c->peer, (unsigned long long)w->len,
		     origin ? origin->function : unattributed_name(s->why));
		if (o->stack) {
			stack_text(o, s, NULL);
			creators_text(o, qv->link, NULL);
		}
		tput(o, "  ! delivery_failed: %s\n", detail);
		text_flush(o);
		return;
	}
	obj = json_pack("{s:s, s:o, s:o, s:I, s:I, s:o, s:o, s:I, s:s}", "type", "queued", "ts",
			time_json(w->ts_ns), "closed_ts", time_json(qv->close_ts_ns), "pid",
			(json_int_t)c->tgid, "tid", (json_int_t)w->tid, "comm", text_json(c->comm),
			"conn", conn_json(c), "bytes", (json_int_t)w->len, "error",
			"queued_at_close");
	if (!obj) {
		record_error(o, "could not be built (no memory)");
		return;
	}
	if (origin) {
		oj = frame_json(origin);
		if (oj && via != VIA_NONE)
			json_object_set_new(oj, "via", json_string(causal_via_name(via)));
		json_object_set_new(obj, "origin", oj);
	} else {
		json_object_set_new(obj, "origin", json_null());
		json_object_set_new(obj, "unattributed", json_string(unattributed_name(s->why)));
	}
	if (o->stack) {
		json_object_set_new(obj, "stack", stack_json(s));
		if (qv->link && qv->link->n)
			json_object_set_new(obj, "creators", creators_json(qv->link));
	}
	json_object_set_new(obj, "violations",
			    json_pack("[{s:s, s:s}]", "rule", "delivery_failed", "detail", detail));
	emit_json(o, obj);
}

void output_run(struct output *o, const struct run_report *rep, unsigned int timeout_s)
{
	char ts[48], detail[RUNS_VALUE_MAX * 2];
	json_t *obj, *missing;

	runs_detail(rep, timeout_s, detail, sizeof(detail));
	if (o->format == OUTPUT_TEXT) {
		const char *root;

		text_time(o, ts, sizeof(ts), rep->ts_ns);
		root = rep->file ? code_root(o, rep->pid, rep->file, ts) : NULL;
		tput(o, "%s %u %s run %s (%s) %s %s run=%s user=%s last=%s", ts, rep->pid,
		     rep->comm, run_rule_name(rep->rule), run_reason_name(rep->reason), rep->conn,
		     rep->peer, rep->key, rep->user ? rep->user : "-", rep->last_type);
		if (rep->function)
			tput(o, " from %s (%s:%d)", rep->function,
			     rep->file + (root ? strlen(root) : 0), rep->line);
		else
			tput(o, " unattributed");
		tput(o, "\n  ! %s: %s\n", run_rule_name(rep->rule), detail);
		text_flush(o);
		return;
	}
	obj = json_pack("{s:s, s:o, s:I, s:o, s:{s:s, s:o}, s:s, s:s, s:o, s:o, s:o, s:o, s:I, "
			"s:b, s:o, s:o, s:o}",
			"type", "run", "ts", time_json(rep->ts_ns), "pid", (json_int_t)rep->pid,
			"comm", text_json(rep->comm), "conn", "id", rep->conn, "peer",
			text_json(rep->peer), "rule", run_rule_name(rep->rule), "reason",
			run_reason_name(rep->reason), "run", text_json(rep->key), "user",
			text_json(rep->user), "last_type", text_json(rep->last_type), "origin",
			rep->function ?
				json_pack("{s:o, s:o, s:i}", "function", text_json(rep->function),
					  "file", text_json(rep->file), "line", rep->line) :
				json_null(),
			"events", (json_int_t)rep->events, "start_seen", rep->start_seen,
			"first_ts", time_json(rep->first_ns), "last_ts", time_json(rep->last_ns),
			"detail", text_json(detail));
	if (obj && rep->event)
		json_object_set_new(obj, "event", text_json(rep->event));
	if (obj && rep->reason == RUN_REQUIRED_ABSENT) {
		missing = json_array();
		for (size_t i = 0; i < rep->nmissing; i++)
			json_array_append_new(missing, text_json(rep->missing[i]));
		json_object_set_new(obj, "missing", missing);
	}
	emit_json(o, obj);
}

void output_process(struct output *o, const char *what, uint64_t ts_ns, uint32_t pid,
		    const char *comm, int exit_code)
{
	char ts[48];
	json_t *obj;

	if (o->format == OUTPUT_TEXT) {
		text_time(o, ts, sizeof(ts), ts_ns);
		tput(o, "%s %u %s %s", ts, pid, comm, what);
		if (!strcmp(what, "process_exit"))
			tput(o, " code=%d", exit_code);
		tput(o, "\n");
		text_flush(o);
		return;
	}
	obj = json_pack("{s:s, s:o, s:I, s:o}", "type", what, "ts", time_json(ts_ns), "pid",
			(json_int_t)pid, "comm", text_json(comm));
	if (obj && !strcmp(what, "process_exit"))
		json_object_set_new(obj, "exit_code", json_integer(exit_code));
	emit_json(o, obj);
}

/* What was recovered for connections open before the trace (docs/adoption.md). */
static json_t *adoption_json(const struct trace_totals *t)
{
	const struct ct_stats *ct = t->ct;
	const struct adopt_stats *a = t->adopt;
	const struct pyscope_totals *u = t->scope;
	json_t *obj = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "conns",
				(json_int_t)ct->conns_adopted, "history_recovered",
				(json_int_t)ct->adopted_history_recovered, "history_unknown",
				(json_int_t)ct->adopted_history_unknown, "user_unknown",
				(json_int_t)ct->adopted_user_unknown, "user_recovered",
				(json_int_t)ct->adopted_user_recovered, "messages_tried",
				(json_int_t)ct->history_messages_tried);

	if (obj && a)
		json_object_set_new(
			obj, "memory",
			json_pack(
				"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				"scans", (json_int_t)a->scans, "scan_bytes",
				(json_int_t)a->scan_bytes, "scans_limited",
				(json_int_t)a->scans_limited, "scan_errors",
				(json_int_t)a->scan_errors, "compressors_found",
				(json_int_t)a->compressors_found, "untagged",
				(json_int_t)a->untagged, "conflicts", (json_int_t)a->conflicts,
				"snapshots", (json_int_t)a->snapshots, "snapshots_busy",
				(json_int_t)a->snapshots_busy, "snapshots_failed",
				(json_int_t)a->snapshots_failed, "snapshots_over_limit",
				(json_int_t)a->snapshots_over_limit, "rejected",
				(json_int_t)a->rejected, "recovered", (json_int_t)a->recovered));
	if (obj && u)
		json_object_set_new(
			obj, "user_memory",
			json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				  "scans", (json_int_t)u->scans, "scan_bytes",
				  (json_int_t)u->scan_bytes, "scans_limited",
				  (json_int_t)u->scans_limited, "scan_errors",
				  (json_int_t)u->scan_errors, "scopes", (json_int_t)u->scopes,
				  "bad_scopes", (json_int_t)u->bad_scopes, "objects",
				  (json_int_t)u->objects, "bad_objects", (json_int_t)u->bad_objects,
				  "recovered", (json_int_t)u->recovered, "not_found",
				  (json_int_t)u->not_found, "conflicts", (json_int_t)u->conflicts));
	return obj;
}

void output_selfcheck(struct output *o, uint64_t ts_ns, bool ok, const char *why, uint64_t took_ns)
{
	char ts[48];
	json_t *obj;

	if (o->format == OUTPUT_TEXT) {
		text_time(o, ts, sizeof(ts), ts_ns);
		tput(o, "%s selfcheck %s (%.1f ms)%s%s\n", ts, ok ? "ok" : "FAILED", took_ns / 1e6,
		     why ? ": " : "", why ? why : "");
		text_flush(o);
		return;
	}
	obj = json_pack("{s:s, s:o, s:b, s:I}", "type", "selfcheck", "ts", time_json(ts_ns), "ok",
			ok, "took_us", (json_int_t)(took_ns / 1000));
	if (obj && why)
		json_object_set_new(obj, "reason", json_string(why));
	emit_json(o, obj);
}

/* trace --write: what was written, and what was not, by reason. */
static json_t *write_json(const struct streamwrite_stats *w)
{
	json_t *skipped = json_object();

	for (int i = 0; i < SW_SKIP__COUNT; i++)
		json_object_set_new(skipped, streamwrite_skip_name(i),
				    json_integer((json_int_t)w->skipped[i]));
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "conns",
			 (json_int_t)w->conns, "open", (json_int_t)w->conns_open, "bytes",
			 (json_int_t)w->bytes, "packets", (json_int_t)w->packets, "frames",
			 (json_int_t)w->frames, "comments_dropped", (json_int_t)w->comments_dropped,
			 "holes", (json_int_t)w->holes, "hole_bytes", (json_int_t)w->hole_bytes,
			 "raw_cut", (json_int_t)w->raw_cut, "errors", (json_int_t)w->write_errors,
			 "bytes_not_written", (json_int_t)w->bytes_not_written, "not_written",
			 skipped);
}

static void write_text(struct output *o, const struct streamwrite_stats *w)
{
	tput(o, "; written: %llu connections, %llu bytes, %llu holes, %llu write errors",
	     (unsigned long long)w->conns, (unsigned long long)w->bytes,
	     (unsigned long long)w->holes, (unsigned long long)w->write_errors);
	for (int i = 0; i < SW_SKIP__COUNT; i++)
		if (w->skipped[i])
			tput(o, ", %llu not written (%s)", (unsigned long long)w->skipped[i],
			     streamwrite_skip_name(i));
}

void output_stats(struct output *o, const struct trace_totals *t, bool final)
{
	const struct capture_counters *k = t->kernel;
	const struct ct_stats *ct = t->ct;
	uint64_t total = 0;
	json_t *drops, *obj;

	drops = json_object();
	for (int i = 0; i < DROP_MAX; i++) {
		json_object_set_new(drops, capture_drop_name(i), json_integer(k->drops[i]));
		total += k->drops[i];
	}
	if (o->format == OUTPUT_TEXT) {
		tput(o,
		     "%s: %llu frames on %llu WebSocket connections (%llu adopted), %llu records, "
		     "%llu drops",
		     final ? "total" : "stats", (unsigned long long)ct->frames,
		     (unsigned long long)ct->conns_websocket, (unsigned long long)ct->conns_adopted,
		     (unsigned long long)t->records, (unsigned long long)total);
		for (int i = 0; i < DROP_MAX; i++) {
			if (k->drops[i])
				tput(o, " %s=%llu", capture_drop_name(i),
				     (unsigned long long)k->drops[i]);
		}
		tput(o, ", %llu truncated frames, %llu uncaptured bytes, %llu desyncs",
		     (unsigned long long)ct->truncated_frames, (unsigned long long)ct->gap_bytes,
		     (unsigned long long)ct->desyncs);
		for (int i = CT_SKIP_NONE + 1; i < CT_SKIP__COUNT; i++) {
			if (ct->conns_skipped[i])
				tput(o, ", %llu connections skipped (%s)",
				     (unsigned long long)ct->conns_skipped[i], ct_skip_name(i));
		}
		if (ct->conns_adopted)
			tput(o,
			     "; adopted: %llu history recovered, %llu history unknown, "
			     "%llu user recovered, %llu user unknown",
			     (unsigned long long)ct->adopted_history_recovered,
			     (unsigned long long)ct->adopted_history_unknown,
			     (unsigned long long)ct->adopted_user_recovered,
			     (unsigned long long)ct->adopted_user_unknown);
		if (t->rules)
			tput(o, "; violations: %llu bridge_bypass, %llu isolation_breach",
			     (unsigned long long)t->rules->violations[RULE_BRIDGE_BYPASS],
			     (unsigned long long)t->rules->violations[RULE_ISOLATION_BREACH]);
		if (t->rules)
			for (int i = RULE_DELIVERY_FAILED; i <= RULE_AFTER_CLOSE; i++)
				if (t->rules->violations[i])
					tput(o, ", %llu %s",
					     (unsigned long long)t->rules->violations[i],
					     rule_name(i));
		if (t->runs && (t->runs->completed || t->runs->open)) {
			tput(o, "; runs: %llu completed", (unsigned long long)t->runs->completed);
			for (int i = 0; i < RUN_REASON__COUNT; i++)
				if (t->runs->reports[i])
					tput(o, ", %llu %s (%s)",
					     (unsigned long long)t->runs->reports[i],
					     run_rule_name(run_reason_rule(i)), run_reason_name(i));
		}
		if (t->write)
			write_text(o, t->write);
		tput(o, "\n");
		text_flush(o);
		output_flush(o);
		json_decref(drops);
		return;
	}
	obj = json_pack("{s:s, s:o, s:b, s:I, s:I, s:I, s:o, s:I}", "type", "stats", "ts",
			time_json(mono_ns()), "final", final, "events", (json_int_t)t->records,
			"frames", (json_int_t)ct->frames, "processes", (json_int_t)t->processes,
			"drops", drops, "drops_total", (json_int_t)total);
	if (!obj)
		return;
	/* Which key the u# and t# displays are made with: same fingerprint, same displays. */
	json_object_set_new(obj, "identity_key",
			    json_pack("{s:s, s:s}", "source", keyhash_identity_source(),
				      "fingerprint", keyhash_identity_fingerprint()));
	json_object_set_new(obj, "kernel",
			    json_pack("{s:I, s:I, s:I, s:I}", "records",
				      (json_int_t)k->stats[STAT_EVENTS], "bytes",
				      (json_int_t)k->stats[STAT_BYTES], "cap_bytes",
				      (json_int_t)k->stats[STAT_CAP_BYTES], "lost_bytes",
				      (json_int_t)k->stats[STAT_LOST_BYTES]));
	json_object_set_new(
		obj, "conns",
		json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "seen",
			  (json_int_t)ct->conns_seen, "websocket", (json_int_t)ct->conns_websocket,
			  "adopted", (json_int_t)ct->conns_adopted, "upgrades_lost",
			  (json_int_t)ct->upgrades_lost, "ignored", (json_int_t)ct->conns_ignored,
			  "open", (json_int_t)ct->conns_open, "over_limit",
			  (json_int_t)ct->conns_dropped_limit, "fd_passed",
			  (json_int_t)ct->conns_fd_passed));
	{
		json_t *skipped = json_object(), *conns = json_object_get(obj, "conns");

		for (int i = CT_SKIP_NONE + 1; i < CT_SKIP__COUNT; i++)
			json_object_set_new(skipped, ct_skip_name(i),
					    json_integer((json_int_t)ct->conns_skipped[i]));
		json_object_set_new(conns, "skipped", skipped);
		json_object_set_new(conns, "tls_sockets", json_integer((json_int_t)ct->conns_tls));
		json_object_set_new(conns, "tls",
				    json_pack("{s:I, s:I, s:I, s:I}", "followed",
					      (json_int_t)ct->tls_conns, "linked",
					      (json_int_t)ct->tls_linked, "unlinked",
					      (json_int_t)ct->tls_unlinked, "link_conflicts",
					      (json_int_t)ct->tls_link_conflicts));
	}
	json_object_set_new(obj, "output", json_pack("{s:I}", "errors", (json_int_t)o->errors));
	json_object_set_new(obj, "identity",
			    json_pack("{s:I, s:I, s:I}", "ambiguous",
				      (json_int_t)ct->users_ambiguous, "unknown",
				      (json_int_t)ct->users_unknown, "heads_given_up",
				      (json_int_t)ct->heads_given_up));
	json_object_set_new(obj, "parser",
			    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "truncated_frames",
				      (json_int_t)ct->truncated_frames, "gap_bytes",
				      (json_int_t)ct->gap_bytes, "desyncs", (json_int_t)ct->desyncs,
				      "bad_handshakes", (json_int_t)ct->bad_handshakes,
				      "unknown_conn_records", (json_int_t)ct->unknown_conn_records,
				      "malformed_records", (json_int_t)ct->malformed_records,
				      "writer_unknown", (json_int_t)ct->writer_unknown));
	{
		json_t *msgs = json_object();

		for (int i = 0; i < WS_MSG__COUNT; i++)
			json_object_set_new(msgs, ws_msg_status_name(i),
					    json_integer(ct->messages[i]));
		json_object_set_new(msgs, "context_losses", json_integer(ct->context_losses));
		json_object_set_new(obj, "messages", msgs);
	}
	json_object_set_new(obj, "adoption", adoption_json(t));
	if (t->rules)
		json_object_set_new(
			obj, "violations",
			json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "bridge_bypass",
				  (json_int_t)t->rules->violations[RULE_BRIDGE_BYPASS],
				  "isolation_breach",
				  (json_int_t)t->rules->violations[RULE_ISOLATION_BREACH],
				  "identity_ambiguous",
				  (json_int_t)t->rules->violations[RULE_IDENTITY_AMBIGUOUS],
				  "identity_unknown",
				  (json_int_t)t->rules->violations[RULE_IDENTITY_UNKNOWN],
				  "message_unreadable",
				  (json_int_t)t->rules->violations[RULE_MESSAGE_UNREADABLE],
				  "bridge_unjudged", (json_int_t)t->rules->bridge_unjudged,
				  "owners", (json_int_t)t->rules->owners, "owner_evictions",
				  (json_int_t)t->rules->owner_evictions));
	if (t->runs) {
		json_t *runs = json_pack("{s:I, s:I}", "completed", (json_int_t)t->runs->completed,
					 "open", (json_int_t)t->runs->open);

		for (int i = 0; runs && i < RUN_REASON__COUNT; i++)
			json_object_set_new(runs, run_reason_name(i),
					    json_integer((json_int_t)t->runs->reports[i]));
		json_object_set_new(obj, "runs", runs);
	}
	if (t->rules) {
		json_t *v = json_object_get(obj, "violations"), *un = json_object();

		for (int i = RULE_DELIVERY_FAILED; i <= RULE_AFTER_CLOSE; i++)
			json_object_set_new(v, rule_name(i),
					    json_integer((json_int_t)t->rules->violations[i]));
		for (int i = 1; un && i < UNATTR__COUNT; i++)
			json_object_set_new(un, unattributed_name(i),
					    json_integer((json_int_t)t->rules->unjudged[i]));
		json_object_set_new(v, "unjudged",
				    json_integer((json_int_t)t->rules->violations[RULE_UNJUDGED]));
		json_object_set_new(v, "unjudged_by_reason", un);
	}
	json_object_set_new(obj, "delivery",
			    json_pack("{s:I, s:I, s:I}", "unsent_writes",
				      (json_int_t)ct->unsent_writes, "lost_frames",
				      (json_int_t)ct->lost_frames, "unsent_unresolved_bytes",
				      (json_int_t)ct->unsent_unresolved_bytes));
	if (t->handed)
		json_object_update_new(
			json_object_get(obj, "delivery"),
			json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "handed_writes",
				  (json_int_t)t->handed->writes, "transports_linked",
				  (json_int_t)t->handed->linked, "queued_at_close_writes",
				  (json_int_t)t->handed->queued_writes, "queued_at_close_bytes",
				  (json_int_t)t->handed->queued_bytes, "handed_unplaced_writes",
				  (json_int_t)t->handed->unplaced_writes, "handed_evicted",
				  (json_int_t)t->handed->evicted, "handed_held",
				  (json_int_t)t->handed->held, "buffered_unseen_conns",
				  (json_int_t)t->handed->unseen_conns));
	if (t->write)
		json_object_set_new(obj, "write", write_json(t->write));
	if (t->causal)
		json_object_set_new(obj, "causal",
				    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
					      "creations", (json_int_t)t->causal->put, "skipped",
					      (json_int_t)k->stats[STAT_COPIES_SKIPPED], "reused",
					      (json_int_t)t->causal->replaced, "evicted",
					      (json_int_t)t->causal->evicted, "held",
					      (json_int_t)t->causal->entries, "linked",
					      (json_int_t)t->causal->linked, "no_link",
					      (json_int_t)t->causal->no_link, "no_context",
					      (json_int_t)t->causal->no_context, "chain_cut",
					      (json_int_t)t->causal->chain_cut));
	if (t->attrib) {
		json_t *un = json_object();

		for (int i = 1; i < UNATTR__COUNT; i++)
			json_object_set_new(un, unattributed_name(i),
					    json_integer(t->attrib->unattributed[i]));
		json_object_set_new(
			obj, "attribution",
			json_pack("{s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}, "
				  "s:{s:I, s:I, s:I, s:I}}",
				  "stacks", (json_int_t)t->attrib->stacks, "frames_resolved",
				  (json_int_t)t->attrib->frames_resolved, "frames_failed",
				  (json_int_t)t->attrib->frames_failed, "attributed",
				  (json_int_t)t->attrib->unattributed[UNATTR_NONE], "unattributed",
				  un, "stacks_shared", (json_int_t)t->attrib->stacks_shared,
				  "stacks_checked", (json_int_t)t->attrib->stacks_checked,
				  "frames_read", (json_int_t)t->attrib->frames_read, "tokens",
				  "put", (json_int_t)t->attrib->tokens_put, "matched",
				  (json_int_t)t->attrib->tokens_matched, "followed",
				  (json_int_t)t->attrib->tokens_followed, "expired",
				  (json_int_t)t->attrib->tokens_expired, "names", "records",
				  (json_int_t)t->attrib->names_records, "rejected",
				  (json_int_t)t->attrib->names_rejected, "unknown_process",
				  (json_int_t)t->attrib->names_unknown, "frames_carried",
				  (json_int_t)t->attrib->frames_carried));
	}
	emit_json(o, obj);
	output_flush(o);
}

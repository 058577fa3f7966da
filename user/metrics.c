// SPDX-License-Identifier: GPL-2.0
/*
 * Prometheus text format 0.0.4 (prometheus/docs docs/instrumenting/exposition_formats.md).
 * Series of a family live in an array sorted by label values, so rendering is a walk and a
 * lookup a binary search; families are few and small (tens of series).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrib.h"
#include "conntrack.h"
#include "metrics.h"
#include "rules.h"
#include "runs.h"
#include "ws_frame.h"
#include "ws_message.h"
#include "utf8.h"
#include "wsaudit/events.h"

struct metrics_series {
	char *values[METRICS_MAX_LABELS];
	bool other; /* the capped label is METRICS_OTHER: does not count toward the cap */
	union {
		uint64_t count;
		double gauge;
	};
};

struct metrics_family {
	struct metrics *reg;
	struct metrics_family *next;
	char *name;
	char *help;
	enum metrics_type type;
	size_t nlabels;
	char *labels[METRICS_MAX_LABELS];
	size_t cap; /* 0: none */
	size_t capped; /* index of the label replaced past the cap */
	unsigned int also_capped; /* bits: labels replaced with it (metrics_family_cap_also) */
	size_t nowned; /* series that count toward the cap */
	struct metrics_series **series;
	size_t nseries;
	size_t alloc;
	uint64_t overflow;
	double per_unit; /* a counter kept in integer parts, this many to its unit; 0: 1 */
};

struct metrics {
	pthread_mutex_t lock;
	char *prefix;
	struct metrics_family *head;
	struct metrics_family *tail;
	struct metrics_family *overflow; /* <prefix>_metrics_overflow_total{family}, rendered last */
	void (*on_render)(void *arg);
	void *on_render_arg;
};

/*
 * Label names that carry unbounded identities, and names of the labels a Kubernetes scrape
 * attaches to the target (ours would be renamed exported_*).
 */
static const char *const forbidden_labels[] = {
	"pid",	  "tid",     "tgid",	     "uid",	      "user",	 "user_id",    "username",
	"conn",	  "conn_id", "connection",   "connection_id", "session", "session_id", "fd",
	"socket", "pod_uid", "container_id", "namespace",     "pod",	 "container",  "instance",
	"job",	  "cluster", "le",	     "quantile",      NULL,
};

static bool name_char(char c, bool first, bool colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (colon && c == ':')
		return true;
	return !first && c >= '0' && c <= '9';
}

static bool valid_name(const char *s, bool colon)
{
	size_t i;

	if (!s || !*s)
		return false;
	for (i = 0; s[i]; i++)
		if (!name_char(s[i], i == 0, colon))
			return false;
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static bool valid_label_name(const char *s)
{
	size_t i;

	/* Names starting with __ are reserved for Prometheus' own use. */
	if (!valid_name(s, false) || !strncmp(s, "__", 2))
		return false;
	for (i = 0; forbidden_labels[i]; i++)
		if (!strcmp(s, forbidden_labels[i]))
			return false;
	return true;
}

static int check_values(const struct metrics_family *f, const char *const *values)
{
	size_t i;

	for (i = 0; i < f->nlabels; i++) {
		if (!values || !values[i])
			return -EINVAL;
		if (strlen(values[i]) > METRICS_MAX_VALUE)
			return -ENAMETOOLONG;
		if (!utf8_valid(values[i], strlen(values[i])))
			return -EILSEQ;
	}
	return 0;
}

static int compare_values(char *const *a, const char *const *b, size_t n)
{
	size_t i;
	int c;

	for (i = 0; i < n; i++) {
		c = strcmp(a[i], b[i]);
		if (c)
			return c;
	}
	return 0;
}

/* The index of the series with these values, or where it would go (*found false). */
static size_t series_find(const struct metrics_family *f, const char *const *values, bool *found)
{
	size_t lo = 0, hi = f->nseries;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = compare_values(f->series[mid]->values, values, f->nlabels);

		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void series_free(struct metrics_series *s, size_t nlabels)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < nlabels; i++)
		free(s->values[i]);
	free(s);
}

static struct metrics_series *series_insert(struct metrics_family *f, size_t at,
					    const char *const *values, bool other)
{
	struct metrics_series *s;
	size_t i;

	if (f->nseries == f->alloc) {
		size_t alloc = f->alloc ? f->alloc * 2 : 8;
		struct metrics_series **p = realloc(f->series, alloc * sizeof(*p));

		if (!p)
			return NULL;
		f->series = p;
		f->alloc = alloc;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	for (i = 0; i < f->nlabels; i++) {
		s->values[i] = strdup(values[i]);
		if (!s->values[i])
			goto err_free;
	}
	s->other = other;
	memmove(&f->series[at + 1], &f->series[at], (f->nseries - at) * sizeof(*f->series));
	f->series[at] = s;
	f->nseries++;
	if (!other)
		f->nowned++;
	return s;

err_free:
	series_free(s, f->nlabels);
	return NULL;
}

/* Label i is replaced by METRICS_OTHER past the cap. */
static bool capped(const struct metrics_family *f, size_t i)
{
	return i == f->capped || (f->also_capped >> i & 1);
}

/*
 * The series an update goes to, created if need be; past the cap, the "other" one of the
 * same remaining labels.  Called with the lock held, values checked.
 */
static struct metrics_series *series_get(struct metrics_family *f, const char *const *values,
					 bool *overflowed)
{
	const char *other[METRICS_MAX_LABELS];
	struct metrics_series *s;
	bool found, is_other;
	size_t at, i;

	*overflowed = false;
	at = series_find(f, values, &found);
	if (found)
		return f->series[at];
	is_other = f->cap && !strcmp(values[f->capped], METRICS_OTHER);
	if (f->cap && !is_other && f->nowned >= f->cap) {
		for (i = 0; i < f->nlabels; i++)
			other[i] = capped(f, i) ? METRICS_OTHER : values[i];
		*overflowed = true;
		values = other;
		is_other = true;
		at = series_find(f, values, &found);
		if (found)
			return f->series[at];
	}
	s = series_insert(f, at, values, is_other);
	if (!s)
		errno = ENOMEM;
	return s;
}

/* Count an update routed to "other" in the registry's overflow family.  Lock held. */
static void overflow_count(struct metrics_family *f)
{
	const char *values[1] = { f->name };
	struct metrics_series *s;
	bool overflowed;

	f->overflow++;
	s = series_get(f->reg->overflow, values, &overflowed);
	if (s)
		s->count++;
}

enum update_op { OP_ADD, OP_COUNTER_SET, OP_SET, OP_GAUGE_ADD, OP_TOUCH };

static int update(struct metrics_family *f, const char *const *values, enum update_op op,
		  uint64_t delta, double v)
{
	struct metrics_series *s;
	bool overflowed;
	int err;

	if (((op == OP_ADD || op == OP_COUNTER_SET) && f->type != METRICS_COUNTER) ||
	    ((op == OP_SET || op == OP_GAUGE_ADD) && f->type != METRICS_GAUGE))
		return -EINVAL;
	err = check_values(f, values);
	if (err)
		return err;

	pthread_mutex_lock(&f->reg->lock);
	s = series_get(f, values, &overflowed);
	if (!s) {
		err = -ENOMEM;
		goto out_unlock;
	}
	if (overflowed)
		overflow_count(f);
	switch (op) {
	case OP_ADD:
		s->count += delta;
		break;
	case OP_COUNTER_SET:
		if (delta < s->count)
			err = -ERANGE;
		else
			s->count = delta;
		break;
	case OP_SET:
		s->gauge = v;
		break;
	case OP_GAUGE_ADD:
		s->gauge += v;
		break;
	case OP_TOUCH:
		break;
	}
out_unlock:
	pthread_mutex_unlock(&f->reg->lock);
	return err;
}

int metrics_add(struct metrics_family *f, const char *const *values, uint64_t delta)
{
	return update(f, values, OP_ADD, delta, 0);
}

int metrics_counter_set(struct metrics_family *f, const char *const *values, uint64_t total)
{
	return update(f, values, OP_COUNTER_SET, total, 0);
}

int metrics_gauge_set(struct metrics_family *f, const char *const *values, double v)
{
	return update(f, values, OP_SET, 0, v);
}

int metrics_gauge_add(struct metrics_family *f, const char *const *values, double delta)
{
	return update(f, values, OP_GAUGE_ADD, 0, delta);
}

int metrics_touch(struct metrics_family *f, const char *const *values)
{
	return update(f, values, OP_TOUCH, 0, 0);
}

int metrics_get(struct metrics_family *f, const char *const *values, double *out)
{
	const char *other[METRICS_MAX_LABELS];
	bool found;
	size_t at, i;
	int err;

	err = check_values(f, values);
	if (err)
		return err;
	pthread_mutex_lock(&f->reg->lock);
	at = series_find(f, values, &found);
	if (!found && f->cap) {
		for (i = 0; i < f->nlabels; i++)
			other[i] = capped(f, i) ? METRICS_OTHER : values[i];
		at = series_find(f, other, &found);
	}
	if (found)
		*out = f->type == METRICS_COUNTER ? (double)f->series[at]->count :
						    f->series[at]->gauge;
	pthread_mutex_unlock(&f->reg->lock);
	return found ? 0 : -ENOENT;
}

uint64_t metrics_overflow(struct metrics_family *f)
{
	uint64_t n;

	pthread_mutex_lock(&f->reg->lock);
	n = f->overflow;
	pthread_mutex_unlock(&f->reg->lock);
	return n;
}

static void family_free(struct metrics_family *f)
{
	size_t i;

	if (!f)
		return;
	for (i = 0; i < f->nseries; i++)
		series_free(f->series[i], f->nlabels);
	for (i = 0; i < f->nlabels; i++)
		free(f->labels[i]);
	free(f->series);
	free(f->name);
	free(f->help);
	free(f);
}

static struct metrics_family *family_new(struct metrics *m, const char *name,
					 enum metrics_type type, const char *help,
					 const char *const *labels, size_t nlabels, size_t cap,
					 const char *capped_label)
{
	struct metrics_family *f;
	size_t i, j;
	int err = EINVAL;

	if (!valid_name(name, true) || !help || nlabels > METRICS_MAX_LABELS ||
	    (nlabels && !labels) || (cap && !nlabels))
		goto err_out;
	if (type == METRICS_COUNTER ? !ends_with(name, "_total") : ends_with(name, "_total"))
		goto err_out;
	if (type != METRICS_COUNTER && type != METRICS_GAUGE)
		goto err_out;
	for (i = 0; i < nlabels; i++) {
		if (!valid_label_name(labels[i]))
			goto err_out;
		for (j = 0; j < i; j++)
			if (!strcmp(labels[i], labels[j]))
				goto err_out;
	}
	err = ENOMEM;
	f = calloc(1, sizeof(*f));
	if (!f)
		goto err_out;
	f->reg = m;
	f->type = type;
	f->nlabels = nlabels;
	f->cap = cap;
	f->name = strdup(name);
	f->help = strdup(help);
	if (!f->name || !f->help)
		goto err_free;
	for (i = 0; i < nlabels; i++) {
		f->labels[i] = strdup(labels[i]);
		if (!f->labels[i])
			goto err_free;
		if (cap && capped_label && !strcmp(labels[i], capped_label))
			f->capped = i;
	}
	err = EINVAL;
	if (cap && (!capped_label || strcmp(labels[f->capped], capped_label)))
		goto err_free;
	err = ENOMEM;
	if (!nlabels && !series_insert(f, 0, NULL, false))
		goto err_free;
	return f;

err_free:
	family_free(f);
err_out:
	errno = err;
	return NULL;
}

int metrics_family_cap_also(struct metrics_family *f, const char *label)
{
	size_t i;

	for (i = 0; f->cap && i < f->nlabels; i++) {
		if (!strcmp(f->labels[i], label)) {
			/* Before any series: one made earlier would keep its own value. */
			if (i == f->capped || f->nseries)
				return -EINVAL;
			f->also_capped |= 1u << i;
			return 0;
		}
	}
	return -EINVAL;
}

static bool family_exists(const struct metrics *m, const char *name)
{
	const struct metrics_family *f;

	for (f = m->head; f; f = f->next)
		if (!strcmp(f->name, name))
			return true;
	return m->overflow && !strcmp(m->overflow->name, name);
}

struct metrics_family *metrics_family_add(struct metrics *m, const char *name,
					  enum metrics_type type, const char *help,
					  const char *const *labels, size_t nlabels, size_t cap,
					  const char *capped_label)
{
	static const char *const overflow_labels[] = { "family" };
	struct metrics_family *f = NULL;
	char *oname = NULL;
	int err = 0;

	pthread_mutex_lock(&m->lock);
	if (name && family_exists(m, name)) {
		err = EEXIST;
		goto out_unlock;
	}
	if (cap && !m->overflow) {
		if (asprintf(&oname, "%s_metrics_overflow_total", m->prefix) < 0) {
			oname = NULL;
			err = ENOMEM;
			goto out_unlock;
		}
		m->overflow = family_new(m, oname, METRICS_COUNTER,
					 "Updates of a capped family counted in its \"other\" "
					 "series because it reached its cap of label sets.",
					 overflow_labels, 1, 0, NULL);
		if (!m->overflow) {
			err = errno;
			goto out_unlock;
		}
	}
	f = family_new(m, name, type, help, labels, nlabels, cap, capped_label);
	if (!f) {
		err = errno;
		goto out_unlock;
	}
	if (cap) {
		const char *values[1] = { f->name };
		bool overflowed;

		/* Present at 0 from the start, so an alert on its increase has a baseline. */
		if (!series_get(m->overflow, values, &overflowed)) {
			family_free(f);
			f = NULL;
			err = ENOMEM;
			goto out_unlock;
		}
	}
	if (m->tail)
		m->tail->next = f;
	else
		m->head = f;
	m->tail = f;
out_unlock:
	pthread_mutex_unlock(&m->lock);
	free(oname);
	if (!f)
		errno = err;
	return f;
}

struct metrics *metrics_new(const char *prefix)
{
	struct metrics *m;

	if (!valid_name(prefix, false)) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->prefix = strdup(prefix);
	if (!m->prefix || pthread_mutex_init(&m->lock, NULL)) {
		free(m->prefix);
		free(m);
		errno = ENOMEM;
		return NULL;
	}
	return m;
}

void metrics_free(struct metrics *m)
{
	struct metrics_family *f, *next;

	if (!m)
		return;
	for (f = m->head; f; f = next) {
		next = f->next;
		family_free(f);
	}
	family_free(m->overflow);
	pthread_mutex_destroy(&m->lock);
	free(m->prefix);
	free(m);
}

/* HELP text: backslash and line feed escaped. */
static void put_help(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
}

/* Label value: backslash, double quote and line feed escaped. */
static void put_label_value(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '"')
			fputs("\\\"", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
}

/* The shortest of %.15g..%.17g that reads back as the same double; Go's spellings of NaN, Inf. */
static void put_double(FILE *out, double v)
{
	char buf[32];
	int prec;

	if (isnan(v)) {
		fputs("NaN", out);
		return;
	}
	if (isinf(v)) {
		fputs(v > 0 ? "+Inf" : "-Inf", out);
		return;
	}
	for (prec = 15; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	if (prec == 17)
		snprintf(buf, sizeof(buf), "%.17g", v);
	fputs(buf, out);
}

static void family_render(FILE *out, const struct metrics_family *f)
{
	size_t i, j;

	/* A labelled family with no series yet says nothing: an empty family is not a sample. */
	if (!f->nseries)
		return;
	fprintf(out, "# HELP %s ", f->name);
	put_help(out, f->help);
	fprintf(out, "\n# TYPE %s %s\n", f->name, f->type == METRICS_COUNTER ? "counter" : "gauge");
	for (i = 0; i < f->nseries; i++) {
		const struct metrics_series *s = f->series[i];

		fputs(f->name, out);
		if (f->nlabels) {
			fputc('{', out);
			for (j = 0; j < f->nlabels; j++) {
				fprintf(out, "%s%s=\"", j ? "," : "", f->labels[j]);
				put_label_value(out, s->values[j]);
				fputc('"', out);
			}
			fputc('}', out);
		}
		fputc(' ', out);
		if (f->type == METRICS_COUNTER && f->per_unit)
			put_double(out, (double)s->count / f->per_unit);
		else if (f->type == METRICS_COUNTER)
			fprintf(out, "%" PRIu64, s->count);
		else
			put_double(out, s->gauge);
		fputc('\n', out);
	}
}

void metrics_counter_unit(struct metrics_family *f, double per_unit)
{
	pthread_mutex_lock(&f->reg->lock);
	f->per_unit = per_unit;
	pthread_mutex_unlock(&f->reg->lock);
}

void metrics_on_render(struct metrics *m, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&m->lock);
	m->on_render = fn;
	m->on_render_arg = arg;
	pthread_mutex_unlock(&m->lock);
}

char *metrics_render(struct metrics *m, size_t *len)
{
	const struct metrics_family *f;
	void (*fn)(void *arg);
	char *buf = NULL;
	size_t size = 0;
	void *arg;
	FILE *out;
	int err = 0;

	pthread_mutex_lock(&m->lock);
	fn = m->on_render;
	arg = m->on_render_arg;
	pthread_mutex_unlock(&m->lock);
	/* Unlocked: the hook updates the registry itself. */
	if (fn)
		fn(arg);

	out = open_memstream(&buf, &size);
	if (!out)
		return NULL;
	pthread_mutex_lock(&m->lock);
	for (f = m->head; f; f = f->next)
		family_render(out, f);
	if (m->overflow)
		family_render(out, m->overflow);
	pthread_mutex_unlock(&m->lock);
	if (ferror(out))
		err = ENOMEM;
	if (fclose(out) && !err)
		err = errno ? errno : ENOMEM;
	if (err) {
		free(buf);
		errno = err;
		return NULL;
	}
	if (len)
		*len = size;
	return buf;
}

/* --- the collector's families ------------------------------------------------------------- */

/* RFC 6455 opcode names as ws_opcode_name() spells them; "reserved" for the unassigned ones. */
#define OPCODE_VALUE(name, value, str) str,
const char *const metrics_opcodes[] = { WS_OPCODES(OPCODE_VALUE) "reserved", NULL };
#undef OPCODE_VALUE

/* The BPF side's names (include/wsaudit/events.h), so a new reason cannot be missed here. */
const char *const metrics_drop_reasons[DROP_MAX + 1] = { DROP_NAMES };

#define UNATTR_VALUE(name, str) str,
const char *const metrics_unattributed_reasons[] = { UNATTRIBUTED_REASONS(UNATTR_VALUE) NULL };
#undef UNATTR_VALUE

const char *const metrics_causal_results[] = { "linked", "no_link", "no_context", NULL };
static const char *const code_names_results[] = { "taken", "rejected", "unknown_process", NULL };

#define STATUS_VALUE(name, str) str,
const char *const metrics_message_statuses[] = { WS_MSG_STATUSES(STATUS_VALUE) NULL };
#undef STATUS_VALUE

#define RULE_VALUE(name, str) str,
const char *const metrics_rules[] = { RULE_NAMES(RULE_VALUE) NULL };
#undef RULE_VALUE

/* The reasons of user/runs.h, one family per rule. */
#define REASON_VALUE(name, str, rule) str,
const char *const metrics_runs_incomplete_reasons[] = { RUN_INCOMPLETE_REASONS(REASON_VALUE, _)
								NULL };
const char *const metrics_runs_out_of_order_reasons[] = { RUN_OUT_OF_ORDER_REASONS(REASON_VALUE, _)
								  NULL };
const char *const metrics_runs_unjudged_reasons[] = { RUN_UNJUDGED_REASONS(REASON_VALUE, _) NULL };
#undef REASON_VALUE

const char *const metrics_dropped_bytes_reasons[] = { "cap_exceeded", "lost", NULL };

static const char *const probe_states[] = { "attached", "failed", NULL };
static const char *const connection_kinds[] = { "handshake", "adopted", NULL };
static const char *const reload_results[] = { "ok", "error", NULL };
static const char *const user_states[] = { "ambiguous", "unknown", NULL };
static const char *const tls_links[] = { "linked", "unlinked", NULL };
static const char *const adopted_states[] = { "history_recovered", "history_unknown",
					      "user_unknown", "user_recovered", NULL };

static int touch_all(struct metrics_family *f, const char *const *values)
{
	int err;

	for (; *values; values++) {
		err = metrics_touch(f, values);
		if (err)
			return err;
	}
	return 0;
}

struct family_spec {
	size_t offset; /* of the handle in struct metrics_wsaudit */
	const char *name;
	enum metrics_type type;
	const char *help;
	const char *const *labels;
	size_t nlabels;
	const char *const *values; /* of the single label, created at 0 */
	size_t cap;
	const char *capped_label;
	const char *also_capped; /* metrics_family_cap_also() */
};

#define HANDLE(field) offsetof(struct metrics_wsaudit, field)
#define PLAIN(field, n, t, h)                                            \
	{                                                                \
		.offset = HANDLE(field), .name = n, .type = t, .help = h \
	}
#define LABELLED(field, n, t, h, label, v)                                          \
	{                                                                           \
		.offset = HANDLE(field), .name = n, .type = t, .help = h,           \
		.labels = (const char *const[]){ label }, .nlabels = 1, .values = v \
	}

_Static_assert(METRICS_ORIGIN_CAP == 50, "the HELP text of wsaudit_violations_by_origin_total");
_Static_assert(METRICS_WORKLOAD_CAP == 50, "the HELP text of wsaudit_violations_by_workload_total");

static const char *const http_refusals[] = { "limit", "per_ip", NULL };

#define SKIP_VALUE(name, str) str,
const char *const metrics_skip_reasons[] = { CT_SKIP_REASONS(SKIP_VALUE) "fd_passed", NULL };
#undef SKIP_VALUE

static const struct family_spec wsaudit_families[] = {
	PLAIN(events, "wsaudit_events_total", METRICS_COUNTER,
	      "Records read from the BPF ring buffers."),
	LABELLED(frames, "wsaudit_frames_total", METRICS_COUNTER,
		 "Outbound WebSocket frames decoded, by opcode.", "opcode", metrics_opcodes),
	PLAIN(captured_bytes, "wsaudit_captured_bytes_total", METRICS_COUNTER,
	      "Payload bytes captured from the traced sockets."),
	LABELLED(drops, "wsaudit_drops_total", METRICS_COUNTER,
		 "Times the BPF programs could not deliver a record or capture a write, by reason "
		 "(each counts one occurrence; the bytes are in wsaudit_dropped_bytes_total).",
		 "reason", metrics_drop_reasons),
	LABELLED(dropped_bytes, "wsaudit_dropped_bytes_total", METRICS_COUNTER,
		 "Payload bytes written to traced sockets that were not captured, by reason: past "
		 "the per-syscall capture cap (cap_exceeded), or lost to a full ring buffer, a read "
		 "fault, a zero-copy send or the chunk loop's limit (lost).",
		 "reason", metrics_dropped_bytes_reasons),
	LABELLED(probes, "wsaudit_probes", METRICS_GAUGE,
		 "BPF programs and uprobes, by state: attached or failed to attach.", "state",
		 probe_states),
	PLAIN(processes, "wsaudit_processes", METRICS_GAUGE,
	      "Processes followed (matching the policy's targets)."),
	PLAIN(connections, "wsaudit_connections_open", METRICS_GAUGE,
	      "Open WebSocket connections followed."),
	LABELLED(connections_total, "wsaudit_connections_total", METRICS_COUNTER,
		 "WebSocket connections followed, by how they were found: from their handshake, "
		 "or adopted mid-stream.",
		 "kind", connection_kinds),
	LABELLED(conns_skipped, "wsaudit_connections_skipped_total", METRICS_COUNTER,
		 "Connections not followed, by reason: TLS whose plaintext is not probed (tls, "
		 "static_ssl, tls_unlinked), not WebSocket, the table full, or a socket handed to "
		 "an untraced process (fd_passed).",
		 "reason", metrics_skip_reasons),
	LABELLED(tls_connections, "wsaudit_tls_connections_total", METRICS_COUNTER,
		 "TLS connections whose plaintext is read through the probes on libssl, by link "
		 "to their socket: linked, or closed without a link.",
		 "link", tls_links),
	LABELLED(conn_users, "wsaudit_connection_users_total", METRICS_COUNTER,
		 "WebSocket connections whose user cannot be judged, by why: their request names "
		 "several users (ambiguous) or was not read whole (unknown).",
		 "state", user_states),
	LABELLED(adopted, "wsaudit_adopted_connections_total", METRICS_COUNTER,
		 "Connections open before the trace (adopted), by what is known of them: their "
		 "compression history recovered, not recovered, their user not recovered, "
		 "recovered from the server's memory.",
		 "state", adopted_states),
	LABELLED(unattributed, "wsaudit_unattributed_frames_total", METRICS_COUNTER,
		 "Frames not attributed to a Python function, by reason.", "reason",
		 metrics_unattributed_reasons),
	PLAIN(attributed, "wsaudit_attributed_frames_total", METRICS_COUNTER,
	      "Frames attributed to the Python function that sent them."),
	LABELLED(messages, "wsaudit_messages_total", METRICS_COUNTER,
		 "WebSocket messages reassembled, by status.", "status", metrics_message_statuses),
	PLAIN(parser_desyncs, "wsaudit_parser_desyncs_total", METRICS_COUNTER,
	      "Times a connection's frame parser lost the frame boundaries."),
	PLAIN(truncated_frames, "wsaudit_truncated_frames_total", METRICS_COUNTER,
	      "Frames whose payload was not captured in full."),
	LABELLED(violations, "wsaudit_violations_total", METRICS_COUNTER,
		 "Policy violations, by rule.", "rule", metrics_rules),
	LABELLED(unjudged, "wsaudit_unjudged_frames_total", METRICS_COUNTER,
		 "Data frames whose producer could not be named, so the bridge rule could not "
		 "judge them (violation unjudged), by reason.",
		 "reason", metrics_unattributed_reasons),
	LABELLED(causal_links, "wsaudit_causal_links_total", METRICS_COUNTER,
		 "Frames without an application function on the send's stack, by whether the "
		 "creation of the task, callback or thread that sent them named one (linked), "
		 "was not seen (no_link), or the send ran in no hand-off's context (no_context).",
		 "result", metrics_causal_results),
	PLAIN(causal_creations, "wsaudit_causal_creations_total", METRICS_COUNTER,
	      "Creations of tasks, callbacks and threads whose stack was recorded."),
	PLAIN(causal_evicted, "wsaudit_causal_evicted_total", METRICS_COUNTER,
	      "Recorded creation stacks forgotten unused, oldest first, past the bound."),
	PLAIN(causal_skipped, "wsaudit_causal_skipped_total", METRICS_COUNTER,
	      "Context copies whose creation was not recorded because no send can run in them "
	      "(asyncio.sleep's timer)."),
	LABELLED(code_names, "wsaudit_code_names_records_total", METRICS_COUNTER,
		 "Records of code objects' names sent by the stack walks, by what the collector "
		 "did with them: taken, rejected (not a code object, malformed strings), or of "
		 "a process it does not walk.",
		 "result", code_names_results),
	{
		.offset = HANDLE(violations_by_origin),
		.name = "wsaudit_violations_by_origin_total",
		.type = METRICS_COUNTER,
		.help = "Policy violations, by rule and by the Python function (qualified name) "
			"that sent the frame; past 50 (rule, function) pairs, origin=\"other\".",
		.labels = (const char *const[]){ "rule", "origin" },
		.nlabels = 2,
		.cap = METRICS_ORIGIN_CAP,
		.capped_label = "origin",
	},
	{
		.offset = HANDLE(violations_by_workload),
		.name = "wsaudit_violations_by_workload_total",
		.type = METRICS_COUNTER,
		.help = "Policy violations, by rule and by the Kubernetes namespace and workload "
			"(the pod's owner) of the process that sent the frame (none: not in a pod; "
			"unknown: its pod could not be read on the node); past 50 sets, "
			"k8s_namespace and k8s_workload \"other\".",
		.labels = (const char *const[]){ "rule", "k8s_namespace", "k8s_workload" },
		.nlabels = 3,
		.cap = METRICS_WORKLOAD_CAP,
		.capped_label = "k8s_workload",
		.also_capped = "k8s_namespace",
	},
	PLAIN(runs_completed, "wsaudit_runs_completed_total", METRICS_COUNTER,
	      "Agent runs (the policy's runs section) that sent an end event."),
	PLAIN(runs_open, "wsaudit_runs_open", METRICS_GAUGE,
	      "Agent runs followed now, ended ones kept until their timeout included."),
	LABELLED(runs_incomplete, "wsaudit_runs_incomplete_total", METRICS_COUNTER,
		 "Agent runs that never sent an end event (incomplete_run), by reason: their "
		 "connection closed first, or they were silent for the policy's timeout.",
		 "reason", metrics_runs_incomplete_reasons),
	LABELLED(runs_out_of_order, "wsaudit_runs_out_of_order_total", METRICS_COUNTER,
		 "Agent runs whose start (start_after_end) or another event (after_end) came after "
		 "their end.",
		 "reason", metrics_runs_out_of_order_reasons),
	PLAIN(runs_missing_event, "wsaudit_runs_missing_event_total", METRICS_COUNTER,
	      "Agent runs that ended without one of the policy's required events, or without "
	      "their start."),
	LABELLED(runs_unjudged, "wsaudit_runs_unjudged_total", METRICS_COUNTER,
		 "Agent runs that could not be judged, by reason: forgotten past the bounds "
		 "(evicted), a message of their connection could not be read, or their "
		 "connection got some of their events but neither their start nor their end "
		 "(fragment), or they were still open when the trace ended (trace_ended).",
		 "reason", metrics_runs_unjudged_reasons),
	{
		.offset = HANDLE(lost_frames),
		.name = "wsaudit_lost_frames_total",
		.type = METRICS_COUNTER,
		.help = "Frames that never left the process (their write failed or sent part, and "
			"the connection ended first), by the Python function that wrote them and "
			"the message type (other: not a known type); past 50 pairs, "
			"origin=\"other\".",
		.labels = (const char *const[]){ "origin", "type" },
		.nlabels = 2,
		.cap = METRICS_ORIGIN_CAP,
		.capped_label = "origin",
	},
	{
		.offset = HANDLE(queued_at_close),
		.name = "wsaudit_queued_at_close_total",
		.type = METRICS_COUNTER,
		.help = "Writes handed to a transport that queues them (uvloop) and still queued "
			"when their connection ended: they never reached the socket; by the Python "
			"function that wrote them; past 50, origin=\"other\".",
		.labels = (const char *const[]){ "origin" },
		.nlabels = 1,
		.cap = METRICS_ORIGIN_CAP,
		.capped_label = "origin",
	},
	{
		.offset = HANDLE(queued_at_close_bytes),
		.name = "wsaudit_queued_at_close_bytes_total",
		.type = METRICS_COUNTER,
		.help = "Bytes of those writes, by the Python function that wrote them; past 50, "
			"origin=\"other\".",
		.labels = (const char *const[]){ "origin" },
		.nlabels = 1,
		.cap = METRICS_ORIGIN_CAP,
		.capped_label = "origin",
	},
	PLAIN(buffered_unseen, "wsaudit_buffered_unseen_connections_total", METRICS_COUNTER,
	      "Connections that ended with frames lost and no transport followed: writes made "
	      "after those reached no syscall if a transport buffered them (asyncio's selector "
	      "transport), and whether any were dropped is not seen."),
	{
		.offset = HANDLE(abnormal_closes),
		.name = "wsaudit_abnormal_closes_total",
		.type = METRICS_COUNTER,
		.help = "WebSocket connections closed abnormally, by code (1011 sent by the server, "
			"or none: the socket closed without a close frame) and by the Python "
			"function that sent the close frame; past 50 pairs, origin=\"other\".",
		.labels = (const char *const[]){ "code", "origin" },
		.nlabels = 2,
		.cap = METRICS_ORIGIN_CAP,
		.capped_label = "origin",
	},
	LABELLED(policy_reloads, "wsaudit_policy_reloads_total", METRICS_COUNTER,
		 "Policy reloads, by result (an invalid policy keeps the previous one).", "result",
		 reload_results),
	PLAIN(policy_last_reload_success, "wsaudit_policy_last_reload_success", METRICS_GAUGE,
	      "1 when the policy last loaded (at start or SIGHUP) is in force, 0 while a reload "
	      "was refused and the agent keeps an older policy."),
	PLAIN(log_write_errors, "wsaudit_log_write_errors_total", METRICS_COUNTER,
	      "Violation records that could not be written to the log when they came (queued "
	      "for a retry, or dropped)."),
	PLAIN(log_dropped, "wsaudit_log_records_dropped_total", METRICS_COUNTER,
	      "Violation records lost: the log could not be written and its queue was full."),
	PLAIN(log_queued, "wsaudit_log_queued_records", METRICS_GAUGE,
	      "Violation records waiting for the log to be writable again."),
	PLAIN(http_connections, "wsaudit_http_connections", METRICS_GAUGE,
	      "Connections open on the metrics and health endpoint."),
	LABELLED(http_refused, "wsaudit_http_connections_refused_total", METRICS_COUNTER,
		 "Connections to the metrics and health endpoint closed at once, by reason: "
		 "limit (256 open) or per_ip (16 open from that address).",
		 "reason", http_refusals),
	PLAIN(http_expired, "wsaudit_http_connections_expired_total", METRICS_COUNTER,
	      "Connections to the metrics and health endpoint cut 5 s after they were opened or "
	      "last answered (slow clients)."),
	PLAIN(selfcheck_ok, "wsaudit_selfcheck_ok", METRICS_GAUGE,
	      "1 when the last self-check saw the agent's own probe write through its programs, "
	      "0 when it did not (the capture path is blind) or none has run yet."),
	PLAIN(selfcheck_last_success, "wsaudit_selfcheck_last_success_timestamp_seconds",
	      METRICS_GAUGE, "When a self-check last passed (unix seconds; 0: never)."),
	PLAIN(selfcheck_failures, "wsaudit_selfcheck_failures_total", METRICS_COUNTER,
	      "Self-checks that did not see the probe write come back."),
	PLAIN(selfcheck_deferred, "wsaudit_selfcheck_deferred_total", METRICS_COUNTER,
	      "Self-checks without a verdict: the probe was not back in time while the ring buffer "
	      "was still being drained (tried again 5 s later)."),
	PLAIN(trace_clients, "wsaudit_trace_clients", METRICS_GAUGE,
	      "`wsaudit trace` instances served by the agent's local socket."),
	PLAIN(trace_client_drops, "wsaudit_trace_client_dropped_records_total", METRICS_COUNTER,
	      "Records a trace client of the agent's socket lost because it did not keep up "
	      "(each is told to it in a dropped record)."),
};

int metrics_wsaudit_init(struct metrics_wsaudit *w, const char *version, const char *revision)
{
	static const char *const build_labels[] = { "version", "revision" };
	const char *build_values[2] = { version, revision };
	struct metrics_family *f;
	size_t i;
	int err;

	memset(w, 0, sizeof(*w));
	w->reg = metrics_new("wsaudit");
	if (!w->reg)
		return -errno;
	w->build_info = metrics_family_add(w->reg, "wsaudit_build_info", METRICS_GAUGE,
					   "Build of the agent: version and git revision, value 1.",
					   build_labels, 2, 0, NULL);
	if (!w->build_info)
		goto err_errno;
	err = metrics_gauge_set(w->build_info, build_values, 1);
	if (err)
		goto err_free;
	for (i = 0; i < sizeof(wsaudit_families) / sizeof(wsaudit_families[0]); i++) {
		const struct family_spec *s = &wsaudit_families[i];

		f = metrics_family_add(w->reg, s->name, s->type, s->help, s->labels, s->nlabels,
				       s->cap, s->capped_label);
		if (!f)
			goto err_errno;
		*(struct metrics_family **)((char *)w + s->offset) = f;
		if (s->also_capped) {
			err = metrics_family_cap_also(f, s->also_capped);
			if (err)
				goto err_free;
		}
		if (s->values) {
			err = touch_all(f, s->values);
			if (err)
				goto err_free;
		}
	}
	/*
	 * The delivery families' series of no known function, at 0: they exist from the start
	 * (a scrape and the dashboards find them, increase() sees the first).
	 */
	err = metrics_touch(w->lost_frames, (const char *const[]){ "unattributed", "none" });
	err = err   ?:
		      metrics_touch(w->abnormal_closes,
				    (const char *const[]){ "1011", "unattributed" });
	err = err   ?:
		      metrics_touch(w->abnormal_closes,
				    (const char *const[]){ "none", "unattributed" });
	err = err ?: metrics_touch(w->queued_at_close, (const char *const[]){ "unattributed" });
	err = err   ?:
		      metrics_touch(w->queued_at_close_bytes,
				    (const char *const[]){ "unattributed" });
	if (err)
		goto err_free;
	return 0;

err_errno:
	err = -errno;
err_free:
	metrics_wsaudit_fini(w);
	return err;
}

void metrics_wsaudit_fini(struct metrics_wsaudit *w)
{
	metrics_free(w->reg);
	memset(w, 0, sizeof(*w));
}

int metrics_process_init(struct metrics *reg, struct metrics_process *p)
{
	p->cpu = metrics_family_add(reg, "process_cpu_seconds_total", METRICS_COUNTER,
				    "User and system CPU time of the agent, in seconds.", NULL, 0,
				    0, NULL);
	p->rss = metrics_family_add(reg, "process_resident_memory_bytes", METRICS_GAUGE,
				    "Resident memory of the agent, in bytes.", NULL, 0, 0, NULL);
	p->vsize = metrics_family_add(reg, "process_virtual_memory_bytes", METRICS_GAUGE,
				      "Virtual memory of the agent, in bytes.", NULL, 0, 0, NULL);
	p->fds = metrics_family_add(reg, "process_open_fds", METRICS_GAUGE,
				    "File descriptors the agent has open.", NULL, 0, 0, NULL);
	p->max_fds = metrics_family_add(reg, "process_max_fds", METRICS_GAUGE,
					"The agent's limit of open file descriptors.", NULL, 0, 0,
					NULL);
	p->start = metrics_family_add(reg, "process_start_time_seconds", METRICS_GAUGE,
				      "When the agent started, in unix seconds.", NULL, 0, 0, NULL);
	if (!p->cpu || !p->rss || !p->vsize || !p->fds || !p->max_fds || !p->start)
		return -1;
	/* Kept in microseconds: an integer counter, shown in seconds. */
	metrics_counter_unit(p->cpu, 1e6);
	return 0;
}

/* One update of a family capped on its `origin` label (index i), refused names as "other". */
static int add_by_origin(struct metrics_family *f, const char **values, size_t i)
{
	int err = metrics_add(f, values, 1), err2;

	if (err == -EILSEQ || err == -ENAMETOOLONG) {
		/* Still counted, where a name that cannot be a label value belongs. */
		values[i] = METRICS_OTHER;
		err2 = metrics_add(f, values, 1);
		if (err2)
			err = err2;
	}
	return err;
}

int metrics_wsaudit_lost(struct metrics_wsaudit *w, const char *origin, const char *type)
{
	const char *values[2] = { origin && *origin ? origin : "unattributed",
				  !type			  ? "none" :
				  !strncmp(type, "t#", 2) ? "other" :
							    type };

	return add_by_origin(w->lost_frames, values, 0);
}

int metrics_wsaudit_queued(struct metrics_wsaudit *w, const char *origin, uint64_t bytes)
{
	const char *values[1] = { origin && *origin ? origin : "unattributed" };
	int err = add_by_origin(w->queued_at_close, values, 0);

	return err ?: metrics_add(w->queued_at_close_bytes, values, bytes);
}

int metrics_wsaudit_abnormal_close(struct metrics_wsaudit *w, int code, const char *origin)
{
	char c[16];
	const char *values[2] = { c, origin && *origin ? origin : "unattributed" };

	if (code > 0)
		snprintf(c, sizeof(c), "%d", code);
	else
		snprintf(c, sizeof(c), "none");
	return add_by_origin(w->abnormal_closes, values, 1);
}

int metrics_wsaudit_violation(struct metrics_wsaudit *w, const char *rule, const char *origin,
			      const char *k8s_namespace, const char *k8s_workload)
{
	const char *values[2] = { rule, origin && *origin ? origin : "unattributed" };
	const char *where[3] = { rule, k8s_namespace && *k8s_namespace ? k8s_namespace : "unknown",
				 k8s_workload && *k8s_workload ? k8s_workload : "unknown" };
	int err, err2;

	err = metrics_add1(w->violations, rule, 1);
	if (err)
		return err;
	err = add_by_origin(w->violations_by_origin, values, 1);
	/* A name refused as a label value is counted as "other", its namespace with it. */
	err2 = metrics_add(w->violations_by_workload, where, 1);
	if (err2 == -EILSEQ || err2 == -ENAMETOOLONG) {
		where[1] = where[2] = METRICS_OTHER;
		err2 = metrics_add(w->violations_by_workload, where, 1);
	}
	return err ?: err2;
}

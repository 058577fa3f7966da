// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "capture.h"
#include "causal.h"
#include "report.h"

struct baseline_entry {
	int rule; /* a report kind */
	char *function;
	char *file; /* relative to the root */
};

struct report {
	char *root;
	struct report_totals t;
	struct report_finding *f;
	size_t n, cap;
	struct baseline_entry *base;
	size_t nbase;
};

/* What each kind of finding is, for the SARIF rules and the JUnit cases. */
static const struct {
	const char *title;
	const char *short_text;
	const char *help;
} rule_help[REPORT_KINDS] = {
	[RULE_BRIDGE_BYPASS] = {
		"BridgeBypass",
		"A WebSocket frame was written with no bridge function on the writer's stack.",
		"The service's policy names the bridge (bridge.functions, bridge.files): the one "
		"path that every real-time event must take, because it enforces per-user "
		"isolation. This frame was written by a function that reached the WebSocket "
		"without it (a direct call of the connection manager, for instance). Send the "
		"event through the bridge, or, if this sender is sanctioned, add it to the "
		"policy's bridge.functions. The location is the originating function: the "
		"innermost frame that is not transport (libraries, the manager itself).",
	},
	[RULE_ISOLATION_BREACH] = {
		"IsolationBreach",
		"A WebSocket frame's identities disagree: it reached a user it does not belong to.",
		"The user who owns the connection (from the handshake), the user the message names, "
		"the user argument of the bridge call and the owner learned for an ownership key "
		"(run_id, thread_id: first seen on one user's connection) must agree. This frame "
		"carried data of one user to another. Look for state shared between users' runs "
		"(a process-wide object whose user-bound field is overwritten, for instance). The "
		"location is the originating function of the frame.",
	},
	[RULE_IDENTITY_AMBIGUOUS] = {
		"IdentityAmbiguous",
		"A WebSocket frame went out on a connection whose upgrade request names more than "
		"one user.",
		"The request repeats a credential with different values, gives two sources that "
		"name different users, or was split or pipelined so that it reads as another "
		"request (docs/identity.md). Servers disagree on which one counts, so isolation "
		"cannot be judged on this connection. Make the service refuse such requests, or "
		"read its users from one source only and name only that one in the policy.",
	},
	[RULE_IDENTITY_UNKNOWN] = {
		"IdentityUnknown",
		"A WebSocket frame went out on a connection whose upgrade request could not be read "
		"whole.",
		"The request head was larger than wsaudit reads (16 KiB), or bytes of it were lost "
		"(docs/identity.md): the connection's user is unknown and isolation is not judged "
		"on it.",
	},
	[RULE_MESSAGE_UNREADABLE] = {
		"MessageUnreadable",
		"A WebSocket message names a user field but is not JSON wsaudit can read.",
		"wsaudit reads message JSON at least as leniently as Python's json module "
		"(NaN, Infinity, big integers, lone surrogates, a byte order mark, deep nesting). "
		"This message mentions a field the policy reads the user from, yet could not be "
		"parsed, so the user it carries could not be compared with the connection's.",
	},
	[RULE_DELIVERY_FAILED] = {
		"DeliveryFailed",
		"A WebSocket frame never left the process: its write failed or sent part of it.",
		"The write of this frame failed (EPIPE, ECONNRESET, EAGAIN with nothing sent) or "
		"sent only part of it, and the connection ended before the rest was sent: the user "
		"never received it (docs/delivery.md). The location is the function that wrote it. "
		"Check that the connection is open before sending, and that the sender learns of the "
		"failure.",
	},
	[RULE_ABNORMAL_CLOSE] = {
		"AbnormalClose",
		"The server closed a WebSocket connection with 1011, or without a close frame.",
		"1011 (internal error) means the server gave up on the connection; a socket closed "
		"without a close frame shows as 1006 to the client. Either way the user's events "
		"stop. The location is the function that sent the close frame, or for a socket "
		"closed without one, the function that closed it (its close(2)); the frames it "
		"left unsent are in the detail.",
	},
	[RULE_AFTER_CLOSE] = {
		"AfterClose",
		"A WebSocket frame was written after the connection's close frame.",
		"A client delivers nothing that follows a close frame (RFC 6455 5.5.1): the event "
		"is lost. The location is the function that wrote it; it raced with the "
		"connection's close.",
	},
	[RULE_UNJUDGED] = {
		"Unjudged",
		"A WebSocket frame whose producer could not be named, so the bridge rule could not "
		"judge it.",
		"No application function is on the writer's stack, nor on the stack of any "
		"creation its work was linked to: a task, callback or thread whose creation was "
		"not seen, a job of a thread pool (run_in_executor), bytes a transport buffered "
		"and sent later (deferred_write), or a stack that could not be read "
		"(docs/causal.md). The reason and the best origin known are in the detail; the "
		"location is that best origin.",
	},
	[REPORT_INCOMPLETE_RUN] = {
		"IncompleteRun",
		"An agent run never sent its end event: its connection closed first, or it was "
		"silent for the policy's timeout.",
		"The policy's runs section names the events of one run (docs/runs.md). This run "
		"started (or sent events) on the connection and never sent one of runs.end before "
		"the connection closed or the timeout passed: its user never saw the answer. The "
		"location is the function that sent the run's last event; the detail says which.",
	},
	[REPORT_OUT_OF_ORDER] = {
		"OutOfOrder",
		"An agent run's start, or one of its events, was sent after its end event.",
		"A client that closes a run at its end event drops what comes after (docs/runs.md). "
		"The location is the function that sent the late event.",
	},
	[REPORT_MISSING_EVENT] = {
		"MissingEvent",
		"An agent run ended without one of the events the policy requires of it.",
		"The policy's runs.required names the events every run sends (docs/runs.md); this "
		"run ended without the ones the detail lists. The location is the function that "
		"sent its last event.",
	},
};

const char *report_kind_name(int kind)
{
	if (kind >= RULE__COUNT && kind < REPORT_KINDS)
		return run_rule_name(RUN_INCOMPLETE + (kind - REPORT_INCOMPLETE_RUN));
	return rule_name(kind);
}

int report_run_kind(enum run_rule rule)
{
	switch (rule) {
	case RUN_INCOMPLETE:
		return REPORT_INCOMPLETE_RUN;
	case RUN_OUT_OF_ORDER:
		return REPORT_OUT_OF_ORDER;
	case RUN_MISSING_EVENT:
		return REPORT_MISSING_EVENT;
	default:
		return -1;
	}
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct report *report_new(const char *root)
{
	struct report *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (root) {
		r->root = strdup(root);
		if (!r->root) {
			free(r);
			return NULL;
		}
	}
	return r;
}

static void loc_free(struct report_loc *l)
{
	free(l->function);
	free(l->file);
}

void report_free(struct report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		struct report_finding *f = &r->f[i];

		loc_free(&f->origin);
		for (size_t j = 0; j < f->ntests; j++)
			free(f->tests[j]);
		for (size_t j = 0; j < f->nstack; j++)
			loc_free(&f->stack[j]);
		free(f->detail);
	}
	for (size_t i = 0; i < r->nbase; i++) {
		free(r->base[i].function);
		free(r->base[i].file);
	}
	free(r->base);
	free(r->f);
	free(r->root);
	free(r);
}

static const char *rel(const struct report *r, const char *file)
{
	return testname_relative(file, r->root);
}

static bool streq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool in_baseline(const struct report *r, const struct report_finding *f)
{
	if (!f->origin.function)
		return false;
	for (size_t i = 0; i < r->nbase; i++) {
		if (r->base[i].rule == f->rule &&
		    !strcmp(r->base[i].function, f->origin.function) &&
		    !strcmp(r->base[i].file, rel(r, f->origin.file)))
			return true;
	}
	return false;
}

/*
 * The finding of kind at origin o (NULL: none could be named, why says why), found or
 * added with the frames of stack (may be NULL) as its code flow.
 */
static struct report_finding *find_or_add(struct report *r, int kind, const struct attrib_frame *o,
					  const char *why, const struct attrib_stack *stack)
{
	struct report_finding *f, *grown;

	for (size_t i = 0; i < r->n; i++) {
		f = &r->f[i];
		if (f->rule != kind)
			continue;
		if (!o && !f->origin.function && !strcmp(f->why, why))
			return f;
		if (o && f->origin.function && f->origin.line == o->line &&
		    streq(f->origin.function, o->function) && streq(f->origin.file, o->file))
			return f;
	}
	if (r->n == REPORT_MAX_FINDINGS)
		return NULL;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;

		grown = realloc(r->f, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		r->f = grown;
		r->cap = cap;
	}
	f = &r->f[r->n];
	memset(f, 0, sizeof(*f));
	f->rule = kind;
	f->why = o ? "" : why;
	if (o) {
		f->origin.function = dup_or_null(o->function);
		f->origin.file = dup_or_null(o->file);
		f->origin.line = o->line;
		if (!f->origin.function || !f->origin.file) {
			loc_free(&f->origin);
			return NULL;
		}
	}
	for (size_t i = 0; stack && i < stack->nframes && f->nstack < REPORT_MAX_STACK; i++) {
		struct report_loc *l = &f->stack[f->nstack];

		l->function = dup_or_null(stack->frames[i].function);
		l->file = dup_or_null(stack->frames[i].file);
		l->line = stack->frames[i].line;
		if (!l->function || !l->file) {
			loc_free(l);
			break;
		}
		f->nstack++;
	}
	f->known = in_baseline(r, f);
	r->n++;
	return f;
}

static void add_test(struct report_finding *f, const char *test, enum test_unknown why)
{
	if (why != TEST_FOUND) {
		f->tests_unknown[why]++;
		return;
	}
	for (size_t i = 0; i < f->ntests; i++) {
		if (!strcmp(f->tests[i], test))
			return;
	}
	if (f->ntests == REPORT_MAX_TESTS || !(f->tests[f->ntests] = strdup(test))) {
		f->tests_more++;
		return;
	}
	f->ntests++;
}

/* One more occurrence of a finding (NULL: past the bound), with its test and detail. */
static void add_occurrence(struct report *r, struct report_finding *f, const char *detail,
			   const char *test, enum test_unknown why, bool running)
{
	if (!f) {
		r->t.findings_dropped++;
		return;
	}
	f->count++;
	if (!f->detail && detail)
		f->detail = strdup(detail);
	add_test(f, test, why);
	f->tests_running += running;
}

void report_frame(struct report *r, const struct frame_view *fv)
{
	const struct attrib_stack *s = fv->stack;
	const struct rules_verdict *v = fv->verdict;
	enum test_unknown why = fv->name_tests ? fv->test_why : TEST_UNATTRIBUTED;
	bool running = why == TEST_FOUND && !strcmp(fv->test_via, "running");
	/* The origin trace prints: the send's own, else through the creations it was linked to. */
	enum causal_via via;
	const struct attrib_frame *origin = causal_origin(s, fv->link, &via), *o;
	const char *no_origin = unattributed_name(s->why);

	r->t.frames++;
	if (s->origin < 0)
		r->t.unattributed[s->why < UNATTR__COUNT ? s->why : UNATTR_NONE]++;
	if (!v->nviolations)
		return;
	r->t.violating_frames++;
	r->t.test_unknown[why]++;
	r->t.test_running += running;
	for (size_t i = 0; i < v->nviolations; i++) {
		const struct violation *vi = &v->v[i];

		r->t.violations[vi->rule]++;
		/* unjudged has no origin by definition: it is shown at the best one known. */
		o = vi->rule == RULE_UNJUDGED ? vi->best : origin;
		add_occurrence(r, find_or_add(r, vi->rule, o, vi->reason ?: no_origin, s),
			       vi->detail, fv->test, why, running);
	}
}

void report_abrupt_close(struct report *r, const struct attrib_stack *closer, const char *detail,
			 const char *test, enum test_unknown test_why, bool running)
{
	const struct attrib_frame *o =
		closer && closer->origin >= 0 ? &closer->frames[closer->origin] : NULL;

	r->t.violations[RULE_ABNORMAL_CLOSE]++;
	r->t.abrupt_closes++;
	add_occurrence(r,
		       find_or_add(r, RULE_ABNORMAL_CLOSE, o,
				   closer ? unattributed_name(closer->why) : "not_walked", closer),
		       detail, test, test_why, running);
}

void report_queued(struct report *r, const struct attrib_stack *s, const struct attrib_frame *o,
		   const char *detail, const char *test, enum test_unknown test_why, bool running)
{
	r->t.violations[RULE_DELIVERY_FAILED]++;
	add_occurrence(r, find_or_add(r, RULE_DELIVERY_FAILED, o, unattributed_name(s->why), s),
		       detail, test, test_why, running);
}

void report_run(struct report *r, const struct run_report *rep, const char *detail,
		const char *test, enum test_unknown test_why, bool running)
{
	int kind = report_run_kind(rep->rule);
	/* Only the fields find_or_add reads: a run report keeps no stack. */
	struct attrib_frame o = {
		.function = (char *)rep->function,
		.file = (char *)rep->file,
		.line = rep->line,
	};

	if (kind < 0) {
		r->t.runs_unjudged[rep->reason]++;
		return;
	}
	r->t.violations[kind]++;
	add_occurrence(r, find_or_add(r, kind, rep->function ? &o : NULL, "unattributed", NULL),
		       detail, test, test_why, running);
}

const struct report_totals *report_totals(const struct report *r)
{
	return &r->t;
}

size_t report_nfindings(const struct report *r)
{
	return r->n;
}

const struct report_finding *report_finding(const struct report *r, size_t i)
{
	return i < r->n ? &r->f[i] : NULL;
}

size_t report_new_failures(const struct report *r, const bool fail_on[REPORT_KINDS])
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += fail_on[r->f[i].rule] && !r->f[i].known;
	/* Findings past the bound were not compared with the baseline: they count as new. */
	if (r->t.findings_dropped)
		n++;
	return n;
}

/* --- baseline ------------------------------------------------------------------------------ */

static int rule_from_name(const char *name)
{
	for (int i = 0; i < REPORT_KINDS; i++) {
		if (!strcmp(name, report_kind_name(i)))
			return i;
	}
	return -1;
}

int report_load_baseline(struct report *r, const char *path, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *arr, *e;
	const char *rule, *function, *file;
	struct baseline_entry *b;
	size_t i;
	int version = 0, k;

	root = json_load_file(path, 0, &jerr);
	if (!root) {
		snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
		return -EINVAL;
	}
	if (json_unpack(root, "{s:i, s:o}", "version", &version, "violations", &arr) ||
	    version != 1 || !json_is_array(arr)) {
		snprintf(err, errlen,
			 "%s: not a wsaudit baseline (version 1 with a violations array)", path);
		json_decref(root);
		return -EINVAL;
	}
	b = calloc(json_array_size(arr) + 1, sizeof(*b));
	if (!b) {
		json_decref(root);
		return -ENOMEM;
	}
	json_array_foreach(arr, i, e)
	{
		if (json_unpack(e, "{s:s, s:s, s:s}", "rule", &rule, "function", &function, "file",
				&file) ||
		    (k = rule_from_name(rule)) < 0) {
			snprintf(
				err, errlen,
				"%s: violations[%zu]: needs \"rule\" (a wsaudit rule), \"function\" "
				"and \"file\"",
				path, i);
			goto fail;
		}
		b[i].rule = k;
		b[i].function = strdup(function);
		b[i].file = strdup(file);
		if (!b[i].function || !b[i].file) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	r->base = b;
	r->nbase = json_array_size(arr);
	json_decref(root);
	for (i = 0; i < r->n; i++)
		r->f[i].known = in_baseline(r, &r->f[i]);
	return 0;
fail:
	for (size_t j = 0; j <= i && j < json_array_size(arr); j++) {
		free(b[j].function);
		free(b[j].file);
	}
	free(b);
	json_decref(root);
	return -EINVAL;
}

static int dump_file(json_t *doc, const char *path)
{
	int err = 0;

	if (!doc)
		return -ENOMEM;
	if (json_dump_file(doc, path, JSON_INDENT(2) | JSON_ENSURE_ASCII))
		err = -EIO;
	json_decref(doc);
	return err;
}

int report_write_baseline(const struct report *r, const char *path)
{
	json_t *arr = json_array(), *doc;

	for (size_t i = 0; arr && i < r->n; i++) {
		const struct report_finding *f = &r->f[i];
		bool dup = false;

		if (!f->origin.function)
			continue; /* nothing to name it by */
		/* One entry per (rule, function, file): lines move, the sender does not. */
		for (size_t j = 0; j < i && !dup; j++)
			dup = r->f[j].rule == f->rule && r->f[j].origin.function &&
			      !strcmp(r->f[j].origin.function, f->origin.function) &&
			      !strcmp(r->f[j].origin.file, f->origin.file);
		if (!dup)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "rule",
							     report_kind_name(f->rule), "function",
							     f->origin.function, "file",
							     rel(r, f->origin.file)));
	}
	doc = arr ? json_pack("{s:i, s:o}", "version", 1, "violations", arr) : NULL;
	return dump_file(doc, path);
}

/* --- SARIF 2.1.0 --------------------------------------------------------------------------- */

/* A path as a URI reference: unreserved characters and '/' as they are, the rest %XX. */
static char *uri_encode(const char *path, const char *prefix)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(prefix), len = strlen(path);
	char *out = malloc(n + 3 * len + 1), *p;

	if (!out)
		return NULL;
	memcpy(out, prefix, n);
	p = out + n;
	for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || strchr("-._~/", *c)) {
			*p++ = (char)*c;
		} else {
			*p++ = '%';
			*p++ = hex[*c >> 4];
			*p++ = hex[*c & 15];
		}
	}
	*p = '\0';
	return out;
}

/* Whether a location is a file under the source root: what code scanning can show. */
static bool in_root(const struct report *r, const struct report_loc *l)
{
	return l->file && l->file[0] == '/' && rel(r, l->file) != l->file;
}

/*
 * A physical location relative to the source root, or NULL for code outside it (libraries,
 * "<frozen ...>"): code-scanning services take only the repository's files, and refuse a
 * whole upload over one location they cannot place.  Such frames keep their logical
 * location and say their path in the message.
 */
static json_t *physical_json(const struct report *r, const struct report_loc *l)
{
	json_t *art;
	char *uri;

	if (!in_root(r, l))
		return NULL;
	uri = uri_encode(rel(r, l->file), "");
	art = json_pack("{s:s?, s:s}", "uri", uri, "uriBaseId", "SRCROOT");
	free(uri);
	if (l->line > 0)
		return json_pack("{s:o, s:{s:i}}", "artifactLocation", art, "region", "startLine",
				 l->line);
	return json_pack("{s:o}", "artifactLocation", art);
}

static json_t *location_json(const struct report *r, const struct report_loc *l)
{
	json_t *loc = json_object(), *phys = physical_json(r, l);

	if (!loc) {
		json_decref(phys);
		return NULL;
	}
	if (phys)
		json_object_set_new(loc, "physicalLocation", phys);
	if (l->function)
		json_object_set_new(loc, "logicalLocations",
				    json_pack("[{s:s, s:s}]", "fullyQualifiedName", l->function,
					      "kind", "function"));
	return loc;
}

static json_t *tests_json(const struct report_finding *f)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < f->ntests; i++)
		json_array_append_new(arr, json_string(f->tests[i]));
	return arr;
}

static json_t *tests_unknown_json(const struct report_finding *f)
{
	json_t *obj = json_object();

	for (int i = 1; obj && i < TEST__COUNT; i++) {
		if (f->tests_unknown[i])
			json_object_set_new(obj, test_unknown_name(i),
					    json_integer((json_int_t)f->tests_unknown[i]));
	}
	return obj;
}

static json_t *code_flow_json(const struct report *r, const struct report_finding *f)
{
	json_t *locs = json_array();

	/* A thread flow runs from the outermost call to the write: the stack reversed. */
	for (size_t i = f->nstack; locs && i-- > 0;) {
		const struct report_loc *l = &f->stack[i];
		json_t *loc = location_json(r, l);
		char text[2048];

		if (in_root(r, l))
			snprintf(text, sizeof(text), "%s", l->function);
		else
			snprintf(text, sizeof(text), "%s (%s:%d)", l->function, l->file, l->line);
		if (loc)
			json_object_set_new(loc, "message", json_pack("{s:s}", "text", text));
		json_array_append_new(locs, json_pack("{s:o, s:i}", "location", loc, "nestingLevel",
						      (int)(f->nstack - 1 - i)));
	}
	return json_pack("[{s:[{s:o}]}]", "threadFlows", "locations", locs);
}

static void finding_message(const struct report *r, const struct report_finding *f, char *buf,
			    size_t size)
{
	/* A run finding is located at its last event's sender; a frame's at its writer. */
	const char *what = f->rule >= RULE__COUNT ? "run(s) whose last event" : "frame(s)";
	int n;

	if (f->origin.function)
		n = snprintf(buf, size, "%s: %llu %s from %s (%s:%d)", report_kind_name(f->rule),
			     (unsigned long long)f->count, what, f->origin.function,
			     rel(r, f->origin.file), f->origin.line);
	else
		n = snprintf(buf, size, "%s: %llu %s from an unattributed writer (%s)",
			     report_kind_name(f->rule), (unsigned long long)f->count, what, f->why);
	if (n > 0 && (size_t)n < size && f->ntests)
		snprintf(buf + n, size - n, "; first in test %s", f->tests[0]);
}

/*
 * Where a finding is shown: its origin when that is in the repository, else the innermost
 * frame of its stack that is (an unattributed writer's, or an origin in an installed
 * package), with the origin as logical location.  NULL when no frame is in the repository.
 */
static const struct report_loc *shown_at(const struct report *r, const struct report_finding *f)
{
	if (f->origin.function && in_root(r, &f->origin))
		return &f->origin;
	for (size_t i = 0; i < f->nstack; i++) {
		if (in_root(r, &f->stack[i]))
			return &f->stack[i];
	}
	return NULL;
}

static json_t *result_location(const struct report *r, const struct report_finding *f)
{
	const struct report_loc *at = shown_at(r, f);
	json_t *loc = location_json(r, at);

	if (loc && at != &f->origin && f->origin.function)
		json_object_set_new(loc, "logicalLocations",
				    json_pack("[{s:s, s:s}]", "fullyQualifiedName",
					      f->origin.function, "kind", "function"));
	return loc;
}

static json_t *result_json(const struct report *r, const struct report_finding *f,
			   const bool fail_on[REPORT_KINDS])
{
	char msg[2048], fp[2048];
	json_t *res, *loc;

	finding_message(r, f, msg, sizeof(msg));
	res = json_pack("{s:s, s:i, s:s, s:{s:s}, s:{s:I, s:o, s:I, s:I, s:o}}", "ruleId",
			report_kind_name(f->rule), "ruleIndex", (int)f->rule, "level",
			fail_on[f->rule] ? "error" : "warning", "message", "text", msg,
			"properties", "count", (json_int_t)f->count, "tests", tests_json(f),
			"testsMore", (json_int_t)f->tests_more, "testsRunning",
			(json_int_t)f->tests_running, "testsUnknown", tests_unknown_json(f));
	if (!res)
		return NULL;
	loc = result_location(r, f);
	json_object_set_new(res, "locations", json_pack("[o]", loc));
	if (f->origin.function) {
		/* Stable across line moves, as the baseline: rule, function and file. */
		snprintf(fp, sizeof(fp), "%s:%s:%s", report_kind_name(f->rule), f->origin.function,
			 rel(r, f->origin.file));
		json_object_set_new(res, "partialFingerprints",
				    json_pack("{s:s}", "wsaudit/v1", fp));
	}
	if (f->detail)
		json_object_set_new(json_object_get(res, "properties"), "detail",
				    json_string(f->detail));
	if (f->nstack)
		json_object_set_new(res, "codeFlows", code_flow_json(r, f));
	if (r->base)
		json_object_set_new(res, "baselineState",
				    json_string(f->known ? "unchanged" : "new"));
	return res;
}

int report_write_sarif(const struct report *r, const char *path, const bool fail_on[REPORT_KINDS])
{
	json_t *rules = json_array(), *results = json_array(), *doc, *base = NULL;
	char *root_uri = NULL;
	json_int_t unshown = 0;

	for (int i = 0; rules && i < REPORT_KINDS; i++)
		json_array_append_new(
			rules, json_pack("{s:s, s:s, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}", "id",
					 report_kind_name(i), "name", rule_help[i].title,
					 "shortDescription", "text", rule_help[i].short_text,
					 "fullDescription", "text", rule_help[i].help, "help",
					 "text", rule_help[i].help, "defaultConfiguration", "level",
					 fail_on[i] ? "error" : "warning"));
	for (size_t i = 0; results && i < r->n; i++) {
		/* Nothing of it in the repository: said in the run's properties and the summary. */
		if (!shown_at(r, &r->f[i])) {
			unshown++;
			continue;
		}
		json_array_append_new(results, result_json(r, &r->f[i], fail_on));
	}
	if (r->root && r->root[0] == '/') {
		/* A base URI ends with '/'. */
		size_t n = strlen(r->root);
		char *withslash = malloc(n + 2);

		if (withslash) {
			snprintf(withslash, n + 2, "%s%s", r->root,
				 r->root[n - 1] == '/' ? "" : "/");
			root_uri = uri_encode(withslash, "file://");
			free(withslash);
		}
		base = json_pack("{s:{s:s?}}", "SRCROOT", "uri", root_uri);
		free(root_uri);
	}
	doc = json_pack("{s:s, s:s, s:[{s:{s:{s:s, s:s, s:o}}, s:o, s:o*, s:s, s:{s:I}}]}",
			"$schema", "https://json.schemastore.org/sarif-2.1.0.json", "version",
			"2.1.0", "runs", "tool", "driver", "name", "wsaudit", "version",
			WSAUDIT_VERSION, "rules", rules, "results", results, "originalUriBaseIds",
			base, "columnKind", "unicodeCodePoints", "properties",
			"findingsOutsideRepository", unshown);
	return dump_file(doc, path);
}

/* --- JUnit XML ----------------------------------------------------------------------------- */

/*
 * By hand: the document has three kinds of element and escaping is its only difficulty; no
 * XML library is among the build's dependencies for that.  Characters XML 1.0 does not allow
 * become '?'.
 */
static void xml_text(FILE *out, const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		switch (*c) {
		case '&':
			fputs("&amp;", out);
			break;
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		case '\'':
			fputs("&apos;", out);
			break;
		default:
			fputc(*c < 0x20 && *c != '\t' && *c != '\n' && *c != '\r' ? '?' : *c, out);
		}
	}
}

int report_write_junit(const struct report *r, const char *path, const bool fail_on[REPORT_KINDS])
{
	size_t tests = REPORT_KINDS + r->n, failures = 0;
	bool rule_failed[REPORT_KINDS] = {};
	char msg[2048], name[1536];
	FILE *out = fopen(path, "w");

	if (!out)
		return -errno;
	for (size_t i = 0; i < r->n; i++) {
		if (fail_on[r->f[i].rule] && !r->f[i].known) {
			rule_failed[r->f[i].rule] = true;
			failures++;
		}
	}
	for (int i = 0; i < REPORT_KINDS; i++)
		failures += rule_failed[i];
	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	fprintf(out, "<testsuites name=\"wsaudit\" tests=\"%zu\" failures=\"%zu\">\n", tests,
		failures);
	fprintf(out, "  <testsuite name=\"wsaudit\" tests=\"%zu\" failures=\"%zu\" errors=\"0\">\n",
		tests, failures);
	/* One case per rule: passes when no new violation of it fired. */
	for (int i = 0; i < REPORT_KINDS; i++) {
		fprintf(out, "    <testcase classname=\"wsaudit.%s\" name=\"%s\"",
			report_kind_name(i), report_kind_name(i));
		if (rule_failed[i])
			fprintf(out,
				">\n      <failure type=\"%s\" message=\"new %s violations\"/>\n"
				"    </testcase>\n",
				report_kind_name(i), report_kind_name(i));
		else
			fprintf(out, "/>\n");
	}
	/* One case per rule and origin: failed where it fired, unless the baseline knows it. */
	for (size_t i = 0; i < r->n; i++) {
		const struct report_finding *f = &r->f[i];

		if (f->origin.function)
			snprintf(name, sizeof(name), "%s (%s:%d)", f->origin.function,
				 rel(r, f->origin.file), f->origin.line);
		else
			snprintf(name, sizeof(name), "unattributed (%s)", f->why);
		fprintf(out, "    <testcase classname=\"wsaudit.%s\" name=\"",
			report_kind_name(f->rule));
		xml_text(out, name);
		fprintf(out, "\">\n");
		finding_message(r, f, msg, sizeof(msg));
		if (fail_on[f->rule] && !f->known) {
			fprintf(out, "      <failure type=\"%s\" message=\"",
				report_kind_name(f->rule));
			xml_text(out, msg);
			fprintf(out, "\">");
		} else {
			fprintf(out, "      <system-out>%s: ",
				f->known ? "known (baseline)" : "not failing (--fail-on)");
			xml_text(out, msg);
		}
		fprintf(out, "\ntests:");
		for (size_t j = 0; j < f->ntests; j++) {
			fputc(' ', out);
			xml_text(out, f->tests[j]);
		}
		for (int k = 1; k < TEST__COUNT; k++) {
			if (f->tests_unknown[k])
				fprintf(out, " (%llu frame(s) name no test: %s)",
					(unsigned long long)f->tests_unknown[k],
					test_unknown_name(k));
		}
		if (f->detail) {
			fprintf(out, "\nfirst: ");
			xml_text(out, f->detail);
		}
		fprintf(out, "\nstack (innermost first):\n");
		for (size_t j = 0; j < f->nstack; j++) {
			fprintf(out, "  ");
			xml_text(out, f->stack[j].function);
			fputc(' ', out);
			xml_text(out, rel(r, f->stack[j].file));
			fprintf(out, ":%d\n", f->stack[j].line);
		}
		fprintf(out, "%s\n    </testcase>\n",
			fail_on[f->rule] && !f->known ? "</failure>" : "</system-out>");
	}
	fprintf(out, "  </testsuite>\n</testsuites>\n");
	if (fclose(out))
		return -errno;
	return 0;
}

/* --- summary ------------------------------------------------------------------------------- */

/* Findings with no frame under the source root: left out of SARIF (said here). */
static size_t outside_repository(const struct report *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += !shown_at(r, &r->f[i]);
	return n;
}

static void summary_text(const struct report *r, FILE *out, const struct report_run *run)
{
	const struct report_totals *t = &r->t;

	fprintf(out, "wsaudit run: %llu frames on %llu WebSocket connections, %llu violating\n",
		(unsigned long long)t->frames, (unsigned long long)run->websocket_conns,
		(unsigned long long)t->violating_frames);
	if (!run->websocket_conns)
		fprintf(out, "wsaudit run: the command started no WebSocket connection: nothing "
			     "was audited\n");
	for (int i = 0; i < REPORT_KINDS; i++) {
		fprintf(out, "  %-18s %llu %s", report_kind_name(i),
			(unsigned long long)t->violations[i],
			i >= RULE__COUNT ? "run(s)" : "frame(s)");
		if (i == RULE_ABNORMAL_CLOSE && t->abrupt_closes)
			fprintf(out, " (%llu of them closes without a close frame)",
				(unsigned long long)t->abrupt_closes);
		fprintf(out, "%s\n", run->fail_on[i] ? "" : " (not failing)");
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct report_finding *f = &r->f[i];

		if (f->origin.function)
			fprintf(out, "  %s %s %s (%s:%d) x%llu", f->known ? "known" : "NEW  ",
				report_kind_name(f->rule), f->origin.function,
				rel(r, f->origin.file), f->origin.line,
				(unsigned long long)f->count);
		else
			fprintf(out, "  NEW   %s unattributed (%s) x%llu",
				report_kind_name(f->rule), f->why, (unsigned long long)f->count);
		for (size_t j = 0; j < f->ntests; j++)
			fprintf(out, "%s%s", j ? ", " : " tests: ", f->tests[j]);
		for (int k = 1; k < TEST__COUNT; k++) {
			if (f->tests_unknown[k])
				fprintf(out, " [%llu without a test: %s]",
					(unsigned long long)f->tests_unknown[k],
					test_unknown_name(k));
		}
		fputc('\n', out);
	}
	if (outside_repository(r))
		fprintf(out,
			"  %zu finding(s) with no frame under %s: not in SARIF (code scanning "
			"cannot place them)\n",
			outside_repository(r), r->root ? r->root : "the source root");
	if (t->findings_dropped)
		fprintf(out, "  %llu violation(s) past the %d distinct origins kept\n",
			(unsigned long long)t->findings_dropped, REPORT_MAX_FINDINGS);
	for (int i = 1; i < UNATTR__COUNT; i++) {
		if (t->unattributed[i])
			fprintf(out, "  unattributed frames: %llu %s\n",
				(unsigned long long)t->unattributed[i], unattributed_name(i));
	}
	if (run->unjudged)
		fprintf(out, "  data frames the bridge rule could not judge: %llu\n",
			(unsigned long long)run->unjudged);
	fprintf(out, "  runs completed: %llu\n", (unsigned long long)run->runs_completed);
	/* Frames or stacks that never reached wsaudit: what follows from them is unjudged. */
	for (int i = 0; run->drops && i < DROP_MAX; i++) {
		if (run->drops[i])
			fprintf(out, "  records lost: %llu %s\n", (unsigned long long)run->drops[i],
				capture_drop_name(i));
	}
	for (int i = 0; i < RUN_REASON__COUNT; i++) {
		if (t->runs_unjudged[i])
			fprintf(out, "  runs not judged: %llu %s\n",
				(unsigned long long)t->runs_unjudged[i], run_reason_name(i));
	}
	for (int i = 1; i < TEST__COUNT; i++) {
		if (t->test_unknown[i])
			fprintf(out, "  violating frames without a test: %llu %s\n",
				(unsigned long long)t->test_unknown[i], test_unknown_name(i));
	}
	fprintf(out, "wsaudit run: command exited %d; %zu new failing finding(s); exit %d\n",
		run->command_status, report_new_failures(r, run->fail_on), run->exit_code);
}

static json_t *counts_json(const uint64_t *v, int n, const char *(*name)(int), int from)
{
	json_t *obj = json_object();

	for (int i = from; obj && i < n; i++)
		json_object_set_new(obj, name(i), json_integer((json_int_t)v[i]));
	return obj;
}

static const char *rule_name_i(int i)
{
	return report_kind_name(i);
}

static const char *unattributed_name_i(int i)
{
	return unattributed_name(i);
}

static const char *test_unknown_name_i(int i)
{
	return test_unknown_name(i);
}

static const char *capture_drop_name_i(int i)
{
	return capture_drop_name(i);
}

static json_t *drops_json(const uint64_t *drops)
{
	static const uint64_t none[DROP_MAX];

	return counts_json(drops ? drops : none, DROP_MAX, capture_drop_name_i, 0);
}

static const char *run_reason_name_i(int i)
{
	return run_reason_name(i);
}

/* Runs not judged: the reasons of RUN_UNJUDGED only, each present (0 when none). */
static json_t *runs_unjudged_json(const struct report_totals *t)
{
	json_t *obj = json_object();

	for (int i = 0; obj && i < RUN_REASON__COUNT; i++) {
		if (run_reason_rule(i) == RUN_UNJUDGED)
			json_object_set_new(obj, run_reason_name_i(i),
					    json_integer((json_int_t)t->runs_unjudged[i]));
	}
	return obj;
}

void report_summary(const struct report *r, FILE *out, enum output_format format,
		    const struct report_run *run)
{
	const struct report_totals *t = &r->t;
	json_t *findings, *obj;
	char *s;

	if (format == OUTPUT_TEXT) {
		summary_text(r, out, run);
		return;
	}
	findings = json_array();
	for (size_t i = 0; findings && i < r->n; i++) {
		const struct report_finding *f = &r->f[i];

		json_array_append_new(
			findings,
			json_pack("{s:s, s:o, s:s?, s:I, s:o, s:I, s:o, s:s}", "rule",
				  report_kind_name(f->rule), "origin",
				  f->origin.function ? json_pack("{s:s, s:s, s:i}", "function",
								 f->origin.function, "file",
								 rel(r, f->origin.file), "line",
								 f->origin.line) :
						       json_null(),
				  "unattributed", f->origin.function ? NULL : f->why, "count",
				  (json_int_t)f->count, "tests", tests_json(f), "tests_running",
				  (json_int_t)f->tests_running, "test_unknown",
				  tests_unknown_json(f), "baseline", f->known ? "known" : "new"));
	}
	obj = json_pack(
		"{s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:i, s:i}", "type",
		"run_summary", "frames", (json_int_t)t->frames, "websocket_connections",
		(json_int_t)run->websocket_conns, "violating_frames",
		(json_int_t)t->violating_frames, "violations",
		counts_json(t->violations, REPORT_KINDS, rule_name_i, 0), "findings", findings,
		"unattributed", counts_json(t->unattributed, UNATTR__COUNT, unattributed_name_i, 1),
		"test_unknown", counts_json(t->test_unknown, TEST__COUNT, test_unknown_name_i, 1),
		"test_running", (json_int_t)t->test_running, "unjudged", (json_int_t)run->unjudged,
		"findings_dropped", (json_int_t)t->findings_dropped, "new_failures",
		(json_int_t)report_new_failures(r, run->fail_on), "command_exit",
		run->command_status, "exit", run->exit_code);
	if (obj) {
		json_object_set_new(obj, "findings_outside_repository",
				    json_integer((json_int_t)outside_repository(r)));
		json_object_set_new(obj, "abrupt_closes",
				    json_integer((json_int_t)t->abrupt_closes));
		json_object_set_new(obj, "records_lost", drops_json(run->drops));
		json_object_set_new(obj, "runs",
				    json_pack("{s:I, s:o}", "completed",
					      (json_int_t)run->runs_completed, "not_judged",
					      runs_unjudged_json(t)));
	}
	if (obj && !run->websocket_conns)
		json_object_set_new(obj, "note",
				    json_string("the command started no WebSocket "
						"connection: nothing was audited"));
	s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	/* Its version first, like every record of output.c. */
	if (s && s[0] == '{')
		fprintf(out, "{\"v\":%d,%s\n", OUTPUT_RECORD_VERSION, s + 1);
	free(s);
	json_decref(obj);
}

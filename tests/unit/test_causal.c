// SPDX-License-Identifier: GPL-2.0
/* Linking a send to the stacks that created its work (user/causal.c), over hand-made stacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "causal.h"

static const char TASKS[] = "/usr/lib/python3.11/asyncio/tasks.py";
static const char BASE[] = "/usr/lib/python3.11/asyncio/base_events.py";
static const char EVENTS[] = "/usr/lib/python3.11/asyncio/events.py";
static const char SELECTOR[] = "/usr/lib/python3.11/asyncio/selector_events.py";
static const char THREADS[] = "/usr/lib/python3.11/asyncio/threads.py";
static const char LIB[] = "/usr/lib/python3/dist-packages/websockets/legacy/protocol.py";
static const char APP[] = "/srv/app/chat.py";

struct fr {
	const char *function, *file;
	int line;
};

/* A stack as attrib_resolve would leave it, judged by attrib_pick_origin. */
static struct attrib_stack *mk(const struct fr *f, size_t n, uint64_t ctx, uint64_t ts)
{
	struct attrib_stack *s = calloc(1, sizeof(*s) + n * sizeof(s->frames[0]));

	assert_non_null(s);
	s->refs = 1;
	for (size_t i = 0; i < n; i++) {
		s->frames[i].function = strdup(f[i].function);
		s->frames[i].file = strdup(f[i].file);
		s->frames[i].line = f[i].line;
		s->frames[i].transport = strcmp(f[i].file, APP) != 0;
	}
	s->nframes = n;
	s->py_context = ctx;
	s->ts_ns = ts;
	s->origin = attrib_pick_origin(s->frames, n, &s->why);
	return s;
}

#define MK(arr, ctx, ts) mk(arr, sizeof(arr) / sizeof(arr[0]), ctx, ts)

static const struct fr create_task[] = {
	{ "BaseEventLoop.create_task", BASE, 436 },
	{ "create_task", TASKS, 374 },
	{ "Chat.on_message", APP, 42 },
	{ "Handle._run", EVENTS, 80 },
};

/* The send of a task whose coroutine is library code: nothing of the app on its stack. */
static const struct fr detached_send[] = {
	{ "WebSocketCommonProtocol.write_frame", LIB, 1 },
	{ "WebSocketCommonProtocol.send", LIB, 2 },
	{ "Handle._run", EVENTS, 80 },
};

static void test_classify(void **state)
{
	static const struct fr cb[] = { { "Handle.__init__", EVENTS, 33 },
					{ "BaseEventLoop._call_soon", BASE, 1 },
					{ "BaseEventLoop.call_soon", BASE, 2 },
					{ "Chat.on_message", APP, 3 } };
	static const struct fr th[] = { { "to_thread", THREADS, 25 },
					{ "Chat.on_message", APP, 3 } };
	static const struct fr app_first[] = { { "Chat.on_message", APP, 3 },
					       { "create_task", TASKS, 1 } };
	struct attrib_stack *s;

	s = MK(create_task, 0, 1);
	assert_int_equal(causal_classify(s->frames, s->nframes), VIA_TASK);
	attrib_stack_put(s);
	s = MK(cb, 0, 1);
	assert_int_equal(causal_classify(s->frames, s->nframes), VIA_CALLBACK);
	attrib_stack_put(s);
	s = MK(th, 0, 1);
	assert_int_equal(causal_classify(s->frames, s->nframes), VIA_THREAD);
	attrib_stack_put(s);
	/* uvloop's compiled hand-overs leave no asyncio frame: a task unless told otherwise. */
	s = MK(app_first, 0, 1);
	assert_int_equal(causal_classify(s->frames, s->nframes), VIA_TASK);
	attrib_stack_put(s);
	assert_string_equal(causal_via_name(VIA_CALLBACK), "callback");
}

/* Copies no send runs in: asyncio.sleep's timer, under uvloop and under asyncio's own loop. */
static void test_inert_creator(void **state)
{
	static const struct fr uv[] = { { "sleep", TASKS, 639 }, { "Agent.run", APP, 3 } };
	static const struct fr loop[] = { { "Handle.__init__", EVENTS, 33 },
					  { "TimerHandle.__init__", EVENTS, 110 },
					  { "BaseEventLoop.call_at", BASE, 1 },
					  { "BaseEventLoop.call_later", BASE, 2 },
					  { "sleep", TASKS, 639 },
					  { "Agent.run", APP, 3 } };
	/* An app function called sleep, or one inside sleep that is not asyncio's: recorded. */
	static const struct fr app_sleep[] = { { "Handle.__init__", EVENTS, 33 },
					       { "sleep", APP, 3 } };
	static const struct fr other_loop[] = { { "MyLoop.call_later", LIB, 1 },
						{ "sleep", TASKS, 639 } };
	struct attrib_stack *s;

	s = MK(uv, 0, 1);
	assert_int_equal(causal_inert_creator(s->frames, s->nframes), 0);
	attrib_stack_put(s);
	s = MK(loop, 0, 1);
	assert_int_equal(causal_inert_creator(s->frames, s->nframes), 4);
	attrib_stack_put(s);
	s = MK(app_sleep, 0, 1);
	assert_int_equal(causal_inert_creator(s->frames, s->nframes), -1);
	attrib_stack_put(s);
	s = MK(other_loop, 0, 1);
	assert_int_equal(causal_inert_creator(s->frames, s->nframes), -1);
	attrib_stack_put(s);
	s = MK(create_task, 0, 1);
	assert_int_equal(causal_inert_creator(s->frames, s->nframes), -1);
	attrib_stack_put(s);
}

static void test_task_send_named_by_its_creator(void **state)
{
	struct causal *c = causal_new(NULL);
	struct attrib_stack *send = MK(detached_send, 0xa000, 200);
	const struct attrib_frame *o;
	struct causal_link l;
	enum causal_via via;

	assert_int_equal(send->why, UNATTR_DETACHED_TASK);
	assert_int_equal(causal_put(c, 7, 0xa000, 0, 100, MK(create_task, 0, 100)), 0);
	/* Another process's context at the same address is not this one's. */
	causal_link(c, 8, send, &l);
	assert_int_equal(l.n, 0);
	assert_null(causal_origin(send, &l, &via));
	causal_link(c, 7, send, &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.origin_level, 0);
	o = causal_origin(send, &l, &via);
	assert_non_null(o);
	assert_string_equal(o->function, "Chat.on_message");
	assert_int_equal(o->line, 42);
	assert_int_equal(via, VIA_TASK);
	assert_int_equal(causal_stats(c)->linked, 1);
	attrib_stack_put(send);
	causal_free(c);
}

static void test_chain_through_library_creations(void **state)
{
	/* A task created by library code (wait_for), itself in a task the handler created. */
	static const struct fr inner[] = { { "BaseEventLoop.create_task", BASE, 436 },
					   { "ensure_future", TASKS, 1 },
					   { "wait_for", TASKS, 2 } };
	struct causal *c = causal_new(NULL);
	struct attrib_stack *send = MK(detached_send, 0xb000, 300);
	const struct attrib_frame *o;
	struct causal_link l;
	enum causal_via via;

	causal_put(c, 7, 0xa000, 0x9000, 100, MK(create_task, 0x9000, 100));
	causal_put(c, 7, 0xb000, 0xa000, 200, MK(inner, 0xa000, 200));
	causal_link(c, 7, send, &l);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.origin_level, 1);
	o = causal_origin(send, &l, &via);
	assert_string_equal(o->function, "Chat.on_message");
	assert_int_equal(via, VIA_TASK);
	attrib_stack_put(send);
	causal_free(c);
}

static void test_reused_address_is_not_a_parent(void **state)
{
	static const struct fr lib_only[] = { { "BaseEventLoop.create_task", BASE, 436 },
					      { "Server._accept", LIB, 9 } };
	struct causal *c = causal_new(NULL);
	struct attrib_stack *send = MK(detached_send, 0xb000, 500);
	struct causal_link l;
	enum causal_via via;

	/* B's parent address was taken, after B was made, by a context of another creator. */
	causal_put(c, 7, 0xb000, 0xa000, 200, MK(lib_only, 0xa000, 200));
	causal_put(c, 7, 0xa000, 0, 300, MK(create_task, 0, 300));
	causal_link(c, 7, send, &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.origin_level, -1);
	assert_null(causal_origin(send, &l, &via));
	/* Nor is a context recorded after the send: its address was reused since. */
	attrib_stack_put(send);
	send = MK(detached_send, 0xa000, 250);
	causal_link(c, 7, send, &l);
	assert_int_equal(l.n, 0);
	assert_int_equal(causal_stats(c)->no_link, 2);
	/* Two contexts each other's parent (reused addresses): each chain ends, never loops. */
	causal_put(c, 7, 0xb000, 0xa000, 400, MK(lib_only, 0xa000, 400));
	causal_put(c, 7, 0xa000, 0xb000, 401, MK(lib_only, 0xb000, 401));
	attrib_stack_put(send);
	send = MK(detached_send, 0xa000, 600);
	causal_link(c, 7, send, &l);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.origin_level, 2);
	attrib_stack_put(send);
	causal_free(c);
}

/*
 * run_coroutine_threadsafe: a handle's context, made by the thread that produced, is gone
 * (its address taken by another copy) by the time the task its callback created sends.
 */
static void test_parent_kept_after_its_context_died(void **state)
{
	static const struct fr threadsafe[] = { { "Handle.__init__", EVENTS, 33 },
						{ "BaseEventLoop.call_soon_threadsafe", BASE, 1 },
						{ "run_coroutine_threadsafe", TASKS, 2 },
						{ "Agent.work", APP, 12 } };
	static const struct fr in_callback[] = { { "BaseEventLoop.create_task", BASE, 436 },
						 { "ensure_future", TASKS, 1 },
						 { "callback", TASKS, 3 },
						 { "Handle._run", EVENTS, 80 } };
	static const struct fr other[] = { { "Handle.__init__", EVENTS, 33 },
					   { "Server._accept", LIB, 9 } };
	struct causal *c = causal_new(NULL);
	struct attrib_stack *send = MK(detached_send, 0xb000, 500);
	const struct attrib_frame *o;
	struct causal_link l;
	enum causal_via via;

	causal_put(c, 7, 0xa000, 0, 100, MK(threadsafe, 0, 100));
	causal_put(c, 7, 0xb000, 0xa000, 200, MK(in_callback, 0xa000, 200));
	causal_put(c, 7, 0xa000, 0, 300, MK(other, 0, 300));
	causal_link(c, 7, send, &l);
	assert_int_equal(l.n, 2);
	o = causal_origin(send, &l, &via);
	assert_non_null(o);
	assert_string_equal(o->function, "Agent.work");
	assert_int_equal(via, VIA_CALLBACK);
	attrib_stack_put(send);
	causal_free(c);
}

static void test_deferred_write_not_linked(void **state)
{
	static const struct fr flush[] = {
		{ "_SelectorSocketTransport._write_ready",
		  "/usr/lib/python3.11/asyncio/selector_events.py", 1 },
		{ "Handle._run", EVENTS, 80 },
	};
	struct causal *c = causal_new(NULL);
	struct attrib_stack *send = MK(flush, 0xa000, 200);
	struct causal_link l;

	assert_int_equal(send->why, UNATTR_DEFERRED_WRITE);
	causal_put(c, 7, 0xa000, 0, 100, MK(create_task, 0, 100));
	causal_link(c, 7, send, &l);
	assert_int_equal(l.n, 0);
	attrib_stack_put(send);
	causal_free(c);
}

/* A writer callback registered by a buffered write: its registrar is no producer of the flush. */
static void test_writer_registration_not_linked(void **state)
{
	static const struct fr registered[] = { { "Handle.__init__", EVENTS, 33 },
						{ "BaseSelectorEventLoop._add_writer", SELECTOR,
						  1 },
						{ "BaseSelectorEventLoop.add_writer", SELECTOR, 2 },
						{ "FileDescriptor.startWriting", LIB, 3 },
						{ "FileDescriptor.write", LIB, 4 },
						{ "Bridge.notify", APP, 5 } };
	static const struct fr sendall[] = { { "Handle.__init__", EVENTS, 33 },
					     { "BaseSelectorEventLoop._add_writer", SELECTOR, 1 },
					     { "BaseSelectorEventLoop.sock_sendall", SELECTOR, 2 },
					     { "Chat.on_message", APP, 3 } };
	static const struct fr own[] = { { "Session.flush", APP, 9 },
					 { "Handle._run", EVENTS, 80 } };
	struct causal *c = causal_new(NULL);
	struct attrib_stack *send = MK(detached_send, 0xb000, 300);
	struct attrib_stack *mine = MK(own, 0xb000, 300);
	struct attrib_stack *rest = MK(detached_send, 0xc000, 300);
	const struct attrib_frame *o;
	struct causal_link l;
	enum causal_via via;

	causal_put(c, 7, 0xa000, 0, 100, MK(create_task, 0, 100));
	causal_put(c, 7, 0xb000, 0xa000, 200, MK(registered, 0xa000, 200));
	causal_link(c, 7, send, &l);
	/* Neither the registrar nor the task it ran in names or judges the frame. */
	assert_int_equal(l.n, 0);
	assert_null(causal_origin(send, &l, &via));
	assert_int_equal(send->why, UNATTR_DEFERRED_WRITE);
	/* Said on the stack: the next frame of the same write is not linked either. */
	causal_link(c, 7, send, &l);
	assert_int_equal(l.n, 0);
	/* A send naming its own origin keeps it; the registration is not judged. */
	causal_link(c, 7, mine, &l);
	assert_int_equal(l.n, 0);
	assert_string_equal(causal_origin(mine, &l, &via)->function, "Session.flush");
	/* sock_sendall's writer sends the rest of its caller's own bytes: linked. */
	causal_put(c, 7, 0xc000, 0, 200, MK(sendall, 0, 200));
	causal_link(c, 7, rest, &l);
	assert_int_equal(l.n, 1);
	o = causal_origin(rest, &l, &via);
	assert_non_null(o);
	assert_string_equal(o->function, "Chat.on_message");
	assert_int_equal(via, VIA_CALLBACK);
	attrib_stack_put(send);
	attrib_stack_put(mine);
	attrib_stack_put(rest);
	causal_free(c);
}

static void test_own_origin_kept_creators_given(void **state)
{
	static const struct fr own[] = { { "WebSocketCommonProtocol.send", LIB, 2 },
					 { "Manager.send_to_user", APP, 7 },
					 { "Handle._run", EVENTS, 80 } };
	struct causal *c = causal_new(NULL);
	struct attrib_stack *send = MK(own, 0xa000, 200);
	const struct attrib_frame *o;
	struct causal_link l;
	enum causal_via via;

	causal_put(c, 7, 0xa000, 0, 100, MK(create_task, 0, 100));
	causal_link(c, 7, send, &l);
	/* The creators are judged by the bridge rule; the origin is the send's own. */
	assert_int_equal(l.n, 1);
	o = causal_origin(send, &l, &via);
	assert_string_equal(o->function, "Manager.send_to_user");
	assert_int_equal(via, VIA_NONE);
	attrib_stack_put(send);
	causal_free(c);
}

/*
 * A send read after its task ended and a new copy took the context's address (uvloop flushes
 * a task's write once the task is done): its walk came before that copy, so its creator is
 * the one recorded before it.
 */
static void test_send_read_after_address_reused(void **state)
{
	static const struct fr later[] = { { "BaseEventLoop.create_task", BASE, 436 },
					   { "create_task", TASKS, 374 },
					   { "Other.later", APP, 77 } };
	struct causal *c = causal_new(NULL);
	struct attrib_stack *early = MK(detached_send, 0xa000, 200);
	struct attrib_stack *after = MK(detached_send, 0xa000, 400);
	struct attrib_stack *before = MK(detached_send, 0xa000, 50);
	enum causal_via via;
	struct causal_link l;

	causal_put(c, 7, 0xa000, 0, 100, MK(create_task, 0, 100));
	causal_put(c, 7, 0xa000, 0, 300, MK(later, 0, 300));
	causal_link(c, 7, early, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(causal_origin(early, &l, &via)->function, "Chat.on_message");
	causal_link(c, 7, after, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(causal_origin(after, &l, &via)->function, "Other.later");
	/* Walked before either: neither is its creator. */
	causal_link(c, 7, before, &l);
	assert_int_equal(l.n, 0);
	attrib_stack_put(early);
	attrib_stack_put(after);
	attrib_stack_put(before);
	causal_free(c);
}

/*
 * A send whose code objects could not all be read (its process exited while the collector
 * was behind a flood): what is left names no application function, and the one missing may
 * be its producer.  As attrib_resolve leaves it: partial, symbol_read_failed.
 */
static struct attrib_stack *names_lost(const struct fr *f, size_t n, uint64_t ctx, uint64_t ts)
{
	struct attrib_stack *s = mk(f, n, ctx, ts);

	s->partial = true;
	s->why = UNATTR_SYMBOL_READ_FAILED;
	return s;
}

/*
 * Every frame of a stand-in server was linked through a task to the coroutine that started
 * the server (serve, asyncio.gather): the handler task's sends had lost their names, and the
 * chain of contexts (handler task, the server's, serve's) led to the one creation named.
 */
static void test_send_with_lost_names_not_linked(void **state)
{
	static const struct fr serve[] = { { "create_task", TASKS, 374 },
					   { "gather", TASKS, 2 },
					   { "serve", APP, 42 } };
	static const struct fr accept[] = { { "BaseEventLoop.create_task", BASE, 436 },
					    { "connection_made", LIB, 3 } };
	struct causal *c = causal_new(NULL);
	struct attrib_stack *unread = names_lost(NULL, 0, 0xb000, 300);
	struct attrib_stack *library = names_lost(detached_send, 3, 0xb000, 300);
	struct attrib_stack *whole = MK(detached_send, 0xb000, 300);
	enum causal_via via;
	struct causal_link l;

	causal_put(c, 7, 0xa000, 0, 100, MK(serve, 0, 100));
	causal_put(c, 7, 0xb000, 0xa000, 200, MK(accept, 0xa000, 200));
	causal_link(c, 7, unread, &l);
	assert_int_equal(l.n, 0);
	assert_null(causal_origin(unread, &l, &via));
	assert_int_equal(unread->why, UNATTR_SYMBOL_READ_FAILED);
	causal_link(c, 7, library, &l);
	assert_int_equal(l.n, 0);
	assert_null(causal_origin(library, &l, &via));
	assert_int_equal(library->why, UNATTR_SYMBOL_READ_FAILED);
	/* Not a send without a context: a send whose producer could not be named. */
	assert_int_equal(causal_stats(c)->no_context, 0);
	assert_int_equal(causal_stats(c)->linked, 0);
	/* Read whole, the same send is the library's and links to serve, as it should. */
	causal_link(c, 7, whole, &l);
	assert_int_equal(l.n, 2);
	assert_string_equal(causal_origin(whole, &l, &via)->function, "serve");
	attrib_stack_put(unread);
	attrib_stack_put(library);
	attrib_stack_put(whole);
	causal_free(c);
}

/*
 * A creator whose names were lost may be the producer: the contexts it was made in name
 * someone further away.  The send stays unjudged, with the creator's reason.
 */
static void test_creator_with_lost_names_ends_the_chain(void **state)
{
	struct causal *c = causal_new(NULL);
	struct attrib_stack *send = MK(detached_send, 0xb000, 300);
	enum causal_via via;
	struct causal_link l;

	assert_int_equal(send->why, UNATTR_DETACHED_TASK);
	causal_put(c, 7, 0xa000, 0, 100, MK(create_task, 0, 100));
	causal_put(c, 7, 0xb000, 0xa000, 200, names_lost(NULL, 0, 0xa000, 200));
	causal_link(c, 7, send, &l);
	assert_int_equal(l.origin_level, -1);
	assert_null(causal_origin(send, &l, &via));
	assert_int_equal(send->why, UNATTR_SYMBOL_READ_FAILED);
	assert_int_equal(causal_stats(c)->linked, 0);
	attrib_stack_put(send);
	causal_free(c);
}

static void test_replaced_and_forgotten(void **state)
{
	struct causal *c = causal_new(NULL);

	causal_put(c, 7, 0xa000, 0, 100, MK(create_task, 0, 100));
	causal_put(c, 7, 0xa000, 0, 200, MK(create_task, 0, 200));
	causal_put(c, 9, 0xa000, 0, 200, MK(create_task, 0, 200));
	assert_int_equal(causal_stats(c)->replaced, 1);
	assert_int_equal(causal_stats(c)->entries, 2);
	causal_forget_process(c, 7);
	assert_int_equal(causal_stats(c)->entries, 1);
	causal_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_inert_creator),
		cmocka_unit_test(test_task_send_named_by_its_creator),
		cmocka_unit_test(test_chain_through_library_creations),
		cmocka_unit_test(test_reused_address_is_not_a_parent),
		cmocka_unit_test(test_parent_kept_after_its_context_died),
		cmocka_unit_test(test_deferred_write_not_linked),
		cmocka_unit_test(test_writer_registration_not_linked),
		cmocka_unit_test(test_own_origin_kept_creators_given),
		cmocka_unit_test(test_send_read_after_address_reused),
		cmocka_unit_test(test_send_with_lost_names_not_linked),
		cmocka_unit_test(test_creator_with_lost_names_ends_the_chain),
		cmocka_unit_test(test_replaced_and_forgotten),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

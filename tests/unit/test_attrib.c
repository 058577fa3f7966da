// SPDX-License-Identifier: GPL-2.0
/* Choosing the originating function of a stack, and the reasons when there is none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "attrib.h"

#define F(fn_, file_, transport_)                                              \
	{                                                                      \
		.function = (char *)(fn_), .file = (char *)(file_), .line = 1, \
		.transport = (transport_)                                      \
	}

static const char ASYNCIO[] = "/usr/lib/python3.11/asyncio/base_events.py";
static const char EVENTS[] = "/usr/lib/python3.11/asyncio/events.py";
static const char SELECTOR[] = "/usr/lib/python3.11/asyncio/selector_events.py";
#define TWISTED "/usr/lib/python3/dist-packages/twisted/internet/"
static const char LIB[] = "/usr/lib/python3/dist-packages/websockets/legacy/protocol.py";

static void test_innermost_application_frame(void **state)
{
	struct attrib_frame st[] = {
		F("_SelectorSocketTransport.write", SELECTOR, true),
		F("WebSocketCommonProtocol.send", LIB, true),
		F("AgentBridge.notify", "/srv/app/bridge.py", false),
		F("Agent.run", "/srv/app/agent.py", false),
		F("Handle._run", EVENTS, true),
		F("<module>", "/srv/app/main.py", false),
	};
	enum unattributed why;

	assert_int_equal(attrib_pick_origin(st, 6, &why), 2);
	assert_int_equal(why, UNATTR_NONE);
}

static void test_loop_flush_is_deferred(void **state)
{
	struct attrib_frame selector[] = {
		F("_SelectorSocketTransport._write_ready", SELECTOR, true),
		F("Handle._run", EVENTS, true),
		F("<module>", "/srv/app/main.py", false),
	};
	struct attrib_frame uvloop[] = {
		F("Runner.run", "/usr/lib/python3.11/asyncio/runners.py", true),
		F("run", "/usr/lib/python3.11/asyncio/runners.py", true),
		F("<module>", "/srv/app/main.py", false),
	};
	/* Twisted sends only from the reactor's doWrite, on any reactor. */
	struct attrib_frame twisted[] = {
		F("Connection.writeSomeData", TWISTED "tcp.py", true),
		F("FileDescriptor.doWrite", TWISTED "abstract.py", true),
		F("AsyncioSelectorReactor._readOrWrite", TWISTED "asyncioreactor.py", true),
		F("Handle._run", EVENTS, true),
		F("<module>", "/srv/app/main.py", false),
	};
	/* A function of the application named doWrite is not the reactor's. */
	struct attrib_frame own[] = {
		F("Session.doWrite", "/srv/app/session.py", false),
		F("Handle._run", EVENTS, true),
	};
	enum unattributed why;

	assert_int_equal(attrib_pick_origin(selector, 3, &why), -1);
	assert_int_equal(why, UNATTR_DEFERRED_WRITE);
	assert_int_equal(attrib_pick_origin(uvloop, 3, &why), -1);
	assert_int_equal(why, UNATTR_DEFERRED_WRITE);
	assert_int_equal(attrib_pick_origin(twisted, 5, &why), -1);
	assert_int_equal(why, UNATTR_DEFERRED_WRITE);
	assert_int_equal(attrib_pick_origin(own, 2, &why), 0);
	assert_int_equal(why, UNATTR_NONE);
}

static void test_task_without_creator_is_detached(void **state)
{
	struct attrib_frame st[] = {
		F("WebSocketCommonProtocol.write_close_frame", LIB, true),
		F("BaseEventLoop._run_once", ASYNCIO, true),
		F("<module>", "/srv/app/main.py", false),
	};
	enum unattributed why;

	assert_int_equal(attrib_pick_origin(st, 3, &why), -1);
	assert_int_equal(why, UNATTR_DETACHED_TASK);
	assert_string_equal(unattributed_name(why), "detached_task");
}

static void test_no_frames_and_transport_only(void **state)
{
	struct attrib_frame st[] = {
		F("WebSocketCommonProtocol.send", LIB, true),
	};
	enum unattributed why;

	assert_int_equal(attrib_pick_origin(st, 0, &why), -1);
	assert_int_equal(why, UNATTR_NO_PYTHON_FRAMES);
	assert_int_equal(attrib_pick_origin(st, 1, &why), -1);
	assert_int_equal(why, UNATTR_NO_APPLICATION_FRAMES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_innermost_application_frame),
		cmocka_unit_test(test_loop_flush_is_deferred),
		cmocka_unit_test(test_task_without_creator_is_detached),
		cmocka_unit_test(test_no_frames_and_transport_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

# SPDX-License-Identifier: GPL-2.0
"""StartAgentHandler (services/websocket/message_handler.py): one client request, one run.

PLANTED BYPASS "message_handler": _send_agent_completion calls the manager's send_to_user
with {"type":"agent_completed","payload":response}, as the reference's handler does. It is
the last frame of every run; the client driver waits for it.

Delivery faults (config.fault_of, STANDIN_FAULTS=1): a run whose settings name one takes
the path of that fault once agent_started is out (_run_with_fault); the run completeness
faults change the run's events instead (_run_incomplete)."""
import hashlib

import truth
from netra_backend.app import config
from netra_backend.app.agents.progress_stream import ProgressStreamer
from netra_backend.app.agents.supervisor.agent_registry import get_agent_registry
from netra_backend.app.agents.supervisor.workflow_execution import SupervisorWorkflowExecutor
from netra_backend.app.core import thread_run_registry
from netra_backend.app.services.thread_service import ThreadService
from netra_backend.app.websocket_core.unified_manager import get_websocket_manager

TOOLS = ("clickhouse_query", "cost_analyzer", "latency_profiler", "corpus_search")


def settings_from(payload):
    """Bounded run settings: the client's if given, else derived from the request text."""
    text = str(payload.get("user_request") or payload.get("text") or "")
    given = payload.get("settings") if isinstance(payload.get("settings"), dict) else {}
    h = hashlib.sha256(text.encode()).digest()
    tools = given.get("tools")
    if not isinstance(tools, list) or not all(t in TOOLS for t in tools):
        tools = [TOOLS[h[0] % len(TOOLS)], TOOLS[h[1] % len(TOOLS)]][: 1 + h[2] % 2]

    def clamp(name, default, lo, hi):
        v = given.get(name, default)
        return min(max(int(v), lo), hi) if isinstance(v, (int, float)) else default

    return {"query": text[:200], "tools": tools[:4],
            "thinking_steps": clamp("thinking_steps", 1 + h[3] % 2, 1, 3),
            "think_ms": clamp("think_ms", 50 + h[4] % 100, 0, 2000),
            "tool_ms": clamp("tool_ms", 50 + h[5] % 100, 0, 2000)}


class StartAgentHandler:
    def __init__(self):
        self.thread_service = ThreadService()

    async def handle(self, connection, user_context, payload):
        thread_id = payload.get("thread_id") or user_context.thread_id
        if not isinstance(thread_id, str) or \
                thread_run_registry.user_of_thread(thread_id) not in (None, user_context.user_id):
            thread_id = user_context.thread_id
        if thread_id != user_context.thread_id:
            # A thread of this user's choosing: bind it to this connection.
            thread_run_registry.register_thread(thread_id, user_context.user_id)
            get_websocket_manager(user_context).bind_thread(thread_id, connection.connection_id)
            user_context = user_context.__class__(user_context.user_id, thread_id, user_context.run_id, user_context.request_id, user_context.websocket_client_id)
        run_id = thread_run_registry.new_run_id(thread_id)
        thread_run_registry.register(run_id, thread_id, user_context.user_id)
        context = user_context.for_run(run_id)
        settings = settings_from(payload)
        fault = config.fault_of(payload.get("settings"))
        if fault in ("no_completed", "out_of_order", "missing_event"):
            await self._run_incomplete(context, settings, fault)
            return
        await self.thread_service._send_agent_started_event(context, "supervisor")
        if fault:
            await self._run_with_fault(connection, context, fault)
            return
        executor = SupervisorWorkflowExecutor(get_agent_registry(), get_websocket_manager(context))
        result = await executor.execute_workflow(context, settings)
        await self._send_agent_completion(context, {"run_id": run_id, "thread_id": thread_id, "status": "completed", "result": result})

    async def _run_with_fault(self, connection, context, fault):
        if fault == "epipe":
            # The client leaves after agent_started; the streamer does not notice.
            await ProgressStreamer(connection.websocket).stream_steps(context, 5, 0.2)
        elif fault == "after_close":
            await ProgressStreamer(connection.websocket).finish_after_close(
                connection.websocket, context)
        elif fault == "raise":
            # Reaches the route, which closes the connection with 1011.
            raise RuntimeError("tool %s crashed" % TOOLS[0])

    async def _run_incomplete(self, context, settings, fault):
        executor = SupervisorWorkflowExecutor(get_agent_registry(), get_websocket_manager(context))
        response = {"run_id": context.run_id, "thread_id": context.thread_id, "status": "completed"}
        if fault == "out_of_order":
            # The completion overtakes the start: the user's client closes the run before
            # it began.
            await self._send_agent_completion(context, dict(response, result={}))
            await self.thread_service._send_agent_started_event(context, "supervisor")
            await executor.execute_workflow(context, settings)
            return
        await self.thread_service._send_agent_started_event(context, "supervisor")
        if fault == "missing_event":
            # The tools are skipped: the run ends without tool_executing and tool_completed.
            result = await executor.execute_workflow(context, dict(settings, tools=[]))
            await self._send_agent_completion(context, dict(response, result=result))
            return
        # no_completed: everything but the answer.
        await executor.execute_workflow(context, settings, complete=False)

    @truth.planted_bypass("message_handler")
    async def _send_agent_completion(self, context, response):
        if config.fixed():
            bridge = get_agent_registry().get_websocket_bridge(context.user_id)
            await bridge.notify_custom(context.run_id, "supervisor", "agent_completed", {"payload": response})
            return
        manager = get_websocket_manager(context)
        await manager.send_to_user(context.user_id, {"type": "agent_completed", "payload": response})

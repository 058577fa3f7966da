# SPDX-License-Identifier: GPL-2.0
"""AgentWebSocketBridge (services/agent_websocket_bridge.py): the sanctioned path from
agents to the WebSocket manager.

Path A (notify_agent_started, notify_tool_executing, notify_tool_completed,
notify_progress_update, notify_agent_error, notify_custom): builds
{type, run_id, user_id, agent_name, timestamp, data{...}} and calls the manager's
send_to_thread / send_to_user. Path B (notify_agent_thinking, notify_agent_completed):
emit_agent_event builds a context whose user_id IS the thread id and goes through
UnifiedWebSocketEmitter to emit_critical_event, so those frames carry a thread id in
user_id, as the reference's do.
"""
import itertools

from netra_backend.app.core import thread_run_registry
from netra_backend.app.core.user_execution_context import UserExecutionContext
from netra_backend.app.websocket_core.unified_emitter import WebSocketEmitterFactory
from netra_backend.app.websocket_core.unified_manager import iso_now

_event_ids = itertools.count(1)


class AgentWebSocketBridge:
    def __init__(self, user_context=None, websocket_manager=None):
        self.user_context = user_context
        self._websocket_manager = None
        if websocket_manager is not None:
            self.websocket_manager = websocket_manager

    @property
    def websocket_manager(self):
        return self._websocket_manager

    @websocket_manager.setter
    def websocket_manager(self, manager):
        if not hasattr(manager, "send_to_thread"):
            raise TypeError("websocket manager lacks send_to_thread")
        self._websocket_manager = manager

    def _resolve_thread_id_from_run_id(self, run_id):
        thread_id = thread_run_registry.thread_of(run_id)
        if thread_id is None and run_id.startswith("run_thread_"):
            thread_id = run_id[len("run_"):].rsplit("_", 1)[0]
        return thread_id

    async def _send_with_retry(self, user_id, message, retries=3):
        for attempt in range(retries):
            if attempt:
                message["attempt"] = attempt + 1
            if await self._websocket_manager.send_to_user(user_id, message):
                return True
        return False

    # -- Path A ------------------------------------------------------------------
    async def notify_agent_started(self, run_id, agent_name, context=None, trace_context=None,
                                   user_context=None):
        ctx = user_context or self.user_context
        thread_id = self._resolve_thread_id_from_run_id(run_id) or ctx.thread_id
        notification = {
            "type": "agent_started",
            "run_id": run_id,
            "user_id": ctx.user_id,
            "agent_name": agent_name,
            "timestamp": iso_now(),
            "data": {"status": "started", "context": context or {},
                     "message": "%s has started processing your request" % agent_name},
        }
        for _ in range(3):
            if await self._websocket_manager.send_to_thread(thread_id, notification):
                return True
        return False

    async def notify_tool_executing(self, run_id, tool_name, agent_name=None, parameters=None,
                                    user_context=None):
        # The frame names the caller's user, but is routed to the user this bridge is bound
        # to: the same user, unless the bridge object is shared (see agents/tool_dispatcher.py).
        ctx = user_context or self.user_context
        message = {
            "type": "tool_executing",
            "run_id": run_id,
            "user_id": ctx.user_id,
            "agent_name": agent_name,
            "tool_name": tool_name,
            "timestamp": iso_now(),
            "event_id": "evt_%d" % next(_event_ids),
            "data": {"parameters": parameters or {}, "status": "executing",
                     "message": "Executing %s" % tool_name},
        }
        if await self._send_with_retry(self.user_context.user_id, message):
            return True
        thread_id = self._resolve_thread_id_from_run_id(run_id)
        return await self._websocket_manager.send_to_thread(thread_id, message)

    async def notify_tool_completed(self, run_id, tool_name, result=None, agent_name=None,
                                    execution_time_ms=None, user_context=None):
        ctx = user_context or self.user_context
        message = {
            "type": "tool_completed",
            "run_id": run_id,
            "user_id": ctx.user_id,
            "agent_name": agent_name,
            "tool_name": tool_name,
            "timestamp": iso_now(),
            "results": result,
            "data": {"result": result, "execution_time_ms": execution_time_ms,
                     "status": "completed", "message": "%s completed" % tool_name},
        }
        if await self._send_with_retry(self.user_context.user_id, message):
            return True
        thread_id = self._resolve_thread_id_from_run_id(run_id)
        return await self._websocket_manager.send_to_thread(thread_id, message)

    async def notify_agent_error(self, run_id, agent_name, error, error_context=None,
                                 trace_context=None):
        message = {"type": "agent_error", "run_id": run_id, "agent_name": agent_name,
                   "timestamp": iso_now(),
                   "data": {"status": "error", "error_message": str(error),
                            "error_context": error_context or {}, "message": "Agent error"}}
        return await self._websocket_manager.send_to_thread(
            self._resolve_thread_id_from_run_id(run_id), message)

    async def notify_progress_update(self, run_id, agent_name, progress):
        message = {"type": "progress_update", "run_id": run_id, "agent_name": agent_name,
                   "timestamp": iso_now(), "data": {"progress": progress}}
        return await self._websocket_manager.send_to_thread(
            self._resolve_thread_id_from_run_id(run_id), message)

    async def notify_custom(self, run_id, agent_name, notification_type, data):
        message = {"type": notification_type, "run_id": run_id, "agent_name": agent_name,
                   "timestamp": iso_now(), "data": data}
        return await self._websocket_manager.send_to_thread(
            self._resolve_thread_id_from_run_id(run_id), message)

    # -- Path B ------------------------------------------------------------------
    async def notify_agent_thinking(self, run_id, agent_name, reasoning, step_number=None,
                                    progress_percentage=None, trace_context=None,
                                    user_context=None):
        return await self.emit_agent_event(
            "agent_thinking",
            {"reasoning": reasoning, "step_number": step_number,
             "progress_percentage": progress_percentage},
            run_id, agent_name)

    async def notify_agent_completed(self, run_id, agent_name, result=None,
                                     execution_time_ms=None, trace_context=None,
                                     user_context=None):
        return await self.emit_agent_event(
            "agent_completed",
            {"status": "completed", "final_response": result,
             "execution_time_ms": execution_time_ms},
            run_id, agent_name)

    async def emit_agent_event(self, event_type, data, run_id, agent_name=None):
        thread_id = self._resolve_thread_id_from_run_id(run_id)
        ctx = UserExecutionContext(user_id=thread_id, thread_id=thread_id, run_id=run_id,
                                   request_id="req_%s" % run_id)
        emitter = WebSocketEmitterFactory.create_scoped_emitter(self._websocket_manager, ctx)
        data = dict(data, agent_name=agent_name)
        return await emitter.emit(event_type, data)


def create_agent_websocket_bridge(user_context=None, websocket_manager=None):
    return AgentWebSocketBridge(user_context=user_context, websocket_manager=websocket_manager)

# SPDX-License-Identifier: GPL-2.0
"""UnifiedWebSocketEmitter, "THE ONLY emitter" (websocket_core/unified_emitter.py): every
method ends in manager.emit_critical_event, which builds the flat Path B frame."""
from netra_backend.app.websocket_core.unified_manager import iso_now


class UnifiedWebSocketEmitter:
    CRITICAL_EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed",
                       "agent_completed")

    def __init__(self, manager, user_id, context=None):
        self.manager = manager
        self.user_id = user_id
        self.context = context

    async def emit(self, event_type, data):
        if event_type == "agent_thinking":
            return await self.emit_agent_thinking(data)
        if event_type == "agent_completed":
            return await self.emit_agent_completed(data)
        if event_type in self.CRITICAL_EVENTS:
            return await self._emit_critical(event_type, data)
        return await self.notify_custom(event_type, data)

    async def emit_agent_thinking(self, data):
        return await self._emit_critical("agent_thinking", data)

    async def emit_agent_completed(self, data):
        return await self._emit_critical("agent_completed", data)

    async def notify_custom(self, event_type, data):
        return await self._emit_critical(event_type, data)

    async def _emit_critical(self, event_type, data):
        if not self.manager.is_connection_active(self.user_id):
            return False
        data = dict(data)
        if self.context is not None:
            data.setdefault("run_id", self.context.run_id)
            data.setdefault("thread_id", self.context.thread_id)
            data.setdefault("request_id", self.context.request_id)
        data["metadata"] = {"user_tier": "free", "is_priority_queue": False}
        data["user_id"] = self.user_id
        data["timestamp"] = iso_now()
        data = {k: v for k, v in data.items() if v is not None}
        return await self.manager.emit_critical_event(self.user_id, event_type, data)


class WebSocketEmitterFactory:
    @staticmethod
    def create_scoped_emitter(manager, context):
        return UnifiedWebSocketEmitter(manager, context.user_id, context)

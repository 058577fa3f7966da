# SPDX-License-Identifier: GPL-2.0
"""BaseAgent (agents/base_agent.py): its emit_* helpers forward to the bridge adapter."""
from netra_backend.app.agents.mixins.websocket_bridge_adapter import WebSocketBridgeAdapter


class BaseAgent:
    def __init__(self, name, bridge):
        self.name = name
        self._bridge = bridge
        self._websocket_adapter = WebSocketBridgeAdapter(bridge, name)

    async def emit_agent_started(self, context, message=None):
        return await self._websocket_adapter.emit_agent_started(context, message)

    async def emit_thinking(self, context, reasoning, step_number=None):
        return await self._websocket_adapter.emit_thinking(context, reasoning, step_number)

    async def emit_progress(self, context, progress):
        return await self._websocket_adapter.emit_progress(context, progress)

    async def emit_error(self, context, error):
        return await self._websocket_adapter.emit_error(context, error)

    async def emit_agent_completed(self, context, result=None, execution_time_ms=None):
        return await self._websocket_adapter.emit_agent_completed(context, result,
                                                                  execution_time_ms)

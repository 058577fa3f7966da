# SPDX-License-Identifier: GPL-2.0
"""WebSocketBridgeAdapter (agents/mixins/websocket_bridge_adapter.py): what BaseAgent holds
to reach the bridge."""


class WebSocketBridgeAdapter:
    def __init__(self, bridge, agent_name):
        self._bridge = bridge
        self.agent_name = agent_name

    async def emit_agent_started(self, context, message=None):
        return await self._bridge.notify_agent_started(
            context.run_id, self.agent_name, context={"message": message},
            user_context=context)

    async def emit_thinking(self, context, reasoning, step_number=None):
        return await self._bridge.notify_agent_thinking(
            context.run_id, self.agent_name, reasoning, step_number=step_number,
            user_context=context)

    async def emit_progress(self, context, progress):
        return await self._bridge.notify_progress_update(context.run_id, self.agent_name,
                                                         progress)

    async def emit_error(self, context, error):
        return await self._bridge.notify_agent_error(context.run_id, self.agent_name, error)

    async def emit_agent_completed(self, context, result=None, execution_time_ms=None):
        return await self._bridge.notify_agent_completed(
            context.run_id, self.agent_name, result=result,
            execution_time_ms=execution_time_ms, user_context=context)

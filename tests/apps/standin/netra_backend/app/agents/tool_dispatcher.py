# SPDX-License-Identifier: GPL-2.0
"""ToolDispatcher and its executor (agents/tool_dispatcher.py).

THE PLANTED LEAK. With the leak switched on, ToolDispatcher.for_run hands every run the
same process-wide executor and overwrites its websocket_bridge with the caller's bridge,
as the pre-fix code did (AUDIT_REPORT_AGENT_INFRA_USER_CONFUSION: "ToolDispatcher shared
one executor whose websocket_bridge was overwritten globally"). A run whose tool call
reads the bridge after another user's run has set it sends its tool_executing /
tool_completed frames through that other user's bridge: to the other user's connection,
with the owner's run_id and user_id in the frame. With the leak off every run gets its own
executor and nothing crosses.
"""
import asyncio
import hashlib
import time

import truth
from netra_backend.app import config

_shared_executor = None


class UnifiedToolExecutionEngine:
    def __init__(self, websocket_bridge=None):
        self.websocket_bridge = websocket_bridge

    @truth.planted_leak("shared_tool_executor")
    async def execute_tool(self, context, tool_name, parameters, agent_name, duration):
        start = time.monotonic()
        await self.websocket_bridge.notify_tool_executing(context.run_id, tool_name, agent_name=agent_name, parameters=parameters, user_context=context)
        await asyncio.sleep(duration)
        result = {"tool": tool_name, "rows": int(hashlib.sha256(repr(parameters).encode()).hexdigest()[:4], 16) % 500}
        elapsed = int((time.monotonic() - start) * 1000)
        await self.websocket_bridge.notify_tool_completed(context.run_id, tool_name, result=result, agent_name=agent_name, execution_time_ms=elapsed, user_context=context)
        return result


class ToolDispatcher:
    @staticmethod
    def for_run(bridge):
        global _shared_executor
        if not config.leak_enabled():
            return UnifiedToolExecutionEngine(bridge)
        if _shared_executor is None:
            _shared_executor = UnifiedToolExecutionEngine()
        _shared_executor.websocket_bridge = bridge
        return _shared_executor

# SPDX-License-Identifier: GPL-2.0
"""UnifiedDataAgent (agents/data/unified_data_agent.py).

Thinking, tool and progress events go through the bridge (BaseAgent -> adapter -> bridge;
tools through the ToolDispatcher's executor). PLANTED BYPASS "unified_data_agent":
_emit_websocket_event calls the manager's send_event(connection_id, ...) directly, as the
reference's agent did at [T14]."""
import asyncio

import truth
from netra_backend.app import config
from netra_backend.app.agents.base_agent import BaseAgent
from netra_backend.app.agents.synthetic_data_progress_tracker import SyntheticDataProgressTracker
from netra_backend.app.agents.tool_dispatcher import ToolDispatcher


class UnifiedDataAgent(BaseAgent):
    def __init__(self, bridge, websocket_manager):
        super().__init__("data_agent", bridge)
        self.websocket_manager = websocket_manager

    async def execute(self, context, settings):
        rows = 0
        for step in range(settings["thinking_steps"]):
            await self.emit_thinking(context, "Analysing the request, step %d" % (step + 1), step + 1)
        for i, tool in enumerate(settings["tools"]):
            await asyncio.sleep(settings["think_ms"] / 1000.0)
            executor = ToolDispatcher.for_run(self._bridge)
            result = await executor.execute_tool(context, tool, {"query": settings["query"], "index": i}, self.name, settings["tool_ms"] / 1000.0)
            rows += result["rows"]
            await self._emit_websocket_event(context, "data_update", {"tool": tool, "rows": result["rows"]})
        await SyntheticDataProgressTracker(self.websocket_manager).complete(context, rows)
        await self.emit_progress(context, {"percent": 100, "rows": rows})
        return {"rows": rows, "tools": list(settings["tools"])}

    @truth.planted_bypass("unified_data_agent")
    async def _emit_websocket_event(self, context, event_type, data):
        if config.fixed():
            await self._bridge.notify_custom(context.run_id, self.name, event_type, dict(data))
            return
        ws_manager = self.websocket_manager
        await ws_manager.send_event(context.websocket_client_id, event_type, dict(data, run_id=context.run_id, thread_id=context.thread_id))

# SPDX-License-Identifier: GPL-2.0
"""SyntheticDataProgressTracker (agents/synthetic_data_progress_tracker.py).

PLANTED BYPASS "synthetic_data_progress_tracker": _send_websocket_update calls the
manager's send_to_user directly, as the reference's tracker does (issue #1070 scope)."""
import truth
from netra_backend.app import config
from netra_backend.app.agents.supervisor.agent_registry import get_agent_registry
from netra_backend.app.websocket_core.unified_manager import iso_now


class SyntheticDataProgressTracker:
    def __init__(self, websocket_manager):
        self.websocket_manager = websocket_manager

    async def complete(self, context, rows):
        await self._send_websocket_update(context, 100, "generated %d rows" % rows)

    @truth.planted_bypass("synthetic_data_progress_tracker")
    async def _send_websocket_update(self, context, percent, stage):
        if config.fixed():
            bridge = get_agent_registry().get_websocket_bridge(context.user_id)
            await bridge.notify_custom(context.run_id, "synthetic_data", "agent_progress", {"progress": percent, "stage": stage})
            return
        message = {"type": "agent_progress", "payload": {"run_id": context.run_id, "thread_id": context.thread_id, "progress": percent, "stage": stage, "timestamp": iso_now()}}
        await self.websocket_manager.send_to_user(context.user_id, message)

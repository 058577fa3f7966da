# SPDX-License-Identifier: GPL-2.0
"""TriageAgent (agents/triage_agent.py): tells the user which queue a request went to.

It sends through the bridge (BaseAgent.emit_progress). With STANDIN_NEW_BYPASS=1 it calls
the manager's send_to_user directly instead: a bypass that is not among the five planted
ones, as a change under review would add one (the baseline case of `wsaudit run`)."""
from netra_backend.app import config
from netra_backend.app.agents.base_agent import BaseAgent
from netra_backend.app.websocket_core.unified_manager import get_websocket_manager, iso_now


class TriageAgent(BaseAgent):
    def __init__(self, bridge):
        super().__init__("triage_agent", bridge)

    async def announce(self, context, queue):
        if config.new_bypass():
            await self._send_triage_update(context, queue)
        else:
            await self.emit_progress(context, {"queue": queue})

    async def _send_triage_update(self, context, queue):
        manager = get_websocket_manager(context)
        await manager.send_to_user(context.user_id, {"type": "agent_progress", "payload": {"run_id": context.run_id, "queue": queue, "timestamp": iso_now()}})

# SPDX-License-Identifier: GPL-2.0
"""ThreadService (services/thread_service.py).

PLANTED BYPASS "thread_service": _send_agent_started_event looks the user up from the
thread's metadata (the database in the reference, the thread registry here), gets that
user's manager and calls send_to_user with the legacy {"type","payload"} shape."""
import truth
from netra_backend.app import config
from netra_backend.app.agents.supervisor.agent_registry import get_agent_registry
from netra_backend.app.core import thread_run_registry
from netra_backend.app.websocket_core.unified_manager import get_websocket_manager, iso_now


class ThreadService:
    @truth.planted_bypass("thread_service")
    async def _send_agent_started_event(self, context, agent_name):
        user_id = thread_run_registry.user_of_thread(context.thread_id)
        if config.fixed():
            bridge = get_agent_registry().get_websocket_bridge(user_id)
            await bridge.notify_custom(context.run_id, agent_name, "agent_started", {"thread_id": context.thread_id})
            return
        manager = get_websocket_manager(context)
        await manager.send_to_user(user_id, {"type": "agent_started", "payload": {"run_id": context.run_id, "agent_name": agent_name, "thread_id": context.thread_id, "timestamp": iso_now()}})

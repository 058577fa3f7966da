# SPDX-License-Identifier: GPL-2.0
"""SupervisorWorkflowExecutor (agents/supervisor/workflow_execution.py): runs one request.

agent_started and agent_completed go through the bridge. PLANTED BYPASS
"supervisor_workflow_execution": _send_orchestration_notification calls the manager's
send_to_thread directly, as the reference's executor does.  PLANTED BYPASS
"detached_routing_announcement" (only with STANDIN_DETACHED_BYPASS=1): _announce_routing
fires the manager's send_to_user off in a task of its own and does not wait for it."""
import asyncio
import time

import truth
from netra_backend.app import config
from netra_backend.app.agents.data.unified_data_agent import UnifiedDataAgent
from netra_backend.app.websocket_core.unified_manager import iso_now


class SupervisorWorkflowExecutor:
    def __init__(self, registry, websocket_manager):
        self.registry = registry
        self.websocket_manager = websocket_manager

    async def execute_workflow(self, context, settings, complete=True):
        start = time.monotonic()
        bridge = self.registry.get_websocket_bridge(context.user_id)
        await bridge.notify_agent_started(context.run_id, "supervisor", context={"user_request": settings["query"]}, user_context=context)
        await self._send_orchestration_notification(context, "routing", "data_agent")
        if config.detached_bypass():
            await self._announce_routing(context, "data_agent")
        result = await UnifiedDataAgent(bridge, self.websocket_manager).execute(context, settings)
        elapsed = int((time.monotonic() - start) * 1000)
        if not complete:
            # The run completeness fault "no_completed": the answer never goes out.
            return result
        await bridge.notify_agent_completed(context.run_id, "supervisor", result=result, execution_time_ms=elapsed, user_context=context)
        return result

    @truth.planted_bypass("supervisor_workflow_execution")
    async def _send_orchestration_notification(self, context, phase, agent_name):
        if config.fixed():
            bridge = self.registry.get_websocket_bridge(context.user_id)
            await bridge.notify_custom(context.run_id, agent_name, "agent_status_update", {"phase": phase})
            return
        websocket_manager = self.websocket_manager
        await websocket_manager.send_to_thread(context.thread_id, {"type": "agent_status_update", "payload": {"run_id": context.run_id, "thread_id": context.thread_id, "phase": phase, "agent": agent_name, "timestamp": iso_now()}})

    @truth.planted_bypass("detached_routing_announcement")
    async def _announce_routing(self, context, agent_name):
        if config.fixed():
            bridge = self.registry.get_websocket_bridge(context.user_id)
            await bridge.notify_custom(context.run_id, agent_name, "agent_status_update", {"phase": "routed"})
            return
        message = {"type": "agent_status_update", "payload": {"run_id": context.run_id, "thread_id": context.thread_id, "phase": "routed", "agent": agent_name, "timestamp": iso_now()}}
        truth.detached(asyncio.create_task(self.websocket_manager.send_to_user(context.user_id, message)))

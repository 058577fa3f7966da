# SPDX-License-Identifier: GPL-2.0
"""The agents' events reach their user: each test calls the agent code that sends one event,
in the process that serves the WebSocket, and reads it from a real client."""
import pytest

from netra_backend.app import config
from netra_backend.app.agents.data.unified_data_agent import UnifiedDataAgent
from netra_backend.app.agents.supervisor.agent_registry import get_agent_registry
from netra_backend.app.agents.supervisor.workflow_execution import SupervisorWorkflowExecutor
from netra_backend.app.agents.synthetic_data_progress_tracker import SyntheticDataProgressTracker
from netra_backend.app.agents.triage_agent import TriageAgent
from netra_backend.app.services.thread_service import ThreadService
from netra_backend.app.services.websocket.message_handler import StartAgentHandler
from netra_backend.app.websocket_core.unified_manager import get_websocket_manager


async def test_thread_service_announces_the_run(connect):
    client = await connect()
    ctx = client.context()
    await ThreadService()._send_agent_started_event(ctx, "supervisor")
    frame = await client.recv_json()
    assert frame["type"] == "agent_started"


async def test_supervisor_reports_routing(connect):
    client = await connect()
    ctx = client.context()
    executor = SupervisorWorkflowExecutor(get_agent_registry(), get_websocket_manager(ctx))
    await executor._send_orchestration_notification(ctx, "routing", "data_agent")
    frame = await client.recv_json()
    assert frame["type"] == "agent_status_update"


@pytest.mark.skipif(not config.detached_bypass(),
                    reason="the fire-and-forget announcement is planted with "
                    "STANDIN_DETACHED_BYPASS=1")
async def test_supervisor_announces_routing(connect):
    """The announcement is sent by a task _announce_routing creates: this test is on the
    creating stack, not on the writer's."""
    client = await connect()
    ctx = client.context()
    executor = SupervisorWorkflowExecutor(get_agent_registry(), get_websocket_manager(ctx))
    await executor._announce_routing(ctx, "data_agent")
    frame = await client.recv_json()
    assert frame["type"] == "agent_status_update"


async def test_data_agent_reports_rows(connect):
    client = await connect()
    ctx = client.context()
    agent = UnifiedDataAgent(get_agent_registry().get_websocket_bridge(client.user_id),
                             get_websocket_manager(ctx))
    await agent._emit_websocket_event(ctx, "data_update", {"tool": "cost_analyzer", "rows": 3})
    frame = await client.recv_json()
    assert frame["type"] == "data_update"


async def test_progress_tracker_completes(connect):
    client = await connect()
    ctx = client.context()
    await SyntheticDataProgressTracker(get_websocket_manager(ctx)).complete(ctx, 42)
    frame = await client.recv_json()
    assert frame["type"] == "agent_progress"


async def test_handler_sends_completion(connect):
    client = await connect()
    ctx = client.context()
    await StartAgentHandler()._send_agent_completion(ctx, {"run_id": ctx.run_id, "status": "completed"})
    frame = await client.recv_json()
    assert frame["type"] == "agent_completed"


class TestTriage:
    async def test_triage_announces_the_queue(self, connect):
        client = await connect()
        ctx = client.context()
        await TriageAgent(get_agent_registry().get_websocket_bridge(client.user_id)).announce(ctx, "billing")
        frame = await client.recv_json()
        assert frame["type"] in ("agent_progress", "progress_update")

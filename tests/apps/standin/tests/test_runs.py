# SPDX-License-Identifier: GPL-2.0
"""Whole runs driven by client messages, as the frontend drives them: the events are
written by the server's task, not under the test function."""
import asyncio
import json

from netra_backend.app import config


def start_agent(text, tool_ms, tools=("clickhouse_query",)):
    return json.dumps({"type": "start_agent", "payload": {
        "user_request": text, "settings": {"tools": list(tools), "thinking_steps": 1,
                                           "think_ms": 0, "tool_ms": tool_ms}}})


def legacy_completed(frame):
    """The run's last frame: {type, payload}, or with the bypasses fixed (STANDIN_FIXED=1)
    the same content sent through the bridge's notify_custom, under data."""
    data = frame.get("data") if isinstance(frame.get("data"), dict) else {}
    return frame.get("type") == "agent_completed" and ("payload" in frame or "payload" in data)


async def test_a_run_delivers_its_events(connect):
    client = await connect()
    await client.ws.send(start_agent("Why did our GPU spend rise last week?", 20))
    frames = await client.recv_until(legacy_completed)
    types = [f["type"] for f in frames]
    assert types[0] == "agent_started"
    assert "tool_completed" in types


async def test_two_users_run_at_once(connect):
    """Both users get their run completed while the other's run is under way."""
    prev = config.leak_enabled()
    config.set_leak(True)  # the production setting of the shared tool executor
    try:
        first, second = await connect(), await connect()
        await first.ws.send(start_agent("Summarise token usage per team", 400))
        await asyncio.sleep(0.15)
        await second.ws.send(start_agent("Find the slowest model endpoints", 20))
        done = await asyncio.gather(first.recv_until(legacy_completed),
                                    second.recv_until(legacy_completed))
        assert all(legacy_completed(frames[-1]) for frames in done)
    finally:
        config.set_leak(prev)

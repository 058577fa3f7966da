# SPDX-License-Identifier: GPL-2.0
"""Agents that bypass the bridge, one per hand-over pattern of services/bridge.py: every frame
they produce must be flagged bridge_bypass, named after the function and line below."""
import asyncio
import os

from truth import frame, msg


def rogue_task(mgr, conn, ws):
    asyncio.create_task(mgr.send_to_user(conn, msg("task", False)))


def rogue_chain(mgr, conn, ws):
    asyncio.create_task(mgr.relay(conn, msg("task", False)))


def rogue_future(mgr, conn, ws):
    asyncio.ensure_future(ws.send(msg("task", False)))


def rogue_call_soon(mgr, conn, ws):
    asyncio.get_running_loop().call_soon(ws.transport.write, frame("callback", False))


def rogue_threadsafe(mgr, conn, loop):
    asyncio.run_coroutine_threadsafe(mgr.send_to_user(conn, msg("callback", False)), loop).result()


async def rogue_to_thread(mgr, conn, fd):
    await asyncio.to_thread(os.write, fd, frame("thread", False))


def rogue_queued(mgr, conn, queue):
    queue.enqueue(msg("queue", False))


async def rogue_big(mgr, conn, ws, pad):
    await ws.send(msg("transport" if ws.transport.get_write_buffer_size() else "stack", False, pad))

# SPDX-License-Identifier: GPL-2.0
"""The bridge: every frame produced here is sanctioned (test policy: Bridge.*).

One producer per hand-over pattern; agents/rogue.py has the same patterns as bypasses.  The
producing call and msg()/frame() are on one line: that line is the ground truth's.
"""
import asyncio
import os

from truth import frame, msg


class Bridge:
    def __init__(self, mgr):
        self.mgr = mgr

    def notify_task(self, conn, ws):
        asyncio.create_task(self.mgr.send_to_user(conn, msg("task", True)))

    def notify_chain(self, conn, ws):
        asyncio.create_task(self.mgr.relay(conn, msg("task", True)))

    def notify_future(self, conn, ws):
        asyncio.ensure_future(ws.send(msg("task", True)))

    def notify_call_soon(self, conn, ws):
        asyncio.get_running_loop().call_soon(ws.transport.write, frame("callback", True))

    def notify_threadsafe(self, conn, loop):
        asyncio.run_coroutine_threadsafe(self.mgr.send_to_user(conn, msg("callback", True)), loop).result()

    async def notify_to_thread(self, conn, fd):
        await asyncio.to_thread(os.write, fd, frame("thread", True))

    def notify_queued(self, conn, queue):
        queue.enqueue(msg("queue", True))

    async def notify_big(self, conn, ws, pad):
        await ws.send(msg("transport" if ws.transport.get_write_buffer_size() else "stack", True, pad))

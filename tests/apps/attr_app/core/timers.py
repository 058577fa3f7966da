# SPDX-License-Identifier: GPL-2.0
"""Frames written from event-loop callbacks (no coroutine on the stack)."""
import asyncio


def on_tick(conn, done):
    conn.writer.write(conn.frame("text", conn.payload("callback", "tick")))
    done.set_result(None)


async def schedule_tick(conn):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.call_soon(on_tick, conn, done)
    await done
    later = loop.create_future()
    loop.call_soon(lambda: (conn.writer.write(conn.frame("text", conn.payload("callback", "lambda"))),
                            later.set_result(None)))
    await later

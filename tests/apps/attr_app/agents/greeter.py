# SPDX-License-Identifier: GPL-2.0
"""A plain coroutine."""


async def greet(conn):
    conn.writer.write(conn.frame("text", conn.payload("greet", "hello")))
    await conn.writer.drain()

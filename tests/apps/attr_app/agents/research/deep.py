# SPDX-License-Identifier: GPL-2.0
"""Nested awaits: research -> gather_facts -> emit_fact, which writes."""
import asyncio


async def emit_fact(conn, i):
    await asyncio.sleep(0)
    conn.writer.write(
        conn.frame(
            "text",
            conn.payload("research", "fact %d" % i),
        )
    )
    await conn.writer.drain()


async def gather_facts(conn, n):
    for i in range(n):
        await emit_fact(conn, i)


async def research(conn):
    await gather_facts(conn, 3)

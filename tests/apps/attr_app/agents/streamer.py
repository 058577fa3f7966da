# SPDX-License-Identifier: GPL-2.0
"""A fragmented message, and frames written from inside an async generator."""

PARTS = [b"first part, ", b"second part, ", b"last part"]


async def produce(conn):
    for i in range(2):
        conn.writer.write(conn.frame("text", conn.payload("stream", "produced %d" % i)))
        yield i


async def stream(conn):
    for i, part in enumerate(PARTS):
        conn.writer.write(conn.frame("text" if i == 0 else "continuation", part,
                                     fin=i == len(PARTS) - 1))
    await conn.writer.drain()
    async for _ in produce(conn):
        await conn.writer.drain()

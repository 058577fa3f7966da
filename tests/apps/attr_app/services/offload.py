# SPDX-License-Identifier: GPL-2.0
"""Frames written by a worker thread of a thread pool, with sendall on a blocking socket."""
import asyncio


def blocking_report(sock, conn, n):
    for i in range(n):
        sock.sendall(conn.frame("binary", b"report %d" % i))


async def offload(conn, pool):
    loop = asyncio.get_running_loop()
    transport = conn.writer.transport
    # The transport's own socket: it does not read or write while the worker has it.
    sock = transport._sock
    transport.pause_reading()
    sock.setblocking(True)
    try:
        await loop.run_in_executor(pool, blocking_report, sock, conn, 2)
    finally:
        sock.setblocking(False)
        transport.resume_reading()

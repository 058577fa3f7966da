#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""WebSocket test server on Debian's python3-websockets 10.4 (asyncio
transport: frames leave through socket.send, i.e. sendto).

Every client of /ws gets the known mix of tests/apps/ws_mix.py and then a
close with code 1011; /ticks gives a slow stream (run_ticks), /hold nothing.
Every frame written is logged as one JSON line in --log. permessage-deflate is off (compression=None), so the payload
lengths on the wire are the ones logged.

Prints "READY pid=N port=P" on stdout once it listens; runs until SIGINT or
SIGTERM.
"""

import argparse
import asyncio
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import websockets  # noqa: E402
from websockets.server import WebSocketServerProtocol  # noqa: E402

from ws_mix import FrameLog, FrameLogMixin, run_mix, run_ticks  # noqa: E402


class LoggedProtocol(FrameLogMixin, WebSocketServerProtocol):
    pass


async def handler(ws, path=None):
    if (path or ws.path) == "/hold":
        # Held open, nothing sent: for tests that need an idle connection.
        await ws.wait_closed()
        return
    if (path or ws.path) == "/ticks":
        # A slow stream, for connections opened before tracing starts.
        await run_ticks(ws)
        return
    await run_mix(ws)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True, help="JSON lines, one per frame sent")
    args = ap.parse_args()

    LoggedProtocol.frame_log = FrameLog(args.log)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)

    async with websockets.serve(
        handler,
        "127.0.0.1",
        args.port,
        create_protocol=LoggedProtocol,
        compression=None,
        ping_interval=None,
        max_size=None,
    ):
        print(f"READY pid={os.getpid()} port={args.port}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""WebSocket test server on uvicorn 0.17.6 + FastAPI 0.92 + uvloop (Debian
packages; uvloop's transport writes with write/writev).

Each client of /ws gets the known mix of tests/apps/ws_mix.py: data frames go
through FastAPI's WebSocket (send_text/send_bytes), control frames, fragments
and bursts through the uvicorn protocol object of the connection, and the
close 1011 through WebSocket.close(). With --log, every frame written is
logged as one JSON line (the demo runs without it).

permessage-deflate is switched off on the server with uvicorn's own option,
Config(ws_per_message_deflate=False) (the --ws-per-message-deflate switch of
its command line); the test clients also offer no extension.

Prints "READY pid=N port=P" on stdout once it listens; runs until SIGINT or
SIGTERM.
"""

import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uvicorn  # noqa: E402
from fastapi import FastAPI, WebSocket  # noqa: E402
from uvicorn.protocols.websockets.websockets_impl import (  # noqa: E402
    WebSocketProtocol,
)

from ws_mix import BurstMixin, FrameLog, FrameLogMixin, run_mix  # noqa: E402

# The uvicorn protocol object of each open connection, by client port: the
# ASGI interface has no ping, pong, fragments or raw writes.
PROTOCOLS = {}


class RegisteredProtocol(BurstMixin, WebSocketProtocol):
    def connection_made(self, transport):
        super().connection_made(transport)
        PROTOCOLS[self.client_port()] = self

    def connection_lost(self, exc):
        PROTOCOLS.pop(self.client_port(), None)
        super().connection_lost(exc)


class LoggedProtocol(FrameLogMixin, RegisteredProtocol):
    pass


app = FastAPI()


@app.websocket("/ws")
async def ws_endpoint(websocket: WebSocket):
    await websocket.accept()
    proto = PROTOCOLS[websocket.client.port]
    await run_mix(
        proto,
        send_text=websocket.send_text,
        send_bytes=websocket.send_bytes,
        close=lambda: websocket.close(code=1011),
    )


@app.websocket("/hold")
async def ws_hold(websocket: WebSocket):
    # Held open, nothing sent: for tests that need an idle connection.
    await websocket.accept()
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def announce(server, port):
    for _ in range(1000):
        if server.started:
            print(f"READY pid={os.getpid()} port={port}", flush=True)
            return
        await asyncio.sleep(0.01)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", help="JSON lines, one per frame sent (default: no log)")
    args = ap.parse_args()

    protocol = RegisteredProtocol
    if args.log:
        protocol = LoggedProtocol
        protocol.frame_log = FrameLog(args.log)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        ws=protocol,
        ws_per_message_deflate=False,
        ws_ping_interval=None,
        ws_max_size=1 << 24,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)

    async def run():
        task = asyncio.ensure_future(announce(server, args.port))
        await server.serve()
        task.cancel()

    config.setup_event_loop()
    asyncio.get_event_loop().run_until_complete(run())


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""python-socketio 5 / engine.io 4 on uvicorn: sio.emit puts the packet on the engine.io
socket's queue and the socket's writer task sends it later.  A client's "go" event gets n
"causal" events, alternately through the bridge and a bypass, each logged at its producing
call (the `await sio.emit(...)` line).  Prints "READY pid=N port=P" before uvicorn listens:
the client retries."""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import socketio  # noqa: E402
import uvicorn  # noqa: E402

import truth  # noqa: E402

SIO = socketio.AsyncServer(async_mode="asgi", ping_interval=600, ping_timeout=600)


class Bridge:
    async def emit(self, sid):
        await SIO.emit("causal", truth.payload("queue", True), to=sid)


async def rogue_emit(sid):
    await SIO.emit("causal", truth.payload("queue", False), to=sid)


BRIDGE = Bridge()


@SIO.on("go")
async def go(sid, data):
    for i in range(int(data["n"])):
        if i % 2 == 0:
            await BRIDGE.emit(sid)
        else:
            await rogue_emit(sid)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    args = ap.parse_args()
    truth.install(args.truth)
    print("READY pid=%d port=%d" % (os.getpid(), args.port), flush=True)
    uvicorn.run(socketio.ASGIApp(SIO), host="127.0.0.1", port=args.port, loop=args.loop,
                log_level="warning", ws_ping_interval=None)

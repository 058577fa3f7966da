#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Long-lived connections on FastAPI + uvicorn 0.17.6 + uvloop with permessage-deflate
(uvicorn's default, context takeover) and a JWT in the subprotocol: the production shape
wsaudit was built for, for tests that open connections before a trace starts.

A client offers "jwt.<base64url(JWT)>" (tests/apps/standin/jwt_handler.py); the server echoes
it and reads the user from the token's sub (no signature check: a test server). Then each
text message from the client is a command:
  "go N"    N messages {"type":"tick","user_id":USER,"n":I,"text":...}, compressible
  "leak N"  N messages naming another user ("user_id":"intruder"): planted isolation breaches
  "bye"     a close 1000

Prints "READY pid=N port=P" once it listens; runs until SIGINT or SIGTERM.
"""

import argparse
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "standin"))

import uvicorn  # noqa: E402
from fastapi import FastAPI, WebSocket  # noqa: E402

import jwt_handler  # noqa: E402

app = FastAPI()
# Repeated across messages, so that deflate refers back to earlier ones (its history).
FILLER = "the quick brown fox jumps over the lazy dog " * 4


def user_of(subprotocol):
    token = jwt_handler.b64url_decode(subprotocol[len("jwt."):]).decode()
    return json.loads(jwt_handler.b64url_decode(token.split(".")[1]))["sub"]


@app.websocket("/ws")
async def ws_endpoint(websocket: WebSocket):
    offered = [p for p in websocket.scope.get("subprotocols", []) if p.startswith("jwt.")]
    if not offered:
        await websocket.close(code=1008)
        return
    user = user_of(offered[0])
    await websocket.accept(subprotocol=offered[0])
    n = 0
    while True:
        msg = await websocket.receive()
        if msg["type"] == "websocket.disconnect":
            return
        cmd, _, count = (msg.get("text") or "").partition(" ")
        if cmd == "bye":
            await websocket.close(code=1000)
            return
        for _ in range(int(count or 0)):
            owner = user if cmd == "go" else "intruder"
            await websocket.send_text(json.dumps(
                {"type": "tick" if cmd == "go" else "leak", "user_id": owner, "n": n,
                 "text": FILLER}))
            n += 1


async def announce(server, port):
    for _ in range(1000):
        if server.started:
            print(f"READY pid={os.getpid()} port={port}", flush=True)
            return
        await asyncio.sleep(0.01)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, loop="uvloop",
                            ws_per_message_deflate=True, ws_ping_interval=None,
                            lifespan="off", log_level="warning")
    server = uvicorn.Server(config)

    async def run():
        task = asyncio.ensure_future(announce(server, args.port))
        await server.serve()
        task.cancel()

    config.setup_event_loop()
    asyncio.get_event_loop().run_until_complete(run())


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A wss:// service with a bridge, a planted bypass and a planted cross-user leak, for the TLS
tests (tests/integration/test_tls.py).  The TLS is its own: an ssl.SSLContext on plain asyncio
(websockets 8.1 to 17, --impl websockets) or on aiohttp (--impl aiohttp).

  tls_ws_server.py --port P --cert C --key K --log TRUTH.jsonl [--impl websockets|aiohttp]

The user of a connection is the `sub` of the JWT its request carries, in
Sec-WebSocket-Protocol (jwt.<base64url(JWT)>) or in Authorization (Bearer JWT).  For each
text message NAME from the client it sends one frame from function NAME (bridge, bypass,
leak) and logs it to TRUTH.jsonl: {"port", "seq", "function", "user", "expect"}.  Each send
is on a line marked `# send: FUNCTION`, where the tests look for its line number.
Prints "READY pid=N port=P python=X.Y.Z" once it listens; runs until killed.
"""
import argparse
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tls_common import SCENARIOS, user_of  # noqa: E402

LOG = None


def log(entry):
    LOG.write(json.dumps(entry) + "\n")
    LOG.flush()


class AgentWebSocketBridge:
    """The designated path: every event to a user goes through here."""

    def __init__(self, ws):
        self.ws = ws

    async def send_event(self, user_id, event):
        await self.ws.send(json.dumps(event))  # send: AgentWebSocketBridge.send_event


async def bridge(ws, conn):
    await AgentWebSocketBridge(ws).send_event(conn["user"], {
        "type": "agent_event", "user_id": conn["user"], "seq": conn["seq"]})


async def bypass(ws, conn):
    event = {"type": "agent_event", "user_id": conn["user"], "seq": conn["seq"]}
    await ws.send(json.dumps(event))  # send: bypass


async def leak(ws, conn):
    # Another user's event, through the bridge: a breach, not a bypass.
    victim = "victim-of-%s" % conn["user"]
    await AgentWebSocketBridge(ws).send_event(victim, {
        "type": "agent_event", "user_id": victim, "seq": conn["seq"]})


async def big(ws, conn):
    await ws.send(os.urandom(200000))  # send: big


FUNCS = {"bridge": bridge, "bypass": bypass, "leak": leak, "big": big}


async def scenario(ws, conn, name):
    function, expect = SCENARIOS[name]
    log({"port": conn["port"], "seq": conn["seq"], "function": function, "user": conn["user"],
         "expect": expect})
    await FUNCS[name](ws, conn)
    conn["seq"] += 1


async def websockets_handler(ws, path=None):
    # websockets 8.1-13 (legacy): request_headers; 14 and later: request.headers
    headers = getattr(ws, "request_headers", None) or ws.request.headers
    conn = {"port": ws.remote_address[1], "user": user_of(headers), "seq": 0}
    async for name in ws:
        await scenario(ws, conn, name)


async def serve_websockets(args, ctx):
    import websockets

    async with websockets.serve(websockets_handler, "127.0.0.1", args.port, ssl=ctx):
        ready(args)
        await asyncio.Future()


async def aiohttp_handler(request):
    from aiohttp import WSMsgType, web

    ws = web.WebSocketResponse(protocols=())
    await ws.prepare(request)
    # The library's own method under the name websockets uses: no frame of ours in between.
    ws.send = ws.send_str
    conn = {"port": request.transport.get_extra_info("peername")[1],
            "user": user_of(request.headers), "seq": 0}
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await scenario(ws, conn, msg.data)
    return ws


async def serve_aiohttp(args, ctx):
    from aiohttp import web

    app = web.Application()
    app.router.add_get("/ws", aiohttp_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port, ssl_context=ctx).start()
    ready(args)
    await asyncio.Future()


def ready(args):
    print("READY pid=%d port=%d python=%s" % (os.getpid(), args.port, sys.version.split()[0]),
          flush=True)


def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--impl", choices=("websockets", "aiohttp"), default="websockets")
    a = ap.parse_args()
    LOG = open(a.log, "a")
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    asyncio.run((serve_aiohttp if a.impl == "aiohttp" else serve_websockets)(a, ctx))


if __name__ == "__main__":
    main()

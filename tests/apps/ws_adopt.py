#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Connections that are open before the trace: a server and its clients.

  ws_adopt.py server --framework fastapi|websockets|websockets-asyncio|websockets-uvloop|aiohttp
                     --truth FILE
  ws_adopt.py clients --port P --conns 20 --seed S --go-file F --stop-file F

The server (permessage-deflate with context takeover, the JWT in Sec-WebSocket-Protocol as
`jwt.<base64url(JWT)>`, echoed back) prints "READY pid=N port=P" once it listens.  On every
connection it sends JSON text messages {"type": "tick_<seq>", "user_id": <the connection's
user>, "seq": seq, "pad": ...} every 20 ms; one message in ten on the odd-numbered users'
connections is a planted breach: "type": "leak_<seq>" and the user_id of another user.
Every message sent is logged to --truth as one JSON line {"port", "seq", "type", "user",
"conn_user", "breach"} (port: the client's).  It runs until SIGTERM.

The clients (the websockets library) open the connections, each with its own user and
token, and read until --stop-file exists; --go-file is created once every connection is
open and has received messages.
"""
import argparse
import asyncio
import base64
import json
import os
import random
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "standin"))

import jwt_handler  # noqa: E402

INTERVAL = 0.02
BREACH_EVERY = 10


def user_of(i, seed):
    return "adopt_user_%d_%08x" % (i, random.Random("%d/%d" % (seed, i)).getrandbits(32))


def subprotocol_token(offered):
    for p in (offered or "").split(","):
        p = p.strip()
        if p.startswith("jwt."):
            return p
    return None


def user_from_token(tok):
    raw = base64.urlsafe_b64decode(tok[4:] + "=" * (-len(tok[4:]) % 4)).decode()
    body = raw.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["sub"]


class Truth:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else None
        self.users = []  # every user seen, to pick a victim for a breach

    def log(self, **kw):
        if self.f:
            self.f.write(json.dumps(kw) + "\n")


async def talk(send, port, conn_user, truth):
    """The message loop of one connection."""
    if conn_user not in truth.users:
        truth.users.append(conn_user)
    odd = int(conn_user.split("_")[2]) % 2 == 1
    seq = 0
    while True:
        seq += 1
        breach = odd and seq % BREACH_EVERY == 0 and len(truth.users) > 1
        if breach:
            victim = next(u for u in truth.users if u != conn_user)
            msg = {"type": "leak_%d" % seq, "user_id": victim, "seq": seq}
        else:
            msg = {"type": "tick_%d" % seq, "user_id": conn_user, "seq": seq}
        msg["pad"] = "x" * (seq % 37) + "status update %d for %s" % (seq, conn_user)
        truth.log(port=port, seq=seq, type=msg["type"], user=msg["user_id"],
                  conn_user=conn_user, breach=breach)
        await send(json.dumps(msg))
        await asyncio.sleep(INTERVAL)


def serve_fastapi(port_cb, truth):
    import uvicorn
    from fastapi import FastAPI, WebSocket, WebSocketDisconnect

    app = FastAPI()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket):
        tok = subprotocol_token(websocket.headers.get("sec-websocket-protocol"))
        await websocket.accept(subprotocol=tok)
        try:
            await talk(websocket.send_text, websocket.client.port, user_from_token(tok), truth)
        except (WebSocketDisconnect, RuntimeError, Exception):
            pass

    config = uvicorn.Config(app, host="127.0.0.1", port=0, loop="uvloop", ws="websockets",
                            ws_per_message_deflate=True, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)

    async def main():
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        port_cb(server.servers[0].sockets[0].getsockname()[1])
        await task

    import uvloop
    uvloop.install()
    asyncio.run(main())


def serve_websockets(port_cb, truth, loop="asyncio"):
    import websockets
    try:
        import websockets.legacy.server as wls
    except ImportError:  # before 10.0 the protocol server was websockets.server
        import websockets.server as wls

    class Proto(wls.WebSocketServerProtocol):
        def select_subprotocol(self, client_subprotocols, server_subprotocols):
            return subprotocol_token(",".join(client_subprotocols))

    async def handler(ws, path=None):
        port = ws.remote_address[1]
        try:
            await talk(ws.send, port, user_from_token(ws.subprotocol), truth)
        except websockets.ConnectionClosed:
            pass

    async def main():
        async with wls.serve(handler, "127.0.0.1", 0, create_protocol=Proto, subprotocols=["jwt-auth"],
                                    compression="deflate") as srv:
            port_cb(srv.sockets[0].getsockname()[1])
            await asyncio.Future()

    if loop == "uvloop":
        import uvloop
        uvloop.install()
    asyncio.run(main())


def serve_websockets_asyncio(port_cb, truth):
    """websockets >= 13's asyncio server: the request in ServerConnection.request."""
    import websockets
    from websockets.asyncio.server import serve

    def select(conn, subprotocols):
        return subprotocol_token(",".join(subprotocols))

    async def handler(ws):
        try:
            await talk(ws.send, ws.remote_address[1], user_from_token(ws.subprotocol), truth)
        except websockets.ConnectionClosed:
            pass

    async def main():
        async with serve(handler, "127.0.0.1", 0, select_subprotocol=select,
                         compression="deflate") as srv:
            port_cb(list(srv.sockets)[0].getsockname()[1])
            await asyncio.Future()

    asyncio.run(main())


def serve_aiohttp(port_cb, truth):
    from aiohttp import web

    async def ws(request):
        tok = subprotocol_token(request.headers.get("Sec-WebSocket-Protocol"))
        resp = web.WebSocketResponse(protocols=[tok] if tok else (), compress=15)
        await resp.prepare(request)
        try:
            await talk(resp.send_str, request.transport.get_extra_info("peername")[1],
                       user_from_token(tok), truth)
        except (ConnectionResetError, RuntimeError):
            pass
        return resp

    async def main():
        app = web.Application()
        app.router.add_get("/ws", ws)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_cb(site._server.sockets[0].getsockname()[1])
        await asyncio.Future()

    asyncio.run(main())


def server(args):
    truth = Truth(args.truth)

    def ready(port):
        print("READY pid=%d port=%d" % (os.getpid(), port), flush=True)

    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    {"fastapi": serve_fastapi, "websockets": serve_websockets,
     "websockets-asyncio": serve_websockets_asyncio,
     "websockets-uvloop": lambda cb, t: serve_websockets(cb, t, loop="uvloop"),
     "aiohttp": serve_aiohttp}[args.framework](ready, truth)


async def clients(args):
    import websockets

    opened = 0
    received = [0] * args.conns

    async def one(i):
        nonlocal opened
        uid = user_of(i, args.seed)
        tok = jwt_handler.create_access_token(uid, "%032x" % i)
        sub = "jwt." + base64.urlsafe_b64encode(tok.encode()).decode().rstrip("=")
        async with websockets.connect("ws://127.0.0.1:%d/ws" % args.port,
                                      subprotocols=["jwt-auth", sub],
                                      compression="deflate", max_size=None) as ws:
            opened += 1
            while not os.path.exists(args.stop_file):
                try:
                    await asyncio.wait_for(ws.recv(), 0.5)
                    received[i] += 1
                except asyncio.TimeoutError:
                    pass

    async def go():
        while opened < args.conns or min(received) < 5:
            await asyncio.sleep(0.05)
        open(args.go_file, "w").close()

    await asyncio.gather(go(), *(one(i) for i in range(args.conns)))
    print("CLIENTS done received=%d" % sum(received), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--framework", choices=("fastapi", "websockets", "websockets-asyncio",
                                                "websockets-uvloop", "aiohttp"), required=True)
    s.add_argument("--truth")
    c = sub.add_parser("clients")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--conns", type=int, default=20)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--go-file", required=True)
    c.add_argument("--stop-file", required=True)
    args = ap.parse_args()
    if args.mode == "server":
        server(args)
    else:
        asyncio.run(clients(args))


if __name__ == "__main__":
    main()

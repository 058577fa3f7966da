#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Client of tls_ws_server.py (Debian's python3-websockets): wss://, certificate not verified.

  tls_ws_client.py --port P [-n CONNS] [--scenario NAME]... [--hold FILE]

Connection i carries user-i's JWT in Sec-WebSocket-Protocol when i is even, in Authorization
when odd; sends each scenario and reads its frame.  Prints one JSON line per connection:
{"port": its local port, "user", "frames": frames received}.
"""
import argparse
import asyncio
import json
import os
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "standin"))

import websockets  # noqa: E402

import jwt_handler  # noqa: E402


async def session(i, port, scenarios, hold=None):
    user = "user-%d" % i
    token = jwt_handler.create_access_token(user, "jti-%d" % i)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    kw = {"subprotocols": [jwt_handler.subprotocol_for(token)]} if i % 2 == 0 else \
        {"extra_headers": {"Authorization": "Bearer " + token}}
    async with websockets.connect("wss://127.0.0.1:%d/ws" % port, ssl=ctx,
                                  compression="deflate", **kw) as ws:
        frames = 0
        for name in scenarios:
            await ws.send(name)
            await asyncio.wait_for(ws.recv(), 20)
            frames += 1
            # Held open after its first frame until the file exists (a trace starts meanwhile).
            if hold and frames == 1:
                print("HELD", flush=True)
                while not os.path.exists(hold):
                    await asyncio.sleep(0.05)
        return {"port": ws.local_address[1], "user": user, "frames": frames}


async def main(a):
    res = await asyncio.gather(*(session(i, a.port, a.scenario, a.hold) for i in range(a.n)))
    for r in res:
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=2)
    ap.add_argument("--scenario", action="append")
    ap.add_argument("--hold", help="after the first frame, wait until this file exists")
    a = ap.parse_args()
    a.scenario = a.scenario or ["bridge", "bypass", "leak", "bridge"]
    asyncio.run(main(a))

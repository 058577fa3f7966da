#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Client of tests/apps/ws_held.py (python3-websockets 10.4, permessage-deflate offered).

Opens -n connections, one user each (a JWT in the subprotocol), and has each receive
--before messages; prints "OPEN" and waits for a line on stdin (the test starts its trace
then). Then each connection asks for --after messages, the first one --leak planted
breaches too, and says bye; prints one JSON line: per connection its local port, user and
the messages it received after OPEN (type and user of each), and the close code.
"""

import argparse
import asyncio
import json
import os
import sys

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "standin"))
import jwt_handler  # noqa: E402


async def recv_n(ws, n):
    return [json.loads(await ws.recv()) for _ in range(n)]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--before", type=int, default=5)
    ap.add_argument("--after", type=int, default=20)
    ap.add_argument("--leak", type=int, default=2)
    args = ap.parse_args()
    conns = []
    for i in range(args.n):
        user = f"user-{i}"
        proto = jwt_handler.subprotocol_for(jwt_handler.create_access_token(user, f"j{i}"))
        ws = await websockets.connect(f"ws://127.0.0.1:{args.port}/ws", subprotocols=[proto],
                                      ping_interval=None, open_timeout=20)
        conns.append((user, ws))
    for _, ws in conns:
        await ws.send(f"go {args.before}")
    await asyncio.gather(*(recv_n(ws, args.before) for _, ws in conns))
    print("OPEN", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    out = []
    for i, (user, ws) in enumerate(conns):
        await ws.send(f"go {args.after}")
        if i == 0 and args.leak:
            await ws.send(f"leak {args.leak}")
    for i, (user, ws) in enumerate(conns):
        msgs = await recv_n(ws, args.after + (args.leak if i == 0 else 0))
        await ws.send("bye")
        await ws.wait_closed()
        out.append({"port": ws.local_address[1], "user": user, "close_code": ws.close_code,
                    "messages": [(m["type"], m["user_id"]) for m in msgs]})
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""WebSocket test client (Debian's python3-websockets 10.4).

Opens -n concurrent connections to ws://127.0.0.1:PORT/ws (or --path),
negotiates no extension (compression=None), pings the server once (the server answers with
a pong) and reads until the server closes. Prints one JSON line per
connection: local port, messages received, close code. Exit status 0 when
every connection ended with the expected close code.

--hold SECONDS connects to /hold instead, where the server sends nothing,
and waits that long or until the connection ends, for tests that need a
connection open while something else happens.
"""

import argparse
import asyncio
import json
import sys

import websockets


async def one(uri, expect_code, hold):
    if hold is not None:
        uri = uri.rsplit("/", 1)[0] + "/hold"
    async with websockets.connect(
        uri, compression=None, ping_interval=None, max_size=None, open_timeout=10
    ) as ws:
        port = ws.local_address[1]
        if hold is not None:
            try:
                await asyncio.wait_for(ws.wait_closed(), hold)
            except asyncio.TimeoutError:
                pass
            return {"port": port, "held": True, "close_code": ws.close_code, "ok": True}
        pong = await ws.ping(b"cli")
        msgs = 0
        try:
            async for _ in ws:
                msgs += 1
        except websockets.ConnectionClosed:
            pass
        return {
            "port": port,
            "messages": msgs,
            "close_code": ws.close_code,
            "pong": pong.done(),
            "ok": ws.close_code == expect_code,
        }


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", "--connections", type=int, default=3)
    ap.add_argument("--expect-code", type=int, default=1011)
    ap.add_argument("--hold", type=float, default=None)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--path", default="/ws", help="/ws: the mix, /ticks: a slow stream")
    args = ap.parse_args()
    uri = f"ws://127.0.0.1:{args.port}{args.path}"
    res = await asyncio.wait_for(
        asyncio.gather(
            *(one(uri, args.expect_code, args.hold) for _ in range(args.connections)),
            return_exceptions=True,
        ),
        args.timeout,
    )
    ok = True
    for r in res:
        if isinstance(r, BaseException):
            print(json.dumps({"error": repr(r)}), flush=True)
            ok = False
        else:
            print(json.dumps(r), flush=True)
            ok = ok and r["ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

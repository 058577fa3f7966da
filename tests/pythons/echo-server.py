# SPDX-License-Identifier: GPL-2.0
"""WebSocket echo server that runs on every provisioned interpreter.

Usage: python3 echo-server.py PORT [HOST]

Prints "ready PORT" once listening and stops on SIGTERM or SIGINT. The handler
takes (ws, *rest) because websockets before 10.1 passes the request path as a
second argument and later versions do not.
"""
import asyncio
import signal
import sys

import websockets


async def echo(ws, *_rest):
    async for message in ws:
        await ws.send(message)


async def serve(host, port):
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with websockets.serve(echo, host, port):
        print("ready", port, flush=True)
        await stop


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: echo-server.py PORT [HOST]")
    host = sys.argv[2] if len(sys.argv) == 3 else "127.0.0.1"
    asyncio.run(serve(host, int(sys.argv[1])))


if __name__ == "__main__":
    main()

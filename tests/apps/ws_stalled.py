#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A WebSocket server (Debian's python3-websockets 10.4) whose client may stop reading, so
that what it sends stays queued in its transport when the connection ends.

Every client of /stream gets --frames text frames of --size bytes, each sent by produce();
the transport's flow control is set past what they need (write_limit), so send() does not
wait for the client.  Then, with --mode stall, the connection is aborted at once
(transport.abort(): what the transport still holds is dropped, as when a service gives up
on a stalled client); with --mode clean it is closed with a close frame once the client
read everything.  The server's socket send buffer is made small, so that a client that
does not read leaves most frames in the transport.

Prints "READY pid=N port=P", then one "SENT frames=N size=S" line per connection once its
frames were handed to the transport.  Runs until SIGINT or SIGTERM.
"""

import argparse
import asyncio
import os
import signal
import socket

import websockets


def payload(i, size):
    head = f'{{"type":"tick","i":{i},"pad":"'
    return head + "x" * (size - len(head) - 2) + '"}'


async def produce(ws, i, size):
    await ws.send(payload(i, size))


async def handler(ws, path, args):
    sock = ws.transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    for i in range(args.frames):
        await produce(ws, i, args.size)
    print(f"SENT frames={args.frames} size={args.size}", flush=True)
    if args.mode == "stall":
        ws.transport.abort()
        return
    await ws.close()


async def main(args):
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with websockets.serve(
        lambda ws, path: handler(ws, path, args),
        "127.0.0.1",
        args.port,
        compression=None,
        write_limit=2**24,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"READY pid={os.getpid()} port={port}", flush=True)
        await stop


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--mode", choices=("stall", "clean"), default="stall")
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    cli = ap.parse_args()
    if cli.loop == "uvloop":
        import uvloop

        uvloop.install()
    asyncio.run(main(cli))

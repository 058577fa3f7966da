#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Client of the causal test servers: opens --conns connections, asks each for --messages
messages ("go N PAD" over WebSocket, or a socket.io "go" event), reads until it has them all
and prints one JSON line per connection: its local port and the seqs it received.

--slow reads as a slow reader does: a small receive buffer, one message at a time with a
pause between them, so the server's writes pile up in its transport.
"""
import argparse
import asyncio
import json
import socket
import sys


async def ws_conn(args, index):
    import websockets

    sock = socket.socket()
    if args.slow:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    for _ in range(100):
        try:
            sock.connect(("127.0.0.1", args.port))
            break
        except ConnectionRefusedError:
            await asyncio.sleep(0.1)
    local = sock.getsockname()[1]
    kw = {"max_queue": 1, "read_limit": 4096} if args.slow else {}
    async with websockets.connect("ws://127.0.0.1:%d/" % args.port, sock=sock, compression=None,
                                  ping_interval=None, max_size=None, **kw) as ws:
        await ws.send("go %d %d" % (args.messages, args.pad))
        seqs = []
        if args.slow:
            await asyncio.sleep(0.3)
        while len(seqs) < args.messages:
            m = await asyncio.wait_for(ws.recv(), args.timeout)
            seqs.append(json.loads(m)["seq"])
            if args.slow:
                await asyncio.sleep(0.005)
    return {"index": index, "local_port": local, "seqs": seqs}


async def sio_conn(args, index):
    import socketio

    sio = socketio.AsyncClient()
    seqs = []
    done = asyncio.Event()

    @sio.on("causal")
    async def on_causal(data):
        seqs.append(data["seq"])
        if len(seqs) == args.messages:
            done.set()

    for attempt in range(100):
        try:
            await sio.connect("http://127.0.0.1:%d" % args.port, transports=["websocket"],
                              wait_timeout=args.timeout)
            break
        except socketio.exceptions.ConnectionError:
            if attempt == 99:
                raise
            await asyncio.sleep(0.1)
    sock = sio.eio.ws._response.connection.transport.get_extra_info("sockname")
    await sio.emit("go", {"n": args.messages})
    await asyncio.wait_for(done.wait(), args.timeout)
    await sio.disconnect()
    return {"index": index, "local_port": sock[1], "seqs": seqs}


async def main(args):
    conn = sio_conn if args.socketio else ws_conn
    rs = await asyncio.gather(*(conn(args, i) for i in range(args.conns)))
    for r in rs:
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=2)
    ap.add_argument("--messages", type=int, default=40)
    ap.add_argument("--pad", type=int, default=0)
    ap.add_argument("--slow", action="store_true")
    ap.add_argument("--socketio", action="store_true")
    ap.add_argument("--timeout", type=float, default=30)
    args = ap.parse_args()
    asyncio.run(main(args))
    sys.exit(0)

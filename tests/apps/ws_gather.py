#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""WebSocket servers for the tests of gathered writes and of uvloop hooks.

--mode writev   a plain socket server (handshake by hand, no framework): each client gets
                --batches sendmsg() calls of --frames text frames, one iovec per frame (as
                an event loop flushing its queue does), then a close 1000.  Logs every
                frame as a JSON line to --log, like the other test servers.
--mode uvloop   websockets 10.4 on uvloop: each client gets --frames text frames from
                push_updates(), then a close 1000.  With --burst K, --rounds R times: K
                frames from burst_updates(), queued without waiting for the socket, a
                0.2 s pause, then the --frames frames of push_updates().  A burst frame's
                payload is 32 bytes, a push frame's 40 (with a burst, so that the bytes
                objects of both share an allocator size class and so their addresses).
                With --pair N: N buffers handed to the transport by pair_updates(), each
                holding two text frames (payloads of 30 and 31 bytes), then the close.
--mode fork     the uvloop server, in a child forked once a line arrives on stdin: the
                parent imports uvloop and websockets first, as a pre-forking server does,
                and prints "CHILD pid=N" once the child listens.

Prints "READY pid=N port=P" on stdout once it listens (fork: once it waits for the line);
runs until SIGINT or SIGTERM.
"""

import argparse
import base64
import hashlib
import json
import os
import signal
import socket
import struct
import sys

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B65"


def frame(opcode, payload):
    n = len(payload)
    if n < 126:
        return bytes([0x80 | opcode, n]) + payload
    if n < 65536:
        return bytes([0x80 | opcode, 126]) + struct.pack("!H", n) + payload
    return bytes([0x80 | opcode, 127]) + struct.pack("!Q", n) + payload


def handshake(conn):
    req = b""
    while b"\r\n\r\n" not in req:
        chunk = conn.recv(4096)
        if not chunk:
            return False
        req += chunk
    key = None
    for line in req.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-key:"):
            key = line.split(b":", 1)[1].strip()
    if key is None:
        return False
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    return True


def serve_writev(args):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(16)
    log = open(args.log, "a") if args.log else None
    print(f"READY pid={os.getpid()} port={args.port}", flush=True)
    while True:
        conn, peer = ls.accept()
        if not handshake(conn):
            conn.close()
            continue
        for b in range(args.batches):
            bufs = [frame(1, json.dumps({"batch": b, "seq": i, "pad": "x" * (i % 40)}).encode())
                    for i in range(args.frames)]
            sent, want = conn.sendmsg(bufs), sum(len(x) for x in bufs)
            if sent != want:
                # A short write: the rest goes out as one buffer, as a loop would retry.
                conn.sendall(b"".join(bufs)[sent:])
            if log:
                for x in bufs:
                    log.write(json.dumps({"port": peer[1], "opcode": "text", "fin": True,
                                          "payload_len": len(x) - 2}) + "\n")
        conn.sendall(frame(8, struct.pack("!H", 1000)))
        if log:
            log.write(json.dumps({"port": peer[1], "opcode": "close", "fin": True,
                                  "payload_len": 2, "close_code": 1000}) + "\n")
            log.flush()
        try:
            conn.recv(64)
        except OSError:
            pass
        conn.close()


def serve_uvloop(args, announce):
    import asyncio

    import uvloop
    import websockets

    async def push_updates(ws, n):
        for i in range(n):
            if args.burst:
                await ws.send(f"push {i:035d}")
                await asyncio.sleep(0.002)
            else:
                await ws.send(json.dumps({"seq": i, "text": "update"}))

    async def burst_updates(ws, n):
        for i in range(n):
            # Straight to the transport: uvloop queues them all and flushes them together.
            ws.write_frame_sync(True, 1, f"burst {i:026d}".encode())
        await ws.drain()

    async def pair_updates(ws, n):
        for i in range(n):
            # One buffer, two frames: only the first starts the object handed over.
            ws.transport.write(frame(1, f"pair-a {i:023d}".encode()) +
                               frame(1, f"pair-b {i:024d}".encode()))
            await asyncio.sleep(0.002)

    async def handler(ws, path=None):
        if args.pair:
            await pair_updates(ws, args.pair)
            await ws.close(1000)
            return
        for _ in range(args.rounds if args.burst else 1):
            if args.burst:
                await burst_updates(ws, args.burst)
                await asyncio.sleep(0.2)
            await push_updates(ws, args.frames)
        await ws.close(1000)

    async def main():
        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
        async with websockets.serve(handler, "127.0.0.1", args.port, compression=None):
            announce()
            await stop

    uvloop.install()
    asyncio.run(main())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("writev", "uvloop", "fork"), required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--frames", type=int, default=500)
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--burst", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--pair", type=int, default=0)
    ap.add_argument("--log")
    args = ap.parse_args()
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.mode == "writev":
        return serve_writev(args)
    if args.mode == "uvloop":
        return serve_uvloop(args, lambda: print(f"READY pid={os.getpid()} port={args.port}",
                                                flush=True))
    import uvloop  # noqa: F401  (mapped before the fork, as a pre-forking server has it)
    import websockets  # noqa: F401

    print(f"READY pid={os.getpid()} port={args.port}", flush=True)
    sys.stdin.readline()
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        serve_uvloop(args, lambda: print(f"CHILD pid={os.getpid()}", flush=True))
        os._exit(0)
    try:
        os.waitpid(child, 0)
    except (KeyboardInterrupt, SystemExit):
        os.kill(child, signal.SIGTERM)
        os.waitpid(child, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

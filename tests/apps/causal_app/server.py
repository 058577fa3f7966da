#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Causal test server on python3-websockets 10.4: frames produced by one function and sent
later by another task, callback, thread, queue or the transport (tests/integration/
test_causal.py).

--pattern picks the hand-over; --loop asyncio (the selector loop, C _asyncio Tasks) or
uvloop.  A client sends "go N" and gets N messages, alternately produced by the bridge
(services/bridge.py) and by a bypass (agents/rogue.py), each logged to --truth at its
producing call (truth.py).  Compression and keepalive pings are off: every frame on the wire
is a logged message.  Prints "READY pid=N port=P" once it listens.
"""
import argparse
import asyncio
import itertools
import os
import signal
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import websockets  # noqa: E402

import truth  # noqa: E402
from agents import rogue  # noqa: E402
from services.bridge import Bridge  # noqa: E402
from services.send_queue import SendQueue  # noqa: E402
from websocket_core.manager import Manager  # noqa: E402

MGR = Manager()
BRIDGE = Bridge(MGR)
CONN_IDS = itertools.count(1)
PATTERNS = ("task", "chain", "future", "call_soon", "threadsafe", "to_thread", "queued", "big")


def producers(pattern):
    return getattr(BRIDGE, "notify_" + pattern), getattr(rogue, "rogue_" + pattern)


async def produce(pattern, conn, ws, n, pad):
    bridged, bypass = producers(pattern)
    loop = asyncio.get_running_loop()
    if pattern == "threadsafe":
        # One producer thread, which waits for each send in turn.
        def work():
            for i in range(n):
                if i % 2 == 0:
                    bridged(conn, loop)
                else:
                    bypass(MGR, conn, loop)
        t = threading.Thread(target=work, name="producer")
        t.start()
        await asyncio.to_thread(t.join)
        return
    queue = SendQueue(ws) if pattern == "queued" else None
    sock = ws.transport.get_extra_info("socket")
    fd = sock.fileno()
    if pattern == "big":
        # A small send buffer: the slow reader's backlog piles up in the transport's buffer
        # within a few frames, whatever the kernel's autotuning would allow.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    for i in range(n):
        args = {"to_thread": (fd,), "queued": (queue,), "big": (ws, pad)}.get(pattern, (ws,))
        if i % 2 == 0:
            r = bridged(conn, *args)
        else:
            r = bypass(MGR, conn, *args)
        if asyncio.iscoroutine(r):
            await r
        # Let each hand-over run before the next one: one frame per write.
        await asyncio.sleep(0.002 if pattern != "big" else 0)
    if queue:
        while not queue.q.empty():
            await asyncio.sleep(0.01)


async def handler(ws, path=None):
    conn = next(CONN_IDS)
    MGR.register(conn, ws)
    try:
        async for message in ws:
            cmd, n, pad = (message.split() + ["0"])[:3]
            if cmd == "go":
                await produce(ARGS.pattern, conn, ws, int(n), int(pad))
    finally:
        MGR.unregister(conn)


async def main():
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with websockets.serve(handler, "127.0.0.1", ARGS.port, compression=None,
                                ping_interval=None, max_size=None):
        print("READY pid=%d port=%d" % (os.getpid(), ARGS.port), flush=True)
        await stop


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--pattern", choices=PATTERNS, required=True)
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    ARGS = ap.parse_args()
    truth.install(ARGS.truth)
    if ARGS.loop == "uvloop":
        import uvloop

        uvloop.install()
    asyncio.run(main())

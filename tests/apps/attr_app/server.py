#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Ground-truth WebSocket server for attribution tests, standard library only.

  server.py --port PORT --log TRUTH.jsonl [--host 127.0.0.1]

Runs unchanged on CPython 3.9 to 3.14.  For each text message "NAME" from the client it
runs scenario NAME (frames written from known functions in modules under agents/,
core/ and services/), then writes a text frame "end".  Every frame the server writes goes
to TRUTH.jsonl with the stack CPython reports at the socket send (see truth.py).
stdout: "READY pid=PID port=PORT python=X.Y.Z", then one line per connection event.
"""
import argparse
import asyncio
import concurrent.futures
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from attr_app import truth  # noqa: E402
from attr_app.agents import greeter, planner, streamer  # noqa: E402
from attr_app.agents.research import deep  # noqa: E402
from attr_app.core import manager, timers  # noqa: E402
from attr_app.core.conn import Conn  # noqa: E402
from attr_app.services import offload  # noqa: E402
from attr_app.ws import frames  # noqa: E402

POOL = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="attrpool")

SCENARIOS = {
    "greet": greeter.greet,
    "research": deep.research,
    "plan": planner.plan,
    "manage": manager.manage,
    "tick": timers.schedule_tick,
    "stream": streamer.stream,
    "offload": lambda conn: offload.offload(conn, POOL),
}


def say(*words):
    print(*words, flush=True)


async def dispatch(conn, name):
    await SCENARIOS[name](conn)
    conn.writer.write(conn.frame("text", conn.payload(name, "end")))
    await conn.writer.drain()
    say("scenario", name, "conn=%d" % conn.peer, "frames=%d" % conn.seq)


async def serve(reader, writer):
    peer = writer.get_extra_info("peername")[1]
    try:
        _, headers = frames.parse_request(await reader.readuntil(b"\r\n\r\n"))
        writer.write(frames.response(headers))
        await writer.drain()
        conn = Conn(reader, writer, peer)
        say("open", "conn=%d" % peer)
        while True:
            opcode, fin, payload = await frames.read_frame(reader)
            if opcode == "close":
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                conn.writer.write(conn.frame("close", struct.pack("!H", 1000) + b"bye"))
                await conn.writer.drain()
                say("close", "conn=%d" % peer, "code=%d" % code)
                break
            if opcode == "text" and fin:
                await dispatch(conn, payload.decode())
            elif opcode != "pong":
                raise frames.ProtocolError("unexpected %s frame" % opcode)
    except (frames.ProtocolError, KeyError, asyncio.IncompleteReadError) as e:
        say("error", "conn=%d" % peer, type(e).__name__, str(e))
    finally:
        writer.close()


async def main(args):
    server = await asyncio.start_server(serve, args.host, args.port)
    say("READY", "pid=%d" % os.getpid(), "port=%d" % args.port, "python=%s" % sys.version.split()[0])
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    truth.install(a.log)
    asyncio.run(main(a))

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Client of server.py, standard library only.

  client.py --port PORT [-n CONNS] [--scenario NAME]... [--timeout S]

Opens CONNS concurrent connections; on each runs every scenario in turn (waits for its
"end" frame), answers pings, then closes with 1000.  Prints one JSON line per connection:
{"index", "local_port", "frames": [[opcode, fin, payload], ...]} with text payloads as
text and the others as hex.  Exit 0 when every connection completed its closing handshake.
"""
import argparse
import asyncio
import base64
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from attr_app.ws import frames  # noqa: E402

ALL = ["greet", "research", "plan", "manage", "tick", "stream", "offload"]


def show(opcode, payload):
    if opcode in ("text", "continuation"):
        return payload.decode("utf-8", "replace")
    return payload.hex()


async def session(index, port, scenarios):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(frames.request("127.0.0.1", port, key))
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status or frames.accept_key(key).encode() not in head:
        raise RuntimeError("handshake refused: %r" % head)
    got = []
    for name in scenarios:
        writer.write(frames.encode("text", name.encode(), mask=os.urandom(4)))
        while True:
            opcode, fin, payload = await frames.read_frame(reader)
            got.append([opcode, fin, show(opcode, payload)])
            if opcode == "ping":
                writer.write(frames.encode("pong", payload, mask=os.urandom(4)))
            if opcode == "text" and fin:
                msg = json.loads(payload)
                if msg["scenario"] == name and msg["text"] == "end":
                    break
    writer.write(frames.encode("close", struct.pack("!H", 1000), mask=os.urandom(4)))
    opcode, fin, payload = await frames.read_frame(reader)
    got.append([opcode, fin, show(opcode, payload)])
    if opcode != "close":
        raise RuntimeError("expected the close reply, got %s" % opcode)
    local = writer.get_extra_info("sockname")[1]
    writer.close()
    return {"index": index, "local_port": local, "frames": got}


async def main(args):
    runs = [session(i, args.port, args.scenario or ALL) for i in range(args.n)]
    for r in await asyncio.wait_for(asyncio.gather(*runs), args.timeout):
        print(json.dumps(r, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=2)
    ap.add_argument("--scenario", action="append")
    ap.add_argument("--timeout", type=float, default=30)
    asyncio.run(main(ap.parse_args()))

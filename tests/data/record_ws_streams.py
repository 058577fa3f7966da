#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Records real server-to-client WebSocket byte streams for the unit tests.

A websockets 10.4 server sends a fixed sequence of messages to a websockets client through
a loopback TCP relay that records every byte the server writes (the 101 response and then
the frames).  For each configuration it writes tests/data/<name>.bin (the raw bytes) and
tests/data/<name>.json (the messages the server sent, in order, and the close it sent).

Run with Debian's interpreter, which has python3-websockets:
    /usr/bin/python3 tests/data/record_ws_streams.py
"""

import asyncio
import base64
import json
import os
import random
import sys

import websockets
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIGS = {
    # websockets' default: permessage-deflate with context takeover
    "ws_deflate_takeover": {"compression": "deflate"},
    # a fresh compression context for every server message
    "ws_deflate_no_takeover": {
        "extensions": [
            ServerPerMessageDeflateFactory(
                server_no_context_takeover=True,
                server_max_window_bits=10,
                compress_settings={"memLevel": 5},
            )
        ],
        "compression": None,
    },
    "ws_plain": {"compression": None},
}


def messages():
    """The sequence every server sends: (kind, value) with kind text|binary|fragments|ping."""
    rnd = random.Random(6455)
    out = []
    for i in range(6):
        out.append(("text", json.dumps({"type": "agent_update", "run_id": f"run-{i}",
                                        "user_id": "u-%d" % (i % 2), "seq": i})))
    body = {"type": "agent_completed", "user_id": "u-1",
            "data": {"result": " ".join("token%d" % rnd.randrange(50) for _ in range(150))}}
    out.append(("text", json.dumps(body)))  # about 1 KiB, very compressible
    out.append(("text", json.dumps({"type": "tool_output", "user_id": "u-0",
                                    "blob": "".join("%08x" % rnd.getrandbits(32)
                                                    for _ in range(9000))})))  # 72 KiB
    out.append(("binary", base64.b64encode(bytes(rnd.getrandbits(8) for _ in range(300))).decode()))
    out.append(("ping", "hb-1"))
    out.append(("fragments", [json.dumps({"type": "stream_part"})[:10],
                              json.dumps({"type": "stream_part"})[10:], ""]))
    out.append(("text", json.dumps({"type": "agent_update", "run_id": "run-0", "user_id": "u-0",
                                    "seq": 6})))
    out.append(("text", ""))
    out.append(("text", "h\u00e9llo \u20ac"))
    return out


async def relay_pipe(reader, writer, record):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if record is not None:
                record.append(data)
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def record_one(name, server_kwargs):
    seq = messages()
    recorded = []
    sent = []

    async def handler(ws, path):
        for kind, value in seq:
            if kind == "text":
                await ws.send(value)
                sent.append({"opcode": "text", "text": value})
            elif kind == "binary":
                raw = base64.b64decode(value)
                await ws.send(raw)
                sent.append({"opcode": "binary", "hex": raw.hex()})
            elif kind == "ping":
                await ws.ping(value.encode())
                sent.append({"opcode": "ping", "hex": value.encode().hex()})
            elif kind == "fragments":
                await ws.send(iter(value))
                sent.append({"opcode": "text", "text": "".join(value),
                             "fragments": len(value)})
        await ws.close(1000, "done")

    server = await websockets.serve(handler, "127.0.0.1", 0, max_size=None, **server_kwargs)
    sport = server.sockets[0].getsockname()[1]

    async def on_client(creader, cwriter):
        sreader, swriter = await asyncio.open_connection("127.0.0.1", sport)
        await asyncio.gather(relay_pipe(creader, swriter, None),
                             relay_pipe(sreader, cwriter, recorded))

    relay = await asyncio.start_server(on_client, "127.0.0.1", 0)
    rport = relay.sockets[0].getsockname()[1]
    received = 0
    async with websockets.connect(f"ws://127.0.0.1:{rport}/stream", max_size=None,
                                  compression="deflate") as ws:
        negotiated = ws.response_headers.get("Sec-WebSocket-Extensions")
        try:
            async for _ in ws:
                received += 1
        except websockets.ConnectionClosed:
            pass
    server.close()
    await server.wait_closed()
    await asyncio.sleep(0.2)
    relay.close()
    await relay.wait_closed()

    raw = b"".join(recorded)
    with open(os.path.join(HERE, name + ".bin"), "wb") as f:
        f.write(raw)
    manifest = {
        "generator": "tests/data/record_ws_streams.py",
        "websockets": websockets.__version__,
        "extensions": negotiated,
        "messages": sent,
        "close": {"code": 1000, "reason": "done"},
        "bytes": len(raw),
    }
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"{name}: {len(raw)} bytes, {received} messages received, extensions={negotiated!r}")


async def main():
    for name, kwargs in CONFIGS.items():
        await record_one(name, kwargs)


if __name__ == "__main__":
    if websockets.__version__.split(".")[0] != "10":
        sys.exit("needs websockets 10.x (Debian bookworm's python3-websockets)")
    asyncio.run(main())

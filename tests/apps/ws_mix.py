# SPDX-License-Identifier: GPL-2.0
"""The known frame mix that the test servers send to every client, and the
server-side frame log that is their own ground truth.

Both servers (websockets' asyncio server and uvicorn+FastAPI on uvloop) run on
the legacy protocol class of websockets 10.4, whose every frame goes through
write_frame_sync(); FrameLogMixin hooks it, so the log holds every frame the
server puts on the wire, including the pongs the library sends on its own.
Bursts (several frames in one transport.write) are serialized here and logged
frame by frame before the single write.

Run with /usr/bin/python3 (Debian's websockets 10.4).
"""

import asyncio
import json
import os
import time

import struct

from websockets.frames import Frame, Opcode

OPNAMES = {
    Opcode.CONT: "continuation",
    Opcode.TEXT: "text",
    Opcode.BINARY: "binary",
    Opcode.CLOSE: "close",
    Opcode.PING: "ping",
    Opcode.PONG: "pong",
}

SMALL_TEXT_LENS = (0, 5, 125, 126, 1000, 65535, 65536)
BIG = 70 * 1024
BINARY_LENS = (1, 300, 65536)
CLOSE_REASON = "mix done"


def text_of(n, seed="t"):
    """Printable text of exactly n bytes."""
    pat = (seed + "abcdefghijklmnopqrstuvwxyz0123456789") * (n // 37 + 1)
    return pat[:n]


def bytes_of(n):
    return bytes(i & 0xFF for i in range(n))


class FrameLog:
    """One JSON line per frame written by the server."""

    def __init__(self, path):
        self.f = open(path, "a", buffering=1)

    def frame(self, port, opcode, fin, data):
        rec = {
            "t": time.time(),
            "pid": os.getpid(),
            "port": port,
            "opcode": OPNAMES[Opcode(opcode)],
            "fin": bool(fin),
            "payload_len": len(data),
        }
        if Opcode(opcode) == Opcode.CLOSE and len(data) >= 2:
            rec["close_code"] = struct.unpack("!H", data[:2])[0]
        self.f.write(json.dumps(rec) + "\n")


class BurstMixin:
    """Mix into a websockets legacy server protocol class: raw bursts, and
    their log lines when frame_log is set."""

    frame_log = None

    def client_port(self):
        peer = self.transport.get_extra_info("peername")
        return peer[1] if peer else None

    def write_burst(self, frames):
        """Serialize frames [(opcode, data, fin)] and write them in ONE
        transport.write call."""
        out = bytearray()
        for opcode, data, fin in frames:
            if self.frame_log is not None:
                self.frame_log.frame(self.client_port(), opcode, fin, data)
            out += Frame(opcode, data, fin).serialize(mask=False, extensions=[])
        self.transport.write(bytes(out))


class FrameLogMixin(BurstMixin):
    """BurstMixin that also logs every frame the library writes."""

    def write_frame_sync(self, fin, opcode, data):
        # Extensions are off (no permessage-deflate), so data is the payload
        # exactly as it goes on the wire.
        if self.frame_log is not None:
            self.frame_log.frame(self.client_port(), opcode, fin, data)
        super().write_frame_sync(fin, opcode, data)


async def run_mix(proto, send_text=None, send_bytes=None, close=None, pause=0.005):
    """Send the known mix on one connection.

    proto is the websockets legacy protocol object of the connection (with
    BurstMixin); send_text/send_bytes/close default to its own methods and
    let the FastAPI server send data frames through the ASGI interface.
    """
    send_text = send_text or proto.send
    send_bytes = send_bytes or proto.send
    close = close or (lambda: proto.close(code=1011, reason=CLOSE_REASON))

    # Small and 70 KiB text frames, including the 7/16/64-bit length limits.
    for n in SMALL_TEXT_LENS:
        await send_text(text_of(n))
        await asyncio.sleep(pause)
    for i in range(2):
        await send_text(text_of(BIG, seed=str(i)))
        await asyncio.sleep(pause)

    # Binary frames.
    for n in BINARY_LENS:
        await send_bytes(bytes_of(n))
        await asyncio.sleep(pause)

    # Ping (the client answers) and an unsolicited pong.
    await proto.ping(b"srv1")
    await asyncio.sleep(pause)
    await proto.pong(b"unsolicited")
    await asyncio.sleep(pause)

    # Fragmented text message with a ping between two fragments.
    async def text_fragments():
        yield text_of(100, "a")
        await proto.ping(b"mid")
        yield text_of(BIG, "b")
        yield text_of(50, "c")

    await proto.send(text_fragments())
    await asyncio.sleep(pause)

    # Fragmented binary message.
    await proto.send([bytes_of(10), bytes_of(2000), bytes_of(3)])
    await asyncio.sleep(pause)

    # Burst of small frames in one write, a fragmented message with an
    # interleaved control frame inside it.
    proto.write_burst(
        [
            (Opcode.TEXT, text_of(20).encode(), True),
            (Opcode.BINARY, bytes_of(200), True),
            (Opcode.PING, b"b1", True),
            (Opcode.TEXT, text_of(30).encode(), False),
            (Opcode.PONG, b"", True),
            (Opcode.CONT, text_of(40).encode(), False),
            (Opcode.CONT, text_of(10).encode(), True),
            (Opcode.TEXT, text_of(126).encode(), True),
        ]
    )
    await proto.drain()
    await asyncio.sleep(pause)

    # Burst with 70 KiB frames: more than 140 KiB in one write.
    proto.write_burst(
        [
            (Opcode.TEXT, text_of(BIG, "x").encode(), True),
            (Opcode.BINARY, bytes_of(7), True),
            (Opcode.TEXT, text_of(BIG, "y").encode(), True),
            (Opcode.TEXT, text_of(3).encode(), True),
        ]
    )
    await proto.drain()
    await asyncio.sleep(pause)

    await close()


async def run_ticks(proto, count=300, interval=0.05):
    """A slow stream for connections that must already be open when tracing
    starts, long enough (15 s) to outlast a start-up on a loaded machine: count text frames (one 70 KiB every tenth) and a binary frame,
    interval apart, then a close with code 1011."""
    for i in range(count):
        if i % 10 == 9:
            await proto.send(text_of(BIG, str(i % 10)))
        else:
            await proto.send(text_of(10 + i))
        await proto.send(bytes_of(i + 1))
        await asyncio.sleep(interval)
    await proto.close(code=1011, reason=CLOSE_REASON)

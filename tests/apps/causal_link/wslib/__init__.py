# SPDX-License-Identifier: GPL-2.0
"""A minimal WebSocket server side, standard library only: the "library" of the causal-link
app, named transport by its policy, so that a send it makes names no application function
on its own stack."""

import asyncio
import base64
import hashlib
import os
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def accept(reader, writer):
    """Reads the upgrade request, answers 101; returns the request path."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1]
    key = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    accept_key = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept_key).encode())
    await writer.drain()
    return path


def frame(text, opcode=1):
    data = text.encode()
    if len(data) < 126:
        return bytes([0x80 | opcode, len(data)]) + data
    return bytes([0x80 | opcode, 126]) + struct.pack("!H", len(data)) + data


async def send(writer, text):
    writer.write(frame(text))
    await writer.drain()


async def recv(reader):
    """One masked client text frame (short), as str."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    mask = await reader.readexactly(4)
    data = await reader.readexactly(n)
    return bytes(c ^ mask[i % 4] for i, c in enumerate(data)).decode()


async def close(writer):
    writer.write(bytes([0x88, 2]) + struct.pack("!H", 1000))
    await writer.drain()
    writer.close()


class Buffered:
    """A buffered write as Twisted's and tornado's transports make it: write() only appends
    and, when the buffer was empty, registers a writer callback with the loop; the callback
    sends everything buffered since, whoever wrote it.  The loop's _add_writer (as asyncio's
    own transports call it: the socket is the transport's) makes that callback a Handle, in a
    copy of the context of the write that registered it."""

    def __init__(self, writer):
        self.fd = writer.get_extra_info("socket").fileno()
        self.loop = asyncio.get_running_loop()
        self.buf = []

    def write(self, data):
        if not self.buf:
            self.loop._add_writer(self.fd, self._flush)
        self.buf.append(data)

    def _flush(self):
        data = b"".join(self.buf)
        n = os.write(self.fd, data)
        self.buf = [data[n:]] if n < len(data) else []
        if not self.buf:
            self.loop._remove_writer(self.fd)

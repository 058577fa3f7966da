# SPDX-License-Identifier: GPL-2.0
"""Minimal RFC 6455 framing and handshake, standard library only (CPython 3.9-3.14).

No extensions are negotiated (no permessage-deflate): what the server writes is exactly
what it encodes here.
"""
import base64
import hashlib
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OPCODES = {"continuation": 0x0, "text": 0x1, "binary": 0x2, "close": 0x8, "ping": 0x9,
           "pong": 0xA}
NAMES = {v: k for k, v in OPCODES.items()}


class ProtocolError(Exception):
    pass


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


def parse_request(head):
    """Headers of an HTTP/1.1 upgrade request (bytes up to and including CRLFCRLF)."""
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if method != "GET" or headers.get("upgrade", "").lower() != "websocket" or \
            "sec-websocket-key" not in headers:
        raise ProtocolError("not a WebSocket upgrade: %r" % lines[0])
    return path, headers


def response(headers):
    return ("HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n" % accept_key(headers["sec-websocket-key"])
            ).encode("ascii")


def request(host, port, key):
    return ("GET /attr HTTP/1.1\r\n"
            "Host: %s:%d\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" % (host, port, key)).encode("ascii")


def encode(opcode, payload, fin=True, mask=None):
    """One frame; mask is 4 bytes for client frames, None for server frames."""
    head = bytearray([(0x80 if fin else 0) | OPCODES[opcode]])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head.append(bit | n)
    elif n < 65536:
        head.append(bit | 126)
        head += struct.pack("!H", n)
    else:
        head.append(bit | 127)
        head += struct.pack("!Q", n)
    if mask:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes(head) + payload


async def read_frame(reader):
    """(opcode name, fin, payload) of the next frame, unmasked."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    mask = await reader.readexactly(4) if b1 & 0x80 else None
    payload = await reader.readexactly(n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    if b0 & 0x70:
        raise ProtocolError("reserved bits set: no extension was negotiated")
    if (b0 & 0x0F) not in NAMES:
        raise ProtocolError("unknown opcode %d" % (b0 & 0x0F))
    return NAMES[b0 & 0x0F], bool(b0 & 0x80), payload

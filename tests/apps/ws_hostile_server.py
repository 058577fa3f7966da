#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A hostile traced service: a WebSocket server written on bare sockets (so no library
stands between it and the bytes it sends).  It echoes the client's Sec-WebSocket-Protocol
(a `jwt.` entry included, as services that authenticate by subprotocol do) and, on each
connection, does one attack (--attack):

bomb   negotiates permessage-deflate and sends BOMBS compressed messages that each inflate
       to BOMB_MIB MiB of zeros from about a quarter of a megabyte on the wire, then AFTER
       ordinary compressed JSON messages {"type":"after","seq":N}, then a close frame.
       --pace spaces the bombs out: a rate any collector that does bounded work per byte
       keeps up with, so ring-buffer drops can only come from the work the bombs cause.
       --takeover keeps the compression context between messages.
values sends one text message {"type":TYPE,"user_id":USER,"FIELD":VALUE} per line of
       --values FILE (VALUE: the line), BATCH frames per write, then a close frame.
       --field names FIELD (thread_id); --type-field puts the line in "type" instead.

Prints `READY pid=N ...` when listening.
"""

import argparse
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import time
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload, opcode=1, rsv1=True):
    b0 = 0x80 | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, n])
    elif n < 65536:
        head = bytes([b0, 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, 127]) + struct.pack(">Q", n)
    return head + payload


def message(comp, data):
    """One permessage-deflate message from a compressor (RFC 7692 7.2.1)."""
    out = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def bomb_payload(mib):
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    out = b"".join(comp.compress(zeros) for _ in range(mib)) + comp.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


def handshake(conn, deflate, takeover):
    req = b""
    while b"\r\n\r\n" not in req:
        chunk = conn.recv(4096)
        if not chunk:
            return False
        req += chunk
    key = proto = None
    for line in req.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
        if name.strip().lower() == b"sec-websocket-protocol":
            proto = value.strip()
    if key is None:
        return False
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    head = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n")
    if deflate:
        head += b"Sec-WebSocket-Extensions: permessage-deflate" + (
            b"" if takeover else b"; server_no_context_takeover") + b"\r\n"
    if proto:
        # The whole offer echoed, token included (a careless service).
        head += b"Sec-WebSocket-Protocol: " + proto + b"\r\n"
    conn.sendall(head + b"\r\n")
    return True


def serve_values(conn, args, values):
    if not handshake(conn, False, False):
        return
    batch = []
    for v in values:
        if args.type_field:
            msg = {"type": v, "user_id": args.user}
        else:
            msg = {"type": "update", "user_id": args.user, args.field: v}
        batch.append(frame(json.dumps(msg).encode(), rsv1=False))
        if len(batch) == args.batch:
            conn.sendall(b"".join(batch))
            batch = []
            time.sleep(args.pace)
    conn.sendall(b"".join(batch) + frame(struct.pack(">H", 1000), opcode=8, rsv1=False))


def serve_bomb(conn, args, bomb):
    if not handshake(conn, True, args.takeover):
        return
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    for _ in range(args.bombs):
        # Each bomb on its own: a compressor with history would not make these bytes.
        conn.sendall(frame(bomb))
        time.sleep(args.pace)
        if not args.takeover:
            comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    for i in range(args.after):
        if not args.takeover:
            comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        conn.sendall(frame(message(comp, b'{"type":"after","seq":%d}' % i)))
    conn.sendall(frame(struct.pack(">H", 1000), opcode=8, rsv1=False))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--attack", choices=["bomb", "values"], default="bomb")
    ap.add_argument("--values", help="values: one per line")
    ap.add_argument("--field", default="thread_id")
    ap.add_argument("--type-field", action="store_true")
    ap.add_argument("--user", default="alice")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--bombs", type=int, default=100)
    ap.add_argument("--bomb-mib", type=int, default=250)
    ap.add_argument("--after", type=int, default=50)
    ap.add_argument("--takeover", action="store_true")
    ap.add_argument("--pace", type=float, default=0.0, help="seconds between bombs")
    args = ap.parse_args()
    bomb = values = None
    if args.attack == "bomb":
        bomb = bomb_payload(args.bomb_mib)
    else:
        with open(args.values) as f:
            values = f.read().split()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(8)
    info = f"bomb_wire={len(bomb)}" if bomb else f"values={len(values)}"
    print(f"READY pid={os.getpid()} {info}", flush=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            try:
                if bomb:
                    serve_bomb(conn, args, bomb)
                else:
                    serve_values(conn, args, values)
            except OSError as e:
                print(f"connection: {e}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()

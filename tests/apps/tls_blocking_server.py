#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A wss:// service on blocking sockets (ssl.SSLContext.wrap_socket, one thread per
connection), standard library only, for the TLS tests: the ciphertext of each SSL_write is
written inside the call.  It speaks the protocol of tls_ws_server.py (same scenarios, same
truth log, sends marked `# send: FUNCTION`) without compression.

  tls_blocking_server.py --port P --cert C --key K --log TRUTH.jsonl [--late FILE]

--late FILE: the ssl module is imported only once FILE exists (after wsaudit is tracing).
Prints "READY pid=N port=P python=X.Y.Z" once it listens.
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tls_common import SCENARIOS, user_of  # noqa: E402

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LOG_LOCK = threading.Lock()


def frame(payload):
    n = len(payload)
    head = struct.pack("!BB", 0x81, n) if n < 126 else struct.pack("!BBH", 0x81, 126, n)
    return head + payload


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_frame(s):
    """(opcode, payload) of one masked client frame."""
    b0, b1 = read_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(s, 8))[0]
    mask = read_exact(s, 4)
    data = read_exact(s, n)
    return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


class AgentWebSocketBridge:
    def __init__(self, ws):
        self.ws = ws

    def send_event(self, user_id, event):
        self.ws.sendall(frame(json.dumps(event).encode()))  # send: AgentWebSocketBridge.send_event


def bridge(ws, conn):
    AgentWebSocketBridge(ws).send_event(conn["user"], {
        "type": "agent_event", "user_id": conn["user"], "seq": conn["seq"]})


def bypass(ws, conn):
    event = {"type": "agent_event", "user_id": conn["user"], "seq": conn["seq"]}
    ws.sendall(frame(json.dumps(event).encode()))  # send: bypass


def leak(ws, conn):
    victim = "victim-of-%s" % conn["user"]
    AgentWebSocketBridge(ws).send_event(victim, {
        "type": "agent_event", "user_id": victim, "seq": conn["seq"]})


FUNCS = {"bridge": bridge, "bypass": bypass, "leak": leak}  # "big": tls_ws_server.py only


def serve(s, port, log):
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
    headers = {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    key = headers["Sec-WebSocket-Key"]
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    s.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade"
               "\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
    conn = {"port": port, "user": user_of(headers), "seq": 0}
    while True:
        opcode, payload = read_frame(s)
        if opcode == 8:
            s.sendall(b"\x88\x02\x03\xe8")
            return
        name = payload.decode()
        function, expect = SCENARIOS[name]
        with LOG_LOCK:
            log.write(json.dumps({"port": port, "seq": conn["seq"], "function": function,
                                  "user": conn["user"], "expect": expect}) + "\n")
            log.flush()
        FUNCS[name](s, conn)
        conn["seq"] += 1


def handle(ctx, raw, port, log):
    try:
        with ctx.wrap_socket(raw, server_side=True) as s:
            serve(s, port, log)
    except (EOFError, OSError):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--late")
    a = ap.parse_args()
    log = open(a.log, "a")
    lsock = socket.create_server(("127.0.0.1", a.port))
    print("READY pid=%d port=%d python=%s" % (os.getpid(), a.port, sys.version.split()[0]),
          flush=True)
    while a.late and not os.path.exists(a.late):
        time.sleep(0.05)
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    while True:
        raw, addr = lsock.accept()
        threading.Thread(target=handle, args=(ctx, raw, addr[1], log), daemon=True).start()


if __name__ == "__main__":
    main()

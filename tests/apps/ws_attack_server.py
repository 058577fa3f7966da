#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A WebSocket service that authenticates its clients and lets a test play the attacker,
from the client side (the bytes of the upgrade request) or from inside the service (the
way its frames reach the socket).

--mode starlette: FastAPI/Starlette on uvicorn (Debian packages), so the request is parsed
  by a real framework.  The user is the `sub` of the JWT in, in order: Authorization
  ("Bearer ", Starlette's Headers.get: the first header), the `token` query parameter
  (Starlette's QueryParams: the last occurrence), a "jwt."-prefixed subprotocol entry (the
  first, not selected in the response).
--mode raw: a threaded server on plain sockets doing its own handshake (user from the first
  Authorization header), for the attacks that need control of every syscall: the 101 split
  across writes (?how=split101), the 101 sharing a write with the first frames (?how=daphne,
  as daphne sends it), and frames written with write, sendfile, splice, vmsplice then splice,
  after close(dup(fd)), from a thread whose name is not UTF-8, by a forked child that
  inherited the socket, or by another process the socket was passed to over a UNIX socket
  (SCM_RIGHTS, --scm PATH).

Either way the client's first text message is a command, {"send": [TEXT, ...]}, and the
service sends each TEXT back through AgentWebSocketBridge.send (the default policy's bridge),
then waits for the client to close.  Each authenticated connection is logged as one JSON
line in --log: {"port": CLIENT_PORT, "user": SUB or null}.

Prints "READY pid=N port=P" once it listens; runs until killed.
"""

import argparse
import base64
import ctypes
import hashlib
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time
from urllib.parse import parse_qs, urlsplit

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PR_SET_NAME = 15
LIBC = ctypes.CDLL(None, use_errno=True)
LOG_LOCK = threading.Lock()


def jwt_sub(token):
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        return json.loads(base64.urlsafe_b64decode(payload))["sub"]
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def log_auth(path, port, user):
    with LOG_LOCK, open(path, "a") as f:
        f.write(json.dumps({"port": port, "user": user}) + "\n")


def frame(payload, opcode=1):
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


# --- raw mode --------------------------------------------------------------------------------


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def recv_frame(sock):
    b0, b1 = recv_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(sock, 8))[0]
    mask = recv_exact(sock, 4) if b1 & 0x80 else b"\0\0\0\0"
    data = recv_exact(sock, n)
    return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


def scm_send(path, sock, data):
    """Hands the connection's socket to the process listening on path, with the bytes it
    must write on it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as u:
        u.connect(path)
        socket.send_fds(u, [struct.pack("!I", len(data)) + data], [sock.fileno()])
        u.recv(1)  # written


class AgentWebSocketBridge:
    """The designated way out; `how` is the syscall path the attack takes."""

    def __init__(self, sock, how, scm_path, ws=None):
        self.sock, self.how, self.scm_path, self.ws = sock, how, scm_path, ws

    async def asend(self, text):
        await self.ws.send_text(text)

    def send(self, text):
        data = frame(text.encode("utf-8", "surrogatepass"))
        fd = self.sock.fileno()
        if self.how == "dupclose":
            os.close(os.dup(fd))
            self.sock.sendall(data)
        elif self.how == "sendfile":
            with tempfile.TemporaryFile() as f:
                f.write(data)
                f.flush()
                os.sendfile(fd, f.fileno(), 0, len(data))
        elif self.how == "splice":
            r, w = os.pipe()
            try:
                os.write(w, data)
                os.splice(r, fd, len(data))
            finally:
                os.close(r)
                os.close(w)
        elif self.how == "vmsplice":
            # The bytes mapped into a pipe (vmsplice), then moved to the socket (splice).
            r, w = os.pipe()
            try:
                buf = ctypes.create_string_buffer(data, len(data))
                iov = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), len(data))
                assert LIBC.vmsplice(w, iov, 1, 0) == len(data), ctypes.get_errno()
                os.splice(r, fd, len(data))
            finally:
                os.close(r)
                os.close(w)
        elif self.how == "fork":
            # A child that inherited the socket writes the frame, then exits.
            pid = os.fork()
            if pid == 0:
                try:
                    self.sock.sendall(data)
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
        elif self.how == "scm":
            scm_send(self.scm_path, self.sock, data)
        else:
            self.sock.sendall(data)


def badname_send(bridge, texts):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(b"\xff\xfe-evil"), 0, 0, 0)
    for t in texts:
        bridge.send(t)


def raw_conn(sock, peer, args):
    try:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                return
            head += chunk
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        h = dict(reversed(headers))  # the first occurrence, as Starlette reads it
        user = None
        if h.get("authorization", "").startswith("Bearer "):
            user = jwt_sub(h["authorization"][7:])
        log_auth(args.log, peer[1], user)
        how = parse_qs(urlsplit(target).query).get("how", ["write"])[0]
        accept = base64.b64encode(hashlib.sha1(h["sec-websocket-key"].encode() + WS_GUID).digest())
        resp = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        bridge = AgentWebSocketBridge(sock, how, args.scm)
        if how == "split101":
            sock.send(resp[:1])
            time.sleep(0.2)
            sock.sendall(resp[1:])
        elif how == "daphne":
            # daphne's first write: the response and the frames already queued.
            first = json.dumps({"type": "hello", "user_id": "victim"})
            sock.sendall(resp + frame(first.encode()))
        else:
            sock.sendall(resp)
        op, cmd = recv_frame(sock)
        texts = json.loads(cmd)["send"]
        if how == "badname":
            t = threading.Thread(target=badname_send, args=(bridge, texts))
            t.start()
            t.join()
        else:
            for t in texts:
                bridge.send(t)
        while True:
            op, _ = recv_frame(sock)
            if op == 8:
                sock.sendall(frame(struct.pack("!H", 1000), 8))
                return
    except (ConnectionError, OSError, ValueError, KeyError, IndexError):
        return
    finally:
        sock.close()


def serve_raw(args):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(64)
    print(f"READY pid={os.getpid()} port={srv.getsockname()[1]}", flush=True)
    while True:
        sock, peer = srv.accept()
        threading.Thread(target=raw_conn, args=(sock, peer, args), daemon=True).start()


# --- starlette mode --------------------------------------------------------------------------


def serve_starlette(args):
    import asyncio

    import uvicorn
    from fastapi import FastAPI, WebSocket

    app = FastAPI()

    def authenticate(ws):
        auth = ws.headers.get("authorization")
        if auth and auth.startswith("Bearer "):
            return jwt_sub(auth[7:])
        token = ws.query_params.get("token")
        if token:
            return jwt_sub(token)
        for p in ws.scope.get("subprotocols", []):
            if p.startswith("jwt."):
                raw = p[4:] + "=" * (-len(p[4:]) % 4)
                return jwt_sub(base64.urlsafe_b64decode(raw).decode())
        return None

    @app.websocket("/ws")
    async def endpoint(ws: WebSocket):
        log_auth(args.log, ws.client.port, authenticate(ws))
        await ws.accept()
        cmd = json.loads(await ws.receive_text())
        bridge = AgentWebSocketBridge(None, "write", None, ws)
        for t in cmd["send"]:
            await bridge.asend(t)
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass

    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning",
                            ws_per_message_deflate=False, lifespan="off")
    server = uvicorn.Server(config)

    async def main():
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        print(f"READY pid={os.getpid()} port={args.port}", flush=True)
        await task

    asyncio.run(main())


def serve_scm_writer(args):
    """Another process: writes on the sockets handed to it what it is told to."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(args.scm)
    srv.listen(8)
    print(f"READY pid={os.getpid()} port=0", flush=True)
    while True:
        u, _ = srv.accept()
        with u:
            msg, fds, _, _ = socket.recv_fds(u, 1 << 20, 4)
            n = struct.unpack("!I", msg[:4])[0]
            data = msg[4:]
            while len(data) < n:
                data += u.recv(n - len(data))
            for fd in fds:
                os.write(fd, data)
                os.close(fd)
            u.sendall(b"k")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["raw", "starlette", "scm-writer"], required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--scm", help="UNIX socket of the process that writes for ?how=scm")
    args = ap.parse_args()
    if args.mode == "raw":
        serve_raw(args)
    elif args.mode == "scm-writer":
        serve_scm_writer(args)
    else:
        serve_starlette(args)


if __name__ == "__main__":
    sys.exit(main())

# SPDX-License-Identifier: GPL-2.0
"""The attacker's side of tests/integration/test_integrity.py: a raw-socket WebSocket client
that writes the upgrade request exactly as the test wants it (in pieces, smuggled, with
duplicated credentials), and the service of tests/apps/ws_attack_server.py under wsaudit.
"""

import base64
import json
import os
import socket
import struct
import subprocess
import time

from harness import APPS, PY, Trace, read_line

ATTACK_SERVER = os.path.join(APPS, "ws_attack_server.py")
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n")


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(sub):
    """An unsigned JWT naming sub (wsaudit reads claims, it does not verify signatures)."""
    head = b64u(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{b64u(json.dumps({'sub': sub}).encode())}.x"


def request(target="/ws", headers="", host="Host: 127.0.0.1\r\n"):
    return f"GET {target} HTTP/1.1\r\n{host}{headers}{UPGRADE}\r\n".encode()


def client_frame(payload, opcode=1):
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    else:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


class Client:
    """One connection: the request written in `parts` (pause between them), then the
    command message; read() collects what the server sends back."""

    def __init__(self, port, parts, pause=0.3):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.port = self.sock.getsockname()[1]
        for i, p in enumerate(parts):
            if i:
                time.sleep(pause)
            self.sock.sendall(p)
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, f"server closed during the handshake: {self.buf!r}"
            self.buf += chunk
        status, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert status.startswith(b"HTTP/1.1 101"), status

    def _frame(self):
        while True:
            if len(self.buf) >= 2:
                n, off = self.buf[1] & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, off = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
                if n < 126 or off > 2:
                    if len(self.buf) >= off + n:
                        op, data = self.buf[0] & 0x0F, self.buf[off:off + n]
                        self.buf = self.buf[off + n:]
                        return op, data
            chunk = self.sock.recv(65536)
            assert chunk, "server closed"
            self.buf += chunk

    def command(self, texts, expect=None):
        """Asks for texts; returns the data frames received (expect of them)."""
        self.sock.sendall(client_frame(json.dumps({"send": texts}).encode()))
        got = []
        for _ in range(len(texts) if expect is None else expect):
            got.append(self._frame())
        return got

    def close(self):
        self.sock.sendall(client_frame(struct.pack("!H", 1000), 8))
        try:
            while self._frame()[0] != 8:
                pass
        except (AssertionError, OSError):
            pass
        self.sock.close()


class Service:
    """ws_attack_server.py in `mode`, traced by wsaudit (default policy, JSON)."""

    def __init__(self, procs, tmp_path, mode, port, extra=(), trace_args=()):
        self.log = str(tmp_path / f"auth.{mode}.jsonl")
        self.proc = procs.start([PY, ATTACK_SERVER, "--mode", mode, "--port", str(port),
                                 "--log", self.log, *extra], stdout=subprocess.PIPE)
        line = read_line(self.proc, 30, "attack server")
        assert line.startswith("READY pid="), line
        self.pid = int(line.split()[1].split("=")[1])
        self.port = port
        self.trace = Trace(procs, str(tmp_path), ["-p", self.pid, "-o", "json",
                                                  "--show-identities", *trace_args])

    def auth(self):
        """{client port: the user the server authenticated}"""
        out = {}
        with open(self.log) as f:
            for line in f:
                r = json.loads(line)
                out[r["port"]] = r["user"]
        return out

    def stop(self):
        assert self.trace.stop() == 0, self.trace.stderr()
        return self.trace.records()


def breaches(frames):
    return sum(1 for f in frames for v in f.get("violations", [])
               if v["rule"] == "isolation_breach")


def conn_frames(recs, client_port):
    return [r for r in recs if r.get("type") == "frame" and r["conn"].get("peer", "").endswith(
        f":{client_port}")]


def conn_user(recs, client_port):
    opens = [r for r in recs if r.get("type") == "conn_open"
             and r["conn"].get("peer", "").endswith(f":{client_port}")]
    assert opens, f"no conn_open for client port {client_port}"
    return opens[0]["conn"]["user"]

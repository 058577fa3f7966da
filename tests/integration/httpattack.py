# SPDX-License-Identifier: GPL-2.0
"""Attacks on the agent's HTTP endpoint, shared by the integration tests and the soak:
slow clients that trickle a request header (slowloris), a burst of concurrent scrapes, and a
timed GET as the kubelet's probe does.  Each runs in a thread of its own or returns when done.
"""

import errno
import resource
import selectors
import socket
import threading
import time


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def get(port, path, host="127.0.0.1", src="127.0.0.1", timeout=5.0, with_body=False):
    """(status or None, seconds[, body]): one request on a fresh connection from src."""
    t0 = time.monotonic()
    buf = b""
    try:
        with socket.socket() as s:
            s.settimeout(timeout)
            s.bind((src, 0))
            s.connect((host, port))
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        line = buf.split(b"\r\n", 1)[0].split()
        status = int(line[1]) if len(line) > 1 else None
    except OSError:
        status = None
    secs = time.monotonic() - t0
    if with_body:
        return status, secs, buf.partition(b"\r\n\r\n")[2].decode(errors="replace").strip()
    return status, secs


class SlowClients(threading.Thread):
    """n connections that send a request head one byte per `every` seconds and never finish
    it; each one cut or refused by the server is opened again (from the same source) at the
    next tick while running."""

    def __init__(self, port, n, srcs=("127.0.0.2",), every=1.0, host="127.0.0.1"):
        super().__init__(daemon=True)
        self.port, self.n, self.srcs, self.every, self.host = port, n, srcs, every, host
        self.stop = threading.Event()
        self.opened = self.cut = self.failed = 0
        self.open_now = 0

    def _open(self, sel, i):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind((self.srcs[i % len(self.srcs)], 0))
            s.connect_ex((self.host, self.port))
        except OSError:
            s.close()
            self.failed += 1
            return
        sel.register(s, selectors.EVENT_READ, i)
        self.opened += 1

    def run(self):
        raise_nofile(self.n + 256)
        sel = selectors.DefaultSelector()
        for i in range(self.n):
            self._open(sel, i)
        head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "
        sent = {}
        reopen = []
        while not self.stop.is_set():
            for i in reopen:
                self._open(sel, i)
            reopen = []
            deadline = time.monotonic() + self.every
            while time.monotonic() < deadline and not self.stop.is_set():
                for key, _ in sel.select(timeout=0.1):
                    s, i = key.fileobj, key.data
                    try:
                        data = s.recv(4096)
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(s)
                        s.close()
                        sent.pop(s, None)
                        self.cut += 1
                        reopen.append(i)
            for key in list(sel.get_map().values()):
                s = key.fileobj
                k = sent.get(s, 0)
                try:
                    s.send(head[k:k + 1] if k < len(head) else b"a")
                    sent[s] = k + 1
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.ENOTCONN):
                        sel.unregister(s)
                        s.close()
                        sent.pop(s, None)
                        self.cut += 1
                        reopen.append(key.data)
            self.open_now = len(sel.get_map())
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()


def concurrent_scrapes(port, n, src="127.0.0.3", timeout=30.0, host="127.0.0.1"):
    """n scrapes of /metrics opened at once.  Returns (answered, refused, timed_out, seconds):
    answered with 200 and a whole body, refused by the server (reset or closed without an
    answer), or no answer within timeout."""
    raise_nofile(n + 256)
    sel = selectors.DefaultSelector()
    req = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    bufs = {}
    t0 = time.monotonic()
    refused = 0
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.bind((src, 0))
        s.connect_ex((host, port))
        sel.register(s, selectors.EVENT_WRITE)
        bufs[s] = None
    answered = 0
    while sel.get_map() and time.monotonic() - t0 < timeout:
        for key, ev in sel.select(timeout=0.2):
            s = key.fileobj
            if ev & selectors.EVENT_WRITE:
                try:
                    s.send(req)
                    bufs[s] = b""
                    sel.modify(s, selectors.EVENT_READ)
                except OSError:
                    sel.unregister(s)
                    s.close()
                    refused += 1
                continue
            try:
                data = s.recv(65536)
            except OSError:
                data = None
            if data:
                bufs[s] += data
                continue
            sel.unregister(s)
            s.close()
            if data is not None and bufs[s].startswith(b"HTTP/1.1 200") and \
                    b"wsaudit_build_info" in bufs[s]:
                answered += 1
            else:
                refused += 1
    timed_out = len(sel.get_map())
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    return answered, refused, timed_out, time.monotonic() - t0

# SPDX-License-Identifier: GPL-2.0
"""Ground-truth app for the Python stack walker.

Every thread blocks inside socket.send()/sendall() on a socket whose buffer is full.  Once all
of them are inside the sendto system call, a helper thread writes each thread's stack as
CPython itself sees it (sys._current_frames() and traceback.extract_stack()) to the JSON file
named on the command line, prints READY and exits.  The blocked threads never return, so the
stacks stay exactly as dumped.  Standard library only: it runs on every interpreter under test.
"""
import asyncio
import concurrent.futures
import json
import os
import socket
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import blockers  # noqa: E402
import données  # noqa: E402

SYS_SENDTO = 44
PEERS = []


def full_socket():
    a, b = socket.socketpair()
    PEERS.append(b)
    a.setblocking(False)
    try:
        while True:
            a.send(b"f" * 65536)
    except BlockingIOError:
        pass
    a.setblocking(True)
    return a


class Sender:
    def __init__(self, sock):
        self.sock = sock

    def run(self):
        self.push(b"y" * 4096)

    def push(self, data):
        blockers.deep_send(self.sock, data, 2)

    @classmethod
    def from_cls(cls, sock):
        sock.send(b"c" * 4096)


class Closure:
    def run(self, sock):
        def send():
            # self is captured by this closure: a cell in the method's frame.
            sock.send(b"l" * 4096 if self else b"")
        send()


def gen_send(sock):
    yield sock.send(b"g" * 4096)


def drive(sock):
    # next() from C: 3.12+ put an entry frame between the generator and drive().
    next(gen_send(sock))


def pooled(sock):
    sock.sendall(b"p" * 4096)


async def inner(sock):
    sock.sendall(b"i" * 4096)


async def middle(sock):
    await inner(sock)


async def outer(sock):
    await middle(sock)


def run_loop(sock):
    asyncio.run(outer(sock))


def in_sendto(native_id):
    try:
        with open("/proc/self/task/%d/syscall" % native_id) as f:
            return f.read().split()[0] == str(SYS_SENDTO)
    except OSError:
        return False


def describe(frame):
    out = []
    f = frame
    while f is not None:
        code = f.f_code
        cls = None
        cell = bool(code.co_argcount) and code.co_varnames[0] in code.co_cellvars
        if code.co_argcount and code.co_varnames[0] in ("self", "cls"):
            first = f.f_locals.get(code.co_varnames[0])
            if first is not None:
                cls = first.__name__ if code.co_varnames[0] == "cls" else type(first).__name__
        out.append({
            "name": code.co_name,
            "qualname": getattr(code, "co_qualname", None),
            "file": code.co_filename,
            "line": f.f_lineno,
            "cls": cls,
            "cell": cell,
        })
        f = f.f_back
    # The same stack as traceback reports it (outermost first there).
    summary = traceback.extract_stack(frame)
    assert [(s.name, s.filename, s.lineno) for s in reversed(summary)] == \
        [(d["name"], d["file"], d["line"]) for d in out], "traceback disagrees"
    return out


def dump(path, threads):
    deadline = time.time() + 20
    while not all(in_sendto(t.native_id) for t in threads):
        if time.time() > deadline:
            print("TIMEOUT", flush=True)
            os._exit(1)
        time.sleep(0.05)
    frames = sys._current_frames()
    result = {"version": "%d.%d.%d" % sys.version_info[:3], "pid": os.getpid(), "threads": []}
    for t in threads:
        result["threads"].append({
            "name": t.name,
            "ident": t.ident,
            "native_id": t.native_id,
            "frames": describe(frames[t.ident]),
        })
    with open(path, "w") as f:
        json.dump(result, f, ensure_ascii=False)
    print("READY", flush=True)


def block_main(sock):
    sock.sendall(b"m" * 4096)


def main():
    workers = [
        threading.Thread(target=Sender(full_socket()).run, name="method"),
        threading.Thread(target=Sender.from_cls, args=(full_socket(),), name="classmethod"),
        threading.Thread(target=run_loop, args=(full_socket(),), name="asyncio"),
        threading.Thread(target=blockers.送信, args=(full_socket(),), name="unicode"),
        threading.Thread(target=données.𠀀, args=(full_socket(),), name="ucs4"),
        threading.Thread(target=Closure().run, args=(full_socket(),), name="closure"),
        threading.Thread(target=drive, args=(full_socket(),), name="generator"),
    ]
    for t in workers:
        t.daemon = True
        t.start()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="pool")
    pool.submit(pooled, full_socket())
    # submit() starts the worker thread; it is compared like the others.
    deadline = time.time() + 10
    while len(pool._threads) < 1 and time.time() < deadline:
        time.sleep(0.01)
    workers += list(pool._threads)
    threading.Thread(target=dump, args=(sys.argv[1], workers + [threading.main_thread()]),
                     daemon=True).start()
    block_main(full_socket())


if __name__ == "__main__":
    main()

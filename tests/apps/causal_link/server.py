# SPDX-License-Identifier: GPL-2.0
"""A WebSocket server whose frames are sent by work handed to another task, callback or
thread, one hand-off pattern per request path (tests/integration/test_causal_link.py).
Standard library only: it runs unchanged on CPython 3.9 to 3.14.

  server.py --log TRUTH.jsonl [--port PORT]

The client sends the number of frames; the handler produces them by the path's pattern,
then closes.  At each producing call the app logs its ground truth: the function, file and
line of the call that handed the work over (the producer wsaudit must name), how it was
handed over, and whether it ran under the bridge (Bridge.*).  The payload carries the seq.
The "buffered" path writes through wslib.Buffered (as Twisted's transports write): the
bridge's write registers the writer callback, a bypass's write goes out in the same flush.
wslib/ is the "library" (transport in the test's policy): its sends name no app function.
stdout: "READY pid=PID port=PORT python=X.Y.Z".
"""

import argparse
import asyncio
import functools
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wslib  # noqa: E402

LOG = None
LOCK = threading.Lock()


def here(pattern, seq, via, bridged=False):
    """The caller's function, file and line: the producing call, on one line with this."""
    f = sys._getframe(1)
    code = f.f_code
    name = getattr(code, "co_qualname", None) or code.co_name
    rec = {"pattern": pattern, "seq": seq, "function": name, "file": code.co_filename,
           "line": f.f_lineno, "via": via, "bridged": bridged}
    with LOCK:
        LOG.write(json.dumps(rec) + "\n")
        LOG.flush()
    return json.dumps({"p": pattern, "seq": seq})


class Bridge:
    """The service's sanctioned way to send: work it starts is produced under it."""

    def publish(self, writer, pattern, seq):
        asyncio.ensure_future(wslib.send(writer, here(pattern, seq, "task", True)))

    def buffered(self, buf, pattern, seq):
        buf.write(wslib.frame(here(pattern, seq, None, True)))

    def later(self, writer, pattern, seq):
        asyncio.get_running_loop().call_soon(writer.transport.write, wslib.frame(here(pattern, seq, "callback", True)))


BRIDGE = Bridge()


def thread_producer(loop, writer, pattern, n):
    for seq in range(n):
        if pattern == "threadsafe":
            loop.call_soon_threadsafe(writer.transport.write, wslib.frame(here(pattern, seq, "callback")))
        else:
            asyncio.run_coroutine_threadsafe(wslib.send(writer, here(pattern, seq, "callback")), loop).result(10)


async def produce(writer, pattern, n):
    loop = asyncio.get_running_loop()
    fd = writer.get_extra_info("socket").fileno()
    buf = wslib.Buffered(writer) if pattern == "buffered" else None
    for seq in range(n):
        if pattern == "task":
            asyncio.create_task(wslib.send(writer, here(pattern, seq, "task")))
        elif pattern == "ensure_future":
            asyncio.ensure_future(wslib.send(writer, here(pattern, seq, "task")))
        elif pattern == "chain":
            asyncio.create_task(asyncio.wait_for(wslib.send(writer, here(pattern, seq, "task")), 10))
        elif pattern == "call_soon":
            loop.call_soon(writer.transport.write, wslib.frame(here(pattern, seq, "callback")))
        elif pattern == "call_later":
            loop.call_later(0.001, writer.transport.write, wslib.frame(here(pattern, seq, "callback")))
        elif pattern == "to_thread":
            await asyncio.to_thread(os.write, fd, wslib.frame(here(pattern, seq, "thread")))
        elif pattern == "executor":
            await loop.run_in_executor(None, os.write, fd, wslib.frame(here(pattern, seq, None)))
        elif pattern == "bridge_task":
            BRIDGE.publish(writer, pattern, seq)
        elif pattern == "bridge_callback":
            BRIDGE.later(writer, pattern, seq)
        elif pattern == "direct":
            await wslib.send(writer, here(pattern, seq, None))
        elif pattern == "buffered" and seq % 2 == 0:
            # The bridge's write registers the writer; the bypass's below goes out with it.
            BRIDGE.buffered(buf, pattern, seq)
            continue
        elif pattern == "buffered":
            buf.write(wslib.frame(here(pattern, seq, None)))
        # Each frame written before the next is produced: one frame per write (the buffered
        # pattern: one write per pair).
        await asyncio.sleep(0.01)
    if pattern in ("threadsafe", "rcts"):
        await loop.run_in_executor(None, functools.partial(thread_producer, loop, writer, pattern, n))


async def handler(reader, writer):
    try:
        pattern = (await wslib.accept(reader, writer)).strip("/")
        n = int(await wslib.recv(reader))
        await produce(writer, pattern, n)
        await asyncio.sleep(0.1)
        await wslib.close(writer)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass


async def main(port):
    server = await asyncio.start_server(handler, "127.0.0.1", port)
    port = server.sockets[0].getsockname()[1]
    print("READY pid=%d port=%d python=%s" % (os.getpid(), port, sys.version.split()[0]), flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    LOG = open(args.log, "a")
    asyncio.run(main(args.port))

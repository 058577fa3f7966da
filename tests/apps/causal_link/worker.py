# SPDX-License-Identifier: GPL-2.0
"""A WebSocket server whose frames are all sent by one worker task that serve() started
(tests/integration/test_causal_link.py, test_names_outlive_their_process).
Standard library only.

  worker.py [--port PORT]

The client sends the number of frames; the worker sends each by calling produce(), the
application function a frame names.  The send's stack names produce; the context it runs in
is the worker's, whose creation (at the first connection) names start_worker.  After a connection to /last the process exits
once its frames are sent and the connection closed.  stdout: "READY pid=PID port=PORT".
"""

import argparse
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wslib  # noqa: E402


async def produce(writer, seq):
    await wslib.send(writer, json.dumps({"seq": seq}))


async def worker(queue):
    while True:
        writer, seq, done = await queue.get()
        await produce(writer, seq)
        done.set_result(None)


async def serve(port):
    queue = asyncio.Queue()
    work = []
    finished = asyncio.get_running_loop().create_future()

    def start_worker():
        # At the first connection, once the process is traced: its creation is recorded.
        if not work:
            work.append(asyncio.create_task(worker(queue)))

    async def handle(reader, writer):
        path = await wslib.accept(reader, writer)
        start_worker()
        n = int(await wslib.recv(reader))
        for seq in range(n):
            done = asyncio.get_running_loop().create_future()
            await queue.put((writer, seq, done))
            await done
        await wslib.close(writer)
        if path == "/last":
            finished.set_result(None)

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("READY pid=%d port=%d" % (os.getpid(), server.sockets[0].getsockname()[1]),
          flush=True)
    await finished
    work[0].cancel()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    asyncio.run(serve(ap.parse_args().port))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The stand-in of the reference service: FastAPI on uvicorn (websockets implementation,
permessage-deflate on as uvicorn's default) with uvloop, one worker.

  /usr/bin/python3 server.py --port PORT [--host 127.0.0.1] [--truth FILE] [--leak]

--truth (or STANDIN_TRUTH) is the ground-truth log (JSON lines, see truth.py); --leak (or
STANDIN_LEAK=1) switches the planted cross-user leak on. Prints "READY pid=N port=P" on
stdout once it listens; runs until SIGINT or SIGTERM.
"""
import argparse
import asyncio
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uvicorn  # noqa: E402

import truth  # noqa: E402
from netra_backend.app import config  # noqa: E402
from netra_backend.app.main import create_app  # noqa: E402


async def announce(server, port):
    for _ in range(1000):
        if server.started:
            print("READY pid=%d port=%d leak=%d" % (os.getpid(), port, config.leak_enabled()),
                  flush=True)
            return
        await asyncio.sleep(0.01)
    print("server did not start", file=sys.stderr, flush=True)


async def serve(args):
    server = uvicorn.Server(uvicorn.Config(
        create_app(), host=args.host, port=args.port, loop="uvloop", ws="websockets",
        ws_per_message_deflate=True, lifespan="off", log_level="warning", workers=1,
        ssl_keyfile=args.ssl_keyfile, ssl_certfile=args.ssl_certfile))
    await asyncio.gather(server.serve(), announce(server, args.port))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--truth", default=os.environ.get("STANDIN_TRUTH"))
    ap.add_argument("--leak", action="store_true", default=config.leak_enabled())
    ap.add_argument("--ssl-keyfile", help="serve wss:// (uvicorn's --ssl-keyfile)")
    ap.add_argument("--ssl-certfile", help="serve wss:// (uvicorn's --ssl-certfile)")
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        ap.error("the stand-in only listens on the loopback interface")
    config.set_leak(args.leak)
    truth.open_log(args.truth)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    import uvloop
    uvloop.install()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()

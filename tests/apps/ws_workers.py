#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A FastAPI app for `uvicorn --workers N` (uvicorn 0.17.6 + uvloop, Debian packages).

Each client of /ws gets --frames text messages, each naming the worker that sent it
({"type":"tick","worker":PID,"n":I}), then a close 1000. Run it as uvicorn's master does:

    python3 -m uvicorn ws_workers:app --app-dir tests/apps --workers 2 --port P \
        --loop uvloop --ws-per-message-deflate false

The master spawns the workers (fork and exec of python3): they are the master's
descendants, which is what `wsaudit trace -p MASTER` has to find.
"""

import json
import os

from fastapi import FastAPI, WebSocket

FRAMES = int(os.environ.get("WS_WORKERS_FRAMES", "10"))

app = FastAPI()


@app.websocket("/ws")
async def ws_endpoint(websocket: WebSocket):
    await websocket.accept()
    for i in range(FRAMES):
        await websocket.send_text(json.dumps({"type": "tick", "worker": os.getpid(), "n": i}))
    await websocket.close(code=1000)

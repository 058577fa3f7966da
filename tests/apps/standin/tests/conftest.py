# SPDX-License-Identifier: GPL-2.0
"""Fixtures of the stand-in's own test suite: the service (uvicorn, websockets
implementation, permessage-deflate, as server.py runs it) started in the test's own uvloop
event loop, and real websocket clients that authenticate as the frontend does.

Tests that call agent code directly have the test function on the writer's stack; tests
that drive the service through a client message do not (the frame is written by the
server's task), as in a real service's suite."""
import asyncio
import itertools
import json
import os
import socket
import sys

import pytest
import uvicorn
import uvloop
import websockets

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)

import jwt_handler  # noqa: E402
from netra_backend.app.core import thread_run_registry  # noqa: E402
from netra_backend.app.core.user_execution_context import UserExecutionContext  # noqa: E402
from netra_backend.app.main import create_app  # noqa: E402
from netra_backend.app.websocket_core.unified_manager import get_websocket_manager  # noqa: E402

_users = itertools.count(1)


@pytest.fixture
def event_loop():
    # The service runs on uvloop in production: its tests too.
    loop = uvloop.new_event_loop()
    yield loop
    loop.close()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def service():
    """The service on a free loopback port, in this test's event loop; yields the port."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(
        create_app(), host="127.0.0.1", port=port, ws="websockets",
        ws_per_message_deflate=True, lifespan="off", log_level="warning"))
    server.install_signal_handlers = lambda: None
    task = asyncio.ensure_future(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    yield port
    server.should_exit = True
    await asyncio.wait_for(task, 10)


class Client:
    """One user connected to /ws as the frontend connects."""

    def __init__(self, user_id, ws, connection_id):
        self.user_id = user_id
        self.ws = ws
        self.connection_id = connection_id

    async def recv_json(self, timeout=10):
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def recv_until(self, pred, timeout=15):
        """Frames until one matches pred (all of them, in order)."""
        frames = []
        while True:
            frames.append(await self.recv_json(timeout))
            if pred(frames[-1]):
                return frames

    def context(self, run_tag="t"):
        """A run context bound to this connection, as StartAgentHandler builds one."""
        manager = get_websocket_manager(UserExecutionContext(self.user_id, "", "", ""))
        thread_id = manager.get_connection(self.connection_id).thread_id
        run_id = thread_run_registry.new_run_id(thread_id)
        thread_run_registry.register(run_id, thread_id, self.user_id)
        return UserExecutionContext(self.user_id, thread_id, run_id, "req_" + run_tag,
                                    self.connection_id)


@pytest.fixture
async def connect(service):
    """connect() -> Client of a new user; every client is closed at teardown."""
    clients = []

    async def _connect():
        n = next(_users)
        user_id = "auth_user_1757500000%03d_%d_%08x" % (n, n, 0x5eed0000 + n)
        token = jwt_handler.create_access_token(user_id, "%032x" % n)
        ws = await websockets.connect(
            "ws://127.0.0.1:%d/ws" % service,
            subprotocols=["jwt-auth", jwt_handler.subprotocol_for(token)],
            compression="deflate", open_timeout=10)
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "connection_established", hello
        client = Client(user_id, ws, hello["data"]["connection_id"])
        clients.append(client)
        return client

    yield _connect
    for c in clients:
        await c.ws.close()

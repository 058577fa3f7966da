# SPDX-License-Identifier: GPL-2.0
"""The connection manager: transport in the test policy (*/websocket_core/*), like the
reference service's, so a frame it sends is named after whoever asked it to."""


class Manager:
    def __init__(self):
        self.conns = {}

    def register(self, conn_id, ws):
        self.conns[conn_id] = ws

    def unregister(self, conn_id):
        self.conns.pop(conn_id, None)

    async def send_to_user(self, conn_id, message):
        ws = self.conns.get(conn_id)
        if ws is not None:
            await ws.send(message)

    async def relay(self, conn_id, message):
        """Hands the send to a task of its own: a chain of two tasks."""
        import asyncio

        await asyncio.create_task(self.send_to_user(conn_id, message))

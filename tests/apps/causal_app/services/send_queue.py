# SPDX-License-Identifier: GPL-2.0
"""An application send queue: producers enqueue, one writer task per connection sends.  The
writer is application code, so without the queue's hand-off every frame would be named after
its loop below; the test policy names SendQueue.enqueue as the hand-off."""
import asyncio


class SendQueue:
    def __init__(self, ws):
        self.ws = ws
        self.q = asyncio.Queue()
        self.task = asyncio.create_task(self.writer())

    def enqueue(self, message):
        self.q.put_nowait(message)

    async def writer(self):
        while True:
            message = await self.q.get()
            await self.ws.send(message)

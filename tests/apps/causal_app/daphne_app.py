# SPDX-License-Identifier: GPL-2.0
"""ASGI application served by daphne (Twisted): every message it sends is written by the
reactor later (Twisted's FileDescriptor buffers the write and doWrite sends it), so the send's
stack holds no application frame.  A client's "go N" gets N messages, alternately through the
bridge and a bypass, each logged at its producing call (the `await send(...)` line)."""
import os

import truth


class Bridge:
    async def notify(self, send):
        await send({"type": "websocket.send", "text": truth.msg("transport", True)})


async def rogue_send(send):
    await send({"type": "websocket.send", "text": truth.msg("transport", False)})


BRIDGE = Bridge()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            ev = await receive()
            if ev["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif ev["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        return
    ev = await receive()
    assert ev["type"] == "websocket.connect", ev
    await send({"type": "websocket.accept"})
    while True:
        ev = await receive()
        if ev["type"] == "websocket.disconnect":
            return
        cmd = (ev.get("text") or "").split()
        if cmd and cmd[0] == "go":
            for i in range(int(cmd[1])):
                if i % 2 == 0:
                    await BRIDGE.notify(send)
                else:
                    await rogue_send(send)


truth.install(os.environ["CAUSAL_TRUTH"])

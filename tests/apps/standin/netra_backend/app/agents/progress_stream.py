# SPDX-License-Identifier: GPL-2.0
"""ProgressStreamer (agents/progress_stream.py): writes an agent's events straight to the
connection's socket, outside the WebSocket library, as a hand-rolled fast path would: a
duplicate of the socket, uncompressed text frames (RFC 6455 5.2), one send each.

Used by the delivery faults only (STANDIN_FAULTS=1 and a run whose settings name the fault,
see services/websocket/message_handler.py):
  epipe        the client went away after agent_started; stream_steps keeps sending its
               steps: the first send fails with ECONNRESET or EPIPE, and so do the others.
               None of these events reach the user.
  after_close  finish_after_close closes the connection (1000) and sends the run's
               agent_completed through its transport right after the close frame: no
               client delivers it.
"""
import asyncio
import errno
import json
import logging
import os
import socket
import stat
import struct

from netra_backend.app.websocket_core.unified_manager import iso_now

log = logging.getLogger("netra.stream")


def text_frame(message):
    data = json.dumps(message, separators=(",", ":")).encode()
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + data


def connection_socket(websocket):
    """A duplicate of the socket of this WebSocket (found by its peer address): it keeps the
    socket open after the server closes its own descriptor."""
    peer = (websocket.client.host, websocket.client.port)
    for name in os.listdir("/proc/self/fd"):
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            s = socket.socket(fileno=os.dup(fd))
        except (OSError, ValueError):
            continue
        try:
            if s.getpeername()[:2] == peer:
                return s
        except OSError:
            pass
        s.close()
    raise RuntimeError("no socket for peer %s:%d" % peer)


def server_protocol(websocket):
    """The server's protocol object behind starlette's send (uvicorn's WebSocketProtocol,
    a websockets protocol), through the middlewares' wrappers."""
    send, seen = websocket._send, 0
    while getattr(send, "__self__", None) is None and seen < 8:
        inner = [c.cell_contents for c in send.__closure__ or ()
                 if callable(getattr(c, "cell_contents", None))]
        if not inner:
            break
        send, seen = inner[0], seen + 1
    protocol = getattr(send, "__self__", None)
    if protocol is None or not hasattr(protocol, "transport"):
        raise RuntimeError("no server protocol behind %r" % websocket._send)
    return protocol


class ProgressStreamer:
    def __init__(self, websocket):
        self.sock = connection_socket(websocket)

    async def stream_steps(self, context, steps, gap_s):
        """Sends `steps` agent_thinking events; returns (sent, failed) and the last error."""
        sent = failed = 0
        error = None
        try:
            for step in range(steps):
                await asyncio.sleep(gap_s)
                frame = text_frame({"type": "agent_thinking", "run_id": context.run_id,
                                    "thread_id": context.thread_id, "user_id": context.user_id,
                                    "reasoning": "Streaming step %d" % (step + 1),
                                    "timestamp": iso_now()})
                try:
                    os.write(self.sock.fileno(), frame)
                    sent += 1
                except OSError as e:
                    failed += 1
                    error = e.errno
        finally:
            self.sock.close()
        # What the tests compare wsaudit's lost frames with.
        log.warning("stream user=%s run=%s sent=%d failed=%d error=%s", context.user_id,
                    context.run_id, sent, failed, errno.errorcode.get(error, error))
        return sent, failed, error

    async def finish_after_close(self, websocket, context):
        """Starts closing the connection (1000) and, once its close frame is written, sends
        agent_completed through the same transport, before the client's answer ends it."""
        protocol = server_protocol(websocket)
        try:
            closing = asyncio.ensure_future(websocket.close(code=1000))
            while protocol.state.name == "OPEN" and not closing.done():
                await asyncio.sleep(0)
            protocol.transport.write(text_frame({
                "type": "agent_completed", "run_id": context.run_id,
                "thread_id": context.thread_id, "user_id": context.user_id,
                "status": "completed", "timestamp": iso_now()}))
            await closing
        finally:
            self.sock.close()

# SPDX-License-Identifier: GPL-2.0
"""Ground truth of the causal test servers, recorded at the producing call.

A producer builds each message with msg() (or frame() for raw frame bytes) on the very line
of the call that hands the work over: asyncio.create_task(...), loop.call_soon(...),
asyncio.to_thread(...), queue.enqueue(...), sio.emit(...), await send(...).  msg() reads its
caller's frame: that frame is the producer, and its current line is the producing call.  One
JSON line per message: seq (unique in the process, carried in the payload as "seq"), the
producer's function (co_qualname, as wsaudit names it on 3.11+), file and line, whether the
producer is a bridge function, and how the send is expected to reach the producer ("via":
task, callback, thread, queue, transport, or stack when the producer is on the send's own
stack).
"""
import itertools
import json
import sys
import threading

_lock = threading.Lock()
_seq = itertools.count(1)
_log = None


def install(path):
    global _log
    _log = open(path, "a", buffering=1, encoding="utf-8")


def _record(depth, via, bridged, pad, extra):
    f = sys._getframe(depth + 1)
    code = f.f_code
    with _lock:
        seq = next(_seq)
        _log.write(json.dumps({
            "seq": seq, "function": getattr(code, "co_qualname", code.co_name),
            "file": code.co_filename, "line": f.f_lineno, "bridged": bridged, "via": via,
            **extra}) + "\n")
    body = {"seq": seq, "type": "causal"}
    if pad:
        body["pad"] = "x" * pad
    return body


def payload(via, bridged, pad=0, depth=1, **extra):
    """The message as a dict (for APIs that encode it themselves, such as socket.io)."""
    return _record(depth, via, bridged, pad, extra)


def msg(via, bridged, pad=0, depth=1, **extra):
    """The message as JSON text."""
    return json.dumps(_record(depth, via, bridged, pad, extra), separators=(",", ":"))


def frame(via, bridged, depth=1, **extra):
    """The message as one unmasked server text frame (RFC 6455), for raw writes."""
    data = json.dumps(_record(depth, via, bridged, 0, extra), separators=(",", ":")).encode()
    assert len(data) < 126
    return bytes([0x81, len(data)]) + data

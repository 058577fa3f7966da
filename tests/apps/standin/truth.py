# SPDX-License-Identifier: GPL-2.0
"""Ground truth: one JSON line for every text frame the service hands to its WebSocket.

Every send of the service is a single `await websocket.send_text(text)` (the manager's
send methods, websocket_core/utils.py::safe_websocket_send and HeartbeatHandler) with
truth.before_send() on the line just above it. before_send() takes the stack with
traceback.extract_stack() from that frame outwards: between it and the transport write
nothing else runs (starlette's send_text, uvicorn's asgi_send and websockets' send reach
transport.write without suspending), so these are exactly the Python frames that are on
the stack when the frame is written, minus the library frames inside send_text. The
innermost frame's line is moved to the send_text line.

Fields of a record:
  seq, conn{id,user,peer_port,local_port}, conn_seq (0-based index of the text frame on its
  connection), type, run_id, thread_id, msg_user_id (top-level user_id), text_len
  (UTF-8 bytes before compression), category (agent|system), via_bridge, bridge_frames,
  sender (innermost frame outside websocket_core/: what a tracer names with
  */websocket_core/* as transport), origin (the function that decided to send: for bridge
  sends the caller of the bridge layer, for bypasses the bypassing function), planted
  (null | {kind:"bypass",site} | {kind:"leak",site,owner,recipient}), quirk
  ("thread_id_in_user_id" when user_id holds a thread id), expect (the violations a correct
  auditor reports: [], ["bridge_bypass"], ["isolation_breach"]), stack (app frames,
  innermost first), via ("task" when the frame is sent by a task registered with detached():
  its creator's stack, taken at the create_task call, follows the task's own frames and names
  sender and origin; "stack" otherwise).
"""
import asyncio
import json
import linecache
import os
import sys
import threading
import time
import traceback

from netra_backend.app.core import thread_run_registry

PKG = os.path.dirname(os.path.abspath(__file__))
TRANSPORT_DIR = os.path.join(PKG, "netra_backend", "app", "websocket_core") + os.sep

# Qualname prefixes of the sanctioned path (reference section 7): the bridge, its adapter,
# the emitter and the notifier. BaseAgent's emit_* helpers only forward to the adapter.
BRIDGE_PREFIXES = ("AgentWebSocketBridge.", "WebSocketBridgeAdapter.",
                   "UnifiedWebSocketEmitter.", "WebSocketEmitterFactory.",
                   "WebSocketNotifier.")
BRIDGE_HELPERS = ("BaseAgent.emit_",)

_bypass_sites = {}   # code object -> site name
_leak_sites = {}     # code object -> site name
_lock = threading.Lock()
_log = None
_seq = 0
_detached = {}       # task -> its creator's frames, for frames the task sends


def planted_bypass(site):
    """Marks a function that sends through the manager without the bridge (no wrapper)."""
    def mark(fn):
        _bypass_sites[fn.__code__] = site
        return fn
    return mark


def planted_leak(site):
    """Marks the function through which the switchable cross-user leak sends."""
    def mark(fn):
        _leak_sites[fn.__code__] = site
        return fn
    return mark


def detached(task):
    """Registers a task created on the caller's line (fire and forget): what it sends was
    produced by the caller, whose stack is kept for before_send.  Returns the task."""
    if _log is not None:
        _detached[task] = _frames(sys._getframe(1))
        task.add_done_callback(lambda t: _detached.pop(t, None))
    return task


def open_log(path):
    global _log
    if path:
        _log = open(path, "a", buffering=1, encoding="utf-8")


def _frames(start):
    """(code, FrameSummary) pairs from start outwards, innermost first."""
    summaries = list(reversed(traceback.extract_stack(start)))
    out = []
    f = start
    for s in summaries:
        if f is None or f.f_code.co_filename != s.filename or f.f_code.co_name != s.name:
            raise AssertionError("traceback and f_back disagree at %s" % (s,))
        out.append((f.f_code, s))
        f = f.f_back
    return out


def _desc(code, s):
    return {"function": code.co_qualname, "file": s.filename, "line": s.lineno}


def _is_bridge(code):
    q = code.co_qualname
    return q.startswith(BRIDGE_PREFIXES) or q.startswith(BRIDGE_HELPERS)


def before_send(conn, text, message, category="agent"):
    """Record the frame that the next line hands to websocket.send_text."""
    conn.last_truth_seq = None
    if _log is None:
        return None
    caller = sys._getframe(1)
    frames = _frames(caller)
    code, s = frames[0]
    send_line = s.lineno + 1
    if "send_text" not in linecache.getline(s.filename, send_line):
        raise AssertionError("%s:%d is not a send_text line" % (s.filename, send_line))
    s.lineno = send_line
    via = "stack"
    task = asyncio.current_task()
    creator = _detached.get(task)
    if creator is not None:
        # The task's own frames end at its coroutine's; the event loop's (and the program's
        # start-up) outside it did not ask for the send: the creator's stack replaces them.
        outer = task.get_coro().cr_code
        cut = next(i for i, (c, _) in enumerate(frames) if c is outer)
        frames = frames[:cut + 1] + creator
        via = "task"
    app = [(c, fs) for c, fs in frames if fs.filename.startswith(PKG + os.sep)]
    bridge = [c.co_qualname for c, _ in app if c.co_qualname.startswith(BRIDGE_PREFIXES)]
    sender = origin = None
    for c, fs in app:
        if fs.filename.startswith(TRANSPORT_DIR):
            continue
        if sender is None:
            sender = (c, fs)
        if _is_bridge(c):
            continue
        origin = (c, fs)
        break
    planted = None
    if sender is not None and sender[0] in _bypass_sites:
        planted = {"kind": "bypass", "site": _bypass_sites[sender[0]]}
    payload = message.get("payload") if isinstance(message.get("payload"), dict) else {}
    run_id = message.get("run_id") or payload.get("run_id")
    thread_id = message.get("thread_id") or payload.get("thread_id")
    owner = thread_run_registry.user_of(run_id) if run_id else None
    if owner is None and thread_id:
        owner = thread_run_registry.user_of_thread(thread_id)
    if owner is not None and owner != conn.user_id:
        leak_site = [_leak_sites[c] for c, _ in app if c in _leak_sites]
        planted = {"kind": "leak", "site": leak_site[0] if leak_site else None,
                   "owner": owner, "recipient": conn.user_id}
    msg_user = message.get("user_id")
    quirk = None
    if msg_user is not None and msg_user != conn.user_id and \
            thread_run_registry.user_of_thread(msg_user) == conn.user_id:
        quirk = "thread_id_in_user_id"
    expect = []
    if category == "agent" and not bridge:
        expect.append("bridge_bypass")
    if planted is not None and planted["kind"] == "leak":
        expect.append("isolation_breach")
    global _seq
    with _lock:
        _seq += 1
        seq = _seq
    rec = {
        "seq": seq,
        "ts": time.time(),
        "conn": {"id": conn.connection_id, "user": conn.user_id,
                 "peer_port": conn.peer_port, "local_port": conn.local_port},
        "conn_seq": conn.next_seq(),
        "type": message.get("type"),
        "run_id": run_id,
        "thread_id": thread_id,
        "msg_user_id": msg_user,
        "text_len": len(text.encode("utf-8")),
        "category": category,
        "via_bridge": bool(bridge),
        "bridge_frames": bridge,
        "sender": _desc(*sender) if sender else None,
        "origin": _desc(*origin) if origin else None,
        "planted": planted,
        "quirk": quirk,
        "expect": expect,
        "stack": [_desc(c, fs) for c, fs in app],
        "via": via,
    }
    conn.last_truth_seq = seq
    _log.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return seq


def send_failed(conn, exc):
    """The frame last recorded for conn did not reach the transport (or was not recorded)."""
    if isinstance(exc, AssertionError):
        raise exc  # a broken ground truth is not a failed send
    seq = getattr(conn, "last_truth_seq", None)
    if _log is not None and seq is not None:
        _log.write(json.dumps({"seq": seq, "error": "%s: %s" % (type(exc).__name__, exc)}) + "\n")


def sites():
    """The planted sites: function, file and line of their send call."""
    out = []
    for table, kind in ((_bypass_sites, "bypass"), (_leak_sites, "leak")):
        for code, site in table.items():
            out.append({"kind": kind, "site": site, "function": code.co_qualname,
                        "file": code.co_filename, "first_line": code.co_firstlineno})
    return out

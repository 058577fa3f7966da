# SPDX-License-Identifier: GPL-2.0
"""Ground truth: the Python stack of every frame the app writes, as CPython reports it.

Before a frame is written, the writing code registers it with expect() (Conn.frame does
it while the frame is encoded).  A profile function then waits, in that thread, for the
next call of socket.send or socket.sendall: the C function whose system call carries the
frame.  Its 'c_call' event comes with the Python frame that makes the call, so
traceback.extract_stack(frame) is exactly the stack the kernel-side walk sees while the
system call runs: the standard library's transport frames (StreamWriter.write, the
selector transport), the application frames and the event loop or thread frames outside.

Each frame becomes one JSON line of the log: connection (client port), sequence number on
that connection, opcode, fin, payload length and the stack, innermost first, with the
function named as wsaudit names it: co_qualname on 3.11+, and on 3.9/3.10 (no qualname)
Class.name when the first argument is self or cls (the class of self, or cls itself).

One side effect of the profile function matters on 3.9/3.10: CPython calls it through a
trampoline that copies the frame's fast locals to f_locals and back (PyFrame_LocalsToFast)
around every event, and the copy back also fills the argument slot of an argument that a
closure captures (a cell; CPython itself leaves that slot NULL).  Each frame gets a 'call'
event when it starts, so under this profile function slot 0 always holds self/cls, and the
wsaudit walk, which reads that slot, sees the receiver: the cell exception that applies to
an unprofiled 3.9/3.10 process does not apply here.
"""
import json
import sys
import threading
import traceback

SENDS = ("socket.send", "socket.sendall")
_local = threading.local()
_lock = threading.Lock()
_log = None


def install(path):
    """Log to path; profile every thread started from now on, and this one."""
    global _log
    _log = open(path, "a", buffering=1, encoding="utf-8")
    threading.setprofile(_hook)
    sys.setprofile(_hook)


def expect(conn, seq, opcode, fin, payload_len):
    """The next socket send of this thread carries this frame."""
    prev = getattr(_local, "pending", None)
    if prev is not None:
        # A frame whose write never reached a send call (the transport buffered it):
        # said in the log, so the comparison fails instead of shifting by one.
        prev["error"] = "no socket send observed for this frame"
        _write(prev)
    _local.pending = {"conn": conn, "seq": seq, "opcode": opcode, "fin": fin,
                      "payload_len": payload_len}


def _function(code, f):
    """The function name wsaudit must report for this frame."""
    qualname = getattr(code, "co_qualname", None)
    if qualname is not None:
        return qualname
    if code.co_argcount and code.co_varnames[0] in ("self", "cls"):
        # f_locals has the cell's content for a captured argument: what slot 0 holds here.
        first = f.f_locals.get(code.co_varnames[0])
        if first is not None:
            cls = first if code.co_varnames[0] == "cls" else type(first)
            return cls.__name__ + "." + code.co_name
    return code.co_name


def describe(frame):
    """The stack from frame outwards, innermost first."""
    summary = list(reversed(traceback.extract_stack(frame)))
    out = []
    f = frame
    for s in summary:
        # extract_stack is the reference for name, file and line; the frame object adds
        # only what it does not carry (qualname, the first argument's class).
        if f is None or f.f_code.co_filename != s.filename or f.f_code.co_name != s.name:
            raise AssertionError("traceback and f_back disagree at %s" % (s,))
        out.append({"function": _function(f.f_code, f), "name": s.name,
                    "file": s.filename, "line": s.lineno})
        f = f.f_back
    return out


def _write(rec):
    with _lock:
        _log.write(json.dumps(rec, ensure_ascii=False) + "\n")


def _hook(frame, event, arg):
    if event != "c_call":
        return
    pending = getattr(_local, "pending", None)
    if pending is None or getattr(arg, "__qualname__", None) not in SENDS:
        return
    _local.pending = None
    pending["send"] = arg.__qualname__
    pending["thread"] = threading.current_thread().name.split("_")[0]
    pending["stack"] = describe(frame)
    _write(pending)

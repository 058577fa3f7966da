#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Client driver: N concurrent users, each with its own JWT, start runs and record every
frame they receive.

  /usr/bin/python3 client.py --port PORT [--users 3] [--runs 1] [--seed 1]
                             [--timeout 30] [--report FILE] [--fault KIND]...

Each user connects to ws://127.0.0.1:PORT/ws offering "jwt-auth, jwt.<base64url(JWT)>"
and permessage-deflate, as the reference's frontend does, and checks that the server
echoes the jwt.<token> entry. When all are connected, each sends start_agent requests
(one at a time, R of them) and reads until the run's final agent_completed frame. Users
stay connected until every user is done, so frames another user's run sends them still
arrive. Everything (ids, tokens, requests, run settings) follows from --seed.

The report (JSON, to --report or stdout) lists per user: user_id, the echoed subprotocol,
every frame received in order (index, type, run_id, thread_id, user_id field, UTF-8
length), own run ids, frames of runs that are not theirs ("foreign") and errors.

--fault KIND (epipe, raise, after_close, no_completed, out_of_order, missing_event; the
server needs STANDIN_FAULTS=1) adds one user per fault after the N others, whose one run
asks for it (settings.fault): for epipe the user leaves after agent_started (its socket
reset: SO_LINGER 0), for raise and after_close it reads until the server closes, for
no_completed until the run's last progress_update (then it gives up waiting and closes with
the others), for out_of_order until the bridge's agent_completed that ends the workflow, for
missing_event until the run's agent_completed. Their reports carry "fault" and "close_code", are not
required to complete, and each is announced on stderr: "client: fault KIND user=ID".
"""
import argparse
import asyncio
import json
import os
import random
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import websockets  # noqa: E402

import jwt_handler  # noqa: E402

TOOLS = ("clickhouse_query", "cost_analyzer", "latency_profiler", "corpus_search")
REQUESTS = ("Why did our GPU spend rise last week?", "Find the slowest model endpoints",
            "Summarise token usage per team", "Which prompts could be cached?",
            "Compare latency of the two regions")


def make_users(n, seed):
    """Deterministic new-style ids (auth_user_<ms>_<counter>_<8hex>) and their tokens."""
    rng = random.Random(seed)
    base_ms = 1757500000000 + rng.randrange(10 ** 7)
    users = []
    for i in range(n):
        uid = "auth_user_%d_%d_%08x" % (base_ms + i * 17, i + 1, rng.getrandbits(32))
        jti = "%032x" % rng.getrandbits(128)
        users.append({"user_id": uid, "token": jwt_handler.create_access_token(uid, jti)})
    return users


def make_requests(user_index, runs, seed):
    rng = random.Random("%d/%d" % (seed, user_index))
    out = []
    for r in range(runs):
        out.append({"type": "start_agent", "payload": {
            "user_request": "%s (#%d.%d)" % (rng.choice(REQUESTS), user_index, r),
            "thread_id": None, "context": {},
            "settings": {"tools": rng.sample(TOOLS, rng.randint(1, 3)),
                         "thinking_steps": rng.randint(1, 2),
                         "think_ms": rng.randint(20, 80),
                         "tool_ms": rng.randint(150, 250)}}})
    return out


def summarize(index, text):
    try:
        m = json.loads(text)
    except ValueError:
        return {"i": index, "type": None, "len": len(text.encode()), "json": False}
    payload = m.get("payload") if isinstance(m.get("payload"), dict) else {}
    data = m.get("data") if isinstance(m.get("data"), dict) else {}
    return {"i": index, "type": m.get("type"),
            "run_id": m.get("run_id") or payload.get("run_id") or data.get("run_id"),
            "thread_id": m.get("thread_id") or payload.get("thread_id") or data.get("thread_id"),
            "user_id": m.get("user_id"), "legacy": "payload" in m,
            "len": len(text.encode("utf-8"))}


class ConnectFailed(Exception):
    pass


class User:
    def __init__(self, index, ident, requests, fault=None):
        self.index = index
        self.fault = fault
        self.close_code = None
        self.started = asyncio.Event()
        self.user_id = ident["user_id"]
        self.token = ident["token"]
        self.requests = requests
        self.frames = []
        self.own_runs = []
        self.completed = 0
        self.done_event = asyncio.Event()
        self.progress = asyncio.Event()  # a progress_update of the run
        self.bridge_completed = asyncio.Event()  # the bridge's agent_completed
        self.errors = []
        self.ws = None
        self.subprotocol = None

    async def connect(self, uri):
        offered = jwt_handler.subprotocol_for(self.token)
        kw = {}
        if uri.startswith("wss:"):
            # The service's certificate is self-signed: encryption, not authentication.
            kw["ssl"] = ssl.create_default_context()
            kw["ssl"].check_hostname = False
            kw["ssl"].verify_mode = ssl.CERT_NONE
        self.ws = await websockets.connect(uri, subprotocols=["jwt-auth", offered],
                                           compression="deflate", open_timeout=10,
                                           max_size=2 ** 24, **kw)
        self.subprotocol = self.ws.subprotocol
        if self.subprotocol != offered:
            self.errors.append("server echoed %r, not the jwt entry" % self.subprotocol)

    async def reader(self):
        try:
            async for text in self.ws:
                f = summarize(len(self.frames), text)
                self.frames.append(f)
                if f["type"] == "agent_started" and f["legacy"] and f["run_id"]:
                    self.own_runs.append(f["run_id"])
                    self.started.set()
                if f["type"] == "agent_completed" and f["legacy"]:
                    self.completed += 1
                    self.done_event.set()
                if f["type"] == "agent_completed" and not f["legacy"]:
                    self.bridge_completed.set()
                if f["type"] == "progress_update":
                    self.progress.set()
        except websockets.ConnectionClosed as e:
            if e.code not in (1000, 1001) and not self.fault:
                self.errors.append("closed %s %s" % (e.code, e.reason))
        self.close_code = self.ws.close_code

    async def run_fault(self):
        """The one run of a fault user: it asks for the fault and plays its part."""
        await self.ws.send(json.dumps(self.requests[0]))
        if self.fault == "epipe":
            await self.started.wait()
            sock = self.ws.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.ws.transport.abort()
            return
        waits = {"no_completed": self.progress, "out_of_order": self.bridge_completed,
                 "missing_event": self.done_event}
        if self.fault in waits:
            await waits[self.fault].wait()
            return
        await self.ws.wait_closed()

    async def run_all(self):
        if self.fault:
            return await self.run_fault()
        for req in self.requests:
            want = self.completed + 1
            self.done_event.clear()
            try:
                await self.ws.send(json.dumps(req))
            except websockets.ConnectionClosed as e:
                self.errors.append("connection closed before request %d: %s" % (want, e))
                return
            while self.completed < want:
                await self.done_event.wait()
                self.done_event.clear()

    def report(self):
        own = set(self.own_runs)
        return {"user_id": self.user_id, "fault": self.fault, "close_code": self.close_code,
                "extensions": [e.name for e in self.ws.extensions] if self.ws else [],
                "subprotocol_echoed": self.subprotocol is not None
                and self.subprotocol.startswith("jwt."), "frames": self.frames,
                "own_runs": self.own_runs, "runs_requested": len(self.requests),
                "runs_completed": self.completed,
                "foreign": [f for f in self.frames if f.get("run_id") and f["run_id"] not in own],
                "errors": self.errors}


async def drive(host, port, n, runs, seed, timeout, linger=0.3, faults=(), tls=False):
    uri = "%s://%s:%d/ws" % ("wss" if tls else "ws", host, port)
    idents = make_users(n + len(faults), seed)
    users = [User(i, ident, make_requests(i, runs, seed))
             for i, ident in enumerate(idents[:n])]
    for k, fault in enumerate(faults):
        req = make_requests(n + k, 1, seed)
        req[0]["payload"]["settings"]["fault"] = fault
        users.append(User(n + k, idents[n + k], req, fault))
        print("client: fault %s user=%s" % (fault, idents[n + k]["user_id"]), file=sys.stderr,
              flush=True)
    start = time.monotonic()
    readers = []
    ok = True
    try:
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(u.connect(uri) for u in users), return_exceptions=True),
                timeout)
        except asyncio.TimeoutError:
            results = [asyncio.TimeoutError("connect timed out")] * len(users)
        for u, res in zip(users, results):
            if isinstance(res, BaseException):
                u.errors.append("connect failed: %s: %s" % (type(res).__name__, res))
        if any(u.ws is None for u in users):
            raise ConnectFailed()
        readers = [asyncio.ensure_future(u.reader()) for u in users]
        remaining = max(1.0, timeout - (time.monotonic() - start))
        await asyncio.wait_for(asyncio.gather(*(u.run_all() for u in users)), remaining)
        await asyncio.sleep(linger)
    except ConnectFailed:
        ok = False
    except asyncio.TimeoutError:
        ok = False
        for u in users:
            if u.completed < len(u.requests):
                u.errors.append("timeout after %.1fs: %d/%d runs completed"
                                % (timeout, u.completed, len(u.requests)))
    finally:
        for u in users:
            if u.ws is not None:
                await u.ws.close()
        if readers:
            await asyncio.wait(readers, timeout=5)
    reports = [u.report() for u in users]
    ok = ok and all(r["fault"] or (not r["errors"] and r["runs_completed"] == r["runs_requested"])
                    for r in reports)
    return {"seed": seed, "users": reports, "ok": ok,
            "elapsed_s": round(time.monotonic() - start, 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--users", type=int, default=3)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--report")
    ap.add_argument("--tls", action="store_true", help="wss://, the certificate not verified")
    ap.add_argument("--fault", action="append", default=[],
                    choices=("epipe", "raise", "after_close", "no_completed", "out_of_order",
                             "missing_event"))
    a = ap.parse_args()
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        ap.error("the client only talks to the loopback interface")
    if not 1 <= a.users <= 64 or not 1 <= a.runs <= 20:
        ap.error("--users 1..64, --runs 1..20")
    rep = asyncio.run(drive(a.host, a.port, a.users, a.runs, a.seed, a.timeout,
                            faults=a.fault, tls=a.tls))
    text = json.dumps(rep, indent=1)
    if a.report:
        with open(a.report, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    for u in rep["users"]:
        print("client: %s frames=%d runs=%d/%d foreign=%d errors=%d" % (
            u["user_id"], len(u["frames"]), u["runs_completed"], u["runs_requested"],
            len(u["foreign"]), len(u["errors"])), file=sys.stderr)
    sys.exit(0 if rep["ok"] else 1)


if __name__ == "__main__":
    main()

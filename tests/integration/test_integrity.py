# SPDX-License-Identifier: GPL-2.0
"""Audit integrity: neither a client nor the traced service can choose, erase or hide what
wsaudit judges.  Each test does one attack for real, against a real server
(tests/apps/ws_attack_server.py: Starlette on uvicorn, or plain sockets for the attacks made
from inside the service) under `wsaudit trace`, and asserts the judged result: the right user
and the breach found, the identity reported ambiguous or unknown with its reason, or the gap
counted.  None may end as "0 violations, 0 drops".
"""

import json

from attack import (Client, Service, b64u, breaches, conn_frames, conn_user, jwt,
                    request)
from harness import final_stats, free_port

LEAK = json.dumps({"type": "chat", "user_id": "victim"})


def violations(frames, rule):
    return sum(1 for f in frames for v in f.get("violations", []) if v["rule"] == rule)


def run_client(svc, parts, texts, pause=0.3):
    c = Client(svc.port, parts, pause)
    got = c.command(texts)
    c.close()
    return c.port, got


def test_request_split_across_reads(procs, tmp_path):
    """The final CRLF of the request 0.3 s after the rest: the user is the one the server
    authenticated, and both leaks are breaches."""
    svc = Service(procs, tmp_path, "starlette", free_port())
    req = request(headers=f"Authorization: Bearer {jwt('alice')}\r\n")
    port, got = run_client(svc, [req[:-2], req[-2:]], [LEAK, LEAK])
    recs = svc.stop()
    assert svc.auth()[port] == "alice"
    assert len(got) == 2
    assert conn_user(recs, port) == "alice"
    assert breaches(conn_frames(recs, port)) == 2


def test_request_smuggled_across_reads(procs, tmp_path):
    """The first read ends in a header name; the second is a whole request with the victim's
    token.  The server reads both as one head (the attacker's Authorization first): wsaudit
    must not name the connection after the victim, and says the identity is ambiguous."""
    svc = Service(procs, tmp_path, "starlette", free_port())
    first = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             f"Authorization: Bearer {jwt('mallory')}\r\nX-Junk: ").encode()
    second = request(headers=f"Authorization: Bearer {jwt('victim')}\r\n", host="")
    port, got = run_client(svc, [first, second], [LEAK])
    recs = svc.stop()
    assert svc.auth()[port] == "mallory"
    user = conn_user(recs, port)
    assert isinstance(user, dict) and "ambiguous" in user, user
    frames = conn_frames(recs, port)
    assert violations(frames, "identity_ambiguous") >= 1
    assert final_stats(recs)["identity"]["ambiguous"] >= 1


def test_duplicate_query_token(procs, tmp_path):
    """?token=alice&token=bob: Starlette authenticates bob (the last), aiohttp would take the
    first: wsaudit reports the identity ambiguous."""
    svc = Service(procs, tmp_path, "starlette", free_port())
    port, got = run_client(svc, [request(f"/ws?token={jwt('alice')}&token={jwt('bob')}")],
                           [json.dumps({"user_id": "alice"})])
    recs = svc.stop()
    assert svc.auth()[port] == "bob"
    user = conn_user(recs, port)
    assert user == {"ambiguous": "duplicate_query"}, user
    assert violations(conn_frames(recs, port), "identity_ambiguous") >= 1


def test_forged_subprotocol_vs_authorization(procs, tmp_path):
    """The server authenticates Authorization (alice); a forged jwt. subprotocol entry names
    the victim: the sources disagree, so the identity is ambiguous."""
    svc = Service(procs, tmp_path, "starlette", free_port())
    forged = "jwt." + b64u(jwt("victim").encode())
    req = request(headers=f"Authorization: Bearer {jwt('alice')}\r\n"
                          f"Sec-WebSocket-Protocol: {forged}\r\n")
    port, got = run_client(svc, [req], [LEAK])
    recs = svc.stop()
    assert svc.auth()[port] == "alice"
    user = conn_user(recs, port)
    assert user == {"ambiguous": "sources_disagree"}, user
    assert violations(conn_frames(recs, port), "identity_ambiguous") >= 1


def test_request_head_over_8k(procs, tmp_path):
    """A 12 KiB request head (padding headers) in one write: the user is read all the same."""
    svc = Service(procs, tmp_path, "starlette", free_port())
    pad = "".join(f"X-Pad-{i}: {'p' * 1000}\r\n" for i in range(12))
    req = request(headers=f"{pad}Authorization: Bearer {jwt('alice')}\r\n")
    assert len(req) > 12000
    port, got = run_client(svc, [req], [LEAK, LEAK])
    recs = svc.stop()
    assert svc.auth()[port] == "alice"
    assert conn_user(recs, port) == "alice"
    assert breaches(conn_frames(recs, port)) == 2


def test_request_head_over_bound(procs, tmp_path):
    """A head past wsaudit's bound (but under the server's): never a silent null."""
    svc = Service(procs, tmp_path, "raw", free_port())
    pad = "".join(f"X-Pad-{i}: {'p' * 1000}\r\n" for i in range(20))
    req = request(headers=f"{pad}Authorization: Bearer {jwt('alice')}\r\n")
    port, got = run_client(svc, [req[:8000], req[8000:]], [LEAK], pause=0.05)
    recs = svc.stop()
    assert svc.auth()[port] == "alice"
    user = conn_user(recs, port)
    assert user == {"unknown": "head_too_large"}, user
    assert final_stats(recs)["identity"]["unknown"] >= 1

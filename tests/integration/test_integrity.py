# SPDX-License-Identifier: GPL-2.0
"""Audit integrity: neither a client nor the traced service can choose, erase or hide what
wsaudit judges.  Each test does one attack for real, against a real server
(tests/apps/ws_attack_server.py: Starlette on uvicorn, or plain sockets for the attacks made
from inside the service) under `wsaudit trace`, and asserts the judged result: the right user
and the breach found, the identity reported ambiguous or unknown with its reason, or the gap
counted.  None may end as "0 violations, 0 drops".
"""

import ctypes
import errno
import json
import os
import signal
import socket
import subprocess

from attack import (ATTACK_SERVER, Client, Service, b64u, breaches, conn_frames, conn_user,
                    jwt, request)
from harness import PY, ROOT, START_SCALE, WSAUDIT, final_stats, free_port, read_line
from test_agent import wait_for

LEAK = json.dumps({"type": "chat", "user_id": "victim"})
libc = ctypes.CDLL(None, use_errno=True)


def violations(frames, rule):
    return sum(1 for f in frames for v in f.get("violations", []) if v["rule"] == rule)


def run_client(svc, parts, texts, pause=0.3):
    c = Client(svc.port, parts, pause)
    got = c.command(texts)
    c.close()
    return c.port, got


def figures(what, recs, port):
    """One line of figures for the record: what the server saw against what wsaudit judged."""
    frames = [f for f in conn_frames(recs, port) if f["opcode"] == "text"]
    st = final_stats(recs)
    found = {}
    for f in frames:
        for v in f.get("violations", []):
            found[v["rule"]] = found.get(v["rule"], 0) + 1
    closes = [r for r in recs if r.get("type") == "conn_close"
              and r["conn"].get("peer", "").endswith(f":{port}")]
    gap = closes[0]["conn"].get("gap_bytes", 0) if closes else None
    print(f"\n[integrity] {what}: conn.user {conn_user(recs, port)}; {len(frames)} text frames; "
          f"findings {found}; identity {st.get('identity')}; gap_bytes {gap}; "
          f"drops {st['drops_total']} {({k: v for k, v in st['drops'].items() if v})}; "
          f"output errors {st.get('output', {}).get('errors', 0)}")


def test_request_split_across_reads(procs, tmp_path):
    """The final CRLF of the request 0.3 s after the rest: the user is the one the server
    authenticated, and both leaks are breaches."""
    svc = Service(procs, tmp_path, "starlette", free_port())
    req = request(headers=f"Authorization: Bearer {jwt('alice')}\r\n")
    port, got = run_client(svc, [req[:-2], req[-2:]], [LEAK, LEAK])
    recs = svc.stop()
    figures("request split across reads", recs, port)
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
    figures("request smuggled across reads", recs, port)
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
    figures("duplicate ?token=", recs, port)
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
    figures("forged jwt. subprotocol", recs, port)
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
    figures("12 KiB head", recs, port)
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
    figures("head over the bound", recs, port)
    assert svc.auth()[port] == "alice"
    user = conn_user(recs, port)
    assert user == {"unknown": "head_too_large"}, user
    assert final_stats(recs)["identity"]["unknown"] >= 1


# --- attacks from inside the service (raw server: every syscall chosen) -----------------------


def raw_attack(procs, tmp_path, how, texts, extra=(), expect=None, trace_args=()):
    svc = Service(procs, tmp_path, "raw", free_port(), extra=extra, trace_args=trace_args)
    req = request(f"/ws?how={how}", f"Authorization: Bearer {jwt('alice')}\r\n")
    c = Client(svc.port, [req])
    got = c.command(texts, expect)
    c.close()
    recs = svc.stop()
    assert svc.auth()[c.port] == "alice"
    return c.port, got, recs


def test_101_split_across_writes(procs, tmp_path):
    """The 101 written as "H" then the rest: the connection is followed, not ignored."""
    port, got, recs = raw_attack(procs, tmp_path, "split101", [LEAK, LEAK])
    figures("101 split across writes", recs, port)
    assert len(got) == 2
    assert conn_user(recs, port) == "alice"
    assert breaches(conn_frames(recs, port)) == 2


def test_101_shares_a_write_with_first_frames(procs, tmp_path):
    """daphne's way: the 101 and the first frame in one write.  That frame is attributed
    (not stack_lost) and judged."""
    port, got, recs = raw_attack(procs, tmp_path, "daphne", [LEAK], expect=2)
    figures("101 in the write of the first frame", recs, port)
    frames = [f for f in conn_frames(recs, port) if f["opcode"] == "text"]
    assert len(frames) == 2
    assert frames[0].get("unattributed") != "stack_lost", frames[0]
    assert frames[0]["origin"] is not None, frames[0]
    assert breaches(frames) == 2


def test_close_of_a_dup_keeps_the_connection(procs, tmp_path):
    """close(dup(fd)) before each send: the socket stays open, so the connection keeps its
    user and every leak is a breach."""
    port, got, recs = raw_attack(procs, tmp_path, "dupclose", [LEAK] * 4)
    figures("close(dup(fd))", recs, port)
    frames = [f for f in conn_frames(recs, port) if f["opcode"] == "text"]
    assert len(frames) == 4
    assert all(f["conn"]["user"] == "alice" for f in frames), [f["conn"] for f in frames]
    assert breaches(frames) == 4


def test_thread_name_not_utf8(procs, tmp_path):
    """prctl(PR_SET_NAME, b"\\xff\\xfe-evil") in the sending thread: the records are written,
    the name escaped, and the breaches reported."""
    port, got, recs = raw_attack(procs, tmp_path, "badname", [LEAK, LEAK])
    figures("comm not UTF-8", recs, port)
    frames = [f for f in conn_frames(recs, port) if f["opcode"] == "text"]
    assert len(frames) == 2
    assert all("evil" in f["comm"] for f in frames), [f["comm"] for f in frames]
    assert breaches(frames) == 2
    assert final_stats(recs).get("output", {}).get("errors", 0) == 0


def test_output_that_cannot_be_written(procs, tmp_path):
    """A second trace of the same service writes to a full disk (/dev/full): its records,
    breaches included, cannot be written.  That is said on stderr and counted, and the
    trace exits 1, never 0 with the records gone.  The first trace, on a file, has them."""
    svc = Service(procs, tmp_path, "raw", free_port())
    err_path = tmp_path / "full.err"
    with open("/dev/full", "w") as full, open(err_path, "w") as err:
        full_trace = procs.start([WSAUDIT, "trace", "--standalone", "-p", str(svc.pid), "-o",
                                  "json"], stdout=full, stderr=err, cwd=ROOT)
    wait_for(lambda: "wsaudit: tracing" in err_path.read_text() or full_trace.poll() is not None,
             60 * START_SCALE, "the trace on /dev/full")
    req = request("/ws?how=write", f"Authorization: Bearer {jwt('alice')}\r\n")
    c = Client(svc.port, [req])
    c.command([LEAK] * 20)
    c.close()
    recs = svc.stop()
    figures("the same service, traced to a file", recs, c.port)
    full_trace.send_signal(signal.SIGINT)
    rc = full_trace.wait(60)
    said = [l for l in err_path.read_text().splitlines() if "could not be written" in l
            or "lost records" in l]
    print(f"[integrity] trace to /dev/full: exit {rc}; stderr {said}")
    assert breaches(conn_frames(recs, c.port)) == 20
    assert rc == 1
    assert any("could not be written (No space left on device)" in l for l in said), said
    assert any("the output lost records" in l for l in said), said


LENIENT = [
    '{"user_id": "victim", "score": NaN}',
    '{"user_id": "victim", "score": Infinity, "low": -Infinity}',
    '{"user_id": "victim", "n": 18446744073709551616}',
    '{"user_id": "victim", "note": "\\ud800"}',
    '\ufeff{"user_id": "victim"}',
    '{"user_id": "victim", "deep": ' + "[" * 65 + "]" * 65 + "}",
]


def test_message_json_as_lenient_as_python(procs, tmp_path):
    """Messages Python's json reads but a strict parser refuses: each still names its user,
    so each leak is a breach."""
    for t in LENIENT:
        json.loads(t.encode())  # the service's own parser reads every one
    port, got, recs = raw_attack(procs, tmp_path, "write", LENIENT)
    figures("messages only Python reads", recs, port)
    frames = [f for f in conn_frames(recs, port) if f["opcode"] == "text"]
    assert len(frames) == len(LENIENT)
    assert breaches(frames) == len(LENIENT), [f.get("message") for f in frames]


def test_message_user_unreadable_is_a_finding(procs, tmp_path):
    """A message that names a user field but cannot be read at all is a counted finding."""
    bad = '{"user_id": "victim", "x": [1, 2'
    port, got, recs = raw_attack(procs, tmp_path, "write", [bad])
    figures("message unreadable", recs, port)
    frames = [f for f in conn_frames(recs, port) if f["opcode"] == "text"]
    assert violations(frames, "message_unreadable") == 1
    assert final_stats(recs)["violations"]["message_unreadable"] == 1


def gap_or_seen(recs, port, n):
    """The frames the service sent outside the write family: seen and judged, or the gap
    said on the connection and counted."""
    frames = [f for f in conn_frames(recs, port) if f["opcode"] == "text"]
    if breaches(frames) == n:
        return "seen"
    closes = [r for r in recs if r.get("type") == "conn_close"
              and r["conn"].get("peer", "").endswith(f":{port}")]
    assert closes and closes[0]["conn"].get("gap_bytes", 0) > 0, closes
    stats = final_stats(recs)
    assert stats["parser"]["gap_bytes"] > 0
    assert stats["drops"]["zero_copy"] >= n
    return "gap"


def test_sendfile_to_the_socket(procs, tmp_path):
    port, got, recs = raw_attack(procs, tmp_path, "sendfile", [LEAK, LEAK])
    figures("sendfile", recs, port)
    assert len(got) == 2
    print("sendfile:", gap_or_seen(recs, port, 2))


def test_splice_to_the_socket(procs, tmp_path):
    port, got, recs = raw_attack(procs, tmp_path, "splice", [LEAK, LEAK])
    figures("splice", recs, port)
    assert len(got) == 2
    print("splice:", gap_or_seen(recs, port, 2))


def test_vmsplice_to_the_socket(procs, tmp_path):
    """The bytes mapped into a pipe with vmsplice, then spliced to the socket."""
    port, got, recs = raw_attack(procs, tmp_path, "vmsplice", [LEAK, LEAK])
    figures("vmsplice then splice", recs, port)
    assert len(got) == 2
    print("vmsplice:", gap_or_seen(recs, port, 2))


def test_copy_file_range_cannot_reach_a_socket(tmp_path):
    """copy_file_range refuses a socket (both ends must be files, since Linux 5.3): it cannot
    carry frames, so there is nothing for it to hide."""
    a, b = socket.socketpair()
    try:
        with open(tmp_path / "src", "wb+") as f:
            f.write(b"\x81\x05hello")
            f.flush()
            try:
                os.copy_file_range(f.fileno(), a.fileno(), 7, 0)
                raise AssertionError("copy_file_range wrote to a socket")
            except OSError as e:
                print(f"\n[integrity] copy_file_range to a socket: {e.strerror}")
                assert e.errno in (errno.EINVAL, errno.EBADF, errno.EXDEV), e
    finally:
        a.close()
        b.close()


def test_socket_inherited_by_a_forked_child(procs, tmp_path):
    """A child forked for each send writes the frame on the socket it inherited: the children
    of a followed process are followed, so each frame is seen with the connection's user and
    judged.  A child that exits before the collector reads its stack leaves the bridge rule
    unjudged (symbol_read_failed), which its frame says."""
    port, got, recs = raw_attack(procs, tmp_path, "fork", [LEAK] * 3)
    figures("a forked child writes on the inherited socket", recs, port)
    frames = [f for f in conn_frames(recs, port) if f["opcode"] == "text"]
    assert len(got) == 3 and len(frames) == 3
    parents = {f["pid"] for f in conn_frames(recs, port) if f["opcode"] != "text"}
    assert parents and len({f["pid"] for f in frames} | parents) == 4, frames
    assert all(f["conn"]["user"] == "alice" for f in frames), frames
    assert all(f["origin"] or violations([f], "unjudged") == 1 for f in frames), frames
    assert breaches(frames) == 3
    assert final_stats(recs)["drops_total"] == 0


def test_socket_passed_to_a_followed_process(procs, tmp_path):
    """SCM_RIGHTS to a process wsaudit follows too: its writes are frames of the same
    connection, with its user, and judged."""
    path = str(tmp_path / "scm.sock")
    w = procs.start([PY, ATTACK_SERVER, "--mode", "scm-writer", "--scm", path],
                    stdout=subprocess.PIPE)
    assert read_line(w, 30, "scm writer").startswith("READY")
    port, got, recs = raw_attack(procs, tmp_path, "scm", [LEAK, LEAK],
                                 extra=["--scm", path], trace_args=["-p", w.pid])
    figures("SCM_RIGHTS to a followed process", recs, port)
    frames = [f for f in conn_frames(recs, port) if f["opcode"] == "text"]
    assert len(got) == 2 and len(frames) == 2
    assert all(f["pid"] == w.pid and f["conn"]["user"] == "alice" for f in frames), frames
    assert breaches(frames) == 2
    assert not [r for r in recs if r.get("type") == "conn_skipped"]


def test_socket_passed_to_another_process(procs, tmp_path):
    """SCM_RIGHTS to a process wsaudit does not follow, which writes the frames: the
    hand-over is reported (conn_skipped fd_passed) and counted."""
    path = str(tmp_path / "scm.sock")
    w = procs.start([PY, ATTACK_SERVER, "--mode", "scm-writer", "--scm", path],
                    stdout=subprocess.PIPE)
    assert read_line(w, 30, "scm writer").startswith("READY")
    port, got, recs = raw_attack(procs, tmp_path, "scm", [LEAK, LEAK], extra=["--scm", path])
    figures("SCM_RIGHTS to a process not followed", recs, port)
    assert len(got) == 2
    skipped = [r for r in recs if r.get("type") == "conn_skipped"]
    assert skipped and skipped[0]["reason"] == "fd_passed", skipped
    assert skipped[0]["peer_pid"] == w.pid and skipped[0]["conn"]["user"] == "alice", skipped
    assert final_stats(recs)["conns"]["fd_passed"] >= 1


def socket_fd(pid, local_port, peer_port):
    """The fd number, in pid, of its TCP socket from local_port to peer_port."""
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            lp, rp = int(cols[1].split(":")[1], 16), int(cols[2].split(":")[1], 16)
            if (lp, rp) == (local_port, peer_port):
                inode = cols[9]
    assert inode, f"no socket {local_port}->{peer_port}"
    for fd in os.listdir(f"/proc/{pid}/fd"):
        if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
            return int(fd)
    raise AssertionError(f"socket:[{inode}] is not one of {pid}'s fds")


def test_write_by_a_process_not_followed(procs, tmp_path):
    """A process wsaudit does not follow takes the service's socket (pidfd_getfd, no fork,
    no SCM_RIGHTS) and writes a frame after the 101, before the service's own: the socket's TCP sequence
    shows bytes no captured write carried, so the connection gets a hole of exactly their
    size (unseen_write) and the frame after it is still judged."""
    svc = Service(procs, tmp_path, "raw", free_port())
    c = Client(svc.port, [request("/ws?how=write", f"Authorization: Bearer {jwt('alice')}\r\n")])
    injected = b"\x81\x05hello"
    pidfd = os.pidfd_open(svc.pid)
    try:
        fd = libc.syscall(438, pidfd, socket_fd(svc.pid, svc.port, c.port), 0)  # pidfd_getfd
        assert fd >= 0, ctypes.get_errno()
        try:
            assert os.write(fd, injected) == len(injected)
        finally:
            os.close(fd)
    finally:
        os.close(pidfd)
    got = c.command([LEAK], expect=2)
    c.close()
    recs = svc.stop()
    assert [g[1] for g in got] == [b"hello", LEAK.encode()]
    assert breaches(conn_frames(recs, c.port)) == 1
    closes = [r for r in recs if r.get("type") == "conn_close"
              and r["conn"].get("peer", "").endswith(f":{c.port}")]
    assert closes and closes[0]["conn"].get("gap_bytes") == len(injected), closes
    stats = final_stats(recs)
    assert stats["drops"]["unseen_write"] == 1, stats["drops"]
    print(f"unseen write: gap_bytes {closes[0]['conn']['gap_bytes']}, "
          f"drops {({k: v for k, v in stats['drops'].items() if v})}")

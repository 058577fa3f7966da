# SPDX-License-Identifier: GPL-2.0
"""`wsaudit trace --write DIR`: each connection's bytes kept in files.

Real servers and real clients: the .pcapng of each connection, read by tshark
(Wireshark's own dissector, as the loopback oracle of test_capture reads a real
capture), and its .ws raw stream, read by `wsaudit decode`, must give the same
frames as the server's own log, in order.  The holes a small --write-cap makes
are said in packet comments and in the stats record, never glued over; the
bounds, a full file system and a directory that cannot be written are said
and counted.
"""

import json
import os
import stat
import subprocess

import pytest

from harness import (
    APPS,
    PY,
    ROOT,
    WSAUDIT,
    Server,
    Trace,
    diff_sequences,
    final_stats,
    frame_key,
    free_port,
    peer_port,
    read_line,
    run_clients,
    trace_frames,
)
from oracle import decode

MIX_FRAMES = 37


def conn_ids(recs, port):
    """{client port: conn id} of the connections to the server's port."""
    out = {}
    for r in recs:
        if r.get("type") == "conn_open" and r["conn"]["local"].endswith(f":{port}"):
            out[peer_port(r["conn"])] = r["conn"]["id"]
    return out


def origin_verdict(r):
    """What a frame record says of its origin and verdict, as --write's comments say it."""
    o = r.get("origin")
    if o:
        origin = f"{o['function']} ({o['file']}:{o['line']})"
        if o.get("via"):
            origin += f" via {o['via']}"
    else:
        origin = f"unattributed ({r['unattributed']})"
    rules = [v["rule"] for v in r.get("violations", [])]
    return origin, ", ".join(rules) if rules else "ok"


def ws_decode(path, *args):
    """`wsaudit decode [ARGS] FILE` frames as (opcode, fin, payload_len, close_code), and
    every record."""
    p = subprocess.run([WSAUDIT, "decode", *args, path], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, f"wsaudit decode {path}: exit {p.returncode}: {p.stderr}"
    recs = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    return [frame_key(r) for r in recs if r.get("type") == "frame"], recs


def comments(path, with_len=False):
    """Every packet comment of a pcapng, in order: [(tcp.seq, comment), ...], or
    [(tcp.seq, tcp.len, comment), ...]."""
    p = subprocess.run(
        ["tshark", "-r", path, "-o", "tcp.relative_sequence_numbers:FALSE", "-T", "fields",
         "-e", "tcp.seq", "-e", "tcp.len", "-e", "frame.comment", "-E", "occurrence=a",
         "-E", "aggregator=\x1f"],
        capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, f"tshark -r {path}: {p.stderr}"
    out = []
    for line in p.stdout.splitlines():
        seq, n, text = line.split("\t", 2)
        for c in text.split("\x1f") if text else []:
            out.append((int(seq), int(n), c) if with_len else (int(seq), c))
    return out


def run_write(procs, tmp, kind, extra=(), n=3):
    port = free_port()
    out_dir = os.path.join(tmp, "streams")
    server = Server(procs, kind, port, os.path.join(tmp, "server.log"))
    trace = Trace(procs, tmp, ["-p", server.pid, "-o", "json", "--payload", "--write", out_dir,
                               *extra])
    clients = run_clients(procs, port, n=n)
    rc = trace.stop()
    assert rc == 0, f"wsaudit exit {rc}; stderr:\n{trace.stderr()}"
    return port, out_dir, server, trace, clients


@pytest.mark.parametrize("kind", ["websockets", "fastapi"])
def test_written_streams_decode_to_the_server_frames(kind, procs, tmp_path):
    """tshark on each .pcapng and `wsaudit decode` on each .ws give the server's frames."""
    port, out_dir, server, trace, clients = run_write(procs, str(tmp_path), kind)
    recs = trace.records()
    log = server.frames()
    ids = conn_ids(recs, port)
    ports = sorted(c["port"] for c in clients)
    assert sorted(ids) == ports, f"conn_open for {sorted(ids)}, clients {ports}"
    assert stat.S_IMODE(os.stat(out_dir).st_mode) == 0o700
    by_port = trace_frames(recs, server.pid, port)

    for p in ports:
        base = os.path.join(out_dir, ids[p])
        for ext in (".pcapng", ".ws"):
            mode = stat.S_IMODE(os.stat(base + ext).st_mode)
            assert mode == 0o600, f"{base}{ext}: mode {oct(mode)}"
        assert len(log[p]) == MIX_FRAMES, f"server log, port {p}: {len(log[p])} frames"
        shark = [tuple(f) for f in decode(base + ".pcapng", port).get(p, [])]
        assert shark == log[p], f"port {p}, tshark on the .pcapng:\n" + diff_sequences(
            "tshark", shark, "server log", log[p])
        dec, drecs = ws_decode(base + ".ws")
        assert dec == log[p], f"port {p}, wsaudit decode on the .ws:\n" + diff_sequences(
            "decode", dec, "server log", log[p])
        hs = [r for r in drecs if r.get("type") == "handshake"]
        assert hs and hs[0]["status"] == 101, drecs[:2]

        # One comment per frame, on the packet of its first byte, naming its origin.
        notes = comments(base + ".pcapng")
        frames = [c for _, c in notes if c.startswith("frame ")]
        assert len(frames) == MIX_FRAMES, "\n".join(c for _, c in notes)
        assert all("origin: " in c and "verdict: " in c for c in frames), frames
        # The same origins and verdicts as the trace's frame records, in order.
        said = [(c.split("; origin: ")[1].split("; verdict: ")[0], c.split("; verdict: ")[1])
                for c in frames]
        assert said == [origin_verdict(r) for r in by_port[p]], "\n".join(frames)
        assert not [c for _, c in notes if c.startswith("hole")], notes
        for seq, n, c in comments(base + ".pcapng", with_len=True):
            if c.startswith("frame ") and "earlier packet" not in c:
                at = int(c.split(" at seq ")[1].split(";")[0].split()[0])
                assert seq <= at < seq + max(n, 1), (seq, n, c)
        assert any("upgrade request as the server read it" in c for _, c in notes), notes
        assert any("the connection ended" in c for _, c in notes), notes

    # The stats record with its `write` member keeps the record contract.
    import jsonschema
    with open(os.path.join(ROOT, "docs", "schemas", "stats.schema.json")) as f:
        errors = list(jsonschema.Draft202012Validator(json.load(f)).iter_errors(final_stats(recs)))
    assert not errors, [e.message for e in errors]
    st = final_stats(recs)["write"]
    print(f"\n[{kind}] write stats: {st}")
    assert st["conns"] == len(ports) and st["open"] == 0, st
    assert st["frames"] == MIX_FRAMES * len(ports), st
    assert st["holes"] == 0 and st["errors"] == 0 and st["raw_cut"] == 0, st
    assert not any(st["not_written"].values()), st
    assert f"wrote {len(ports)} connection(s) to {out_dir}" in trace.stderr()


def test_holes_are_said_not_glued(procs, tmp_path):
    """--write-cap 512: the large frames' tails are not captured.  Each hole is a sequence
    jump with its comment, the .ws file ends at the first one, the stats count them."""
    port, out_dir, server, trace, clients = run_write(
        procs, str(tmp_path), "websockets", ["--write-cap", "512"], n=1)
    recs = trace.records()
    stats = final_stats(recs)
    st = stats["write"]
    (p, cid), = conn_ids(recs, port).items()
    base = os.path.join(out_dir, cid)
    notes = comments(base + ".pcapng")
    holes = [(seq, c) for seq, c in notes if c.startswith("hole")]
    print(f"\nholes: {len(holes)}; write stats {st}; parser {stats['parser']}")
    assert holes, notes
    assert st["holes"] == len(holes) and st["hole_bytes"] > 0, st
    # Every uncaptured byte of the stream is in a hole the file says.
    assert st["hole_bytes"] == stats["parser"]["gap_bytes"], (st, stats["parser"])
    assert st["raw_cut"] == 1, st
    assert any(".ws ends before this packet" in c for _, c in notes), notes
    # Each hole's packet starts where its comment says the sequence jumps to.
    for seq, c in holes:
        if "jump from" in c:
            assert c.rstrip(")").endswith(f" to {seq}"), (seq, c)
    # The raw stream holds the frames before the first hole, whole and in order.
    log = server.frames()[p]
    dec, _ = ws_decode(base + ".ws")
    assert dec and dec == log[:len(dec)], diff_sequences("decode", dec, "server log", log)
    assert len(dec) < len(log)
    # tshark reads the file to its end (it would refuse a damaged one).
    subprocess.run(["tshark", "-r", base + ".pcapng"], check=True, capture_output=True,
                   timeout=60)


def test_bounds_are_said_and_counted(procs, tmp_path):
    """--write-conn-max 64K: every connection of the mix (about 400 KiB) is cut, its last
    packet says why, its file stays within the bound and readable."""
    port, out_dir, server, trace, clients = run_write(
        procs, str(tmp_path), "websockets", ["--write-conn-max", "64K"], n=2)
    recs = trace.records()
    st = final_stats(recs)["write"]
    print(f"\nwrite stats {st}")
    assert st["not_written"]["conn_max"] == 2, st
    assert st["bytes_not_written"] > 0, st
    assert "--write-conn-max reached" in trace.stderr()
    for cid in conn_ids(recs, port).values():
        path = os.path.join(out_dir, cid + ".pcapng")
        assert os.path.getsize(path) + os.path.getsize(os.path.join(out_dir, cid + ".ws")) \
            <= 64 * 1024 + 4096
        last = comments(path)[-1][1]
        assert last.startswith("not written from here: the connection's bound"), last


def test_run_bound(procs, tmp_path):
    """--write-run-max 64K over three connections: the run stops writing, said once."""
    port, out_dir, server, trace, clients = run_write(
        procs, str(tmp_path), "websockets", ["--write-run-max", "64K"], n=3)
    st = final_stats(trace.records())["write"]
    print(f"\nwrite stats {st}")
    assert st["not_written"]["run_max"] >= 1, st
    assert st["bytes"] <= 64 * 1024 + 3 * 4096, st
    assert "the run's bound (65536 bytes) is reached" in trace.stderr()


def mount_tmpfs(path, opts):
    os.makedirs(path)
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", path], check=True)


def test_full_file_system_is_counted(procs, tmp_path):
    """A 256 KiB file system fills mid-run: the failed writes are counted in the stats
    record and said; the files are cut back to what was written whole and stay readable."""
    mnt = os.path.join(str(tmp_path), "small")
    mount_tmpfs(mnt, "size=256k,mode=0700")
    try:
        port = free_port()
        server = Server(procs, "websockets", port, os.path.join(str(tmp_path), "server.log"))
        trace = Trace(procs, str(tmp_path), ["-p", server.pid, "-o", "json", "--payload",
                                             "--write", mnt])
        run_clients(procs, port, n=3)
        assert trace.stop() == 0, trace.stderr()
        st = final_stats(trace.records())["write"]
        print(f"\nwrite stats {st}")
        assert st["errors"] >= 1 and st["not_written"]["write_error"] >= 1, st
        assert "No space left on device" in trace.stderr(), trace.stderr()
        for name in os.listdir(mnt):
            if name.endswith(".pcapng"):
                subprocess.run(["tshark", "-r", os.path.join(mnt, name)], check=True,
                               capture_output=True, timeout=60)
    finally:
        subprocess.run(["umount", mnt], check=False)


def test_refusals_before_anything_is_loaded(procs, tmp_path):
    """Without --payload, or into a directory that cannot be written: exit 2 at once."""
    def trace(*args):
        return subprocess.run([WSAUDIT, "trace", "-p", str(os.getpid()), "--standalone", *args],
                              capture_output=True, text=True, timeout=30, cwd=ROOT)

    p = trace("--write", str(tmp_path / "x"))
    assert p.returncode == 2 and "give --payload to consent" in p.stderr, p.stderr
    assert not os.path.exists(tmp_path / "x")

    ro = os.path.join(str(tmp_path), "ro")
    mount_tmpfs(ro, "ro,size=64k")
    try:
        p = trace("--payload", "--write", ro)
        assert p.returncode == 2, p.stderr
        assert f"--write {ro}: cannot write in it: Read-only file system" in p.stderr, p.stderr
        assert "tracing" not in p.stderr and "started in" not in p.stderr, p.stderr
    finally:
        subprocess.run(["umount", ro], check=False)

    f = tmp_path / "file"
    f.write_text("")
    p = trace("--payload", "--write", str(f))
    assert p.returncode == 2 and "Not a directory" in p.stderr, p.stderr


def test_compressed_and_adopted_connections(procs, tmp_path):
    """FastAPI on uvloop with permessage-deflate and a JWT subprotocol: connections opened
    during the trace decode from their .ws with the messages the clients received; those
    open before it (adopted) have no handshake in their files, say so, and still give the
    trace's frames to tshark (decoded as WebSocket from the start) and to decode."""
    tmp = str(tmp_path)
    port = free_port()
    srv = procs.start([PY, os.path.join(APPS, "ws_held.py"), "--port", str(port)],
                      stdout=subprocess.PIPE)
    line = read_line(srv, 30, "ws_held server")
    assert line.startswith("READY pid="), line
    held = procs.start([PY, os.path.join(APPS, "ws_held_client.py"), "--port", str(port),
                        "-n", "2", "--before", "3", "--after", "5", "--leak", "1"],
                       stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    assert read_line(held, 60, "held client") == "OPEN"
    out_dir = os.path.join(tmp, "streams")
    trace = Trace(procs, tmp, ["-p", srv.pid, "-o", "json", "--payload", "--write", out_dir])
    held.stdin.write(b"go\n")
    held.stdin.flush()
    adopted_report = json.loads(read_line(held, 120, "held client report"))
    new = subprocess.run([PY, os.path.join(APPS, "ws_held_client.py"), "--port", str(port),
                          "-n", "2", "--before", "4", "--after", "6", "--leak", "0"],
                         input=b"\n", capture_output=True, timeout=120)
    assert new.returncode == 0, new.stderr
    new_report = json.loads(new.stdout.decode().splitlines()[-1])
    assert trace.stop() == 0, trace.stderr()
    recs = trace.records()
    by_port = trace_frames(recs, srv.pid, port)
    opened = {peer_port(r["conn"]): r["conn"] for r in recs if r.get("type") == "conn_open"}

    for conn in adopted_report + new_report:
        p = conn["port"]
        adopted = opened[p]["adopted"]
        assert adopted == (conn in adopted_report), opened[p]
        base = os.path.join(out_dir, opened[p]["id"])
        want = [frame_key(r) for r in by_port[p]]
        assert want[-1][0] == "close", want
        shark = [tuple(f) for f in decode(base + ".pcapng", port,
                                          proto="websocket" if adopted else "http").get(p, [])]
        assert shark == want, f"port {p}:\n" + diff_sequences("tshark", shark, "trace", want)
        args = ["--payload"] + (["--extensions", "permessage-deflate"] if adopted else [])
        dec, drecs = ws_decode(base + ".ws", *args)
        assert dec == want, f"port {p}:\n" + diff_sequences("decode", dec, "trace", want)
        notes = [c for _, c in comments(base + ".pcapng")]
        if adopted:
            assert notes[0].startswith("wsaudit trace --write: connection"), notes[0]
            assert notes[1].startswith("adopted: open before the trace"), notes[1]
            assert not any("upgrade request" in c for c in notes), notes
            continue
        assert all(r["compressed"] for r in drecs if r.get("type") == "frame"
                   and r["opcode"] == "text"), drecs
        # The messages the client received after it said OPEN, decoded from the .ws.
        msgs = [json.loads(r["message"]["payload"]) for r in drecs
                if r.get("type") == "frame" and r["opcode"] == "text"]
        assert [r["message"]["status"] for r in drecs
                if r.get("type") == "frame" and r["opcode"] == "text"] == ["ok"] * len(msgs)
        got = [[m["type"], m["user_id"]] for m in msgs][-len(conn["messages"]):]
        assert got == conn["messages"], (got, conn["messages"])
        assert any("the upgrade request as the server read it" in c for c in notes), notes
    # The planted breach on the first adopted connection is in its comments.
    first = os.path.join(out_dir, opened[adopted_report[0]["port"]]["id"] + ".pcapng")
    assert any("isolation_breach" in c for _, c in comments(first)), comments(first)
    st = final_stats(recs)["write"]
    print(f"\n[held] write stats {st}")
    assert st["conns"] == 4 and st["errors"] == 0 and st["holes"] == 0, st


def test_connections_past_the_open_bound_are_said(procs, tmp_path):
    """130 connections open at once: 128 are written, the other 2 are said and counted
    (too_many_open); their frames are still traced."""
    tmp = str(tmp_path)
    port = free_port()
    srv = procs.start([PY, os.path.join(APPS, "ws_held.py"), "--port", str(port)],
                      stdout=subprocess.PIPE)
    assert read_line(srv, 30, "ws_held server").startswith("READY pid=")
    out_dir = os.path.join(tmp, "streams")
    trace = Trace(procs, tmp, ["-p", srv.pid, "-o", "json", "--payload", "--write", out_dir])
    cli = subprocess.run([PY, os.path.join(APPS, "ws_held_client.py"), "--port", str(port),
                          "-n", "130", "--before", "1", "--after", "1", "--leak", "0"],
                         input=b"\n", capture_output=True, timeout=180)
    assert cli.returncode == 0, cli.stderr
    assert trace.stop() == 0, trace.stderr()
    recs = trace.records()
    st = final_stats(recs)["write"]
    print(f"\nwrite stats {st}")
    assert st["conns"] == 128 and st["not_written"]["too_many_open"] == 2, st
    assert len([n for n in os.listdir(out_dir) if n.endswith(".pcapng")]) == 128
    assert "too many connections written at once" in trace.stderr(), trace.stderr()
    assert len({r["conn"]["id"] for r in recs if r.get("type") == "frame"}) == 130

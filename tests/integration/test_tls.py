# SPDX-License-Identifier: GPL-2.0
"""TLS that a traced process terminates itself (docs/tls.md).

Against real servers on wss:// (a self-signed certificate made with the openssl command):
what wsaudit cannot read is said, per connection (a conn_skipped record with the reason and a
warning naming the process and peer) and counted, never left silent.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess

import pytest

from attr_helpers import ROOT_LOGDIR, ROOT_REPO, RUN_IN_ROOT, ensure_root, interpreters
from harness import APPS, PY, ROOT, final_stats, free_port, read_line, Trace, peer_port
from test_rules import run_standin, score

NODE_SERVER = os.path.join(APPS, "tls_node_server.js")


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("cert")
    key, crt = str(d / "key.pem"), str(d / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return key, crt


def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_echo(port, lines):
    """A TLS client: each line sent and read back.  Returns its local port."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        local = raw.getsockname()[1]
        with client_context().wrap_socket(raw, server_hostname="127.0.0.1") as s:
            for line in lines:
                s.sendall(line)
                got = b""
                while len(got) < len(line):
                    chunk = s.recv(4096)
                    assert chunk, "server closed"
                    got += chunk
                assert got == line
    return local


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_static_openssl_is_skipped_and_said(procs, tmp_path, cert):
    """Node.js links OpenSSL into its binary: its TLS connections cannot be read through the
    libssl probes.  Each one is a conn_skipped record (static_ssl) naming the process and the
    peer, a warning on stderr, and a count; the binary is named once."""
    port = free_port()
    node = procs.start(["node", NODE_SERVER, str(port), *cert], stdout=subprocess.PIPE)
    assert read_line(node, 30, "node server") == f"READY pid={node.pid}"
    trace = Trace(procs, tmp_path, ["-p", node.pid, "-o", "json"])
    ports = [tls_echo(port, [b"hello\n", b"again\n"]) for _ in range(2)]
    assert trace.stop() == 0
    recs = trace.records()
    skipped = [r for r in recs if r.get("type") == "conn_skipped"]
    assert sorted(peer_port(r["conn"]) for r in skipped) == sorted(ports), skipped
    for r in skipped:
        assert r["reason"] == "static_ssl" and r["pid"] == node.pid, r
        assert r["conn"]["local"] == f"127.0.0.1:{port}", r
    err = trace.stderr()
    for p in ports:
        assert f"pid {node.pid} (node)" in err and f"127.0.0.1:{p} is not followed" in err, err
    assert err.count("OpenSSL is linked into") == 1, err
    stats = final_stats(recs)
    assert stats["conns"]["skipped"]["static_ssl"] == 2
    assert stats["conns"]["tls_sockets"] == 2
    assert not [r for r in recs if r.get("type") == "frame"]


@pytest.mark.parametrize("leak,seed", [(False, 3), (True, 4)], ids=["leak-off", "leak-on"])
def test_standin_on_wss(procs, tmp_path, cert, leak, seed):
    """The stand-in (FastAPI on uvicorn with uvloop, permessage-deflate, the JWT in the
    subprotocol) serving wss:// with uvicorn's --ssl-keyfile/--ssl-certfile: scored against
    its ground truth as on ws://, every planted bypass with its origin function and line, every
    leaked frame a breach naming both users; the ciphertext is neither skipped nor parsed."""
    key, crt = cert
    truth, trace_path, recs = run_standin(procs, tmp_path, leak, users=5, runs=2, seed=seed,
                                          extra=["--ssl-keyfile", key, "--ssl-certfile", crt])
    stats = final_stats(recs)
    frames = [r for r in recs if r.get("type") == "frame"]
    print(f"standin wss leak={'on' if leak else 'off'}: {len(frames)} frames; "
          f"conns {stats['conns']}")
    assert frames and all(f["conn"]["tls"] for f in frames)
    assert stats["drops_total"] == 0, stats["drops"]
    assert stats["conns"]["tls"]["followed"] == 5 and stats["conns"]["tls"]["linked"] == 5
    assert not any(stats["conns"]["skipped"].values()), stats["conns"]
    assert stats["conns"]["ignored"] == 0 and stats["parser"]["desyncs"] == 0
    assert not [r for r in recs if r.get("type") == "conn_skipped"]
    assert score(truth, trace_path) == 0


APP = os.path.join(APPS, "tls_ws_server.py")
CLIENT = os.path.join(APPS, "tls_ws_client.py")
BLOCKING = os.path.join(APPS, "tls_blocking_server.py")


def marker_lines():
    """{app file name: {function: line}} of the sends marked `# send: FUNCTION`."""
    out = {}
    for app in (APP, BLOCKING):
        marks = out.setdefault(os.path.basename(app), {})
        with open(app) as f:
            for n, line in enumerate(f, 1):
                if "# send: " in line:
                    marks[line.split("# send: ", 1)[1].strip()] = n
    return out


def start_app(procs, interp, impl, cert, workdir):
    """tls_ws_server.py under interp (chrooted in its Debian root when it has one)."""
    port = free_port()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    for k in ("PYTHONPATH", "PYTHONHOME", "PYENV_VERSION", "VIRTUAL_ENV"):
        env.pop(k, None)
    for src in cert:
        shutil.copy(src, workdir)
    if interp.suite:
        d = ROOT_LOGDIR
        argv = [RUN_IN_ROOT, "--bind", "%s:%s" % (workdir, d), interp.suite, interp.exe,
                APP.replace(ROOT, ROOT_REPO, 1)]
    else:
        d = workdir
        argv = [interp.exe, APP]
    argv += ["--port", str(port), "--impl", impl, "--log", d + "/truth.jsonl",
             "--key", d + "/key.pem", "--cert", d + "/cert.pem"]
    app = procs.start(argv, stdout=subprocess.PIPE, env=env, cwd="/")
    line = read_line(app, 60, "tls app")
    assert line.startswith("READY pid=%d " % app.pid), line
    return app, port, line.split("python=")[1]


def run_tls_client(port, n, scenarios=()):
    argv = [PY, CLIENT, "--port", str(port), "-n", str(n)]
    for name in scenarios:
        argv += ["--scenario", name]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, p.stderr[-2000:]
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


CASES = [("websockets", "debian-3.11"), ("aiohttp", "debian-3.11"),
         ("websockets", "debian-bullseye-3.9"), ("websockets", "debian-trixie-3.13"),
         ("websockets", "debian-sid-3.14")]


@pytest.mark.parametrize("impl,label", CASES, ids=["%s-%s" % c for c in CASES])
def test_wss_frames_origins_users_and_findings(procs, tmp_path, cert, impl, label):
    """A websockets server with an SSL context on plain asyncio (Debian's 3.11, and the 3.9,
    3.13 and 3.14 of the Debian roots: libssl 1.1 and 3, SSL_write and SSL_write_ex) and an
    aiohttp one: every frame the clients received is reported, on its connection (peer),
    with the function and line that sent it, the user of the JWT its request carried (in
    the subprotocol, or in Authorization), and the planted bypass and leak flagged."""
    interp = {i.label: i for i in interpreters()}[label]
    why = interp.why or (ensure_root(interp) if interp.suite else None)
    if why:
        pytest.skip(why)
    if impl == "aiohttp" and subprocess.run([interp.exe, "-c", "import aiohttp"]).returncode:
        pytest.skip("%s has no aiohttp" % interp.exe)
    workdir = str(tmp_path)
    app, port, version = start_app(procs, interp, impl, cert, workdir)
    trace = Trace(procs, workdir, ["-p", app.pid, "-o", "json", "--show-identities"])
    clients = run_tls_client(port, 4)
    assert trace.stop() == 0, trace.stderr()
    check_against_truth(trace.records(), workdir, clients, "%s on %s (Python %s)" % (
        impl, label, version))


def check_against_truth(recs, workdir, clients, what):
    """Every frame the app logged is reported on its client's connection, with the logged
    function (and the line of its marked send), the connection's JWT user and the expected
    findings; nothing skipped, dropped or left unlinked."""
    with open(os.path.join(workdir, "truth.jsonl")) as f:
        truth = [json.loads(l) for l in f if l.strip()]
    lines = marker_lines()
    got = {}
    for r in recs:
        if r.get("type") == "frame" and r["opcode"] == "text":
            got.setdefault(peer_port(r["conn"]), []).append(r)
    assert sorted(got) == sorted(c["port"] for c in clients), (sorted(got), clients)
    assert len(truth) == sum(c["frames"] for c in clients) == 4 * len(clients)
    for t in truth:
        f = got[t["port"]][t["seq"]]
        assert f["conn"]["tls"] and f["conn"]["tls_link"] == "linked", f["conn"]
        assert f["conn"]["user"] == t["user"], (f["conn"], t)
        assert f["origin"]["function"] == t["function"], (f["origin"], t)
        assert os.path.basename(f["origin"]["file"]) in ("tls_ws_server.py",
                                                         "tls_blocking_server.py"), f["origin"]
        assert f["origin"]["line"] == lines[f["origin"]["file"].rsplit("/", 1)[1]][
            t["function"]], (f["origin"], t)
        assert sorted(v["rule"] for v in f["violations"]) == t["expect"], (f["violations"], t)
    assert sum(len(v) for v in got.values()) == len(truth)
    stats = final_stats(recs)
    print(f"tls {what}: {len(truth)} frames; tls {stats['conns']['tls']}")
    n = len(clients)
    assert stats["drops_total"] == 0, stats["drops"]
    assert stats["conns"]["tls"] == {"followed": n, "linked": n, "unlinked": 0,
                                     "link_conflicts": 0}
    assert not any(stats["conns"]["skipped"].values()) and stats["conns"]["ignored"] == 0
    assert stats["parser"]["desyncs"] == 0
    assert not [r for r in recs if r.get("type") == "conn_skipped"]


def test_blocking_sslsocket_with_ssl_imported_after_the_trace_began(procs, tmp_path, cert):
    """Blocking ssl sockets, one thread per connection (the ciphertext written inside
    SSL_write), in a process that imports ssl only once wsaudit is tracing it: the probes set
    on the libssl it would load cover it; every frame reported as on asyncio."""
    workdir = str(tmp_path)
    late = os.path.join(workdir, "go")
    port = free_port()
    app = procs.start([PY, BLOCKING, "--port", str(port), "--cert", cert[1], "--key", cert[0],
                       "--log", os.path.join(workdir, "truth.jsonl"), "--late", late],
                      stdout=subprocess.PIPE)
    assert read_line(app, 30, "blocking app").startswith("READY pid=%d " % app.pid)
    trace = Trace(procs, workdir, ["-p", app.pid, "-o", "json", "--show-identities"])
    assert not [l for l in open("/proc/%d/maps" % app.pid) if "libssl" in l]
    open(late, "w").close()
    clients = run_tls_client(port, 3)
    assert trace.stop() == 0, trace.stderr()
    check_against_truth(trace.records(), workdir, clients, "blocking, ssl imported late")


def test_capture_cap_on_tls_is_a_truncated_frame_and_a_drop(procs, tmp_path, cert):
    """A 200 kB binary frame of random bytes (deflate does not shrink it) through SSL_write
    with a 64 KiB capture cap: reported, from its function, truncated, the bytes past the cap
    counted as for a socket's write."""
    interp = {i.label: i for i in interpreters()}["debian-3.11"]
    workdir = str(tmp_path)
    app, port, _ = start_app(procs, interp, "websockets", cert, workdir)
    trace = Trace(procs, workdir, ["-p", app.pid, "-o", "json", "--write-cap", 65536])
    clients = run_tls_client(port, 1, ["big"])
    assert trace.stop() == 0, trace.stderr()
    recs = trace.records()
    frames = [r for r in recs if r.get("type") == "frame" and r["opcode"] == "binary"]
    assert len(frames) == 1 and peer_port(frames[0]["conn"]) == clients[0]["port"], frames
    f = frames[0]
    assert f["conn"]["tls"] and f["truncated"] and f["captured_len"] < f["payload_len"], f
    assert f["origin"]["function"] == "big", f["origin"]
    stats = final_stats(recs)
    assert stats["drops"]["cap_exceeded"] >= 1 and stats["kernel"]["cap_bytes"] > 0, stats
    assert stats["parser"]["truncated_frames"] >= 1


def test_tls_connection_open_before_the_trace_is_adopted(procs, tmp_path, cert):
    """A wss:// connection opened, and its handshake done, before wsaudit starts: its first
    SSL_write seen makes it a connection, adopted from its plaintext frames, linked to its
    socket by its ciphertext; its frames are reported from their functions and its user is
    said to be unknown (its request was never read), not skipped."""
    interp = {i.label: i for i in interpreters()}["debian-3.11"]
    workdir = str(tmp_path)
    go = os.path.join(workdir, "go")
    app, port, _ = start_app(procs, interp, "websockets", cert, workdir)
    client = procs.start([PY, CLIENT, "--port", str(port), "-n", "1", "--hold", go,
                          "--scenario", "bridge", "--scenario", "bypass", "--scenario",
                          "bridge"], stdout=subprocess.PIPE)
    assert read_line(client, 30, "held client") == "HELD"
    trace = Trace(procs, workdir, ["-p", app.pid, "-o", "json"])
    open(go, "w").close()
    out, _ = client.communicate(timeout=60)
    assert client.returncode == 0
    port_c = json.loads(out.decode().splitlines()[-1])["port"]
    assert trace.stop() == 0, trace.stderr()
    recs = trace.records()
    frames = [r for r in recs if r.get("type") == "frame" and r["opcode"] == "text"]
    assert [f["origin"]["function"] for f in frames] == ["bypass",
                                                        "AgentWebSocketBridge.send_event"]
    assert all(f["conn"]["tls"] and f["conn"]["adopted"] for f in frames), frames
    assert peer_port(frames[-1]["conn"]) == port_c and frames[-1]["conn"]["tls_link"] == "linked"
    assert "bridge_bypass" in [v["rule"] for v in frames[0]["violations"]]
    stats = final_stats(recs)
    assert stats["conns"]["adopted"] == 1 and stats["conns"]["tls"]["linked"] == 1
    assert not any(stats["conns"]["skipped"].values()), stats["conns"]

# SPDX-License-Identifier: GPL-2.0
"""TLS that a traced process terminates itself (docs/tls.md).

Against real servers on wss:// (a self-signed certificate made with the openssl command):
what wsaudit cannot read is said, per connection (a conn_skipped record with the reason and a
warning naming the process and peer) and counted, never left silent.
"""

import os
import shutil
import socket
import ssl
import subprocess

import pytest

from harness import APPS, final_stats, free_port, read_line, Trace, peer_port

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

# SPDX-License-Identifier: GPL-2.0
"""The traced service as an attacker: it chooses the bytes wsaudit must decode and the
values wsaudit keys its tables by and prints.  Each test makes the attack for real
against `wsaudit trace` and checks that nothing is lost, the collector's work stays
bounded, and nothing secret is printed.

Figures (collector CPU, drops) are printed for the record; the CPU bounds asserted are
ten times above what the bounded code needs and far below what the attacks cost without
the bounds (docs/hardening.md gives both).
"""

import base64
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from harness import APPS, PY, ROOT, WSAUDIT, Trace, final_stats, free_port, read_line

HOSTILE_SERVER = os.path.join(APPS, "ws_hostile_server.py")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU time of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def settle_cpu(pid, quiet=1.0, timeout=120):
    """CPU time of pid once it stopped growing for `quiet` seconds (its backlog drained)."""
    deadline = time.monotonic() + timeout
    last = cpu_seconds(pid)
    still = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = cpu_seconds(pid)
        if now - last > 0.02:
            last, still = now, time.monotonic()
        elif time.monotonic() - still >= quiet:
            return now
    return cpu_seconds(pid)


def jwt(sub):
    """An unsigned JWT naming sub (wsaudit reads the claim; it does not verify)."""
    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64({'sub': sub})}.c2lnbmF0dXJl"


def ws_read_all(port, extensions=None, timeout=60, headers=()):
    """A client on a bare socket: handshake, then read (and discard) until the server
    closes.  Returns the bytes received after the handshake."""
    key = base64.b64encode(os.urandom(16)).decode()
    head = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
    if extensions:
        head += f"Sec-WebSocket-Extensions: {extensions}\r\n"
    for h in headers:
        head += h + "\r\n"
    total = 0
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall((head + "\r\n").encode())
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
    return total


def start_app(procs, argv):
    p = procs.start([PY, *argv], stdout=subprocess.PIPE)
    line = read_line(p, 60, argv[0])
    assert line.startswith("READY pid="), line
    return p, line


def bomb_attack(procs, tmp_path, takeover):
    tmp = str(tmp_path)
    port = free_port()
    bombs, after = 100, 50
    # 100 bombs in about a second: 25 MB/s on the wire, 25 GB/s if inflated in full.
    argv = [HOSTILE_SERVER, "--port", str(port), "--bombs", str(bombs), "--after", str(after),
            "--pace", "0.01"]
    if takeover:
        argv.append("--takeover")
    server, ready = start_app(procs, argv)
    trace = Trace(procs, tmp, ["-p", server.pid, "-o", "json"])
    cpu0 = cpu_seconds(trace.proc.pid)
    t0 = time.monotonic()
    received = ws_read_all(port, "permessage-deflate")
    sent_s = time.monotonic() - t0
    cpu = settle_cpu(trace.proc.pid) - cpu0
    assert trace.proc.poll() is None, f"wsaudit died:\n{trace.stderr()}"
    rc = trace.stop()
    assert rc == 0, f"wsaudit exit {rc}:\n{trace.stderr()}"
    recs = trace.records()
    stats = final_stats(recs)
    frames = [r for r in recs if r.get("type") == "frame" and r.get("pid") == server.pid]
    data = [r for r in frames if r["opcode"] == "text"]
    big = [r for r in data if r.get("message_status") == "too_large"]
    tail = data[bombs:]
    print(f"\n[bomb takeover={takeover}] {ready.split()[2]}: {bombs} bombs of 250 MiB each "
          f"({received} bytes) sent in {sent_s:.2f}s; collector CPU {cpu:.2f}s; "
          f"frames seen {len(frames)}; too_large {len(big)}; drops {stats['drops_total']} "
          f"{stats['drops']}; messages {stats['messages']}")
    assert stats["drops_total"] == 0, stats["drops"]
    # Every frame seen: the bombs, the ordinary messages after them, the close.
    assert len(data) == bombs + after, f"{len(data)} text frames seen of {bombs + after}"
    assert [r["opcode"] for r in frames][-1] == "close"
    # A finding per bomb, on its frame and in the counters.
    assert all(r["compressed"] for r in data[:bombs])
    if takeover:
        # Cut at the bound, the first bomb leaves the inflater mid-stream: the context
        # cannot be trusted any more and every later message says so (never inflated).
        assert len(big) == 1 and big[0] is data[0]
        assert all(r.get("message_status") == "undecodable_gap" for r in data[1:]), data[1]
        assert stats["messages"]["undecodable_gap"] == bombs - 1 + after
        assert stats["messages"]["context_losses"] == 1
    else:
        # server_no_context_takeover: each message starts afresh and decodes.
        assert len(big) == bombs
        assert stats["messages"]["too_large"] == bombs
        assert all("message_status" not in r for r in tail), tail[:2]
        assert all(r["message"] and r["message"]["type"] for r in tail), tail[:2]
        assert stats["messages"]["context_losses"] == bombs
    # Inflating 25 GB costs well over 10 s; 100 MiB (the bound) a fraction of one.
    assert cpu < 4.0, f"collector used {cpu:.2f}s of CPU for {bombs} bombs"


def test_inflate_bomb_no_context_takeover(procs, tmp_path):
    bomb_attack(procs, tmp_path, takeover=False)


def test_inflate_bomb_context_takeover(procs, tmp_path):
    bomb_attack(procs, tmp_path, takeover=True)


def zeros_bomb_stream(gib):
    """A stream of one compressed text message that inflates to `gib` GiB of zeros, one
    GiB per frame (each frame under the bytes the parser keeps): the first MiB compressed,
    then the same back-references for every later MiB (the window is all zeros from then
    on), so it is built in milliseconds."""
    import struct
    import zlib

    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib = bytes(1 << 20)
    first = comp.compress(mib) + comp.flush(zlib.Z_SYNC_FLUSH)
    more = comp.compress(mib) + comp.flush(zlib.Z_SYNC_FLUSH)
    out = b""
    for i in range(gib):
        payload = (first if i == 0 else more) + more * 1023
        last = i == gib - 1
        if last:
            payload = payload[:-4]  # RFC 7692 7.2.1: the last 00 00 ff ff is not sent
        b0 = (0x80 if last else 0) | (0x41 if i == 0 else 0)
        out += bytes([b0, 127]) + struct.pack(">Q", len(payload)) + payload
    return out


def test_decode_inflate_bomb(tmp_path):
    """`wsaudit decode` of a message that inflates to 8 GiB stops at the bound."""
    path = os.path.join(str(tmp_path), "bomb.bin")
    with open(path, "wb") as f:
        f.write(zeros_bomb_stream(8))
    t0 = os.times()
    p = subprocess.run([WSAUDIT, "decode", "--extensions", "permessage-deflate", path],
                       capture_output=True, text=True, timeout=120)
    t1 = os.times()
    cpu = (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
    print(f"\n[decode bomb] {os.path.getsize(path)} bytes inflating to 8 GiB: CPU {cpu:.2f}s, "
          f"exit {p.returncode}")
    assert p.returncode == 0, p.stderr
    recs = [json.loads(l) for l in p.stdout.splitlines()]
    msgs = [r["message"] for r in recs if r.get("type") == "frame" and r.get("message")]
    assert len(msgs) == 1, recs[:3]
    assert msgs[0]["status"] == "too_large", msgs[0]
    # not decoded to its end, so its decoded length is not known
    assert "decoded_len" not in msgs[0], msgs[0]
    assert cpu < 2.0, f"decode used {cpu:.2f}s of CPU"


FNV_OFFSET, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3


def fnv1a(data):
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def fnv_colliding_values(n, prefix=b"thread_id=", bits=13):
    """n values v whose ownership key PREFIX+v all land in bucket 0 of the 8192 buckets of
    the unkeyed FNV-1a table wsaudit had.  The low bits of FNV-1a depend only on the low
    bits before each byte, and the prime is odd (invertible): two chosen last characters
    take about half of all states to 0, so each value costs about two tries."""
    mask = (1 << bits) - 1
    inv = pow(FNV_PRIME, -1, 1 << bits)
    chars = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    need = {}
    for c1 in chars:
        for c2 in chars:
            need.setdefault(((c2 * inv) & mask) ^ c1, bytes([c1, c2]))
    out, i = [], 0
    while len(out) < n:
        v = b"t%d-" % i
        i += 1
        state = fnv1a(prefix + v) & mask
        if state in need:
            out.append((v + need[state]).decode())
    return out


def flood(procs, tmp_path, values, name):
    tmp = str(tmp_path)
    path = os.path.join(tmp, f"{name}.values")
    with open(path, "w") as f:
        f.write("\n".join(values) + "\n")
    port = free_port()
    # 100 frames per write and a millisecond between writes: about 60k frames a second,
    # a rate the collector keeps up with when each lookup is short.
    server, _ = start_app(procs, [HOSTILE_SERVER, "--port", str(port), "--attack", "values",
                                  "--values", path, "--batch", "100", "--pace", "0.001"])
    trace = Trace(procs, tmp, ["-p", server.pid, "-o", "json", "--violations-only"])
    cpu0 = cpu_seconds(trace.proc.pid)
    ws_read_all(port, headers=[f"Authorization: Bearer {jwt('alice')}"], timeout=300)
    cpu = settle_cpu(trace.proc.pid) - cpu0
    rc = trace.stop()
    assert rc == 0, f"wsaudit exit {rc}:\n{trace.stderr()}"
    stats = final_stats(trace.records())
    print(f"\n[flood {name}] {len(values)} thread_id values: collector CPU {cpu:.2f}s; "
          f"frames {stats['frames']}; drops {stats['drops_total']}; "
          f"owners {stats['violations']['owners']}")
    return cpu, stats


def test_hash_flood_of_ownership_keys(procs, tmp_path):
    """100k thread_id values chosen to share one bucket of the old unkeyed table cost
    the collector about what random values cost, and lose no frame."""
    n = 100000
    colliding = fnv_colliding_values(n)
    assert len(set(colliding)) == n
    assert all(fnv1a(b"thread_id=" + v.encode()) % 8192 == 0 for v in colliding)
    rnd = [os.urandom(6).hex() for _ in range(n)]
    cpu_r, st_r = flood(procs, tmp_path, rnd, "random")
    cpu_c, st_c = flood(procs, tmp_path, colliding, "colliding")
    for st in (st_r, st_c):
        assert st["drops_total"] == 0, st["drops"]
        assert st["frames"] == n + 1  # and the close
        assert st["violations"]["owners"] == n
    # One bucket of 100k entries costs many seconds; keyed, the same as random values.
    assert cpu_c < 2 * cpu_r + 1.0, f"colliding {cpu_c:.2f}s, random {cpu_r:.2f}s"


def write_key(tmp, name):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(os.urandom(32))
    return path


def hash_user(key, uid):
    p = subprocess.run([WSAUDIT, "hash-user", "--identity-key", key, uid],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def old_display(uid):
    """The unkeyed display wsaudit had: anyone could hash guesses to reverse it."""
    return "u#%012x" % (fnv1a(uid.encode()) >> 16)


def test_identities_and_types_never_leak(procs, tmp_path):
    """A service that echoes the client's `jwt.` subprotocol (token and all) and sends
    10k messages, each of an attacker-chosen type, naming another user.  No token, user
    id or type value appears in any output, log or metric; the user hashes are keyed
    (what `hash-user` prints with the deployment key, not the unkeyed hash of old), and
    metric label cardinality does not grow with the types."""
    from test_agent import check_exposition, scrape, wait_for

    tmp = str(tmp_path)
    key = write_key(tmp, "identity.key")
    uid, other = "user4711@example.com", "demo-user-001"
    token = jwt(uid)
    proto = "jwt." + base64.urlsafe_b64encode(token.encode()).rstrip(b"=").decode()
    types = ["secret-type-" + os.urandom(8).hex() for _ in range(10000)]
    values = os.path.join(tmp, "types")
    with open(values, "w") as f:
        f.write("\n".join(types) + "\n")
    exe = os.path.join(tmp, "wsx-hostile-python3")
    shutil.copy(os.path.realpath(PY), exe)
    with open(os.path.join(ROOT, "policies", "netra.yaml")) as f:
        policy_text = re.sub(r'(?m)^  exe: .*$', f'  exe: ["{exe}"]', f.read(), count=1)
    policy = os.path.join(tmp, "policy.yaml")
    with open(policy, "w") as f:
        f.write(policy_text)

    port, mport = free_port(), free_port()
    p = procs.start([exe, HOSTILE_SERVER, "--port", str(port), "--attack", "values",
                     "--values", values, "--type-field", "--user", other, "--pace", "0.002"],
                    stdout=subprocess.PIPE, env=dict(os.environ, PYTHONHOME="/usr"))
    assert read_line(p, 60, "hostile server").startswith("READY")
    agent_log, agent_err = os.path.join(tmp, "violations.jsonl"), os.path.join(tmp, "agent.err")
    agent = procs.start([WSAUDIT, "agent", "-c", policy, "--socket", "none", "--metrics-addr", f"127.0.0.1:{mport}",
                         "--log", agent_log, "--stats-interval", "0", "--identity-key", key],
                        stdout=subprocess.DEVNULL, stderr=open(agent_err, "w"), cwd=ROOT)
    wait_for(lambda: "wsaudit: agent following" in open(agent_err).read()
             or agent.poll() is not None, 60, "agent start")
    assert agent.poll() is None, open(agent_err).read()
    before = scrape(mport)
    trace = Trace(procs, tmp, ["-p", p.pid, "-o", "json", "-c", policy, "--identity-key", key])
    ws_read_all(port, headers=[f"Sec-WebSocket-Protocol: {proto}"], timeout=120)
    time.sleep(2.5)  # the agent copies its totals into the registry once a second
    after = scrape(mport)
    assert trace.stop() == 0, trace.stderr()
    agent.send_signal(signal.SIGTERM)
    agent.wait(30)

    recs = trace.records()
    opens = [r for r in recs if r.get("type") == "conn_open"]
    frames = [r for r in recs if r.get("type") == "frame" and r["opcode"] == "text"]
    shown_types = {r["message"]["type"] for r in frames if r.get("message")}
    print(f"\n[identities] subprotocol shown as {opens[0].get('subprotocol')!r}; conn.user "
          f"{frames[0]['conn']['user']}; {len(shown_types)} distinct types shown, e.g. "
          f"{sorted(shown_types)[:2]}; metric series {len(before.splitlines())} before, "
          f"{len(after.splitlines())} after")
    assert len(frames) == len(types)
    assert opens[0]["subprotocol"] == "jwt.[redacted]"
    # The display is the keyed hash of the deployment key, not the unkeyed one of old.
    display = hash_user(key, uid)
    assert frames[0]["conn"]["user"] == display
    assert display != old_display(uid)
    assert hash_user(write_key(tmp, "other.key"), uid) != display
    assert frames[0]["message"]["user"] == hash_user(key, other)
    assert all(t.startswith("t#") and len(t) == 14 for t in shown_types)
    assert len(shown_types) == len(types)
    # Metrics: no type, user or token as a label; series do not grow with the types.
    check_exposition(after)
    assert len(after.splitlines()) - len(before.splitlines()) < 60
    # Nothing secret anywhere: trace output and diagnostics, the agent's log and stderr,
    # the metrics.
    with open(agent_log) as f:
        log_text = f.read()
    assert log_text.count("isolation_breach") >= len(types) // 2
    outputs = {
        "trace stdout": open(trace.out_path).read(),
        "trace stderr": trace.stderr(),
        "agent log": log_text,
        "agent stderr": open(agent_err).read(),
        "metrics": after,
    }
    secrets = [token, token.split(".")[1], proto[4:], uid, other, "secret-type-"]
    for where, text in outputs.items():
        for s in secrets:
            assert s not in text, f"{s[:24]}... in the {where}"
    assert f"key file:{key}" in outputs["trace stderr"]
    assert f"key file:{key}" in outputs["agent stderr"]


def test_trace_user_filter(procs, tmp_path):
    """`trace --user ID` and `trace --user u#...` (as `hash-user` prints it) show the
    connections and messages of that user only."""
    tmp = str(tmp_path)
    key = write_key(tmp, "identity.key")
    values = os.path.join(tmp, "values")
    with open(values, "w") as f:
        f.write("\n".join(f"th-{i}" for i in range(20)) + "\n")
    port = free_port()
    server, _ = start_app(procs, [HOSTILE_SERVER, "--port", str(port), "--attack", "values",
                                  "--values", values, "--user", "nobody"])
    by_id = Trace(procs, tmp, ["-p", server.pid, "-o", "json", "--identity-key", key,
                               "--user", "user4711@example.com"])
    display = hash_user(key, "user4711@example.com")
    by_display = Trace(procs, tmp, ["-p", server.pid, "-o", "json", "--identity-key", key,
                                    "--user", display])
    everyone = Trace(procs, tmp, ["-p", server.pid, "-o", "json", "--identity-key", key])
    for sub in ("user4711@example.com", "carol", "user4711@example.com"):
        ws_read_all(port, headers=[f"Authorization: Bearer {jwt(sub)}"])
    for t in (by_id, by_display, everyone):
        assert t.stop() == 0, t.stderr()
    users = {}
    for name, t in (("id", by_id), ("display", by_display), ("all", everyone)):
        frames = [r for r in t.records() if r.get("type") == "frame"]
        users[name] = collections.Counter(r["conn"]["user"] for r in frames)
    print(f"\n[trace --user] frames by conn.user: {users}")
    assert users["all"] == {display: 42, hash_user(key, "carol"): 21}
    assert users["id"] == {display: 42}
    assert users["display"] == {display: 42}

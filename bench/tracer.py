# SPDX-License-Identifier: GPL-2.0
"""What the Python-driven benchmarks share: starting `wsaudit trace`, reading its BPF programs'
run times, and a process's CPU time."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def start_trace(cmd, outfile, who):
    """Runs cmd (a `wsaudit trace ...` command line) with stdout to outfile and returns the
    process once it says it is tracing; exits the benchmark, naming who, when it does not
    within 30 s."""
    proc = subprocess.Popen(cmd, stdout=outfile, stderr=subprocess.PIPE)
    tracing = threading.Event()
    err = []

    def reader():
        # Reads wsaudit's stderr to its end, so that it never blocks on a full pipe.
        for line in proc.stderr:
            if len(err) < 50:
                err.append(line.decode(errors="replace"))
            if b"wsaudit: tracing" in line:
                tracing.set()

    threading.Thread(target=reader, daemon=True).start()
    if tracing.wait(30):
        return proc
    proc.kill()
    proc.wait()
    sys.exit(f"{who}: wsaudit did not start tracing: {''.join(err)}")


def bpf_prog_stats(pid):
    """Run time and count of the BPF programs wsaudit (pid) holds, by name (bpf_stats on)."""
    ids = {}
    fdir = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fdir):
        try:
            with open(f"{fdir}/{fd}") as f:
                kv = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if "prog_id" in kv and "run_time_ns" in kv:
            ids[int(kv["prog_id"])] = (int(kv["run_time_ns"]), int(kv["run_cnt"]))
    names = {}
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True,
                         timeout=30)
    for p in json.loads(out.stdout or "[]"):
        names[p["id"]] = p.get("name", str(p["id"]))
    stats = {}
    for i, (t, n) in ids.items():
        name = names.get(i, str(i))
        a = stats.setdefault(name, [0, 0])
        a[0] += t
        a[1] += n
    return stats


def stop_processes(*procs):
    """SIGINT to each process still running (None is skipped), SIGKILL after 10 s."""
    for p in procs:
        if p and p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start_floor(argv, who):
    """Runs a floor helper (argv) and returns it once it prints ATTACHED; exits the benchmark,
    naming who, when it does not."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("ATTACHED"):
        p.kill()
        p.wait()
        sys.exit(f"{who}: {argv[0]} did not attach: {line!r}")
    return p


def cpu_when_quiet(cpu_of, pid):
    """CPU seconds of pid (cpu_of(pid)) once they stop growing: wsaudit has read its ring
    buffer dry.  Waits up to 10 s."""
    last = cpu_of(pid)
    for _ in range(50):
        time.sleep(0.2)
        now = cpu_of(pid)
        if now == last:
            break
        last = now
    return now


def stop_trace(proc, outfile, who):
    """SIGINT to a `wsaudit trace` started by start_trace, then its output (outfile, read from
    the start): (final stats record, frame records printed).  Exits the benchmark, naming who,
    when wsaudit fails or prints no stats record."""
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    if proc.returncode != 0:
        sys.exit(f"{who}: wsaudit exited with status {proc.returncode}")
    outfile.seek(0)
    stats, frames = None, 0
    for line in outfile:
        if b'"type":"frame"' in line:
            frames += 1
        elif b'"type":"stats"' in line:
            stats = json.loads(line)
    if stats is None:
        sys.exit(f"{who}: wsaudit printed no stats record")
    return stats, frames


HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid):
    """User plus system CPU seconds of process pid, all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def ws_frame_header(b, pos):
    """(opcode, payload offset, payload length) of the unmasked server frame at b[pos:], or
    None while its header or payload has not all arrived (RFC 6455 5.2)."""
    ln = len(b)
    if ln - pos < 2:
        return None
    plen, hdr = b[pos + 1] & 0x7F, 2
    if plen == 126:
        if ln - pos < 4:
            return None
        plen, hdr = (b[pos + 2] << 8) | b[pos + 3], 4
    elif plen == 127:
        if ln - pos < 10:
            return None
        plen, hdr = int.from_bytes(b[pos + 2:pos + 10], "big"), 10
    if ln - pos < hdr + plen:
        return None
    return b[pos] & 0x0F, pos + hdr, plen

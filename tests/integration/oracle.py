# SPDX-License-Identifier: GPL-2.0
"""tshark as the independent oracle: capture on loopback, decode the
WebSocket frames of one server port with Wireshark's own dissector.

Decoding goes through PDML (XML), which keeps every WebSocket frame of a TCP
segment as its own <proto name="websocket"> element in wire order, so bursts
(several frames in one segment) and reassembled 70 KiB frames come out one
by one with their own length fields.
"""

import collections
import os
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

from harness import START_SCALE

OPNAMES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}

# Reassembly across TCP segments is what makes 70 KiB frames decodable; these
# are the defaults, set explicitly so a changed profile cannot break the oracle.
PREFS = [
    "-o", "tcp.desegment_tcp_streams:TRUE",
    "-o", "tcp.reassemble_out_of_order:TRUE",
    "-o", "http.desegment_headers:TRUE",
    "-o", "http.desegment_body:TRUE",
]


class Capture:
    """tshark -i lo -f 'tcp port P' -w FILE, started before the traffic."""

    def __init__(self, port, path, timeout=20):
        timeout *= START_SCALE
        self.port = port
        self.path = path
        self.err = open(path + ".stderr", "w+")
        self.proc = subprocess.Popen(
            ["tshark", "-i", "lo", "-f", f"tcp port {port}", "-w", path],
            stdout=subprocess.DEVNULL, stderr=self.err, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.stderr()
            if "Capture started" in text or "Capturing on" in text:
                break
            if self.proc.poll() is not None:
                raise RuntimeError("tshark exited: " + self.stderr())
            time.sleep(0.1)
        else:
            # stop() closes the stderr file: read it first.
            text = self.stderr()
            self.stop()
            raise RuntimeError("tshark did not start capturing within %ds: %s" % (timeout, text))
        # "Capturing on" is printed just before the first packet is read.
        time.sleep(0.5)

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            # Let the last segments reach the capture file before stopping.
            time.sleep(0.5)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.err.close()


def decode(path, port, timeout=120, proto="http"):
    """Server->client WebSocket frames of the capture, by client port:
    {client_port: [(opcode, fin, payload_len, close_code|None), ...]}.  proto "websocket":
    the port's bytes are WebSocket frames from the start (no upgrade in the capture)."""
    cmd = ["tshark", "-r", path, "-d", f"tcp.port=={port},{proto}", *PREFS,
           "-Y", "websocket", "-T", "pdml", "-J", "tcp websocket"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    frames = collections.defaultdict(list)
    src = dst = None
    try:
        for ev, el in ET.iterparse(proc.stdout, events=("start", "end")):
            if ev == "start" and el.tag == "packet":
                src = dst = None
                continue
            if ev != "end":
                continue
            if el.tag == "field" and el.get("name") == "tcp.srcport" and src is None:
                src = int(el.get("show"))
            elif el.tag == "field" and el.get("name") == "tcp.dstport" and dst is None:
                dst = int(el.get("show"))
            elif el.tag == "proto" and el.get("name") == "websocket":
                if src == port:
                    frames[dst].append(_frame(el))
                el.clear()
            elif el.tag == "packet":
                el.clear()
    finally:
        proc.stdout.close()
        proc.wait(timeout)
    return dict(frames)


def _frame(ws):
    f = {}
    for el in ws.iter("field"):
        name = el.get("name")
        if name not in f:
            f[name] = el.get("show")
    n = int(f["websocket.payload_length"])
    if n == 126:
        n = int(f["websocket.payload_length_ext_16"])
    elif n == 127:
        n = int(f["websocket.payload_length_ext_64"])
    code = f.get("websocket.payload.close.status_code")
    return (
        OPNAMES.get(int(f["websocket.opcode"]), "op" + f["websocket.opcode"]),
        f["websocket.fin"] in ("1", "True", "true"),
        n,
        int(code) if code is not None else None,
    )

# SPDX-License-Identifier: GPL-2.0
"""One WebSocket connection of the server."""
import json

from attr_app import truth
from attr_app.ws import frames


class Conn:
    def __init__(self, reader, writer, peer):
        self.reader, self.writer, self.peer = reader, writer, peer
        self.seq = 0

    def payload(self, scenario, text):
        """JSON text of the next frame; nothing in it depends on the run (no port, no time)."""
        return json.dumps({"seq": self.seq + 1, "scenario": scenario, "text": text}).encode()

    def frame(self, opcode, payload, fin=True):
        """Encode the next frame and announce it to the ground-truth log.

        Called in the argument list of the write, so it has returned before the write
        starts and is never on the writer's stack.
        """
        self.seq += 1
        truth.expect(self.peer, self.seq, opcode, fin, len(payload))
        return frames.encode(opcode, payload, fin)

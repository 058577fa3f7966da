# SPDX-License-Identifier: GPL-2.0
"""HeartbeatHandler (websocket_core/handlers.py L295): answers ping with pong and heartbeat
with heartbeat_ack, writing to the socket itself."""
import json
import time

import truth


class HeartbeatHandler:
    def can_handle(self, message_type):
        return message_type in ("ping", "heartbeat")

    async def handle_message(self, connection, message):
        kind = "pong" if message.get("type") == "ping" else "heartbeat_ack"
        reply = {"type": kind, "data": {"timestamp": time.time(), "user_id": connection.user_id}}
        text = json.dumps(reply, separators=(",", ":"), ensure_ascii=False)
        try:
            truth.before_send(connection, text, reply, category="system")
            await connection.websocket.send_text(text)
        except Exception as e:
            truth.send_failed(connection, e)

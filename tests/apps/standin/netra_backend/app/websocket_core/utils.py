# SPDX-License-Identifier: GPL-2.0
"""Transport helpers that write to the socket themselves (websocket_core/utils.py): welcome,
error and ping frames. They are system frames, not agent events."""
import json

import truth


async def safe_websocket_send(connection, message):
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    try:
        truth.before_send(connection, text, message, category="system")
        await connection.websocket.send_text(text)
    except Exception as e:
        truth.send_failed(connection, e)
        return False
    return True

# SPDX-License-Identifier: GPL-2.0
"""What the TLS test services (tls_ws_server.py, tls_blocking_server.py) share: the user of a
request and the scenarios.  Imports nothing that would load libssl (asyncio does)."""
import base64
import json

# Scenario: (the function that sends its frame, as wsaudit names it; the findings expected).
SCENARIOS = {"bridge": ("AgentWebSocketBridge.send_event", []),
             "bypass": ("bypass", ["bridge_bypass"]),
             "leak": ("AgentWebSocketBridge.send_event", ["isolation_breach"]),
             # 200 kB of random bytes in one binary frame: over a small capture cap
             "big": ("big", ["bridge_bypass"])}


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def user_of(headers):
    """The sub claim of the request's JWT (its signature is the service's business)."""
    token = None
    for proto in (headers.get("Sec-WebSocket-Protocol") or "").split(","):
        if proto.strip().startswith("jwt."):
            token = b64url_decode(proto.strip()[4:]).decode()
    auth = headers.get("Authorization") or ""
    if auth.startswith("Bearer "):
        token = auth[7:]
    if not token:
        return None
    return json.loads(b64url_decode(token.split(".")[1]))["sub"]

# SPDX-License-Identifier: GPL-2.0
"""The /ws endpoint in main mode (routes/websocket_ssot.py::_handle_main_mode).

Order as in the reference: negotiate the subprotocol and accept (echoing the token-bearing
entry jwt.<token>), then authenticate (error_message AUTH_FAILED and close 1008 on
failure), build the UserExecutionContext, register the connection with the user's
manager and the user's agent session, send connection_established, then read messages.
"""
import binascii
import json
import logging
import time

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

import jwt_handler
from netra_backend.app.agents.supervisor.agent_registry import get_agent_registry
from netra_backend.app.core import thread_run_registry
from netra_backend.app.core.user_execution_context import UserExecutionContext
from netra_backend.app.services.websocket.message_handler import StartAgentHandler
from netra_backend.app.websocket_core.handlers import HeartbeatHandler
from netra_backend.app.websocket_core.unified_manager import WebSocketConnection, get_websocket_manager
from netra_backend.app.websocket_core.utils import safe_websocket_send

log = logging.getLogger("netra.ws")

TOKEN_PREFIXES = ("jwt.", "jwt-auth.", "bearer.")
BARE_PROTOCOLS = ("jwt-auth", "jwt", "bearer", "e2e-testing", "staging-auth", "agent_chat")
GOLDEN_PATH_EVENTS = ["agent_started", "agent_thinking", "tool_executing", "tool_completed",
                      "agent_completed"]


def negotiate_websocket_subprotocol(offered):
    """The exact token-bearing entry if there is one, else a known bare name, else None."""
    for entry in offered:
        for prefix in TOKEN_PREFIXES:
            if entry.startswith(prefix) and len(entry) - len(prefix) >= 10:
                return entry
    for entry in offered:
        if entry in BARE_PROTOCOLS:
            return entry
    return None


def _looks_like_jwt(text):
    return text.count(".") == 2 and all(text.split("."))


def extract_jwt_from_websocket(websocket):
    """Authorization: Bearer first, then the first jwt./jwt-auth./bearer. subprotocol
    entry: base64url-decoded when that gives a.b.c, else used raw if it is a.b.c."""
    auth = websocket.headers.get("authorization", "")
    if auth.startswith("Bearer ") and _looks_like_jwt(auth[7:].strip()):
        return auth[7:].strip()
    for entry in websocket.scope.get("subprotocols", []):
        for prefix in TOKEN_PREFIXES:
            if not entry.startswith(prefix) or len(entry) - len(prefix) < 10:
                continue
            rest = entry[len(prefix):]
            try:
                decoded = jwt_handler.b64url_decode(rest).decode("ascii")
                if _looks_like_jwt(decoded):
                    return decoded
            except (binascii.Error, ValueError, UnicodeDecodeError):
                pass
            if _looks_like_jwt(rest):
                return rest
    return None


class WebSocketSSOTRouter:
    def __init__(self, app):
        self.start_agent = StartAgentHandler()
        self.heartbeat = HeartbeatHandler()
        app.add_api_websocket_route("/ws", self._handle_main_mode)

    async def _handle_main_mode(self, websocket: WebSocket):
        offered = websocket.scope.get("subprotocols", [])
        subprotocol = negotiate_websocket_subprotocol(offered) if offered else None
        await websocket.accept(subprotocol=subprotocol)
        if offered and subprotocol is None:
            await websocket.close(code=1003, reason="No supported subprotocols")
            return
        token = extract_jwt_from_websocket(websocket)
        try:
            if token is None:
                raise jwt_handler.InvalidToken("no token")
            claims = jwt_handler.validate_token(token)
        except jwt_handler.InvalidToken as e:
            await self._auth_failed(websocket, str(e))
            return
        user_id = claims["sub"]
        manager = get_websocket_manager(UserExecutionContext(user_id, "", "", ""))
        context = UserExecutionContext.for_websocket(user_id, None)
        connection = WebSocketConnection(websocket, user_id, context.thread_id)
        context = context.__class__(user_id, context.thread_id, context.run_id,
                                    context.request_id, connection.connection_id)
        thread_run_registry.register_thread(context.thread_id, user_id)
        manager.add_connection(connection)
        get_agent_registry().get_user_session(user_id).set_websocket_manager(manager, context)
        log.info("open %s user=%s port=%s", connection.connection_id, user_id,
                 connection.peer_port)
        try:
            await safe_websocket_send(connection, {
                "type": "connection_established",
                "data": {"mode": "main", "user_id": user_id[:8] + "...",
                         "connection_id": connection.connection_id,
                         "golden_path_events": GOLDEN_PATH_EVENTS,
                         "features": {"agent_events": True, "tool_events": True,
                                      "heartbeat": True},
                         "timestamp": time.time()},
                "timestamp": time.time(), "server_id": None, "correlation_id": None})
            while True:
                raw = await websocket.receive_text()
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                kind = message.get("type")
                payload = message.get("payload") if isinstance(message.get("payload"), dict) else {}
                if self.heartbeat.can_handle(kind):
                    await self.heartbeat.handle_message(connection, message)
                elif kind in ("start_agent", "user_message"):
                    try:
                        await self.start_agent.handle(connection, context, payload)
                    except RuntimeError as e:
                        await self._close_on_agent_error(websocket, e)
                        return
                    if websocket.application_state != WebSocketState.CONNECTED:
                        return
        except WebSocketDisconnect:
            pass
        finally:
            manager.remove_connection(connection.connection_id)
            log.info("close %s", connection.connection_id)

    async def _close_on_agent_error(self, websocket, error):
        # A run that raised: the connection ends with 1011, the user's run with it.
        log.error("agent failed: %s", error)
        await websocket.close(code=1011, reason="Internal error: agent failed")

    async def _auth_failed(self, websocket, reason):
        # Not registered with any manager: the frame goes out on this socket only.
        connection = WebSocketConnection(websocket, None, None)
        await safe_websocket_send(connection, {
            "type": "error_message", "error_code": "AUTH_FAILED",
            "error_message": "Authentication failed: %s" % reason, "details": {},
            "timestamp": time.time(), "recovery_suggestions": ["Sign in again"]})
        await websocket.close(code=1008, reason="Authentication failed")

# SPDX-License-Identifier: GPL-2.0
"""The WebSocket manager (websocket_core/unified_manager.py of the reference).

Connections are registered under their user id; send_to_thread treats the thread id as
the user key, as the reference does. The reference delivers bridge events only when a
connection happens to be registered under the thread id; here each connection's thread
ids are registered as extra keys of its own user's manager (bind_thread), so the
conflated keys deliver instead of being dropped.

Each send is one `await websocket.send_text(text)` in the method that sends, with the
ground-truth record on the line above (see truth.py).
"""
import datetime
import itertools
import json
import logging
import threading

import truth

log = logging.getLogger("netra.manager")

CRITICAL_EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed",
                   "agent_completed")


def iso_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def _serialize_message_safely(message):
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class WebSocketConnection:
    _ids = itertools.count(1)

    def __init__(self, websocket, user_id, thread_id):
        self.connection_id = "main_%d" % next(self._ids)
        self.websocket = websocket
        self.user_id = user_id
        self.thread_id = thread_id
        self.peer_port = websocket.client.port if websocket.client else None
        server = websocket.scope.get("server")
        self.local_port = server[1] if server else None
        self._seq = itertools.count(0)

    def next_seq(self):
        return next(self._seq)


class _UnifiedWebSocketManagerImplementation:
    def __init__(self, mode="unified", user_context=None):
        self.mode = mode
        self.user_context = user_context
        self._connections = {}
        self._user_connections = {}
        self._failed_messages = []

    # -- registry ----------------------------------------------------------------
    def add_connection(self, connection):
        self._connections[connection.connection_id] = connection
        self._user_connections.setdefault(str(connection.user_id), set()).add(
            connection.connection_id)
        self.bind_thread(connection.thread_id, connection.connection_id)

    def bind_thread(self, thread_id, connection_id):
        self._user_connections.setdefault(str(thread_id), set()).add(connection_id)

    def remove_connection(self, connection_id):
        self._connections.pop(connection_id, None)
        for key in list(self._user_connections):
            self._user_connections[key].discard(connection_id)
            if not self._user_connections[key]:
                del self._user_connections[key]

    def is_connection_active(self, user_id):
        return bool(self._user_connections.get(str(user_id)))

    def get_connection(self, connection_id):
        return self._connections.get(connection_id)

    # -- sends -------------------------------------------------------------------
    async def send_to_user(self, user_id, message):
        """Every connection of user_id; True when at least one frame went out."""
        # The reference's contamination guard: only keys ending in _user_id are looked at,
        # never the top-level user_id.
        for key, value in message.items():
            if key.endswith("_user_id") and value != user_id:
                log.warning("contamination guard: %s=%s for %s", key, value, user_id)
        conn_ids = sorted(self._user_connections.get(str(user_id), ()))
        if not conn_ids:
            log.error("CRITICAL ERROR: No WebSocket connections for %s", user_id)
            self._failed_messages.append((user_id, message))
            return False
        text = _serialize_message_safely(message)
        sent = False
        for conn_id in conn_ids:
            connection = self._connections.get(conn_id)
            if connection is None:
                continue
            try:
                truth.before_send(connection, text, message)
                await connection.websocket.send_text(text)
            except Exception as e:  # a closing socket: said in the log, the rest still sent
                truth.send_failed(connection, e)
                log.warning("send to %s failed: %s", conn_id, e)
                continue
            sent = True
        return sent

    async def send_to_thread(self, thread_id, message):
        # The thread id is used as the user key, and success is claimed regardless.
        await self.send_to_user(thread_id, message)
        return True

    async def emit_critical_event(self, user_id, event_type, data):
        message = {"timestamp": iso_now(), "critical": True}
        message.update(self._process_business_event(event_type, data))
        return await self.send_to_user(user_id, message)

    async def send_event(self, connection_id, event_type, data):
        """Straight to one connection, no user routing (send_event, L2267)."""
        connection = self._connections.get(connection_id)
        if connection is None:
            return False
        message = {"type": event_type, "data": data, "timestamp": iso_now()}
        message.update({k: data[k] for k in ("run_id", "thread_id") if k in data})
        text = _serialize_message_safely(message)
        try:
            truth.before_send(connection, text, message)
            await connection.websocket.send_text(text)
        except Exception as e:
            truth.send_failed(connection, e)
            return False
        return True

    @staticmethod
    def _process_business_event(event_type, data):
        keep = {
            "agent_started": ("user_id", "thread_id", "agent_name", "task_description"),
            "agent_thinking": ("reasoning", "user_id", "thread_id"),
            "tool_executing": ("tool_name", "tool_args", "parameters", "execution_id",
                               "user_id", "thread_id"),
            "tool_completed": ("tool_name", "results", "execution_time", "duration",
                               "execution_id", "success", "user_id", "thread_id"),
            "agent_completed": ("status", "final_response", "user_id", "thread_id"),
        }.get(event_type, tuple(data))
        out = {"type": event_type}
        for k in keep + ("run_id", "request_id", "metadata", "status", "attempt"):
            if k in data and k not in out:
                out[k] = data[k]
        return out


# The alias zoo: all the same class.
UnifiedWebSocketManager = _UnifiedWebSocketManagerImplementation
WebSocketManager = _UnifiedWebSocketManagerImplementation

_USER_MANAGER_REGISTRY = {}
_REGISTRY_LOCK = threading.Lock()


def _get_user_key(user_context):
    if user_context is None:
        return "null_user_context_singleton"
    return str(user_context.user_id)


def get_websocket_manager(user_context):
    """The process-global, user-keyed manager registry."""
    key = _get_user_key(user_context)
    with _REGISTRY_LOCK:
        manager = _USER_MANAGER_REGISTRY.get(key)
        if manager is None:
            manager = _UnifiedWebSocketManagerImplementation(user_context=user_context)
            _USER_MANAGER_REGISTRY[key] = manager
        return manager

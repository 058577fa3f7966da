# SPDX-License-Identifier: GPL-2.0
"""AgentRegistry and UserAgentSession (agents/supervisor/agent_registry.py): one session per
user, each with its own bridge over that user's manager."""
from netra_backend.app.services.agent_websocket_bridge import create_agent_websocket_bridge


class UserAgentSession:
    def __init__(self, user_id):
        self.user_id = user_id
        self._websocket_bridge = None

    def set_websocket_manager(self, manager, user_context):
        bridge = create_agent_websocket_bridge(user_context)
        bridge.websocket_manager = manager
        self._websocket_bridge = bridge


class AgentRegistry:
    def __init__(self):
        self._sessions = {}

    def get_user_session(self, user_id):
        session = self._sessions.get(user_id)
        if session is None:
            session = self._sessions[user_id] = UserAgentSession(user_id)
        return session

    def get_websocket_bridge(self, user_id):
        return self.get_user_session(user_id)._websocket_bridge


_registry = AgentRegistry()


def get_agent_registry():
    return _registry

# SPDX-License-Identifier: GPL-2.0
"""The FastAPI application: /ws (main mode), /ws/health, and POST /debug/leak?on=0|1."""
from fastapi import FastAPI

from netra_backend.app import config
from netra_backend.app.routes.websocket_ssot import WebSocketSSOTRouter


def create_app():
    app = FastAPI()
    WebSocketSSOTRouter(app)

    @app.get("/ws/health")
    async def health():
        return {"status": "healthy", "leak": config.leak_enabled()}

    @app.post("/debug/leak")
    async def debug_leak(on: int = 1):
        config.set_leak(on)
        return {"leak": config.leak_enabled()}

    return app

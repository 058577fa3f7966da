# SPDX-License-Identifier: GPL-2.0
"""A connection manager that writes frames itself (the pattern that bypasses a bridge)."""


class ConnectionManager:
    def send_text(self, conn, text):
        conn.writer.write(conn.frame("text", conn.payload("manager", text)))

    async def broadcast(self, conns, text):
        for conn in conns:
            self.send_text(conn, text)
            await conn.writer.drain()

    def ping(self, conn):
        conn.writer.write(conn.frame("ping", b"attr-ping"))


class AuditedManager(ConnectionManager):
    """Inherits send_text: on 3.9/3.10 the receiver names the class, on 3.11+ the qualname."""

    async def notify(self, conn, text):
        await self.broadcast([conn], text)
        self.ping(conn)
        await conn.writer.drain()


async def manage(conn):
    await AuditedManager().notify(conn, "from the manager")
    ConnectionManager().send_text(conn, "plain manager")

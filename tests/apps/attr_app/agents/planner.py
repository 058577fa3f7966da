# SPDX-License-Identifier: GPL-2.0
"""Methods of every kind that write frames: async and plain instance methods, a
classmethod, a staticmethod and a closure that captures self."""


class PlannerAgent:
    name = "planner"

    async def run(self, conn):
        conn.writer.write(conn.frame("text", conn.payload(self.name, "run")))
        self.step(conn, 1)
        PlannerAgent.announce(conn)
        PlannerAgent.heartbeat(conn)

        def report():
            # self is a free variable here: a cell in run's frame.
            conn.writer.write(conn.frame("text", conn.payload(self.name, "report")))
        report()
        await conn.writer.drain()

    def step(self, conn, n):
        conn.writer.write(conn.frame("text", conn.payload(self.name, "step %d" % n)))

    @classmethod
    def announce(cls, conn):
        conn.writer.write(conn.frame("text", conn.payload(cls.name, "announce")))

    @staticmethod
    def heartbeat(conn):
        conn.writer.write(conn.frame("binary", b"\x00\x01heartbeat\xff"))


class SubPlanner(PlannerAgent):
    name = "subplanner"


async def plan(conn):
    await PlannerAgent().run(conn)
    await SubPlanner().run(conn)

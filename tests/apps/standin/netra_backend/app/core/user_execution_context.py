# SPDX-License-Identifier: GPL-2.0
"""UserExecutionContext: who a piece of work is for (services/user_execution_context.py)."""
import dataclasses
import itertools
import os
import time

_counter = itertools.count(1)


@dataclasses.dataclass(frozen=True)
class UserExecutionContext:
    user_id: str
    thread_id: str
    run_id: str
    request_id: str
    websocket_client_id: str = None

    @classmethod
    def for_websocket(cls, user_id, connection_id):
        """The context main mode builds after authentication (thread_ws_<ms>_<n>_<hex8>)."""
        ms = int(time.time() * 1000)
        n = next(_counter)
        return cls(user_id=user_id,
                   thread_id="thread_ws_%d_%d_%s" % (ms, n, os.urandom(4).hex()),
                   run_id="run_ws_%d_%d_%s" % (ms, n, os.urandom(4).hex()),
                   request_id="ws_req_%d_%d" % (ms, n),
                   websocket_client_id=connection_id)

    def for_run(self, run_id):
        return dataclasses.replace(self, run_id=run_id)

# SPDX-License-Identifier: GPL-2.0
"""Switches of the service. The cross-user leak is off unless STANDIN_LEAK=1, --leak, or
POST /debug/leak?on=1 switches it on.

STANDIN_FIXED=1 is the service with its planted defects fixed: the five bypass sites send
through the bridge, and the leak cannot be switched on. STANDIN_NEW_BYPASS=1 adds one bypass
that is not among the five (TriageAgent, agents/triage_agent.py), as a change under review
would: the CI example's baseline case.  STANDIN_DETACHED_BYPASS=1 (run.py --detached-bypass)
adds a fire-and-forget bypass: SupervisorWorkflowExecutor._announce_routing hands the
manager's send_to_user to asyncio.create_task and does not wait for it, so the frame is sent
from a task whose stack holds only the manager.

STANDIN_FAULTS=1 honours a run's settings.fault, the delivery faults
(services/websocket/message_handler.py): "epipe" (an agent keeps sending after the client
went away), "raise" (the run raises and the connection closes with 1011), "after_close" (an
event sent after the close frame), and the run completeness faults: "no_completed" (the run
never sends agent_completed), "out_of_order" (its agent_completed goes out before its
agent_started), "missing_event" (it ends without running a tool: no tool_executing or
tool_completed)."""
import os

LEAK = os.environ.get("STANDIN_LEAK", "0") == "1"


def fixed():
    return os.environ.get("STANDIN_FIXED", "0") == "1"


def new_bypass():
    return os.environ.get("STANDIN_NEW_BYPASS", "0") == "1"


def detached_bypass():
    return os.environ.get("STANDIN_DETACHED_BYPASS", "0") == "1"


FAULTS = ("epipe", "raise", "after_close", "no_completed", "out_of_order", "missing_event")


def fault_of(settings):
    """The delivery fault a run asks for, when faults are switched on; else None."""
    fault = settings.get("fault") if isinstance(settings, dict) else None
    if os.environ.get("STANDIN_FAULTS", "0") == "1" and fault in FAULTS:
        return fault
    return None


def leak_enabled():
    return LEAK and not fixed()


def set_leak(on):
    global LEAK
    LEAK = bool(on)

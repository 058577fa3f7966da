# SPDX-License-Identifier: GPL-2.0
"""Switches of the service. The cross-user leak is off unless STANDIN_LEAK=1, --leak, or
POST /debug/leak?on=1 switches it on."""
import os

LEAK = os.environ.get("STANDIN_LEAK", "0") == "1"


def leak_enabled():
    return LEAK


def set_leak(on):
    global LEAK
    LEAK = bool(on)

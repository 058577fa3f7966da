# SPDX-License-Identifier: GPL-2.0
"""A module whose file name is not ASCII, with a function whose name needs UCS-4."""


def 𠀀(sock):
    sock.send(b"4" * 4096)

# SPDX-License-Identifier: GPL-2.0
"""Blocking senders in a second directory, so frames come from more than one file."""


def deep_send(sock, data, depth):
    if depth > 0:
        return deep_send(sock, data, depth - 1)
    sock.sendall(data)


def sënd_ü(sock):
    sock.send(b"u" * 4096)


def 送信(sock):
    sënd_ü(sock)

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""daphne 4 (Twisted on its asyncio reactor) serving daphne_app:app on 127.0.0.1:--port.
Prints "READY pid=N port=P" before daphne starts listening: the client retries its connect."""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--truth", required=True)
    args = ap.parse_args()
    os.environ["CAUSAL_TRUTH"] = args.truth
    from daphne.cli import CommandLineInterface

    print("READY pid=%d port=%d" % (os.getpid(), args.port), flush=True)
    CommandLineInterface().run(["-b", "127.0.0.1", "-p", str(args.port), "--ping-interval", "600",
                                "daphne_app:app"])

# SPDX-License-Identifier: GPL-2.0
"""Starting `wsaudit trace` for a benchmark, shared by the Python-driven benchmarks."""

import subprocess
import sys
import threading


def start_trace(cmd, outfile, who):
    """Runs cmd (a `wsaudit trace ...` command line) with stdout to outfile and returns the
    process once it says it is tracing; exits the benchmark, naming who, when it does not
    within 30 s."""
    proc = subprocess.Popen(cmd, stdout=outfile, stderr=subprocess.PIPE)
    tracing = threading.Event()
    err = []

    def reader():
        # Reads wsaudit's stderr to its end, so that it never blocks on a full pipe.
        for line in proc.stderr:
            if len(err) < 50:
                err.append(line.decode(errors="replace"))
            if b"wsaudit: tracing" in line:
                tracing.set()

    threading.Thread(target=reader, daemon=True).start()
    if tracing.wait(30):
        return proc
    proc.kill()
    proc.wait()
    sys.exit(f"{who}: wsaudit did not start tracing: {''.join(err)}")

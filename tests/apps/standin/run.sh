#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs the stand-in service and its clients once; see run.py --help.
exec /usr/bin/python3 "$(dirname "$0")/run.py" "$@"

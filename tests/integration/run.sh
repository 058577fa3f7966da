#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs the integration suite as root from the repository root: real BPF programs
# in the running kernel, real Python servers and clients, tshark as the oracle.
# Exit status is pytest's. Extra arguments go to pytest (e.g. -k fastapi, or test files).
set -u
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	# pytest still runs: every test is skipped with the reason.
	echo "integration: not root, the tests will be skipped: sudo $0" >&2
elif [ ! -d /sys/kernel/tracing/events ]; then
	mount -t tracefs tracefs /sys/kernel/tracing || {
		echo "integration: cannot mount tracefs at /sys/kernel/tracing" >&2
		exit 1
	}
fi

# The whole suite takes about twenty minutes on an idle machine; SIGINT after 40 still lets pytest
# tear down its processes and print its closing line.
# Test files or node ids among the arguments narrow the run to them; without any, the whole
# directory runs.
where=tests/integration
for a in "$@"; do
	case "$a" in
	tests/*) where= ;;
	esac
done
exec timeout -s INT -k 30 2400 /usr/bin/python3 -m pytest -v -s -rfEs -p no:cacheprovider \
	$where "$@"

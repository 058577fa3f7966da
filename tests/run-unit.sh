#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs every unit test binary and prints one closing line with the totals.
set -u
pass=0
fail=0
for t in "$@"; do
	if "$t"; then
		pass=$((pass + 1))
	else
		echo "FAILED: $t" >&2
		fail=$((fail + 1))
	fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

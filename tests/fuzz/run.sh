#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs each libFuzzer harness for SECONDS, from its committed seed corpus, under ASan+UBSan
# (leak detection on).  Any crash or leak fails the run.
set -u
secs=$1
shift
here=$(dirname "$0")
pass=0
fail=0
for bin in "$@"; do
	name=$(basename "$bin")
	seeds="$here/seeds/${name#fuzz_}"
	work=$(mktemp -d)
	mkdir -p "$seeds"
	echo "fuzz: $name for ${secs}s"
	if "$bin" -max_total_time="$secs" -max_len=65536 -detect_leaks=1 -print_final_stats=1 \
		-artifact_prefix="$work/" "$work" "$seeds" >"$work/log" 2>&1; then
		pass=$((pass + 1))
		grep -E 'stat::number_of_executed_units' "$work/log" || true
	else
		fail=$((fail + 1))
		tail -50 "$work/log"
		ls "$work"/crash-* "$work"/leak-* 2>/dev/null
	fi
	rm -rf "$work"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

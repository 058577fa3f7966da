#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs each libFuzzer harness for SECONDS, from its committed seed corpus, under ASan+UBSan
# (leak detection on), as many at once as there are CPUs (FUZZ_JOBS to choose): the budget
# is per harness, so the wall time is SECONDS times the harnesses over the jobs.  Any crash
# or leak fails the run.
set -u
secs=$1
shift
here=$(dirname "$0")
jobs=${FUZZ_JOBS:-$(nproc)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

one() {
	local bin=$1 name seeds work rc
	name=$(basename "$bin")
	seeds="$here/seeds/${name#fuzz_}"
	work=$(mktemp -d)
	mkdir -p "$seeds"
	if "$bin" -max_total_time="$secs" -max_len=65536 -detect_leaks=1 -print_final_stats=1 \
		-artifact_prefix="$work/" "$work" "$seeds" >"$work/log" 2>&1; then
		rc=0
		{
			echo "fuzz: $name for ${secs}s: passed"
			grep -E 'stat::number_of_executed_units' "$work/log"
		} >"$out/$name.pass"
	else
		rc=1
		{
			echo "fuzz: $name for ${secs}s: FAILED"
			tail -50 "$work/log"
			ls "$work"/crash-* "$work"/leak-* 2>/dev/null
		} >"$out/$name.fail"
		# The inputs that failed are kept for whoever reads the log.
		cp "$work"/crash-* "$work"/leak-* "$out/" 2>/dev/null
	fi
	rm -rf "$work"
	return $rc
}
export -f one
export here secs out

printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'one "$1"' _ {}
cat "$out"/*.pass "$out"/*.fail 2>/dev/null
pass=$(find "$out" -name '*.pass' | wc -l)
fail=$(find "$out" -name '*.fail' | wc -l)
echo "fuzz: $pass passed, $fail failed ($jobs at once)"
[ "$fail" -eq 0 ] && [ $((pass + fail)) -eq $# ]

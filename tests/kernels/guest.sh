#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# PID 1 of a matrix guest: prepares the kernel interfaces wsaudit uses, then runs on this
# kernel `wsaudit check-system`, a load of every program, the capture test, the attribution
# test on the root's CPython and the rules test on the stand-in.  Each step's output goes to
# /results (shared with the host) and the console; then the guest powers off.  Every wait
# is bounded: matrix.sh bounds the whole guest too.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
R=/results
STEP_TIMEOUT=${STEP_TIMEOUT:-900}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
ip link set lo up
hostname wsaudit-guest
ulimit -l unlimited

# Options the host passed on the kernel command line: wsaudit.steps=a,b,c
steps=all
for a in $(cat /proc/cmdline); do
	case "$a" in
	wsaudit.steps=*) steps=${a#wsaudit.steps=} ;;
	esac
done
want() { [ "$steps" = all ] || [[ ",$steps," == *",$1,"* ]]; }

step() {
	local name="$1" start rc

	shift
	start=$(date +%s)
	echo "=== step $name: $*"
	timeout -s INT -k 30 "$STEP_TIMEOUT" "$@" >"$R/$name.out" 2>&1
	rc=$?
	cat "$R/$name.out"
	echo "$name rc=$rc seconds=$(($(date +%s) - start))" >>"$R/steps"
	echo "=== step $name: exit $rc in $(($(date +%s) - start)) s"
}

cd /wsaudit || exit 1
: >"$R/steps"
uname -r >"$R/uname"
# The preemption model decides whether a BPF program can be preempted mid-run.
cat /sys/kernel/debug/sched/preempt >"$R/preempt" 2>/dev/null
step check-system ./wsaudit check-system
# Every program loaded and attached once, on a process that exists: the verifier's verdict.
want load && step load ./wsaudit trace -v -p 1 -d 2 -o json
if want load && ! grep -q "^load rc=0 " "$R/steps"; then
	echo "=== wsaudit did not load on this kernel: the tests that need it are not run"
	steps=none
fi
# Under emulation, starting tshark or importing FastAPI over 9p takes tens of seconds: the
# tests wait longer for their processes to start (tests/integration/harness.py).
export WSAUDIT_START_SCALE=8
PYTEST=(python3 -m pytest -v -s -rfEs -p no:cacheprovider --basetemp=/tmp/pytest)
want capture && step capture "${PYTEST[@]}" tests/integration/test_capture.py \
	-k "test_frames_match_server_log_and_tshark"
want attribution && step attribution "${PYTEST[@]}" tests/integration/test_attribution.py \
	-k "debian-3.11"
want rules && step rules "${PYTEST[@]}" tests/integration/test_rules.py -k "leak-on"
echo "done" >>"$R/steps"
sync
echo o >/proc/sysrq-trigger
sleep 30
echo b >/proc/sysrq-trigger

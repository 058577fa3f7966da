#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Checks the roots built by provision.sh, end to end, the way tests use them.
#
# Usage: verify.sh [SUITE...]      (no SUITE: bullseye trixie sid)
#
# Per suite: the interpreter has the expected version, websockets imports, an
# echo server started through run-in-root.sh on 127.0.0.1 answers a client run
# by the host's /usr/bin/python3, the spawned PID is the interpreter itself as
# seen from the host, and no mount is left behind. Also prints the ELF facts of
# the interpreter binary that matter to the tracer. Ends with the line
# "pythons: N passed, N failed"; exits non-zero when a check failed.
set -u -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
readonly ROOTS="${WSAUDIT_ROOTS:-/var/cache/wsaudit/roots}"
readonly HOST_PY=/usr/bin/python3
pass=0
fail=0

ok() {
	echo "ok   $*"
	pass=$((pass + 1))
}

bad() {
	echo "FAIL $*"
	fail=$((fail + 1))
}

want_version() {
	case "$1" in
	bullseye) echo 3.9 ;;
	trixie) echo 3.13 ;;
	sid) echo 3.14 ;;
	*) return 1 ;;
	esac
}

free_port() {
	"$HOST_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

elf_facts() {
	local suite="$1" bin="$2" type dynsym section

	type=$(readelf -h "$bin" | awk '/Type:/ { print $2 }')
	# grep -c reads all its input: with pipefail, grep -q could make the
	# writer die of SIGPIPE and the test read as false.
	if [ "$(nm -D "$bin" 2>/dev/null | grep -cw _PyRuntime)" -gt 0 ]; then
		dynsym=yes
	else
		dynsym=no
	fi
	if [ "$(readelf -S -W "$bin" | grep -c '\.PyRuntime')" -gt 0 ]; then
		section=yes
	else
		section=no
	fi
	echo "elf  $suite: ${bin#"$ROOTS/$suite"} type=$type _PyRuntime-in-dynsym=$dynsym .PyRuntime-section=$section"
}

# Starts the echo server inside the root, talks to it from the host, stops it.
echo_check() {
	local suite="$1" root="$2" port pid out exe rc

	port=$(free_port) || return 1
	out=$(mktemp)
	"$here/run-in-root.sh" "$suite" python3 /wsaudit/tests/pythons/echo-server.py \
		"$port" >"$out" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		grep -q "^ready $port" "$out" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q "^ready $port" "$out"; then
		bad "$suite: echo server did not start: $(tr '\n' ' ' <"$out")"
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		rm -f "$out"
		return 1
	fi

	exe=$(readlink "/proc/$pid/exe")
	if [ "$exe" = "$(readlink -f "$root/usr/bin/python3")" ]; then
		ok "$suite: spawned PID $pid is the interpreter ($exe)"
	else
		bad "$suite: spawned PID $pid runs $exe"
	fi

	if timeout 30 "$HOST_PY" - "$port" <<-'EOF'; then
		import asyncio, sys, websockets
		async def main(port):
		    async with websockets.connect("ws://127.0.0.1:%d" % port) as ws:
		        for msg in ("ping", "x" * 70000, b"\x00\x01\xff"):
		            await ws.send(msg)
		            if await ws.recv() != msg:
		                sys.exit("echo mismatch")
		asyncio.run(main(int(sys.argv[1])))
	EOF
		ok "$suite: host client got echoes from 127.0.0.1:$port"
	else
		bad "$suite: host client could not talk to 127.0.0.1:$port"
	fi

	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	if [ $rc -eq 0 ]; then
		ok "$suite: server stopped cleanly on SIGTERM"
	else
		bad "$suite: server exited $rc: $(tr '\n' ' ' <"$out")"
	fi
	rm -f "$out"
}

verify_suite() {
	local suite="$1" root="$ROOTS/$1" want got

	want=$(want_version "$suite") || {
		bad "$suite: unknown suite"
		return
	}
	if [ ! -f "$root/.wsaudit-root" ]; then
		bad "$suite: not provisioned ($root); run provision.sh $suite"
		return
	fi

	got=$("$here/run-in-root.sh" "$suite" python3 -VV 2>&1 | tr -s '\n ' '  ')
	case "$got" in
	"Python $want".*) ok "$suite: ${got% }" ;;
	*) bad "$suite: python3 -VV gave '$got', want $want" ;;
	esac

	if got=$("$here/run-in-root.sh" "$suite" python3 -c \
		'import websockets; print(websockets.__version__)' 2>&1); then
		ok "$suite: import websockets ($got)"
	else
		bad "$suite: import websockets: $got"
	fi

	got=$("$here/run-in-root.sh" "$suite" sh -c \
		'test -r /wsaudit/tests/pythons/echo-server.py && ! touch /wsaudit/.w 2>/dev/null && echo ro' 2>&1)
	if [ "$got" = ro ]; then
		ok "$suite: repository mounted read-only at /wsaudit"
	else
		bad "$suite: /wsaudit is not the read-only repository ($got)"
	fi

	echo_check "$suite" "$root"

	if grep -q " $ROOTS/" /proc/mounts; then
		bad "$suite: mounts left under $ROOTS"
	else
		ok "$suite: no mounts left under $ROOTS"
	fi

	elf_facts "$suite" "$(readlink -f "$root/usr/bin/python3")"
}

main() {
	local s

	if ! "$HOST_PY" -c 'import websockets' 2>/dev/null; then
		echo "FAIL host $HOST_PY has no websockets (apt-get install python3-websockets)"
		echo "pythons: 0 passed, 1 failed"
		return 1
	fi
	[ $# -gt 0 ] || set -- bullseye trixie sid
	for s in "$@"; do
		verify_suite "$s"
	done
	echo "pythons: $pass passed, $fail failed"
	[ $fail -eq 0 ]
}

main "$@"

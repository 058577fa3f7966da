#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: starts the demo Python WebSocket service (FastAPI on uvicorn with
# uvloop), traces it with `wsaudit trace -o text -d 15` while a few clients
# talk to it, and explains what the lines mean. Run as root from the
# repository root after the build. Everything it starts is stopped on exit.
set -u
cd "$(dirname "$0")/../.."

PY=/usr/bin/python3
DURATION=15

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (wsaudit loads BPF programs): sudo make demo" >&2
	exit 1
fi
if [ ! -x ./wsaudit ]; then
	echo "demo: ./wsaudit is missing: run make first" >&2
	exit 1
fi
if [ ! -d /sys/kernel/tracing/events ]; then
	mount -t tracefs tracefs /sys/kernel/tracing || exit 1
fi

tmp=$(mktemp -d /tmp/wsaudit-demo.XXXXXX)
server_pid=""
trace_pid=""
client_pids=""

cleanup() {
	for pid in $client_pids $trace_pid $server_pid; do
		kill "$pid" 2>/dev/null
	done
	for pid in $client_pids $trace_pid $server_pid; do
		wait "$pid" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wait up to $2 seconds for the pattern $1 in file $3.
wait_for() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		grep -q "$1" "$3" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

echo "== Starting the demo service: FastAPI + uvicorn + uvloop on 127.0.0.1:$port"
$PY tests/apps/ws_server_fastapi.py --port "$port" >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
if ! wait_for READY 30 "$tmp/server.out"; then
	echo "demo: the service did not start:" >&2
	cat "$tmp/server.err" >&2
	exit 1
fi
echo "   service pid $server_pid"

cat <<TXT

== Tracing it: ./wsaudit trace -p $server_pid -o text -d $DURATION
   wsaudit attaches to the kernel's send/write syscalls and follows only pid
   $server_pid. Nothing in the service changes: no restart, no library. Each
   WebSocket frame the service sends becomes one line:

     time  pid/tid  process  client  opcode  fin|more  len=N  from Function (file:line)

   opcode   text/binary carry messages; ping/pong are keep-alives; close ends
            the connection (here with code 1011, "internal error");
            continuation frames carry the rest of a fragmented message
   fin|more "fin" ends a message; "more" means the message continues in the
            next frames (a fragmented message)
   len      payload bytes on the wire; the payload itself is never shown
            unless you pass --payload
   from     the Python function that wrote the frame (read from the stack)
   conn_open / conn_close lines mark a WebSocket connection's start (seen
            from its handshake) and end

TXT

./wsaudit trace -p "$server_pid" -o text -d "$DURATION" 2>"$tmp/trace.err" &
trace_pid=$!
if ! wait_for "wsaudit: tracing" 30 "$tmp/trace.err"; then
	echo "demo: wsaudit did not start:" >&2
	cat "$tmp/trace.err" >&2
	exit 1
fi

# Two clients now, one more a few seconds later.
$PY tests/apps/ws_client.py --port "$port" -n 2 >"$tmp/clients.1" 2>&1 &
client_pids="$!"
sleep 5
$PY tests/apps/ws_client.py --port "$port" -n 1 >"$tmp/clients.2" 2>&1 &
client_pids="$client_pids $!"

wait "$trace_pid"
rc=$?
trace_pid=""
grep -v "^wsaudit: tracing" "$tmp/trace.err" >&2

cat <<TXT

== What you saw
   Each client got the same mix from the service: small and 70 KiB text
   frames, binary frames, a ping and a pong, fragmented messages (a text
   frame with fin unset, then continuation frames, with a ping in between),
   bursts of several frames written with a single syscall, and a close with
   code 1011. wsaudit reassembled the frames from what the kernel saw leave
   the process, and named the Python function behind each one.
   Try -o json for machine-readable records, or see README.md.
TXT
exit $rc

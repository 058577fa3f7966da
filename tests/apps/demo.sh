#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: starts the stand-in of the reference service (tests/apps/standin: FastAPI on
# uvicorn with uvloop, permessage-deflate, a JWT in Sec-WebSocket-Protocol, an agent bridge,
# agents that bypass it, one of them fire-and-forget (asyncio.create_task of the manager's
# send), and a cross-user leak switched on), traces it with
# `wsaudit trace -c policies/netra.yaml` while three users run an agent each, and explains what
# the lines mean.  Run as root from the repository root after the build; under a minute.
# Everything it starts is stopped on exit.
set -u
cd "$(dirname "$0")/../.."

PY=/usr/bin/python3

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (wsaudit loads BPF programs): run make demo as root" >&2
	exit 1
fi
if [ ! -x ./wsaudit ]; then
	echo "demo: ./wsaudit is missing: run make first" >&2
	exit 1
fi

tmp=$(mktemp -d /tmp/wsaudit-demo.XXXXXX)
runner_pid=""
trace_pid=""
stall_pid=""

cleanup() {
	for pid in $trace_pid $runner_pid $stall_pid; do
		kill "$pid" 2>/dev/null
	done
	for pid in $trace_pid $runner_pid $stall_pid; do
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

echo "== Starting the stand-in service (FastAPI + uvicorn + uvloop, compression on, leak on,"
echo "   a fire-and-forget bypass on, three users whose runs hit a delivery fault and three"
echo "   whose runs are broken: no agent_completed, out of order, no tool events)"
$PY tests/apps/standin/run.py --users 3 --leak --detached-bypass --seed 2 --go-file "$tmp/go" \
	--truth "$tmp/truth.jsonl" --timeout 40 --fault epipe --fault raise --fault after_close \
	--fault no_completed --fault out_of_order --fault missing_event \
	>"$tmp/run.out" 2>&1 &
runner_pid=$!
if ! wait_for 'SERVER pid=' 30 "$tmp/run.out"; then
	echo "demo: the service did not start:" >&2
	cat "$tmp/run.out" >&2
	exit 1
fi
server_pid=$(sed -n 's/^SERVER pid=\([0-9]*\).*/\1/p' "$tmp/run.out")
echo "   service pid $server_pid"
# A second, small server (websockets on uvloop) for the writes still queued at close.
$PY tests/apps/ws_stalled.py --port 0 --loop uvloop --mode stall >"$tmp/stall.out" 2>&1 &
stall_pid=$!
if ! wait_for 'READY' 30 "$tmp/stall.out"; then
	echo "demo: ws_stalled.py did not start:" >&2
	cat "$tmp/stall.out" >&2
	exit 1
fi
stall_port=$(sed -n 's/^READY.*port=//p' "$tmp/stall.out")

cat <<TXT

== Tracing it: ./wsaudit trace -p $server_pid -c policies/netra.yaml -o text
   wsaudit follows only pid $server_pid, through the kernel's send/write syscalls and the
   service's own Python stacks.  Nothing in the service changes: no restart, no library.
   Each WebSocket frame the service sends becomes one line:

     TIME(UTC)  PID  USER  OP  LEN  PEER  ORIGIN (file:line)  [type, pod, flags]
       USER       the user the connection belongs to, as a keyed hash (u#...)
       OP         text, bin, cont, close, ping, pong; '+' when more frames of the message follow
       ORIGIN     the function that produced the frame, its file relative to the service's
                  code root (said once on a "code root" line)
       type=...   the message's type (read from its JSON, after inflating it)
       via_bridge the frame went out through AgentWebSocketBridge (the policy's bridge)
     ! bridge_bypass     an agent called the WebSocket manager directly: the line names it
     ! isolation_breach  the frame reached a user it does not belong to: both users named
                         (as a stable short hash; --show-identities shows the ids)
   Payloads are never printed unless you pass --payload.

TXT

./wsaudit trace -p "$server_pid" -p "$stall_pid" -c policies/netra.yaml -o text \
	>"$tmp/trace.out" 2>"$tmp/trace.err" &
trace_pid=$!
if ! wait_for 'wsaudit: tracing' 30 "$tmp/trace.err"; then
	echo "demo: wsaudit did not start:" >&2
	cat "$tmp/trace.err" >&2
	exit 1
fi
touch "$tmp/go"
# A client of the small server that stops reading after the handshake: its server sends 200
# frames and aborts the connection with most of them still in uvloop's queue.
$PY - "$stall_port" <<'PYEOF' &
import base64, os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(f"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
          f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
          f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
time.sleep(5)
PYEOF
if ! wait_for 'CLIENTS done' 45 "$tmp/run.out"; then
	echo "demo: the clients did not finish:" >&2
	cat "$tmp/run.out" >&2
fi
sleep 1
kill -INT "$trace_pid"
wait "$trace_pid"
trace_pid=""

# The frames of the first user's connection, then every finding of the run.
first_peer=$(grep -m1 ' conn_open ' "$tmp/trace.out" |
	awk '{ for (i = 1; i < NF; i++) if ($i == "->") print $(i + 1) }')
echo "== One user's connection ($first_peer), frame by frame:"
awk -v peer="$first_peer" '
	/^  ! / { if (mine) print; next }
	{ mine = ($6 == peer && $4 != "conn_open" && $4 != "conn_close"); if (mine) print }
' "$tmp/trace.out" | head -40
echo
echo "== Every finding of the run:"
grep '^  ! ' "$tmp/trace.out" | sort | uniq -c | sort -rn
echo
# The fire-and-forget bypass: the service's own log says how many frames it sent; wsaudit
# flags them once it links the send to the code that created the task.
fnf_sent=$(grep -c '"site": "detached_routing_announcement"' "$tmp/truth.jsonl")
fnf_flagged=$(grep -c '^  ! bridge_bypass: SupervisorWorkflowExecutor._announce_routing ' \
	"$tmp/trace.out")
unlinked=$(grep -E ' (text|bin)\+? .* unattributed: ' "$tmp/trace.out" | grep -c .)
cat <<TXT
== The fire-and-forget bypass: SupervisorWorkflowExecutor._announce_routing hands the manager's
   send_to_user to asyncio.create_task and does not wait; the task that sends has only the
   manager on its stack.  The service sent $fnf_sent such frames:
     flagged bridge_bypass naming _announce_routing:   $fnf_flagged
     data frames wsaudit could not name a producer for: $unlinked (lines 'unattributed: REASON')
TXT
echo
# The delivery faults: each finding under the line of the frame (or connection) it is about.
cat <<TXT
== Delivery (docs/delivery.md): three more users' runs each hit a fault of the service's
   --fault switches.  epipe: the client resets its connection after agent_started and an agent
   keeps writing its steps: each frame is LOST (delivery_failed) with the errno, the function,
   the type, and the connection closes without a close frame (abnormal_close).  raise: the run
   raises and the route closes with 1011 (abnormal_close).  after_close: agent_completed is
   written after the close frame (after_close).
TXT
awk -v stall="$stall_pid" '$2 == stall { q = 1; next }
	q && /^(  ! |    )/ { next }
	{ q = 0 }
	/^  ! (delivery_failed|abnormal_close|after_close):/ { if (prev != shown) print prev; print; shown = prev; next }
	/^  ! / { next }
	/^    / { prev = prev "\n" $0; next }
	{ prev = $0 }' "$tmp/trace.out" | head -30
echo
queued=$(grep -c ' QUEUED ' "$tmp/trace.out")
cat <<TXT
== Writes still queued at close (docs/delivery.md): a small websockets server on uvloop
   (tests/apps/ws_stalled.py, pid $stall_pid) whose client stops reading after the handshake;
   produce() sends 200 frames, then the server aborts the connection.  uvloop queues what it
   is given and writes it later, so most frames never reached a syscall: each is a QUEUED
   line (delivery_failed) naming produce() and its length; $queued of them, the first:
TXT
grep -m1 -A1 ' QUEUED ' "$tmp/trace.out"
grep " conn_close .*queued=" "$tmp/trace.out" | head -1
echo
cat <<TXT
== Runs that did not reach their user whole (the policy's runs section: agent_started, the
   thinking and tool events, agent_completed or agent_error, by run_id).  Three users' runs
   were broken on purpose: one never sends agent_completed (its user gives up and leaves),
   one sends agent_completed before agent_started, one skips its tools.  Each run record
   names the run, its user and the function that sent the last event seen of it (the runs
   of the delivery faults above never end either: incomplete_run too):
TXT
awk '/ run (incomplete_run|out_of_order|missing_event) / { p = 1; print; next }
	p && /^(    |  ! )/ { print; next }
	{ p = 0 }' "$tmp/trace.out"
cat <<TXT
   (Runs whose tool events the leak sent to another user's connection miss them on their
   own connection: missing_event; on the other connection they are not judged: 'fragment'.)

TXT
sed -n "/^total: /,\$p" "$tmp/trace.out"
echo
sed -n 's/^client: /   client /p' "$tmp/run.out"
cat <<TXT

   Each bridge_bypass names the agent function and line that called the manager directly;
   each isolation_breach is a frame that went to another user's connection (the service's
   shared executor leaking one run's events).  'wsaudit trace --help' lists the options;
   'wsaudit agent' runs the same audit on every Python process of a node.
TXT

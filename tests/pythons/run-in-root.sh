#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs a command inside a root built by provision.sh.
#
# Usage: run-in-root.sh [--bind SRC:DST]... [--chdir DIR] SUITE CMD [ARG...]
#
# Inside the root: /proc, /sys and /dev of the host, a private tmpfs on /tmp,
# the repository read-only at /wsaudit, and each --bind SRC:DST read-write.
# The mounts live in a private mount namespace that disappears with its last
# process, so nothing is left mounted on the host, whatever way CMD ends.
#
# Only the mount namespace is new: CMD shares the host's network (a server
# bound to 127.0.0.1 inside is reachable from the host) and the host's PID
# namespace. Every step execs the next, so the PID of this script is the PID
# of CMD: a test that spawns it can attach the tracer to that PID directly.
#
# Environment: WSAUDIT_ROOTS (default /var/cache/wsaudit/roots), WSAUDIT_REPO
# (default: the repository this script belongs to). PATH is reset to the
# root's standard one; the rest of the environment is passed through.
#
# Exit codes: CMD's own, or 125 when the root or the mounts cannot be set up.
set -u

readonly ROOTS="${WSAUDIT_ROOTS:-/var/cache/wsaudit/roots}"
readonly STAMP=".wsaudit-root"
readonly E_SETUP=125

die() {
	printf 'run-in-root: %s\n' "$*" >&2
	exit $E_SETUP
}

binds=()
chdir=/
while [ $# -gt 0 ]; do
	case "$1" in
	--bind)
		[ $# -ge 2 ] || die "--bind needs SRC:DST"
		case "$2" in
		/*:/*) ;;
		*) die "--bind $2: want /ABS/SRC:/ABS/DST" ;;
		esac
		[ -e "${2%%:*}" ] || die "--bind: ${2%%:*} does not exist"
		binds+=("$2")
		shift 2
		;;
	--chdir)
		[ $# -ge 2 ] || die "--chdir needs DIR"
		chdir="$2"
		shift 2
		;;
	-h | --help)
		sed -n '3,23p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	--)
		shift
		break
		;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# -ge 2 ] || die "usage: run-in-root.sh [--bind SRC:DST]... [--chdir DIR] SUITE CMD [ARG...]"

suite="$1"
shift
root="$ROOTS/$suite"
[ -f "$root/$STAMP" ] ||
	die "no root for '$suite' in $ROOTS: run tests/pythons/provision.sh $suite"
[ "$(id -u)" -eq 0 ] || die "needs root (mount namespace and chroot)"

repo="${WSAUDIT_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}"
[ -d "$repo" ] || die "repository $repo not found"

# The inner shell mounts, then execs chroot, env and CMD in the same process.
# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare -m --propagation private -- sh -c '
	fail() { echo "run-in-root: $*" >&2; exit 125; }
	m() { mount "$@" || fail "mount $* failed"; }
	r="$1" repo="$2" chdir="$3" nbind="$4"
	shift 4
	m -t proc proc "$r/proc"
	m --rbind /sys "$r/sys"
	m --rbind /dev "$r/dev"
	m -t tmpfs -o mode=1777,size=512m tmpfs "$r/tmp"
	mkdir -p "$r/wsaudit" || fail "cannot create /wsaudit"
	m --bind "$repo" "$r/wsaudit"
	m -o remount,bind,ro "$r/wsaudit"
	while [ "$nbind" -gt 0 ]; do
		src="${1%%:*}" dst="${1#*:}"
		if [ -d "$src" ]; then
			mkdir -p "$r$dst"
		else
			mkdir -p "$(dirname "$r$dst")" && { [ -e "$r$dst" ] || : >"$r$dst"; }
		fi || fail "cannot create $dst"
		m --bind "$src" "$r$dst"
		shift
		nbind=$((nbind - 1))
	done
	exec chroot "$r" /usr/bin/env -u PYTHONHOME -u PYENV_VERSION -u VIRTUAL_ENV \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		sh -c "cd \"\$1\" && shift && exec \"\$@\"" run-in-root "$chdir" "$@"
' sh "$root" "$repo" "$chdir" "${#binds[@]}" "${binds[@]}" "$@"

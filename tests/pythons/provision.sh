#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds (or reuses) minimal Debian roots that carry the distribution CPython
# interpreters the integration tests run against, next to the host's own 3.11:
#
#   bullseye  CPython 3.9
#   trixie    CPython 3.13
#   sid       CPython 3.14
#
# Usage: provision.sh [--check] [SUITE...]      (no SUITE: all three)
#
# Roots live outside the work tree, in $WSAUDIT_ROOTS/<suite> (default
# /var/cache/wsaudit/roots), so a clean clone reuses them. A finished root holds
# $STAMP; anything else found at that path is a half-built root and is rebuilt.
# Packages come from the Debian mirror this machine is configured with
# (/etc/apt/sources.list*), or $WSAUDIT_MIRROR when set.
#
# Exit codes:
#   0  every requested root is ready (or, with --check, present)
#   1  a build step failed or timed out
#   2  usage error
#   3  the mirror does not serve a requested suite
#   4  --check: at least one requested root is missing or stale
#   5  the suite's interpreter is not the expected version
set -u -o pipefail

readonly ROOTS="${WSAUDIT_ROOTS:-/var/cache/wsaudit/roots}"
readonly STAMP=".wsaudit-root"
# Bump when the package set or the root layout changes: older stamps are stale.
readonly RECIPE=1
readonly PACKAGES="python3 python3-websockets ca-certificates"

readonly T_PROBE=30
readonly T_DEBOOTSTRAP=1500
readonly T_APT_UPDATE=600
readonly T_APT_INSTALL=1200

readonly E_FAIL=1 E_USAGE=2 E_UNREACHABLE=3 E_MISSING=4 E_VERSION=5

log() { printf 'provision: %s\n' "$*" >&2; }

# timeout(1) puts its command in a process group of its own, which a signal
# sent to our group does not reach: remember it and pass signals on, so an
# interrupted run leaves no debootstrap or apt-get behind.
CHILD=
bounded() {
	local tmo="$1" rc

	shift
	timeout --kill-after=30 "$tmo" "$@" &
	CHILD=$!
	wait "$CHILD"
	rc=$?
	CHILD=
	[ $rc -eq 124 ] || [ $rc -eq 137 ] && log "timed out after $tmo s: $*"
	return $rc
}

on_signal() {
	[ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD"
	# fd 8 is the caller's stderr: the step that was cut has its own.
	log "interrupted; the half-built root is removed by the next run" 2>&8
	exit 130
}

suite_python() {
	case "$1" in
	bullseye) echo 3.9 ;;
	trixie) echo 3.13 ;;
	sid) echo 3.14 ;;
	*) return 1 ;;
	esac
}

# The first non-security "deb" URI of the host's apt configuration, one-line
# or deb822 format; the host already trusts and reaches it.
mirror_find() {
	local f uri

	if [ -n "${WSAUDIT_MIRROR:-}" ]; then
		echo "$WSAUDIT_MIRROR"
		return 0
	fi
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		case "$f" in
		*.sources)
			uri=$(awk '
				/^[[:space:]]*$/ { if (deb && uri && !sec) { print uri; exit } deb = 0; uri = ""; sec = 0; next }
				/^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
				/^URIs:/ { uri = $2 }
				/^Suites:/ { if ($0 ~ /-security/) sec = 1 }
				/^Enabled:[[:space:]]*no/ { deb = 0 }
				END { if (deb && uri && !sec) print uri }' "$f" | head -n1)
			;;
		*)
			uri=$(awk '$1 == "deb" && $0 !~ /-security/ {
				for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")
			;;
		esac
		case "$uri" in
		*/debian | */debian/)
			echo "${uri%/}"
			return 0
			;;
		esac
	done
	return 1
}

# Mounts left under a root would make "rm -rf" walk into the host: refuse.
root_has_mounts() {
	awk -v r="$1" '$2 == r || index($2, r "/") == 1 { found = 1 } END { exit !found }' /proc/mounts
}

root_remove() {
	local dir="$1"

	[ -e "$dir" ] || return 0
	if root_has_mounts "$dir"; then
		log "$dir has mounts under it; unmount them first"
		return 1
	fi
	rm -rf --one-file-system -- "$dir"
}

# Runs CMD inside ROOT in a private mount namespace, so nothing stays mounted.
root_exec() {
	local root="$1" tmo="$2"

	shift 2
	# shellcheck disable=SC2016 # expanded by the inner shell
	bounded "$tmo" unshare -m --propagation private -- \
		sh -c 'r="$1"; shift
		mount -t proc proc "$r/proc" &&
		mount --rbind /sys "$r/sys" &&
		mount --rbind /dev "$r/dev" &&
		exec chroot "$r" /usr/bin/env -i \
			PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
			DEBIAN_FRONTEND=noninteractive "$@"' sh "$root" "$@"
}

stamp_ok() {
	local root="$1"

	local bin

	[ -f "$root/$STAMP" ] && grep -qx "recipe=$RECIPE" "$root/$STAMP" || return 1
	bin=$(stamp_get "$root" interpreter)
	[ -n "$bin" ] && [ -x "$root$bin" ]
}

stamp_get() {
	sed -n "s/^$2=//p" "$1/$STAMP"
}

report() {
	local suite="$1" root="$2" bin

	bin=$(stamp_get "$root" interpreter)
	printf '%s: %s%s\n' "$suite" "$root" "$bin"
	printf '%s: %s\n' "$suite" "$(stamp_get "$root" version)"
}

suite_reachable() {
	local mirror="$1" suite="$2"

	bounded "$T_PROBE" /usr/lib/apt/apt-helper download-file \
		"$mirror/dists/$suite/Release" "$WORK/Release.$suite" >/dev/null 2>&1
}

suite_build() {
	local suite="$1" mirror="$2" want="$3"
	local root="$ROOTS/$suite" part="$ROOTS/.$suite.partial"
	local start bin real ver

	start=$(date +%s)
	root_remove "$part" || return $E_FAIL
	root_remove "$root" || return $E_FAIL

	if ! suite_reachable "$mirror" "$suite"; then
		log "$suite: $mirror/dists/$suite/Release is not reachable"
		return $E_UNREACHABLE
	fi

	log "$suite: debootstrap from $mirror into $part"
	if ! bounded "$T_DEBOOTSTRAP" debootstrap --variant=minbase \
		--keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
		"$suite" "$part" "$mirror" >"$WORK/debootstrap.$suite.log" 2>&1; then
		log "$suite: debootstrap failed or timed out; last lines of its log:"
		tail -n 20 "$WORK/debootstrap.$suite.log" >&2
		[ -f "$part/debootstrap/debootstrap.log" ] &&
			tail -n 20 "$part/debootstrap/debootstrap.log" >&2
		return $E_FAIL
	fi

	# The mirror may serve a frozen copy whose Release is past Valid-Until.
	printf 'deb %s %s main\n' "$mirror" "$suite" >"$part/etc/apt/sources.list"
	cat >"$part/etc/apt/apt.conf.d/99wsaudit" <<-'EOF'
		Acquire::Check-Valid-Until "false";
		Acquire::Languages "none";
		APT::Install-Recommends "false";
		APT::Install-Suggests "false";
	EOF
	cp /etc/resolv.conf "$part/etc/resolv.conf" 2>/dev/null

	log "$suite: apt-get install $PACKAGES"
	# shellcheck disable=SC2086 # word splitting of the package list is wanted
	if ! root_exec "$part" "$T_APT_UPDATE" apt-get -q update \
		>"$WORK/apt.$suite.log" 2>&1 ||
		! root_exec "$part" "$T_APT_INSTALL" apt-get -q -y install $PACKAGES \
			>>"$WORK/apt.$suite.log" 2>&1; then
		log "$suite: apt-get failed or timed out; last lines of its log:"
		tail -n 20 "$WORK/apt.$suite.log" >&2
		return $E_FAIL
	fi
	root_exec "$part" "$T_APT_UPDATE" apt-get clean >/dev/null 2>&1
	rm -rf "$part/var/lib/apt/lists/"*

	bin=$(readlink -f "$part/usr/bin/python3")
	bin="/usr/bin/${bin##*/}"
	real=$(root_exec "$part" 60 python3 -c \
		'import sys; print("%d.%d" % sys.version_info[:2])') || return $E_FAIL
	if [ "$real" != "$want" ]; then
		log "$suite: python3 is $real, expected $want"
		return $E_VERSION
	fi
	if ! root_exec "$part" 60 python3 -c 'import asyncio, websockets'; then
		log "$suite: websockets does not import"
		return $E_FAIL
	fi
	ver=$(root_exec "$part" 60 python3 -VV | tr -s "\n " "  " | sed "s/ *$//") || return $E_FAIL

	{
		echo "recipe=$RECIPE"
		echo "suite=$suite"
		echo "mirror=$mirror"
		echo "interpreter=$bin"
		echo "version=$ver"
		echo "websockets=$(root_exec "$part" 60 python3 -c \
			'import websockets; print(websockets.__version__)')"
		echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "seconds=$(($(date +%s) - start))"
	} >"$part/$STAMP.tmp" && mv "$part/$STAMP.tmp" "$part/$STAMP" &&
		mv -T "$part" "$root" || return $E_FAIL
	log "$suite: built in $(($(date +%s) - start)) s, $(du -sh --one-file-system "$root" | cut -f1)"
	return 0
}

# One provisioning at a time per suite, across CI and interactive runs.
suite_provision() {
	local suite="$1" mirror="$2" want="$3" rc

	exec 9>"$ROOTS/.$suite.lock"
	if ! flock -w "$T_DEBOOTSTRAP" 9; then
		log "$suite: could not take $ROOTS/.$suite.lock"
		return $E_FAIL
	fi
	if stamp_ok "$ROOTS/$suite"; then
		log "$suite: cached"
		rc=0
	else
		suite_build "$suite" "$mirror" "$want"
		rc=$?
		[ $rc -eq 0 ] || root_remove "$ROOTS/.$suite.partial"
	fi
	exec 9>&-
	return $rc
}

deps_ensure() {
	local missing=()

	command -v debootstrap >/dev/null || missing+=(debootstrap)
	[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] ||
		missing+=(debian-archive-keyring)
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	bounded "$T_APT_UPDATE" apt-get -q update >/dev/null &&
		DEBIAN_FRONTEND=noninteractive bounded "$T_APT_INSTALL" \
			apt-get -q -y install "${missing[@]}" >/dev/null
}

main() {
	local check=0 suites=() s rc=0 r mirror why

	while [ $# -gt 0 ]; do
		case "$1" in
		--check) check=1 ;;
		-h | --help)
			sed -n '3,27p' "$0" | sed 's/^# \{0,1\}//'
			return 0
			;;
		-*)
			log "unknown option $1"
			return $E_USAGE
			;;
		*)
			if ! suite_python "$1" >/dev/null; then
				log "unknown suite $1 (known: bullseye trixie sid)"
				return $E_USAGE
			fi
			suites+=("$1")
			;;
		esac
		shift
	done
	[ ${#suites[@]} -gt 0 ] || suites=(bullseye trixie sid)

	if [ $check -eq 1 ]; then
		for s in "${suites[@]}"; do
			if stamp_ok "$ROOTS/$s"; then
				report "$s" "$ROOTS/$s"
			else
				echo "$s: missing ($ROOTS/$s)"
				rc=$E_MISSING
			fi
		done
		return $rc
	fi

	if [ "$(id -u)" -ne 0 ]; then
		log "building roots needs root"
		return $E_FAIL
	fi
	mkdir -p "$ROOTS" || return $E_FAIL
	WORK=$(mktemp -d) || return $E_FAIL
	trap 'rm -rf "$WORK"' EXIT
	exec 8>&2
	trap on_signal TERM INT HUP
	deps_ensure || {
		log "cannot install debootstrap"
		return $E_FAIL
	}
	if ! mirror_find >"$WORK/mirror"; then
		log "no Debian mirror found in /etc/apt/sources.list*; set WSAUDIT_MIRROR"
		return $E_FAIL
	fi
	mirror=$(cat "$WORK/mirror")

	for s in "${suites[@]}"; do
		suite_provision "$s" "$mirror" "$(suite_python "$s")"
		r=$?
		if [ $r -eq 0 ]; then
			report "$s" "$ROOTS/$s"
		else
			case $r in
			"$E_UNREACHABLE") why="the mirror does not serve $s" ;;
			"$E_VERSION") why="python3 of $s is not $(suite_python "$s")" ;;
			*) why="build failed" ;;
			esac
			echo "$s: FAILED (exit $r: $why)"
			# Keep the most specific failure for the caller.
			[ $rc -eq 0 ] || [ $rc -eq $E_FAIL ] && rc=$r
		fi
	done
	return $rc
}

main "$@"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds (or reuses) the guest root of the kernel matrix: a Debian bookworm root with the
# libraries wsaudit links and the Python packages and tshark the integration tests use.
# Every guest kernel boots on it (shared read-only over virtio-9p).  It lives outside the
# work tree, in $WSAUDIT_KERNELS/root (default /var/cache/wsaudit/kernels/root), so a clean
# clone reuses it; a finished root holds $STAMP, anything else at that path is rebuilt.
#
# Usage: root.sh [PACKAGE...]   prints the root's path on success
# PACKAGEs (the libraries the wsaudit being tested links, found by matrix.sh) are added to a
# cached root that lacks them, without rebuilding it.
set -u -o pipefail

readonly CACHE="${WSAUDIT_KERNELS:-/var/cache/wsaudit/kernels}"
readonly ROOT="$CACHE/root"
readonly PART="$CACHE/.root.partial"
readonly STAMP=".wsaudit-guest-root"
# Bump when the package set changes: older stamps are stale.
readonly RECIPE=1
readonly SUITE=bookworm
readonly PACKAGES="python3 python3-pytest python3-yaml python3-websockets python3-uvicorn
	python3-fastapi python3-uvloop python3-aiohttp python3-wsproto tshark iproute2 procps
	libbpf1 libelf1 zlib1g libjansson4 libyaml-0-2 libmicrohttpd12 kmod ca-certificates"
readonly T_DEBOOTSTRAP=1500 T_APT=1500

log() { printf 'kernels: %s\n' "$*" >&2; }

# Runs CMD inside root DIR in a private mount namespace, so nothing stays mounted.
in_dir() {
	local dir="$1" tmo="$2"

	shift 2
	timeout --kill-after=30 "$tmo" unshare -m --propagation private -- \
		sh -c 'r="$1"; shift
		mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" &&
		exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
			LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"' sh "$dir" "$@"
}

in_root() { in_dir "$PART" "$@"; }

# Installs into the finished root the PACKAGEs it does not have yet.
add_packages() {
	local p missing=() log="$CACHE/root-add.log"

	for p in "$@"; do
		grep -q "^Package: $p\$" "$ROOT/var/lib/dpkg/status" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "guest root: adding ${missing[*]} (log: $log)"
	if ! in_dir "$ROOT" "$T_APT" apt-get -q update >"$log" 2>&1 ||
		! in_dir "$ROOT" "$T_APT" apt-get -q -y install "${missing[@]}" >>"$log" 2>&1; then
		log "apt-get failed or timed out; last lines of $log:"
		tail -n 20 "$log" >&2
		return 1
	fi
	in_dir "$ROOT" 120 apt-get clean >/dev/null 2>&1
	rm -rf "$ROOT/var/lib/apt/lists/"*
}

unmounted() {
	! awk -v r="$1" '$2 == r || index($2, r "/") == 1 { f = 1 } END { exit !f }' /proc/mounts
}

build() {
	local mirror="$1" start log="$CACHE/root-build.log"

	start=$(date +%s)
	unmounted "$PART" || { log "$PART has mounts under it"; return 1; }
	rm -rf --one-file-system -- "$PART"
	log "guest root: debootstrap $SUITE from $mirror (log: $log)"
	if ! timeout --kill-after=30 "$T_DEBOOTSTRAP" debootstrap --variant=minbase \
		--keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
		"$SUITE" "$PART" "$mirror" >"$log" 2>&1; then
		log "debootstrap failed or timed out; last lines of $log:"
		tail -n 20 "$log" >&2
		return 1
	fi
	printf 'deb %s %s main\n' "$mirror" "$SUITE" >"$PART/etc/apt/sources.list"
	printf '%s\n' 'Acquire::Check-Valid-Until "false";' 'Acquire::Languages "none";' \
		'APT::Install-Recommends "false";' 'APT::Install-Suggests "false";' \
		>"$PART/etc/apt/apt.conf.d/99wsaudit"
	cp /etc/resolv.conf "$PART/etc/resolv.conf" 2>/dev/null
	# tshark asks whether non-root users may capture; the guest runs everything as root.
	echo 'wireshark-common wireshark-common/install-setuid boolean false' >"$PART/tmp/seed"
	log "guest root: apt-get install (log: $log)"
	# shellcheck disable=SC2086 # word splitting of the package list is wanted
	if ! in_root "$T_APT" apt-get -q update >>"$log" 2>&1 ||
		! in_root 60 debconf-set-selections /tmp/seed >>"$log" 2>&1 ||
		! in_root "$T_APT" apt-get -q -y install $PACKAGES >>"$log" 2>&1; then
		log "apt-get failed or timed out; last lines of $log:"
		tail -n 20 "$log" >&2
		return 1
	fi
	in_root 120 apt-get clean >/dev/null 2>&1
	rm -rf "$PART/var/lib/apt/lists/"* "$PART/tmp/seed"
	# The guest's mount points for what the host shares.
	mkdir -p "$PART/wsaudit" "$PART/results" "$PART/usr/lib/modules"
	{
		echo "recipe=$RECIPE"
		echo "suite=$SUITE"
		echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "seconds=$(($(date +%s) - start))"
	} >"$PART/$STAMP" && mv -T "$PART" "$ROOT" || return 1
	log "guest root: built in $(($(date +%s) - start)) s, $(du -sh --one-file-system "$ROOT" | cut -f1)"
}

main() {
	local mirror rc=0

	mkdir -p "$CACHE" || return 1
	exec 9>"$CACHE/.root.lock"
	flock -w "$T_DEBOOTSTRAP" 9 || { log "could not take $CACHE/.root.lock"; return 1; }
	if [ -f "$ROOT/$STAMP" ] && grep -qx "recipe=$RECIPE" "$ROOT/$STAMP"; then
		add_packages "$@" || return 1
		echo "$ROOT"
		return 0
	fi
	# The host's first Debian (non-security) mirror: it already trusts and reaches it.
	mirror="${WSAUDIT_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
		/etc/apt/sources.list.d/*.list 2>/dev/null | grep -v security |
		grep -o -m1 -E '[a-z]+://[^ ]*/debian/?( |$)' | tr -d ' ')}"
	[ -n "$mirror" ] || { log "no Debian mirror in /etc/apt/sources.list*; set WSAUDIT_MIRROR"; return 1; }
	if [ -d "$ROOT" ]; then
		unmounted "$ROOT" || { log "$ROOT has mounts under it"; return 1; }
		rm -rf --one-file-system -- "$ROOT"
	fi
	build "${mirror%/}" && add_packages "$@" || rc=1
	[ $rc -eq 0 ] && echo "$ROOT" || rm -rf --one-file-system -- "$PART"
	return $rc
}

main "$@"

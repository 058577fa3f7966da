#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernel matrix: boots Debian's own kernel packages under QEMU (KVM when /dev/kvm works,
# TCG with longer bounds otherwise) on the cached guest root of root.sh, with the work tree
# (the freshly built wsaudit and the test apps) shared over virtio-9p, and runs guest.sh in
# each: `wsaudit check-system`, a load of every program, the capture, attribution and rules
# tests.  Prints one line per kernel and writes the same table to $OUT/matrix.txt.
#
# Usage: matrix.sh [SUITE...]      (default: bookworm trixie sid bullseye)
#   bookworm  6.1, the Container-Optimized OS 109/113 line
#   trixie    6.12
#   sid       the newest Debian kernel
#   bullseye  5.10, below the minimum: must end with the clear error naming what is missing
#
# Kernels, their initramfs and the guest root are cached in $WSAUDIT_KERNELS (default
# /var/cache/wsaudit/kernels).  Consoles and results go to $OUT (default .output/kernels).
# Environment: STEPS=check-system,load,capture,... runs a subset in the guest; KVM=0 forces
# TCG; KERNEL_ARGS are added to the guest kernel's command line (e.g. preempt=full).
# Exit status: 0 when every kernel ends as expected, 1 otherwise, 2 on usage errors.
set -u -o pipefail
cd "$(dirname "$0")/../.." || exit 1

readonly CACHE="${WSAUDIT_KERNELS:-/var/cache/wsaudit/kernels}"
readonly OUT="${OUT:-.output/kernels}"
# A guest gets at most 2 vCPUs and 3 GiB: the machine is shared.
readonly VCPUS=2 MEM=3G
readonly T_APT=600

log() { printf 'kernels: %s\n' "$*" >&2; }

suite_expect() {
	case "$1" in
	bookworm | trixie | sid) echo pass ;;
	bullseye) echo refuse ;;
	*) return 1 ;;
	esac
}

apt_opts() {
	local d="$CACHE/apt-$1"

	echo -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
		-o Dir::State::Lists="$d/lists" -o Dir::State::status=/dev/null -o Dir::Cache="$d" \
		-o Dir::Cache::archives="$d/archives" -o Acquire::Languages=none \
		-o Acquire::Check-Valid-Until=false -o APT::Architectures=amd64
}

# Downloads and unpacks SUITE's kernel image package (the image and its modules) once, with
# a private apt configuration so the host's sources are untouched.  Prints the unpacked dir.
kernel_fetch() {
	local suite="$1" d mirror pkg pkgs p deb kdir

	d="$CACHE/apt-$suite"

	if [ -f "$CACHE/kernel-$suite/.done" ] && [ -L "$CACHE/kernel-$suite/lib/modules" ]; then
		echo "$CACHE/kernel-$suite"
		return 0
	fi
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
		/etc/apt/sources.list.d/*.list 2>/dev/null | grep -v security |
		grep -o -m1 -E '[a-z]+://[^ ]*/debian/?( |$)' | tr -d ' ')
	mirror="${WSAUDIT_MIRROR:-${mirror%/}}"
	mkdir -p "$d/lists/partial" "$d/archives/partial" || return 1
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
		>"$d/sources.list"
	# shellcheck disable=SC2046 # the options are words
	timeout "$T_APT" apt-get -q $(apt_opts "$suite") update >"$d/update.log" 2>&1 || {
		log "$suite: apt-get update failed; see $d/update.log"
		return 1
	}
	# The metapackage names the versioned image package (signed flavour on newer suites).
	# shellcheck disable=SC2046
	pkg=$(apt-cache $(apt_opts "$suite") depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
	[ -n "$pkg" ] || { log "$suite: no linux-image-amd64 in $mirror"; return 1; }
	# Newer suites split the image package: the kernel and its modules are its dependencies.
	# shellcheck disable=SC2046
	pkgs="$pkg $(apt-cache $(apt_opts "$suite") depends "$pkg" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-\(binary\|modules\)-[0-9][^ ]*\)$/\1/p' | tr '\n' ' ')"
	# shellcheck disable=SC2046,SC2086
	(cd "$d/archives" && timeout "$T_APT" apt-get -q $(apt_opts "$suite") download $pkgs) \
		>"$d/download.log" 2>&1 || {
		log "$suite: apt-get download $pkgs failed; see $d/download.log"
		return 1
	}
	kdir="$CACHE/kernel-$suite"
	rm -rf "$kdir" && mkdir -p "$kdir" || return 1
	for p in $pkgs; do
		deb=$(ls -t "$d/archives/${p}"_*.deb | head -n1)
		dpkg-deb -x "$deb" "$kdir" || return 1
	done
	# Merged /usr or not, one place for the modules.
	[ -d "$kdir/usr/lib/modules" ] || { mkdir -p "$kdir/usr/lib" && mv "$kdir/lib/modules" "$kdir/usr/lib/modules"; }
	# modules.dep is made at install time (depmod), not shipped; depmod -b reads BASE/lib/modules.
	mkdir -p "$kdir/lib" && ln -sfn ../usr/lib/modules "$kdir/lib/modules" || return 1
	depmod -b "$kdir" "$(ls "$kdir/usr/lib/modules" | head -n1)" || return 1
	echo "$pkgs" >"$kdir/.done"
	echo "$kdir"
}

# The modules that reach virtio-9p, with their dependencies, in load order, uncompressed.
initramfs_build() {
	local kdir="$1" ver="$2" out="$3" mdir="$1/usr/lib/modules/$2" tmp m f
	local want="virtio_pci 9pnet_virtio 9p"

	[ -s "$out" ] && [ "$out" -nt "$kdir/.done" ] && [ "$out" -nt tests/kernels/init.sh ] && return 0
	tmp=$(mktemp -d) || return 1
	mkdir -p "$tmp/bin" "$tmp/modules" "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/newroot"
	cp /bin/busybox "$tmp/bin/busybox" && cp tests/kernels/init.sh "$tmp/init" || return 1
	# Depth-first over modules.dep: a module's dependencies are loaded before it.
	python3 - "$mdir" $want >"$tmp/list" <<-'PY' || return 1
		import os, sys
		mdir, want = sys.argv[1], sys.argv[2:]
		deps = {}
		for line in open(os.path.join(mdir, "modules.dep")):
		    k, v = line.split(":", 1)
		    deps[os.path.basename(k).split(".ko")[0].replace("-", "_")] = (k, v.split())
		order = []
		def visit(path):
		    name = os.path.basename(path).split(".ko")[0].replace("-", "_")
		    for d in deps[name][1]:
		        visit(d)
		    if path not in order:
		        order.append(path)
		for w in want:
		    # Not a module: built in (sid ships no modules.builtin to check against; if it
		    # is missing, init.sh says which mount failed).
		    if w in deps:
		        visit(deps[w][0])
		print("\n".join(order))
	PY
	while read -r m; do
		f="$tmp/modules/$(basename "${m%.xz}")"
		f="${f%.zst}"
		case "$m" in
		*.xz) xz -dc "$mdir/$m" >"$f" ;;
		*.zst) zstd -qdc "$mdir/$m" >"$f" ;;
		*) cp "$mdir/$m" "$f" ;;
		esac || return 1
		basename "$f" >>"$tmp/modules.order"
	done <"$tmp/list"
	touch "$tmp/modules.order"
	(cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp" && mv "$out.tmp" "$out"
	rm -rf "$tmp"
}

# Boots one kernel; its console goes to $OUT/SUITE/console.log.  Bounded: the whole guest
# gets $T_GUEST seconds.
boot() {
	local suite="$1" kdir="$2" ver="$3" root="$4" res="$OUT/$1" accel cpu smp image

	rm -rf "$res" && mkdir -p "$res/results" || return 1
	if [ "${KVM:-1}" = 1 ] && [ -w /dev/kvm ]; then
		accel=kvm cpu=host smp=$VCPUS T_GUEST=${T_GUEST:-900}
	else
		# One vCPU: with two, TCG let a 6.12 guest run code the kernel was patching as the
		# syscall tracepoints were enabled ("Oops: int3" in syscall_trace_enter, a panic).
		accel=tcg cpu=max smp=1 T_GUEST=${T_GUEST:-2700}
	fi
	echo "$accel" >"$res/accel"
	# /boot/vmlinuz-VER up to trixie; the modules directory holds it from forky on.
	image="$kdir/boot/vmlinuz-$ver"
	[ -f "$image" ] || image="$kdir/usr/lib/modules/$ver/vmlinuz"
	timeout -k 10 "$T_GUEST" qemu-system-x86_64 -accel "$accel" -cpu "$cpu" \
		-smp "$smp" -m "$MEM" -nographic -no-reboot -nodefaults -serial stdio \
		-kernel "$image" -initrd "$CACHE/initrd-$suite.img" \
		-append "console=ttyS0 panic=-1 quiet loglevel=4 wsaudit.steps=${STEPS:-all} ${KERNEL_ARGS:-}" \
		-virtfs "local,path=$root,mount_tag=root,security_model=none,readonly=on" \
		-virtfs "local,path=$kdir/usr/lib/modules,mount_tag=modules,security_model=none,readonly=on" \
		-virtfs "local,path=$PWD,mount_tag=wsaudit,security_model=none,readonly=on" \
		-virtfs "local,path=$res/results,mount_tag=results,security_model=none" \
		</dev/null >"$res/console.log" 2>&1
	echo $? >"$res/qemu.rc"
}

main() {
	local suites=("$@") s root kdir ver start libpkgs rc=0

	[ ${#suites[@]} -gt 0 ] || suites=(bookworm trixie sid bullseye)
	for s in "${suites[@]}"; do
		suite_expect "$s" >/dev/null || { log "unknown suite $s"; return 2; }
	done
	[ "$(id -u)" -eq 0 ] || { log "needs root (debootstrap, 9p shares)"; return 1; }
	[ -x ./wsaudit ] || { log "./wsaudit is missing: run make first"; return 1; }
	command -v qemu-system-x86_64 >/dev/null || { log "qemu-system-x86_64 missing: make deps"; return 1; }
	mkdir -p "$OUT" "$CACHE" || return 1
	# The guest runs this very binary: its root needs the packages of the libraries it links.
	# (dpkg knows a merged-/usr file by one of its two names: ask for both.)
	libpkgs=$(ldd ./wsaudit | awk '$3 ~ /^\// { print $3 }' |
		while read -r l; do echo "$l"; realpath "$l"; done |
		xargs -r dpkg -S 2>/dev/null | cut -d: -f1 | sort -u)
	# shellcheck disable=SC2086 # one word per package
	root=$(tests/kernels/root.sh $libpkgs) || return 1
	for s in "${suites[@]}"; do
		start=$(date +%s)
		kdir=$(kernel_fetch "$s") || { rc=1; continue; }
		ver=$(ls "$kdir/usr/lib/modules" | head -n1)
		initramfs_build "$kdir" "$ver" "$CACHE/initrd-$s.img" || { log "$s: initramfs failed"; rc=1; continue; }
		log "$s: booting $ver (prepared in $(($(date +%s) - start)) s)"
		start=$(date +%s)
		boot "$s" "$kdir" "$ver" "$root"
		echo $(($(date +%s) - start)) >"$OUT/$s/seconds"
		tests/kernels/report.py "$OUT" "$s" "$(suite_expect "$s")" | tee -a "$OUT/matrix.txt" || rc=1
	done
	return $rc
}

main "$@"

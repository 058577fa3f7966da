#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Installs the Debian packages that the build and the tests need, when any is missing.
set -euo pipefail

PKGS=(
	# build
	make gcc clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev pkg-config
	libjansson-dev libyaml-dev libcyaml-dev libmicrohttpd-dev libsodium-dev uthash-dev
	# unit tests and fuzzing
	libcmocka-dev libclang-rt-14-dev
	# make format-check and make analyze
	clang-format cppcheck
	# integration tests: real Python servers and clients, the independent dissector
	python3 python3-pytest python3-pytest-asyncio python3-jsonschema python3-yaml
	python3-websockets python3-uvicorn python3-fastapi
	python3-uvloop python3-aiohttp python3-wsproto tshark iproute2 procps
	# causal attribution: servers that hand their sends over (tests/integration/test_causal.py)
	python3-socketio python3-engineio python3-daphne
	# metrics, other interpreters, benchmarks
	prometheus debootstrap linux-perf
	# the kernel matrix (make kernels): guests on Debian's kernels, their initramfs
	qemu-system-x86 busybox-static cpio kmod
)

# The schemas of the deploy/ check (tests/integration/deploy_check.py validates every kustomize
# render with node), from the npm registry, pinned by its package-lock.json.  kubectl (for
# `kubectl kustomize`) and node with npm come from outside Debian's main archive here.
schemas() {
	local dir
	dir="$(dirname "$0")/../tests/integration/k8s_schema"
	if [ ! -d "$dir/node_modules" ] && command -v npm >/dev/null; then
		npm ci --prefix "$dir" --no-audit --no-fund --silent
	fi
}

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	schemas
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "wsaudit: missing Debian packages: ${missing[*]}" >&2
	echo "run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
schemas

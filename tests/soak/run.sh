#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Agent soak (issue 6): builds wsaudit with ASan+UBSan from a copy of the tree (so ./wsaudit
# is left alone) and runs tests/soak/soak.py for MINUTES (default 10).  Needs root.
#
#   tests/soak/run.sh [MINUTES] [soak.py options...]
#
# SOAK_WSAUDIT=BIN skips the build and soaks BIN.  SOAK_WORK=DIR keeps the logs there.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MINUTES=${1:-10}
[ $# -gt 0 ] && shift

BUILD=
cleanup() {
	[ -n "$BUILD" ] && rm -rf "$BUILD"
	return 0
}
trap cleanup EXIT INT TERM

BIN=${SOAK_WSAUDIT:-}
if [ -z "$BIN" ]; then
	BUILD=$(mktemp -d /tmp/wsaudit-soak-build.XXXXXX)
	# The tree as it is (tracked and untracked files, not the build outputs).
	(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
		tar --null --ignore-failed-read --warning=no-failed-read -T - -cf -) | tar -xf - -C "$BUILD"
	# GCC's -Wnonnull sees a null memrchr argument through -O1 inlining that cannot
	# happen (user/podinfo.c, n > 0 there); the rest stays -Werror.
	echo "soak: building wsaudit with ASan+UBSan in $BUILD"
	make -C "$BUILD" -j2 O=.output-asan GIT_REV="$(cd "$ROOT" && git rev-parse --short HEAD)" \
		CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -Wno-error=nonnull" \
		wsaudit >"$BUILD/build.log" 2>&1 || {
		tail -30 "$BUILD/build.log"
		echo "soak: the ASan build failed"
		exit 1
	}
	BIN=$BUILD/wsaudit
fi

set -- --wsaudit "$BIN" --minutes "$MINUTES" "$@"
[ -n "${SOAK_WORK:-}" ] && set -- "$@" --work "$SOAK_WORK"
cd "$ROOT"
/usr/bin/python3 "$ROOT/tests/soak/soak.py" "$@"

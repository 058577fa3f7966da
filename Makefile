# SPDX-License-Identifier: GPL-2.0
#
# wsaudit build.  Everything generated goes under $(O) (default .output/).
#   make            build ./wsaudit (BPF objects, skeletons, collector)
#   make test       unit tests (cmocka, ASan+UBSan, unprivileged)
#   make fuzz       libFuzzer harnesses, long run (FUZZ_SECONDS per harness)
#   make check      everything CI runs: format-check, analyze, unit tests, bounded fuzzing,
#                   integration, 6.1 boot (root)
#   make format     clang-format every C source in place (format-check says what it would change)
#   make analyze    cppcheck over the collector, unit tests, fuzz harnesses and benchmarks
#   make demo       build, start the bundled demo service and its clients, trace it (root)
#   make deps       install the Debian packages the build and the tests need (root)
#   make vmlinux    regenerate include/vmlinux/$(ARCH)/vmlinux.h from the running kernel
#   make install    install wsaudit, wsaudit(8) and its bash completion under $(DESTDIR)$(PREFIX)
#   make man        wsaudit(8) and the bash completion from the --help texts, into $(O)
#   make bench      benchmarks into bench/REPORT.md (root; a few minutes)
#   make soak       the agent soak, SOAK_MINUTES=10 (root)
#   make kernels    the kernel matrix: Debian's 6.1, 6.12, newest and 5.10 under QEMU (root)
# V=1 shows the commands, O=DIR moves the build directory, WERROR=0 for packagers.

O ?= .output
V ?= 0
WERROR ?= 1
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin

CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
PYTHON ?= /usr/bin/python3
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_REV := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
	    -Wundef -Wwrite-strings -Wno-unused-parameter
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif

PKGS := libbpf libelf zlib jansson yaml-0.1 libmicrohttpd libsodium
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lbpf -lelf -lz -ljansson -lyaml -lmicrohttpd -lsodium)

CFLAGS ?= -O2 -g
USER_CFLAGS := -std=gnu11 $(WARNINGS) -MMD -MP -D_GNU_SOURCE -Iinclude -Iuser -I$(O) \
	       -DWSAUDIT_VERSION='"$(VERSION)"' -DWSAUDIT_GIT_REV='"$(GIT_REV)"' $(PKG_CFLAGS)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDLIBS := $(PKG_LIBS) -lpthread

# BPF: clang 14 understands -mcpu=v3 (kernels >= 5.1); the oldest supported kernel is 6.1
# (docs/kernels.md, proven by make kernels).
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	      -Wimplicit-fallthrough -MMD -MP -Iinclude -Iinclude/vmlinux/$(ARCH) -Ibpf
# The system include dirs of the host compiler, after ours, for <bpf/bpf_helpers.h>.
CLANG_BPF_SYS_INCLUDES := $(shell $(CLANG) -v -E - </dev/null 2>&1 \
	| sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(O)/bpf/%.bpf.o,$(BPF_SRCS))
# All hook families are linked into one object, so they share maps; one skeleton.
SKELS := $(O)/wsaudit.skel.h

USER_SRCS := $(wildcard user/*.c)
USER_OBJS := $(patsubst user/%.c,$(O)/user/%.o,$(USER_SRCS))
LIB_OBJS := $(filter-out $(O)/user/main.o,$(USER_OBJS))
SAN_LIB_OBJS := $(patsubst $(O)/user/%.o,$(O)/san/user/%.o,$(LIB_OBJS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRCS))

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(O)/fuzz/%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 600
FUZZ_CI_SECONDS ?= 60

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: all test fuzz fuzz-build fuzz-ci check test-integration demo deps install clean \
	vmlinux format format-check analyze bench bench-build soak kernels kernels-ci man

all: wsaudit

$(O) $(O)/bpf $(O)/user $(O)/san/user $(O)/tests $(O)/fuzz:
	$(Q)mkdir -p $@

# --- BPF ----------------------------------------------------------------------------------------

$(O)/bpf/%.bpf.o: bpf/%.bpf.c | $(O)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) $(CLANG_BPF_SYS_INCLUDES) -c $< -o $@

$(O)/wsaudit.bpf.o: $(BPF_OBJS)
	$(call msg,BPF-LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

$(O)/wsaudit.skel.h: $(O)/wsaudit.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name wsaudit > $@

# --- collector ----------------------------------------------------------------------------------

# The skeleton is generated before any collector object is compiled (order-only), but only the
# objects whose source includes it are rebuilt when it changes: a BPF edit no longer rebuilds the
# whole collector.  A header that starts including it is caught by the objects' .d files.
SKEL_USERS := $(patsubst user/%.c,%,$(shell grep -l 'wsaudit\.skel\.h' $(USER_SRCS)))
$(USER_OBJS): | $(SKELS)
$(patsubst %,$(O)/user/%.o,$(SKEL_USERS)): $(SKELS)

# The built-in default policy: policies/default.yaml as the byte values of a C array
# (user/policy.c includes it), so the file is the only copy.
$(O)/policy_default.inc: policies/default.yaml | $(O)
	$(call msg,GEN,$@)
	$(Q)od -An -v -tx1 $< | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1, /g' -e 's/ *$$//' > $@

$(O)/user/policy.o $(O)/san/user/policy.o: $(O)/policy_default.inc

$(O)/user/%.o: user/%.c | $(O)/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(USER_CFLAGS) -c $< -o $@

wsaudit: $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# --- unit tests (ASan + UBSan, unprivileged) --------------------------------------------------

$(SAN_LIB_OBJS): | $(SKELS)
$(patsubst %,$(O)/san/user/%.o,$(SKEL_USERS)): $(SKELS)

$(O)/san/user/%.o: user/%.c | $(O)/san/user
	$(call msg,CC-SAN,$@)
	$(Q)$(CC) -O1 -g $(SAN_FLAGS) $(USER_CFLAGS) -c $< -o $@

$(O)/san/libwsaudit.a: $(SAN_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(O)/tests/test_%: tests/unit/test_%.c $(O)/san/libwsaudit.a | $(O)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) -O1 -g $(SAN_FLAGS) $(USER_CFLAGS) -Itests/unit $< $(O)/san/libwsaudit.a \
		-lcmocka $(LDLIBS) -o $@

test: $(UNIT_BINS)
	$(Q)tests/run-unit.sh $(UNIT_BINS)

# --- fuzzing (clang libFuzzer + ASan + UBSan) ---------------------------------------------------

FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

$(O)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_OBJS) | $(O)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_FLAGS) -std=gnu11 -D_GNU_SOURCE -Iinclude -Iuser -I$(O) $(PKG_CFLAGS) \
		-DWSAUDIT_VERSION='"$(VERSION)"' -DWSAUDIT_GIT_REV='"$(GIT_REV)"' \
		$< $(filter-out $(O)/user/main.o,$(patsubst $(O)/user/%.o,user/%.c,$(LIB_OBJS))) \
		$(LDLIBS) -o $@

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	$(Q)tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

fuzz-ci: $(FUZZ_BINS)
	$(Q)tests/fuzz/run.sh $(FUZZ_CI_SECONDS) $(FUZZ_BINS)

# --- benchmarks: bench/bench_*.c link the collector's modules; bench/*.bpf.c get skeletons ---

BENCH_SRCS := $(wildcard bench/bench_*.c)
BENCH_BINS := $(patsubst bench/%.c,$(O)/bench/%,$(BENCH_SRCS))
BENCH_BPF_SRCS := $(wildcard bench/*.bpf.c)
BENCH_SKELS := $(patsubst bench/%.bpf.c,$(O)/bench/%.skel.h,$(BENCH_BPF_SRCS))

$(O)/bench:
	$(Q)mkdir -p $@

$(O)/bench/%.bpf.o: bench/%.bpf.c | $(O)/bench
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) $(CLANG_BPF_SYS_INCLUDES) -c $< -o $@.tmp.o
	$(Q)$(BPFTOOL) gen object $@ $@.tmp.o
	$(Q)rm -f $@.tmp.o

$(O)/bench/%.skel.h: $(O)/bench/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

$(O)/bench/bench_%: bench/bench_%.c $(LIB_OBJS) $(BENCH_SKELS) | $(O)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) -O2 -g $(USER_CFLAGS) -I$(O)/bench $< $(LIB_OBJS) $(LDLIBS) -o $@

bench-build: $(BENCH_BINS)

# --- integration, demo, benchmarks (root) -------------------------------------------------------

# The user-space reference walker, checked against live interpreters (tests/integration/pyattr).
$(O)/tests/pyattr/walk_check: tests/integration/pyattr/walk_check.c $(O)/san/libwsaudit.a
	$(call msg,CC-TEST,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -O1 -g $(SAN_FLAGS) $(USER_CFLAGS) $^ -lcmocka $(LDLIBS) -o $@

test-integration: wsaudit $(O)/tests/pyattr/walk_check
	$(Q)tests/pythons/provision.sh
	$(Q)$(PYTHON) tests/integration/pyattr/run.py --walk-check $(O)/tests/pyattr/walk_check
	$(Q)tests/integration/run.sh

check: deps
	$(Q)$(MAKE) --no-print-directory format-check
	$(Q)$(MAKE) --no-print-directory analyze
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory test
	$(Q)$(MAKE) --no-print-directory fuzz-ci
	$(Q)$(MAKE) --no-print-directory test-integration
	$(Q)$(MAKE) --no-print-directory kernels-ci

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/apps/demo.sh

# The agent soak (ASan build, stand-in services started and stopped for SOAK_MINUTES): longer
# than CI's budget allows, so it is a target of its own.
SOAK_MINUTES ?= 10

soak:
	$(Q)tests/soak/run.sh $(SOAK_MINUTES)

# The kernel matrix (tests/kernels): each Debian kernel boots under QEMU on a cached guest root
# and runs check-system, the load and the capture, attribution and rules tests against the
# freshly built wsaudit.  KERNELS picks suites (bookworm trixie sid bullseye).
KERNELS ?=

kernels: wsaudit
	$(Q)tests/kernels/matrix.sh $(KERNELS)

# CI's share of the matrix: the 6.1 boot (the COS 109/113 line), every step.  Without KVM the
# guest runs under emulation, whose clock can jump past a step's deadline: a failed boot is
# printed whole and booted once more, and the second result is the verdict.
kernels-ci: wsaudit
	$(Q)tests/kernels/matrix.sh bookworm || { \
		echo "kernels-ci: the 6.1 boot failed (above); booting it once more" >&2; \
		tests/kernels/matrix.sh bookworm; }

bench: wsaudit $(BENCH_BINS)
	$(Q)bench/run.sh

deps:
	$(Q)scripts/deps.sh

# --- housekeeping -------------------------------------------------------------------------------

vmlinux:
	$(Q)mkdir -p include/vmlinux/$(ARCH)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > include/vmlinux/$(ARCH)/vmlinux.h

FORMAT_SRCS = $(wildcard bpf/*.c bpf/*.h bpf/lib/*.h include/wsaudit/*.h user/*.c user/*.h \
	tests/unit/*.c tests/unit/*.h tests/fuzz/*.c bench/*.c)

format:
	$(Q)clang-format -i $(FORMAT_SRCS)

format-check:
	$(call msg,FORMAT,checking $(words $(FORMAT_SRCS)) files)
	$(Q)clang-format --dry-run --Werror $(FORMAT_SRCS) || { \
		echo "format-check: run 'make format' (docs/contributing.md)" >&2; exit 1; }

# Static analysis of the collector, the unit tests, the fuzz harnesses and the benchmarks (the
# BPF programs are checked by clang and the verifier instead).  No system header is read, which
# keeps it to seconds; scripts/cppcheck.cfg tells it the few macros that matters for.
# varFuncNullUB is off: it warns of NULL as the sentinel of a variadic call, which is only wrong
# where NULL is a plain 0, and glibc defines it as ((void *)0).  Other findings are fixed, or
# suppressed on their line with the reason beside them.
CPPCHECK ?= cppcheck
CPPCHECK_FLAGS := -q --std=c11 --enable=warning,portability,performance --error-exitcode=1 \
	--inline-suppr --suppress=varFuncNullUB --library=scripts/cppcheck.cfg -j2 \
	-D_GNU_SOURCE -Iinclude -Iuser -Itests/unit -I$(O)

analyze: $(O)/policy_default.inc
	$(call msg,CPPCHECK,user tests/unit tests/fuzz bench)
	$(Q)$(CPPCHECK) $(CPPCHECK_FLAGS) user tests/unit tests/fuzz $(wildcard bench/bench_*.c)

# wsaudit(8) and the bash completion, from the binary's --help texts (scripts/mkdocs.py).
MAN := $(O)/wsaudit.8
COMPLETION := $(O)/wsaudit.bash

man: $(MAN) $(COMPLETION)

$(MAN): wsaudit scripts/mkdocs.py
	$(call msg,MAN,$@)
	$(Q)$(PYTHON) scripts/mkdocs.py ./wsaudit man >$@.tmp && mv $@.tmp $@

$(COMPLETION): wsaudit scripts/mkdocs.py
	$(call msg,GEN,$@)
	$(Q)$(PYTHON) scripts/mkdocs.py ./wsaudit completion >$@.tmp && mv $@.tmp $@

install: wsaudit $(MAN) $(COMPLETION)
	$(Q)install -D -m 0755 wsaudit $(DESTDIR)$(BINDIR)/wsaudit
	$(Q)install -D -m 0644 $(MAN) $(DESTDIR)$(PREFIX)/share/man/man8/wsaudit.8
	$(Q)install -D -m 0644 $(COMPLETION) \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/wsaudit

clean:
	$(Q)rm -rf $(O) wsaudit

-include $(wildcard $(O)/bpf/*.d $(O)/user/*.d $(O)/san/user/*.d $(O)/tests/*.d $(O)/bench/*.d)

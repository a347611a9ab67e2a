# SPDX-License-Identifier: BSD-2-Clause
# A thin entry point over Meson.  `make`, `make test`, `make install PREFIX=DIR`.
BUILD ?= build
PREFIX ?= /usr/local

.PHONY: all deps setup test test-kernel test-asan test-tsan install clean demo bench fuzz soak

all: setup
	ninja -C $(BUILD)

deps:
	@./scripts/deps.sh

setup: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) --prefix=$(abspath $(PREFIX)) --libdir=lib

test: all
	python3 tests/run.py $(BUILD)

# Linux's kernel TLS in a Debian guest kernel under qemu (tests/kernel/).
test-kernel: all
	python3 tests/run.py $(BUILD) kernel

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer, and
# under ThreadSanitizer: builds of their own (build-asan/, build-tsan/).
test-asan: deps
	@[ -f build-asan/build.ninja ] || meson setup build-asan \
		-Db_sanitize=address,undefined -Db_lundef=false
	ninja -C build-asan
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		python3 tests/run.py build-asan

test-tsan: deps
	@[ -f build-tsan/build.ninja ] || meson setup build-tsan \
		-Db_sanitize=thread -Db_lundef=false
	ninja -C build-tsan
	KTLS_GUARD=0 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:die_after_fork=0:suppressions=$(CURDIR)/tests/tsan.supp \
		python3 tests/run.py build-tsan "$(TSAN_LEAVE_OUT)" "$(TSAN_LEAVE_OUT_GUARD)"

# Under TSan the interposer's wrappers of epoll_wait, poll, read... run
# inside TSan's own interceptors of those calls (its runtime comes first in
# LD_PRELOAD), where TSan does not record the locks ktls takes: in nginx it
# then reports ktls's mutex-guarded autocork list as unguarded.  The nginx
# interop and soak tests (nginx both) are left out of test-tsan for that
# reason (they run in test-asan and test).
TSAN_LEAVE_OUT = -nginx,soak=TSan does not see locks taken inside its interceptors
# TSan's signal wrapper makes raw rt_sigprocmask calls, which the guard
# (invariant 7) traps from inside its own SIGSYS handler: the process is
# killed.  So test-tsan runs with KTLS_GUARD=0, without the guard's own
# test and the kernel tests (whose guest gets no KTLS_GUARD); both run in
# test and test-asan.
TSAN_LEAVE_OUT_GUARD = -guard,kernel=TSan traps in the guard's SIGSYS handler (KTLS_GUARD=0 here)

install: setup
	meson configure $(BUILD) --prefix=$(abspath $(PREFIX)) --libdir=lib
	ninja -C $(BUILD)
	meson install -C $(BUILD) --quiet

demo: all
	./scripts/demo.sh $(BUILD)

# Not a test: timings on this machine (bench/run.py; about 3 minutes).
# Debian's python3, for python3-matplotlib (the chart).
bench: all
	/usr/bin/python3 bench/run.py $(BUILD)

# libFuzzer targets (tests/fuzz/), one after the other, FUZZ_TIME seconds
# each, in their own clang build (build-fuzz/); crash inputs are kept under
# build-fuzz/fuzz-run/<target>/artifacts/.
FUZZ_TIME ?= 60
FUZZ_BUILD ?= build-fuzz
fuzz: deps
	python3 tests/fuzz/run_fuzz.py --time $(FUZZ_TIME) --build-dir $(FUZZ_BUILD)

# Soak (tests/soak/): nginx under ktls-run, CLIENTS concurrent TLS clients
# downloading 1 KiB to 64 MiB with random aborts for DURATION seconds;
# checks byte-exact downloads, stable RSS, sessions freed, a clean
# error.log.  `make test` runs it for 20 s.
DURATION ?= 300
CLIENTS ?= 1000
soak: all
	python3 tests/soak/soak.py --duration $(DURATION) --clients $(CLIENTS) $(BUILD)

clean:
	rm -rf $(BUILD)

# SPDX-License-Identifier: BSD-2-Clause
# A thin entry point over Meson.  `make`, `make test`, `make install PREFIX=DIR`.
BUILD ?= build
PREFIX ?= /usr/local

.PHONY: all deps setup test test-kernel install clean demo bench

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

clean:
	rm -rf $(BUILD)

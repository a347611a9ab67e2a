# SPDX-License-Identifier: BSD-2-Clause
# A thin entry point over Meson.  `make`, `make test`, `make install PREFIX=DIR`.
BUILD ?= build
PREFIX ?= /usr/local

.PHONY: all deps setup test install clean demo

all: setup
	ninja -C $(BUILD)

deps:
	@./scripts/deps.sh

setup: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) --prefix=$(abspath $(PREFIX)) --libdir=lib

test: all
	python3 tests/run.py $(BUILD)

install: setup
	meson configure $(BUILD) --prefix=$(abspath $(PREFIX)) --libdir=lib
	ninja -C $(BUILD)
	meson install -C $(BUILD) --quiet

demo: all
	./scripts/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)

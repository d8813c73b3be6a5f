# Daily commands. `make test` and `make run-pose` each set up and build first, so either works on a fresh clone.
PRESET ?= release
BUILD  := build/$(PRESET)
SOURCES = $(shell git ls-files '*.cpp' '*.h' 2>/dev/null)
# clang-tidy 14 cannot parse LibTorch 1.13's headers against libstdc++ 12 (c10::IValue comes out incomplete), so
# translation units that include them are left to the compiler's -Wall -Wextra -Werror.
TIDY_SOURCES = $(shell git ls-files '*.cpp' | xargs grep -L -E '\#include <(ATen|torch|c10)/|pose/graph/|pose/engine/(frame|estimators)\.h|vram/zoo/zoo\.h|vram/profile/(runner|checkpoint|planned|weight_stream|host_stash)\.h' 2>/dev/null)

.PHONY: all setup build test test-asan validate run-pose run-vram bench format format-check lint coverage clean

all: build

setup:
	@scripts/setup

build: setup
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET)

# Every test this machine can run: unit, integration and slow; gpu tests skip cleanly without a GPU.
test: build
	@ctest --preset $(PRESET)

test-asan: setup
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan
	@ctest --preset asan

# Checks the environment and writes var/machine-profile.toml, which both tools read.
validate: build
	@$(BUILD)/apps/doctor

# The main job: check the machine (doctor writes the profile both tools read), then run the pose service with its
# SQLite store in var/pose and the dashboard at http://$(HOST):$(PORT). File streams may come from MEDIA (comma-
# separated folders; the shared test videos when they are beside this clone). Ctrl-C stops it; running streams
# start again with it.
HOST  ?= 127.0.0.1
PORT  ?= 8400
comma := ,
MEDIA ?= $(CURDIR)/var/media$(if $(wildcard ../shared/testdata/videos),$(comma)$(abspath ../shared/testdata/videos))
run-pose: build
	@$(BUILD)/apps/doctor
	@echo "pose service: open http://$(HOST):$(PORT) (file sources from $(MEDIA)); Ctrl-C stops it"
	@$(BUILD)/apps/pose serve --host $(HOST) --port $(PORT) --media-dir "$(MEDIA)"

run-vram: build
	@$(BUILD)/apps/doctor
	@$(BUILD)/apps/vram serve

bench: build
	@cmake --build --preset $(PRESET) --target benchmarks
	@scripts/bench $(BUILD)

format:
	@clang-format -i $(SOURCES)

format-check:
	@clang-format --dry-run -Werror $(SOURCES)

# clang-tidy gets the compile commands without the precompiled headers: it cannot read GCC's.
lint: build
	@mkdir -p $(BUILD)/tidy
	@sed -E 's# -Winvalid-pch##g; s# -include [^ ]*cmake_pch\.hxx##g' $(BUILD)/compile_commands.json \
	  > $(BUILD)/tidy/compile_commands.json
	@clang-tidy -p $(BUILD)/tidy --quiet --extra-arg=-Wno-unknown-warning-option $(TIDY_SOURCES)

coverage: setup
	@cmake --preset coverage >/dev/null
	@cmake --build --preset coverage
	@find build/coverage -name '*.gcda' -delete
	@ctest --preset coverage >/dev/null
	@gcovr --root . --filter 'src/' --exclude '.*_test\.cpp' --exclude 'src/core/sys/fake_nvml.cpp' \
	       --object-directory build/coverage --print-summary --txt build/coverage/coverage.txt \
	       --html-details build/coverage/coverage.html | tail -3
	@echo "per-file report: build/coverage/coverage.txt, build/coverage/coverage.html"

clean:
	@rm -rf build

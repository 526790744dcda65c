# storstack: the two README commands are `make run` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps test-deps run test test-asan test-tsan fuzz bench clean format format-check

all: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

# Build, then start `storstack serve` with its built-in default (a 1 GiB sparse RAM disk).
run: all
	$(BUILD)/storstack serve $(ARGS)

# Unit and integration tests under CTest, with warnings as errors.
test: test-deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSS_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# The same tests under AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: test-deps
	@cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DSS_WERROR=ON -DSS_SANITIZE=address,undefined >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# The concurrent paths under ThreadSanitizer.
test-tsan: test-deps
	@cmake -S . -B $(BUILD)-tsan -DCMAKE_BUILD_TYPE=Debug -DSS_WERROR=ON -DSS_SANITIZE=thread >/dev/null
	@cmake --build $(BUILD)-tsan -j $(JOBS)
	cd $(BUILD)-tsan && ctest --output-on-failure -j $(JOBS) -L concurrent $(CTEST_ARGS)

# libFuzzer targets (clang): the seed runs under CTest, then each fuzzer for FUZZ_SECONDS.
FUZZ_SECONDS ?= 30
fuzz: test-deps
	@CC=clang cmake -S . -B $(BUILD)-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSS_FUZZ=ON >/dev/null
	@cmake --build $(BUILD)-fuzz -j $(JOBS) --target fuzz_cdb fuzz_wire fuzz_config fuzz_passthrough fuzz_iscsi fuzz_cue fuzz_iscsi_conn
	cd $(BUILD)-fuzz && ctest --output-on-failure -R '^fuzz_'
	@for f in $(BUILD)-fuzz/tests/fuzz/fuzz_*; do \
	    [ -x "$$f" ] || continue; \
	    name=$$(basename $$f); mkdir -p $(BUILD)-fuzz/corpus/$$name; \
	    echo "fuzz: $$name for $(FUZZ_SECONDS) s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)-fuzz/corpus/$$name \
	        tests/fuzz/corpus/$${name#fuzz_} >$(BUILD)-fuzz/$$name.log 2>&1 \
	        || { tail -40 $(BUILD)-fuzz/$$name.log; exit 1; }; \
	    grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' $(BUILD)-fuzz/$$name.log; \
	done

bench: all
	@scripts/install-deps.sh bench
	bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-fuzz

# Thin wrapper over CMake for the common tasks.
# `make` / `make build` only compile; `make run`, `make test` and `make deps`
# also install missing Debian packages (scripts/install-deps).
# CMAKE_ARGS=-DJWTKIT_WERROR=ON turns warnings into errors (CI does).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

# nginx-module: build/nginx/ngx_http_jwtkit_module.so (docs/nginx.md)
.PHONY: all deps build nginx-module test test-asan test-tsan fuzz bench run clean install deb

all: build

deps:
	@scripts/install-deps --if-missing

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

nginx-module: build
	cmake --build $(BUILD) --target nginx_module

test: deps
	@$(MAKE) --no-print-directory build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The whole suite again under AddressSanitizer (with LeakSanitizer) and UBSan.
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DJWTKIT_SANITIZE=ON -DJWTKIT_BENCH=OFF $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# The concurrency tests under ThreadSanitizer: the shared verifier and
# signer, and token keys signing from many threads (when built with p11-kit).
test-tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DJWTKIT_TSAN=ON -DJWTKIT_BENCH=OFF -DJWTKIT_CLI=OFF $(CMAKE_ARGS)
	cmake --build build-tsan -j $(JOBS) --target tsan_tests
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -R '^(test_threads|test_pkcs11)$$'

# Every libFuzzer harness for FUZZ_SECONDS each (docs/reliability.md).
FUZZ_SECONDS ?= 60
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)

bench: build
	$(BUILD)/bench/jwtkit-bench

run: deps
	@$(MAKE) --no-print-directory build
	$(BUILD)/cli/jwtkit serve --demo

install: build
	cmake --install $(BUILD)

# Debian packages, built from a copy of the tree (docs/install.md).
DEB_OUT ?= $(BUILD)/deb
deb: deps
	JOBS=$(JOBS) scripts/build-deb $(DEB_OUT)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-*

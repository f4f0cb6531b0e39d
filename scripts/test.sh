#!/usr/bin/env bash
# Builds Gatehouse twice (warnings as errors; AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs the whole test suite: unit tests on
# both builds, integration tests against the sanitized daemon with real
# peers (coturn's turnutils, aiortc), then every libFuzzer target for a
# bounded time (GH_FUZZ_SECONDS per target, default 30; 0 skips it).
# Installs what is missing first. Exits non-zero on any failure or fuzzer
# finding; ctest and tests/fuzz/run.sh print the summaries.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
gh_install_deps test
gh_install_npm
jobs=$(nproc)

echo "== build (-Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGH_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

echo "== build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGH_WERROR=ON -DGH_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

echo "== unit tests (-Werror build)"
ctest --test-dir build -L 'unit|fuzz-replay' --output-on-failure -j"$jobs"

echo "== all tests (sanitized build: unit + integration)"
ctest --test-dir build-asan --output-on-failure -j"$jobs"

fuzz_s=${GH_FUZZ_SECONDS:-30}
if [ "$fuzz_s" -gt 0 ]; then
	echo "== fuzzing (clang + libFuzzer, ASan + UBSan, ${fuzz_s} s per target)"
	FUZZ_JOBS="$jobs" bash tests/fuzz/run.sh "$fuzz_s"
fi

#!/usr/bin/env bash
# Builds the libFuzzer targets with Clang and runs each for a bounded time.
#
#   tests/fuzz/run.sh [DURATION_S] [TARGET...]
#
# DURATION_S (default 20) is per target; TARGETs default to all of them
# (stun turn_server hub sdp jwt policy config message dtls_peek).
# Environment:
#   GH_FUZZ_BUILD  build folder (default build-fuzz/ in the repo; the
#                  whole build is instrumented there, see CMakeLists.txt)
#   FUZZ_JOBS      targets run at once (default 1; each uses one core)
#
# Each target starts from its seed corpus tests/fuzz/corpus/<name> (and
# regressions/<name>), which it only reads: new inputs go to a scratch
# corpus in the build folder (kept between runs, so runs build on each
# other). A crash, leak, timeout or out-of-memory is saved under
# tests/fuzz/regressions/<name>/ for review (replay_<name> then replays
# it in the normal test run) and makes the script exit 1. It prints the
# executions and coverage of every target. Bounded: every fuzzer is killed
# DURATION_S + 120 s after it started, whatever it is doing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
all=(stun turn_server hub sdp jwt policy config message dtls_peek)

dur=${1:-20}
if ! [[ "$dur" =~ ^[0-9]+$ ]] || [ "$dur" -lt 1 ]; then
	echo "usage: $0 [DURATION_S] [TARGET...]" >&2
	exit 2
fi
if [ $# -gt 0 ]; then shift; fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
for t in "${targets[@]}"; do
	[[ " ${all[*]} " == *" $t "* ]] || { echo "run.sh: unknown target $t" >&2; exit 2; }
done

build=${GH_FUZZ_BUILD:-$repo/build-fuzz}
jobs=${FUZZ_JOBS:-1}
work=$build/fuzz-work

if ! command -v clang >/dev/null 2>&1; then
	echo "run.sh: clang is needed (Debian: apt-get install clang)" >&2
	exit 2
fi
if ! grep -Eq '^[[:space:]]*add_subdirectory\(tests/fuzz\)' "$repo/CMakeLists.txt"; then
	echo "run.sh: add 'add_subdirectory(tests/fuzz)' to $repo/CMakeLists.txt first" >&2
	exit 2
fi

echo "== configure and build ($build)"
mkdir -p "$build"
CC=clang cmake -S "$repo" -B "$build" -DGH_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	>"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 2; }
bins=()
for t in "${targets[@]}"; do bins+=(--target "fuzz_$t"); done
cmake --build "$build" -j"$(nproc)" "${bins[@]}" >"$build/build.log" 2>&1 ||
	{ tail -50 "$build/build.log" >&2; exit 2; }

# Per target: the longest input worth trying, and a dictionary.
max_len_of() {
	case $1 in
	stun|turn_server) echo 4200 ;;
	dtls_peek) echo 2048 ;;
	sdp) echo 16384 ;;
	hub) echo 4096 ;;
	jwt) echo 4096 ;;
	*) echo 8192 ;;
	esac
}
dict_of() {
	case $1 in
	stun|turn_server) echo "$here/dict/stun.dict" ;;
	sdp) echo "$here/dict/sdp.dict" ;;
	dtls_peek) echo "$here/dict/dtls.dict" ;;
	*) echo "$here/dict/json.dict" ;;
	esac
}

run_one() {
	local t=$1 dir=$work/$1 bin=$build/tests/fuzz/fuzz_$1 rc=0
	local seeds=("$here/corpus/$t")
	mkdir -p "$dir/corpus" "$dir/artifacts"
	rm -f "$dir"/artifacts/*
	[ -d "$here/regressions/$t" ] && seeds+=("$here/regressions/$t")
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	timeout -k 10 $((dur + 120)) "$bin" \
		-max_total_time="$dur" -timeout=10 -rss_limit_mb=2048 \
		-max_len="$(max_len_of "$t")" -dict="$(dict_of "$t")" \
		-print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
		"$dir/corpus" "${seeds[@]}" >"$dir/fuzz.log" 2>&1 || rc=$?
	echo "$rc" >"$dir/rc"
}

echo "== fuzzing ${#targets[@]} target(s), ${dur} s each, $jobs at a time"
running=0
for t in "${targets[@]}"; do
	run_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n || true
		running=$((running - 1))
	fi
done
wait || true

status=0
printf '%-12s %12s %9s %7s %7s %7s  %s\n' target execs exec/s cov ft corpus result
for t in "${targets[@]}"; do
	dir=$work/$t
	log=$dir/fuzz.log
	rc=$(cat "$dir/rc" 2>/dev/null || echo 99)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	# The last status line: "#N <event> cov: C ft: F corp: K/..."
	last=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -1 || true)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
	found=$(find "$dir/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' \
		-o -name 'timeout-*' -o -name 'oom-*' \) 2>/dev/null | sort)
	result=ok
	if [ -n "$found" ]; then
		result="FOUND $(wc -l <<<"$found")"
		mkdir -p "$here/regressions/$t"
		while read -r f; do
			cp "$f" "$here/regressions/$t/"
		done <<<"$found"
		status=1
	elif [ "$rc" != 0 ]; then
		result="exit $rc"
		status=1
	fi
	printf '%-12s %12s %9s %7s %7s %7s  %s\n' "$t" "${execs:-?}" "${speed:-?}" \
		"${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
done

for t in "${targets[@]}"; do
	dir=$work/$t
	if find "$dir/artifacts" -type f ! -name 'slow-unit-*' 2>/dev/null | grep -q .; then
		echo
		echo "== $t: saved in tests/fuzz/regressions/$t/; log $dir/fuzz.log"
		grep -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|invariant failed|SUMMARY' \
			"$dir/fuzz.log" | head -5 || true
		grep -E '^ +#[0-9]+ ' "$dir/fuzz.log" | head -12 || true
	elif [ "$(cat "$dir/rc" 2>/dev/null || echo 99)" != 0 ]; then
		echo
		echo "== $t: fuzzer exited $(cat "$dir/rc" 2>/dev/null); log $dir/fuzz.log"
		tail -5 "$dir/fuzz.log"
	fi
done
exit $status

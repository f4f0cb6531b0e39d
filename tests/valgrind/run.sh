#!/usr/bin/env bash
# Runs end-to-end tests with the daemon under valgrind memcheck.
#
#   tests/valgrind/run.sh [TEST...]
#
# TEST is a name in tests/integration (test_signaling, or just signaling)
# or the path of any test file that uses gh.Gatehouse (such as
# tests/security/test_attacks.py); the default is every
# tests/integration/test_*.py. Environment:
#   GH_VALGRIND_BUILD    build folder (default build-valgrind/ in the repo)
#   GH_VALGRIND_OUT      where logs go (default <build>/valgrind-runs/<time>)
#   GH_VALGRIND_TIMEOUT  seconds per test file (default 2400)
#   GH_SLOW_FACTOR       timeout multiplier for the tests (default 10 under
#                        valgrind, see gh.slow_factor())
#   GH_WINDOW_WAIT_S     how long a test waits for a relay port window when
#                        all are held, e.g. by a benchmark (default 1200)
#   GH_TESTS             as for any integration test: a subset of functions
#   GH_SKIP              test functions left out (comma-separated substrings;
#                        default test_policy_reload_stress, which fails
#                        under valgrind for timing, see README.md; set it
#                        empty to run everything)
#
# It builds a plain Debug build (no sanitizer: valgrind and ASan do not
# mix) and runs the test files one at a time (valgrind is slow; one core
# each) with GH_VALGRIND set, so that tests/integration/gh.py starts every
# daemon under memcheck with one log per daemon, <out>/<test>/vg-<pid>.log.
# A test file fails when it fails by itself (gh.py already fails a test
# whose daemon valgrind reported), when it runs out of time, or when any
# of its logs reports an error, a definite leak, or no exit at all. Per
# test it prints the result, the time, the number of daemons, valgrind's
# errors and the bytes definitely and indirectly lost; then the records of
# every failing log. Exits 0 when every test passed, 1 otherwise, 2 on a
# usage or build error.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${GH_VALGRIND_BUILD:-$repo/build-valgrind}
limit=${GH_VALGRIND_TIMEOUT:-2400}
py=/usr/bin/python3
export GH_WINDOW_WAIT_S=${GH_WINDOW_WAIT_S:-1200}
export GH_SKIP=${GH_SKIP-test_policy_reload_stress}

if ! command -v valgrind >/dev/null 2>&1; then
	echo "run.sh: valgrind is needed (Debian: apt-get install valgrind)" >&2
	exit 2
fi
if ! [[ "$limit" =~ ^[0-9]+$ ]] || [ "$limit" -lt 1 ]; then
	echo "run.sh: GH_VALGRIND_TIMEOUT must be a number of seconds" >&2
	exit 2
fi

tests=()
if [ $# -eq 0 ]; then
	for f in "$repo"/tests/integration/test_*.py; do tests+=("$f"); done
else
	for a in "$@"; do
		if [ -f "$a" ]; then
			tests+=("$(cd "$(dirname "$a")" && pwd)/$(basename "$a")")
			continue
		fi
		n=${a%.py}
		n=${n#test_}
		f=$repo/tests/integration/test_$n.py
		[ -f "$f" ] || { echo "run.sh: no test $a ($f)" >&2; exit 2; }
		tests+=("$f")
	done
fi

out=${GH_VALGRIND_OUT:-$build/valgrind-runs/$(date +%Y%m%d-%H%M%S)}

echo "== configure and build ($build, Debug, no sanitizer)"
mkdir -p "$build"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DGH_WERROR=ON \
	>"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 2; }
cmake --build "$build" -j"$(nproc)" --target gatehouse >"$build/build.log" 2>&1 ||
	{ tail -50 "$build/build.log" >&2; exit 2; }

mkdir -p "$out"
echo "== ${#tests[@]} test file(s), one at a time, at most ${limit} s each; logs in $out"
[ -z "$GH_SKIP" ] || echo "== leaving out test functions matching GH_SKIP=$GH_SKIP"

# Prints "<daemons> <errors> <definitely> <indirectly> <bad logs>" for a
# folder of vg-*.log (gh.valgrind_findings() reads each), and writes the
# records of the bad ones to <folder>/findings.txt.
summarize() {
	"$py" - "$1" "$repo/tests/integration" <<'EOF'
import glob, os, sys
sys.path.insert(0, sys.argv[2])
import gh
folder = sys.argv[1]
n = errors = definite = indirect = 0
bad = []
for p in sorted(glob.glob(os.path.join(folder, "vg-*.log"))):
    with open(p, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    ok, s, excerpt = gh.valgrind_findings(text)
    n += 1
    errors += s["errors"] or 0
    definite += s["definitely_lost"] or 0
    indirect += s["indirectly_lost"] or 0
    if not ok:
        bad.append("-- %s\n%s" % (p, excerpt))
with open(os.path.join(folder, "findings.txt"), "w") as f:
    f.write("\n\n".join(bad) + ("\n" if bad else ""))
print(n, errors, definite, indirect, len(bad))
EOF
}

status=0
results=()
for f in "${tests[@]}"; do
	name=$(basename "$f" .py)
	dir=$out/$name
	mkdir -p "$dir"
	echo "-- $name"
	t0=$(date +%s)
	rc=0
	# -k: a test that ignores SIGTERM is killed 30 s later; its daemons
	# are in sessions of their own and die with their valgrind logs
	# incomplete, which the summary then reports.
	GH_VALGRIND=$dir timeout -k 30 "$limit" "$py" "$f" --gatehouse "$build/gatehouse" \
		>"$dir/test.out" 2>&1 || rc=$?
	took=$(( $(date +%s) - t0 ))
	read -r daemons errors definite indirect badlogs < <(summarize "$dir")
	result=PASS
	why=""
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		result=FAIL; why="timed out after ${limit} s"
	elif [ "$rc" != 0 ]; then
		result=FAIL; why="test exit $rc"
	fi
	if [ "$badlogs" != 0 ]; then
		result=FAIL; why="${why:+$why; }$badlogs valgrind log(s) with findings"
	fi
	if [ "$daemons" = 0 ] && [ "$result" = PASS ]; then
		why="no daemon ran under valgrind"
	fi
	[ "$result" = PASS ] || status=1
	line=$(printf '%-4s %-22s %5ss  daemons %3s  errors %3s  definitely lost %6s B  indirectly lost %6s B  %s' \
		"$result" "$name" "$took" "$daemons" "$errors" "$definite" "$indirect" "$why")
	echo "$line"
	results+=("$line")
	if [ "$result" != PASS ]; then
		grep -E '^(FAIL|[0-9]+ passed)' "$dir/test.out" | head -20 || true
	fi
done

echo
echo "== summary (logs in $out)"
printf '%s\n' "${results[@]}"
for f in "${tests[@]}"; do
	dir=$out/$(basename "$f" .py)
	if [ -s "$dir/findings.txt" ]; then
		echo
		echo "== $(basename "$f" .py): valgrind findings ($dir/findings.txt)"
		head -120 "$dir/findings.txt"
	fi
done
exit $status

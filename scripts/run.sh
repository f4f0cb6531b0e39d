#!/usr/bin/env bash
# Builds Gatehouse (installing what is missing) and runs it on its
# embedded loopback defaults, with state in ./gatehouse-data. Extra
# arguments go to `gatehouse run` (e.g. -c gatehouse.json).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
gh_install_deps build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target gatehouse
# Started as root the daemon serves as an unprivileged user (nobody, or
# gatehouse when it exists), which must be able to reach ./gatehouse-data.
# A checkout under a private home folder (/root) is not reachable: then the
# demo runs as root, on loopback only, and says so.
if [ $# -eq 0 ] && [ "$(id -u)" -eq 0 ] &&
	! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$PWD" 2>/dev/null; then
	echo "run.sh: $PWD is not reachable by an unprivileged user; the demo runs as root" \
	    "(loopback only). Move the checkout (e.g. to /opt) to run it unprivileged." >&2
	printf '{"run_as": "root"}\n' > gatehouse-demo.json
	exec ./build/gatehouse run -c gatehouse-demo.json
fi
exec ./build/gatehouse run "$@"

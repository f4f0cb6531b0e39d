#!/usr/bin/env bash
# Builds Gatehouse (installing what is missing) and runs it on its
# embedded loopback defaults, with state in ./gatehouse-data.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
gh_install_deps build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target gatehouse
exec ./build/gatehouse run "$@"

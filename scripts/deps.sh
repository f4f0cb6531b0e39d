#!/usr/bin/env bash
# Installs the Debian 12 packages Gatehouse needs, only those missing, so
# running it again changes nothing. Sourced by run.sh and test.sh.
#   gh_install_deps build    — to build and run the daemon
#   gh_install_deps test     — also the real peers the tests drive, and
#                              Clang with libFuzzer for the bounded fuzzing
set -euo pipefail

GH_BUILD_PKGS=(gcc make cmake pkg-config libjansson-dev libssl-dev libwebsockets-dev
	libsqlite3-dev libargon2-dev)
GH_TEST_PKGS=(coturn python3 python3-aiortc python3-aioice python3-aiohttp openssl iproute2
	chromium nodejs prometheus rsyslog rsyslog-gnutls clang libclang-rt-14-dev)

gh_install_deps() {
	local want=("${GH_BUILD_PKGS[@]}") missing=() p
	if [ "${1:-build}" = test ]; then
		want+=("${GH_TEST_PKGS[@]}")
	fi
	for p in "${want[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}"
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# npm comes with some nodejs builds and separately with Debian's.
gh_install_npm() {
	command -v npm >/dev/null 2>&1 && return 0
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends npm
}

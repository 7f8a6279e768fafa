#!/usr/bin/env bash
# Installs every Debian package Mica's build, tests and benchmarks need. Idempotent: packages
# already present are left alone. Run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config g++ clang libclang-rt-dev
  liburing-dev libibverbs-dev librdmacm-dev libfmt-dev liblmdb-dev lmdb-utils
  libfuse3-dev fuse3 libtoml11-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  fio iperf3 python3
  # The tests on a real mount (tests/fuse/) run these programs on it.
  stress-ng git tar diffutils sqlite3 attr
  # HMAC-SHA256 for the cluster token (net/cluster_token.cc): we never write crypto ourselves.
  libssl-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
# A fresh machine has no package lists; a stale one may name versions that are gone.
if ! "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

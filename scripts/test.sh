#!/usr/bin/env bash
# The README's test command: installs dependencies, then configures, builds and runs the
# whole test suite with ctest in three builds:
#   gcc    g++ Release with the benchmarks (what a user builds by hand; -O2 finds warnings
#          and coroutine miscompilations -O1 does not) — the optimised build, where the
#          tests run their full counts (seeds, kills, model operations);
#   clang  clang Debug (assertions on, the smaller fixed counts);
#   asan   clang Debug with AddressSanitizer + UndefinedBehaviorSanitizer (smaller counts).
# Exits non-zero on any failure. Build trees live in build-test-*/ at the repository root.
# The fuse module's tests on a real mount (tests/fuse/) run in every build: each brings up
# its own `mica dev up --mount` cluster (own folder, free ports, so `ctest -j` runs them side
# by side); they need root (other-user checks, allow_other) and /dev/fuse, and are skipped
# saying so where /dev/fuse is absent.
#
#   scripts/test.sh                             all three builds
#   MICA_TEST_BUILDS="gcc" scripts/test.sh      only some (gcc, clang, asan)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

"$root/scripts/install-deps.sh"

jobs=$(nproc)
builds=${MICA_TEST_BUILDS:-"gcc clang asan"}
failed=()

# run_build NAME CMAKE_ARGS...
run_build() {
  local name=$1; shift
  local dir="$root/build-test-$name"
  # Called as `if ! run_build ...`, where bash ignores set -e: every step returns by hand.
  echo "=== [$name] configure"
  cmake -S "$root" -B "$dir" -G Ninja "$@" >/dev/null || return 1
  echo "=== [$name] build"
  cmake --build "$dir" -j "$jobs" || return 1
  echo "=== [$name] test"
  (cd "$dir" && ctest --output-on-failure --no-tests=error --timeout 600 -j "$jobs") ||
    return 1
  return 0
}

for b in $builds; do
  case $b in
    gcc) args=(-DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Release -DMICA_BUILD_BENCH=ON) ;;
    clang) args=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DMICA_BUILD_BENCH=OFF) ;;
    asan) args=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DMICA_SANITIZE=ON
                -DMICA_BUILD_BENCH=OFF) ;;
    *) echo "unknown build '$b' (gcc, clang, asan)"; exit 2 ;;
  esac
  if ! run_build "$b" "${args[@]}"; then failed+=("$b"); fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "scripts/test.sh: FAILED builds: ${failed[*]}"
  exit 1
fi
echo "scripts/test.sh: all builds passed ($builds)"

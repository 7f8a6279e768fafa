#!/usr/bin/env bash
# The README's test command: installs dependencies, then configures, builds and runs the
# whole test suite with ctest in three builds — g++ (debug, -O1 with sibling calls), clang
# (release) and clang with AddressSanitizer + UndefinedBehaviorSanitizer — and builds, without
# running its tests, the configuration a user builds by hand: g++ Release with the benchmarks
# (gcc-release; -O2 finds warnings that -O1 does not). Exits non-zero on any failure. Build
# trees live in build-test-*/ at the repository root.
#
#   scripts/test.sh                 all four builds
#   MICA_TEST_BUILDS="gcc" scripts/test.sh      only some (gcc, clang, asan, gcc-release)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

"$root/scripts/install-deps.sh"

jobs=$(nproc)
builds=${MICA_TEST_BUILDS:-"gcc clang asan gcc-release"}
failed=()

# run_build NAME yes|no CMAKE_ARGS...: the second argument says whether to run ctest.
run_build() {
  local name=$1 run_tests=$2; shift 2
  local dir="$root/build-test-$name"
  # Called as `if ! run_build ...`, where bash ignores set -e: every step returns by hand.
  echo "=== [$name] configure"
  cmake -S "$root" -B "$dir" -G Ninja "$@" >/dev/null || return 1
  echo "=== [$name] build"
  cmake --build "$dir" -j "$jobs" || return 1
  if [ "$run_tests" = yes ]; then
    echo "=== [$name] test"
    (cd "$dir" && ctest --output-on-failure --no-tests=error --timeout 600 -j "$jobs") ||
      return 1
  fi
  return 0
}

for b in $builds; do
  run_tests=yes
  case $b in
    gcc) args=(-DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug -DMICA_BUILD_BENCH=OFF) ;;
    clang) args=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo
                 -DMICA_BUILD_BENCH=OFF) ;;
    asan) args=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DMICA_SANITIZE=ON
                -DMICA_BUILD_BENCH=OFF) ;;
    # What `cmake -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build` gives a user
    # (the default compiler is g++ here): built, not tested — the three builds above test.
    gcc-release) run_tests=no
                 args=(-DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Release -DMICA_BUILD_BENCH=ON) ;;
    *) echo "unknown build '$b' (gcc, clang, asan, gcc-release)"; exit 2 ;;
  esac
  if ! run_build "$b" "$run_tests" "${args[@]}"; then failed+=("$b"); fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "scripts/test.sh: FAILED builds: ${failed[*]}"
  exit 1
fi
echo "scripts/test.sh: all builds passed ($builds)"

#!/usr/bin/env bash
# The README's test command: installs dependencies, then configures, builds and runs the
# whole test suite with ctest in three builds — g++ (debug, -O1 with sibling calls), clang
# (release) and clang with AddressSanitizer + UndefinedBehaviorSanitizer. Exits non-zero on
# any failure. Build trees live in build-test-*/ at the repository root.
#
#   scripts/test.sh                 all three builds
#   MICA_TEST_BUILDS="gcc" scripts/test.sh      only some (gcc, clang, asan)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

"$root/scripts/install-deps.sh"

jobs=$(nproc)
builds=${MICA_TEST_BUILDS:-"gcc clang asan"}
failed=()

run_build() {
  local name=$1; shift
  local dir="$root/build-test-$name"
  echo "=== [$name] configure"
  cmake -S "$root" -B "$dir" -G Ninja -DMICA_BUILD_BENCH=OFF "$@" >/dev/null
  echo "=== [$name] build"
  cmake --build "$dir" -j "$jobs"
  echo "=== [$name] test"
  (cd "$dir" && ctest --output-on-failure --timeout 600 -j "$jobs")
}

for b in $builds; do
  case $b in
    gcc) args=(-DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug) ;;
    clang) args=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
    asan) args=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DMICA_SANITIZE=ON) ;;
    *) echo "unknown build '$b' (gcc, clang, asan)"; exit 2 ;;
  esac
  if ! run_build "$b" "${args[@]}"; then failed+=("$b"); fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "scripts/test.sh: FAILED builds: ${failed[*]}"
  exit 1
fi
echo "scripts/test.sh: all builds passed ($builds)"

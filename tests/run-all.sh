#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs every test: the unit and integration suite
# (release build, warnings as errors), the same suite under AddressSanitizer and
# UndefinedBehaviorSanitizer, the fuzz targets for a bounded time, and the format check. The
# guest images the VM tests boot are built (and cached) in build/guest/ and, with Wine and the
# Win32 test program, in build/guest-wine/. Last, the Debian packages are built and installed,
# upgraded and removed in a throwaway Debian 12 root.
# Usage: bash tests/run-all.sh   (HEIRLOOM_FUZZ_SECONDS=N to change the fuzz time per target)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
fuzz_seconds=${HEIRLOOM_FUZZ_SECONDS:-30}
jobs=${HEIRLOOM_JOBS:-$(nproc)}

step() { printf '\n=== %s\n' "$*"; }

# Every component is installed below, so a test that would skip for a missing one (slapd,
# nginx, libfaketime, qemu-img...; tests/support/skip.hpp) fails instead.
export HEIRLOOM_REQUIRE_ALL=1
# The VM tests run their QEMU under TCG: on these machines /dev/kvm opens and the agent's probe
# (firmware alone runs) passes, but the guest's boot loader then stops with a KVM "emulation
# failure" (docs/vm.md, "Acceleration").
export HEIRLOOM_ACCEL=${HEIRLOOM_ACCEL:-tcg}

# run_suite DIR [CTEST ARGS...]: runs the test suite of a build folder and says how many tests
# were skipped, and which.
run_suite() {
  local dir=$1
  shift
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 600 "$@") | tee "$dir/ctest.log"
  local skipped
  skipped=$(grep -c '(Skipped)' "$dir/ctest.log" || true)
  echo "$dir: $skipped tests skipped"
  grep '(Skipped)' "$dir/ctest.log" || true
}

step "installing dependencies"
bash installer/install-deps.sh

step "format check (.clang-format)"
mapfile -t sources < <(git ls-files '*.cpp' '*.hpp' 2>/dev/null || find . -name '*.[ch]pp' -not -path './build*')
if ! clang-format --dry-run --Werror "${sources[@]}"; then
  echo "clang-format: files above need formatting (run: clang-format -i FILE)" >&2
  exit 1
fi

step "release build (-Wall -Wextra -Werror)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j "$jobs"

# The guest images take minutes of downloading and dpkg, little CPU: they are built in the
# background while the sanitizer and fuzz builds compile, and waited for before any test.
if [ ! -f build/windows-apps/Payroll/PAYROLL.EXE ]; then
  echo "build/windows-apps/Payroll/PAYROLL.EXE is missing: the Win32 test program needs" \
    "i686-w64-mingw32-g++ (Debian package g++-mingw-w64-i686, installer/install-deps.sh)" >&2
  exit 1
fi
step "guest images, in the background (log: build/guest-images.log)"
(
  set -e
  echo "--- guest image (cached in build/guest)"
  bash installer/guest/build-guest-image.sh --out build/guest --guest-agent build/bin/heirloom-guest
  # The Windows-application test boots a second image: the default one plus Wine and the
  # Win32 test program PAYROLL.EXE, which the release build made with mingw-w64.
  echo "--- Wine guest image (--windows-apps build/windows-apps, cached in build/guest-wine)"
  bash installer/guest/build-guest-image.sh --out build/guest-wine \
    --guest-agent build/bin/heirloom-guest --windows-apps build/windows-apps
) >build/guest-images.log 2>&1 &
images_pid=$!
# The VM tests of both builds boot these images (the release build's static heirloom-guest is
# in them) and save their screenshots in build/screenshots/.
export HEIRLOOM_GUEST_IMAGE=$root/build/guest/guest.vhd
export HEIRLOOM_WINE_GUEST_IMAGE=$root/build/guest-wine/guest.vhd
export HEIRLOOM_SCREENSHOT_DIR=$root/build/screenshots

step "sanitizer build (ASan + UBSan)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DHEIRLOOM_SANITIZE=ON >/dev/null
ninja -C build-asan -j "$jobs"

step "fuzz targets (libFuzzer, ${fuzz_seconds}s each)"
CC=clang-16 CXX=clang++-16 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHEIRLOOM_FUZZ=ON >/dev/null
ninja -C build-fuzz -j "$jobs"
for target in build-fuzz/bin/fuzz_*; do
  name=$(basename "$target")
  corpus="build-fuzz/corpus/$name"
  mkdir -p "$corpus"
  dirs=("$corpus")
  [ -d "tests/fuzz/seeds/${name#fuzz_}" ] && dirs+=("tests/fuzz/seeds/${name#fuzz_}")
  echo "--- $name"
  if ! "$target" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -print_final_stats=1 \
      "${dirs[@]}" >"build-fuzz/$name.log" 2>&1; then
    tail -n 40 "build-fuzz/$name.log" >&2
    echo "$name found a crash (log above, reproducer in the working folder)" >&2
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^Done' "build-fuzz/$name.log" || true
done

step "guest images (waiting for the background build)"
if ! wait "$images_pid"; then
  cat build/guest-images.log >&2
  echo "the guest image build failed (its log is above)" >&2
  exit 1
fi
cat build/guest-images.log

step "test suite under ASan + UBSan"
# The Windows-program VM test runs in the release build only: the guest side is the release
# build's heirloom-guest in either run, and the host side it drives (agent, VM, menu) is the
# same the sanitized VM test covers; it saves the Wine VM's three minutes here.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run_suite build-asan -E '^windows vm: '


step "test suite (release build)"
run_suite build

step "Debian packages: install, upgrade, remove and purge in a fresh Debian 12 root"
bash tests/packages/test-packages.sh build

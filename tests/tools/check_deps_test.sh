#!/usr/bin/env bash
# The dependency check (tools/check-deps.sh) must catch what a new machine once caught: a build
# that includes opencv2/imgcodecs.hpp while tools/install-deps.sh does not install
# libopencv-imgcodecs-dev. Runs the check on BUILD_DIR with a copy of install-deps.sh that lacks
# the package, and expects it to fail naming both the header and the package.
# Exit 77 (skipped) where the check cannot run: not a Ninja build, not Debian, no such header read.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: check_deps_test.sh BUILD_DIR}
skip() { echo "SKIPPED: $*"; exit 77; }
command -v dpkg-query >/dev/null || skip "not a Debian system (no dpkg-query)"
[ -f "$build/build.ninja" ] || skip "$build is not a Ninja build"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# (Into files first: grep -q would stop reading early, and pipefail would call that a failure.)
ninja -C "$build" -t deps >"$tmp/deps"
grep -q 'opencv2/imgcodecs.hpp' "$tmp/deps" ||
  skip "this build read no opencv2/imgcodecs.hpp (built without the binaries?)"

sed 's/ libopencv-imgcodecs-dev//' "$top/tools/install-deps.sh" >"$tmp/install-deps.sh"
bash "$tmp/install-deps.sh" --list >"$tmp/list"
if grep -qx libopencv-imgcodecs-dev "$tmp/list"; then
  echo "FAILED: could not remove libopencv-imgcodecs-dev from the copied list"; exit 1
fi

bash "$top/tools/check-deps.sh" --deps-script "$tmp/install-deps.sh" "$build" >"$tmp/out" 2>&1
status=$?
cat "$tmp/out"
[ $status -eq 1 ] || { echo "FAILED: expected exit status 1 for the doctored list, got $status"; exit 1; }
grep -q 'opencv2/imgcodecs.hpp.*libopencv-imgcodecs-dev' "$tmp/out" ||
  { echo "FAILED: the message does not name opencv2/imgcodecs.hpp and libopencv-imgcodecs-dev"; exit 1; }
[ "$(grep -c 'check-deps: ' "$tmp/out")" -eq 1 ] ||
  { echo "FAILED: expected one complaint (only the removed package), got the lines above"; exit 1; }

# And the real list passes on the same build.
bash "$top/tools/check-deps.sh" "$build" || { echo "FAILED: the real list does not pass"; exit 1; }
echo "PASSED: the doctored list fails naming the header and the package; the real list passes"

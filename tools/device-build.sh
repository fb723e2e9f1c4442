#!/usr/bin/env bash
# tools/device-build.sh: build, here, what runs on the lent GPU machine, and pack it to travel.
#
#   tools/device-build.sh            configure (cmake --preset device), build, copy the small
#                                    libraries, pack build-device/device-pack.tar.gz, check size
#
# Then, in ONE device call (README, "Development": the lent GPU machine):
#   carry:   ["build-device/device-pack.tar.gz"]
#   command: tools/device-check.sh
#
# Why a pack and not the folders: the working tree plus everything carried must stay under
# 64 MiB, and the build is ~50 MB even stripped (libalexnet_core.so alone is ~30 MB, mostly
# OpenBLAS's kernels for every x86 CPU); gzip makes it ~17 MB, and the device unpacks it in a
# second. device-check.sh unpacks it into build-device/, the paths the tests were built with.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-device
STAGE=$BUILD/stage
PACK=$BUILD/device-pack.tar.gz
LIMIT_BYTES=$((60 * 1024 * 1024))  # of the 64 MiB the device tool carries: keep 4 MiB spare

# Libraries the device provides itself, so they must NOT be copied: the C/C++ runtime (the
# device's own is the one that matches its kernel and loader) and the CUDA libraries that live in
# its Python packages (cuDNN alone is ~480 MB; device-check.sh finds them there).
DEVICE_PROVIDES='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s'
DEVICE_PROVIDES+='|libcudart|libcudnn[a-z_]*|libcublas|libcublasLt|libnccl)\.so'

log() { printf '== %s\n' "$*"; }

configure_and_build() {
  cd "$ROOT"
  log "cmake --preset device"
  cmake --preset device >/dev/null
  log "cmake --build --preset device -j$(nproc)"
  cmake --build --preset device -j "$(nproc)"
}

# Copy every shared library the binaries need that the device does not provide into
# build-device/lib (the binaries' run path is $ORIGIN/../lib, and device-check.sh puts it first
# on LD_LIBRARY_PATH). `ldd` follows the libraries' own needs too (libGL -> libX11 -> ...).
copy_small_libraries() {
  log "copying the libraries the device may lack into build-device/lib"
  local elf name arrow path rest
  mkdir -p "$BUILD/lib"
  for elf in "$BUILD"/bin/alexnet-* "$BUILD"/bin/test_* "$BUILD"/bin/libalexnet_core.so; do
    while read -r name arrow path rest; do
      [[ $arrow == "=>" ]] || continue         # the vdso and the loader have no "=>"
      [[ $name =~ $DEVICE_PROVIDES ]] && continue
      [[ $path == "$BUILD"/* ]] && continue     # ours, or copied already
      if [[ $path == not ]]; then
        echo "device-build.sh: $elf needs $name, which is not found here" >&2
        exit 1
      fi
      if [[ ! -e $BUILD/lib/$name ]]; then
        cp -L "$path" "$BUILD/lib/$name"
        printf '   %-22s %8d bytes  (from %s)\n' "$name" "$(stat -c %s "$BUILD/lib/$name")" "$path"
      fi
    done < <(ldd "$elf")
  done
}

# What travels: bin/ and lib/, stripped (symbol tables are no use there), and a note of what
# was built from what.
stage_and_pack() {
  log "staging and stripping into build-device/stage, packing $PACK"
  {
    echo "source_dir=$ROOT"
    echo "commit=$(git -C "$ROOT" rev-parse HEAD)"
    echo "uncommitted_changes=$(git -C "$ROOT" status --porcelain | wc -l)"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
    echo "nvcc=$(/usr/local/cuda/bin/nvcc --version | tail -1)"
    echo "cxx=$(c++ --version | head -1)"
  } >"$BUILD/bin/device-build-info.txt"
  rm -rf "$STAGE" && mkdir -p "$STAGE"
  cp -a "$BUILD/bin" "$BUILD/lib" "$STAGE/"
  strip --strip-unneeded "$STAGE"/bin/alexnet-* "$STAGE"/bin/test_* "$STAGE"/bin/libalexnet_core.so
  tar -C "$STAGE" -czf "$PACK" bin lib
}

# The device tool refuses a call whose working tree plus carried paths exceed 64 MiB.
check_size() {
  local tree pack total
  tree=$(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
         xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}')
  pack=$(stat -c %s "$PACK")
  total=$((tree + pack))
  log "size: working tree $((tree / 1024)) KiB + pack $((pack / 1024)) KiB = $((total / 1024 / 1024)) MiB of 64 MiB" \
      "(unpacked there: $(du -sh "$STAGE" | cut -f1))"
  if ((total > LIMIT_BYTES)); then
    echo "device-build.sh: $((total / 1024 / 1024)) MiB is over the $((LIMIT_BYTES / 1024 / 1024)) MiB kept for the device call" >&2
    exit 1
  fi
}

configure_and_build
copy_small_libraries
stage_and_pack
check_size
log 'ready: run tools/device-check.sh on the device with carry ["build-device/device-pack.tar.gz"]'

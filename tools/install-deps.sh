#!/usr/bin/env bash
# Installs the Debian packages alexnet builds and tests with. Idempotent: quiet and quick when
# everything is already there. The CUDA toolkit (nvcc, cuBLAS, cuDNN, NCCL) is not a Debian
# package here; it is expected under /usr/local/cuda and is optional (see README).
# --list prints the packages and installs nothing (tools/check-deps.sh reads the list from it).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libopenblas-dev libgtest-dev libtbb-dev
  openmpi-bin libopenmpi-dev
  libturbojpeg0-dev libpng-dev libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  clang-format
  python3 python3-numpy
)
if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

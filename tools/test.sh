#!/usr/bin/env bash
# The test command (README): installs what is missing, checks the layering of the includes
# (tools/check-layering.sh), builds, and runs every test twice: once in the release build (with
# the CUDA backend compiled when the toolkit is present; GPU tests skip without a GPU) and once
# CPU-only under AddressSanitizer + UBSan. Then checks that every header and library the builds
# used comes from a package tools/install-deps.sh installs (tools/check-deps.sh), that a
# checkpoint reads in Python with numpy alone (and into PyTorch when it is installed), and that
# the code is clang-formatted.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash tools/install-deps.sh

step() { printf '\n=== %s\n' "$*"; }

step "layering: what each folder may include"
bash tools/check-layering.sh

cuda=OFF
[ -x /usr/local/cuda/bin/nvcc ] && cuda=ON
step "release build (CUDA backend: $cuda)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DALEXNET_CUDA=$cuda >/dev/null
cmake --build build -j "$jobs"
step "tests (release)"
ctest --test-dir build --output-on-failure -j "$jobs"

step "CPU-only build under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALEXNET_CUDA=OFF \
  -DALEXNET_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
step "tests (sanitizers)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"

step "dependencies: every header and library the builds used comes from a listed package"
bash tools/check-deps.sh build build-asan

step "a checkpoint of the paper network, read with numpy (and PyTorch if installed)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./build/alexnet-train --out "$tmp/paper" --set data.batch_size=2 --set train.max_steps=1 \
  --set data.synthetic.train_images=4 --set data.synthetic.val_images=2 --set data.workers=2 \
  >"$tmp/train.log"
py=/usr/bin/python3
torch_flag=()
$py -c 'import torch' 2>/dev/null && torch_flag=(--torch)
$py tools/checkpoint_to_torch.py "$tmp/paper/checkpoints/last.safetensors" -q --check-alexnet \
  --expect-paper "${torch_flag[@]}"

step "clang-format"
git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' | xargs clang-format --dry-run --Werror
echo "clang-format: clean"

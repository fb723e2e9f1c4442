#!/usr/bin/env bash
# The main job (README): install what is missing, build, train the small two-tower AlexNet on
# the built-in synthetic data, and evaluate its best checkpoint. Running it again continues
# (or just re-evaluates) the same run in runs/small.
#
# Device: --device auto picks a GPU once the CUDA backend exists (a later issue); today it
# trains on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
cuda=OFF
[ -x /usr/local/cuda/bin/nvcc ] && cuda=ON
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DALEXNET_CUDA=$cuda >/dev/null
cmake --build build -j "$(nproc)" --target alexnet-train alexnet-eval

run=runs/small
resume=()
[ -f "$run/checkpoints/last.safetensors" ] && resume=(--resume auto)
./build/alexnet-train --config configs/small.yaml --out "$run" --device auto "${resume[@]}"
echo
./build/alexnet-eval --checkpoint "$run/checkpoints/best.safetensors" --device auto

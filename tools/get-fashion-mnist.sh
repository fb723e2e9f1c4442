#!/usr/bin/env bash
# The demo dataset: Debian's dataset-fashion-mnist (Zalando's Fashion-MNIST: 60 000 training and
# 10 000 test images, 28x28 grey, 10 classes) as a class-per-folder JPEG tree, the layout of
# ImageNet: data/fashion-mnist/{train,val}/<k>-<name>/*.JPEG. Idempotent.
# Usage: tools/get-fashion-mnist.sh [OUT_DIR]   (needs build/alexnet-prep)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-data/fashion-mnist}
src=/usr/share/datasets/fashion-mnist
names="t-shirt,trouser,pullover,dress,coat,sandal,shirt,sneaker,bag,ankle-boot"

if [ ! -f "$src/train-images-idx3-ubyte.gz" ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "get-fashion-mnist: installing Debian's dataset-fashion-mnist"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null ||
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null; }
fi

convert() {  # split idx-prefix
  if [ -f "$out/$1/.complete" ]; then return; fi
  rm -rf "${out:?}/$1"
  ./build/alexnet-prep idx2jpeg --images "$src/$2-images-idx3-ubyte.gz" \
    --labels "$src/$2-labels-idx1-ubyte.gz" --out "$out/$1" --names "$names" --workers "$(nproc)"
  touch "$out/$1/.complete"
}
convert train train
convert val t10k

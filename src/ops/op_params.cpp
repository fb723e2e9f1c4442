// The host-side checks of the ops' parameters (alexnet/op_params.h): kept out of kernels/*.cuh,
// which hold the arithmetic only.
#include "alexnet/op_params.h"

#include <string>

#include "alexnet/error.h"

namespace alexnet {

void LrnParams::check() const {
  if (size < 1 || size % 2 == 0)
    throw Error("lrn: size must be odd and positive (a symmetric window), got " +
                std::to_string(size));
}

void DropoutParams::check(int64_t count) const {
  if (!(p >= 0.0 && p <= 1.0))
    throw Error("dropout: p must be in [0, 1], got " + std::to_string(p));
  // The element is a 32-bit word of the Philox counter; beyond that masks would repeat.
  if (first < 0 || count > (int64_t{1} << 32) - first)
    throw Error("dropout: at most 2^32 elements per layer, got " + std::to_string(first) + " + " +
                std::to_string(count));
}

void AugmentGeom::check() const {
  if (n < 0) throw Error("augment: negative batch size " + std::to_string(n));
  if (crop < 1 || crop > size)
    throw Error("augment: crop " + std::to_string(crop) + " does not fit the stored size " +
                std::to_string(size));
}

void AugmentGeom::check_samples(const AugmentSample* samples) const {
  for (int i = 0; i < n; ++i) {
    const AugmentSample& s = samples[i];
    if (s.x0 < 0 || s.y0 < 0 || s.x0 > size - crop || s.y0 > size - crop)
      throw Error("augment: sample " + std::to_string(i) + " crops at (" + std::to_string(s.x0) +
                  ", " + std::to_string(s.y0) + "), outside the " + std::to_string(size) + " x " +
                  std::to_string(size) + " image for a crop of " + std::to_string(crop));
  }
}

}  // namespace alexnet

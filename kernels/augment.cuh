// The paper's training augmentation (§4.1) as one fused per-element functor: a crop of the
// stored S x S image, a horizontal mirror, the PCA lighting shift and the mean subtraction,
// written straight into the network's (N, 3, crop, crop) input. Every output element gathers
// its one source pixel, so the op needs no intermediate image on either backend.
//
// The per-sample random choices are a pure function of (seed, epoch, image id), drawn from
// Philox (philox.cuh) with
//   w = philox_draw(seed, epoch, rng::kAugment,     image_id)   crop and mirror
//   g = philox_draw(seed, epoch, rng::kAugment + 1, image_id)   lighting normals
//   x0   = (w.v[0] * R) >> 32,  y0 = (w.v[1] * R) >> 32          R = S - crop + 1 positions
//   flip = w.v[2] >> 31                                         the top bit: p = 1/2 exactly
//   (z0, z1) = box_muller(g.v[0], g.v[1]),  (z2, -) = box_muller(g.v[2], g.v[3])
//   alpha_i = lighting_std * z_i
//   rgb_shift[c] = sum_i eigvec[c][i] * alpha_i * eigval[i]
// The multiply-shift maps a 32-bit word onto R values with each value hit either
// floor(2^32 / R) or ceil(2^32 / R) times: a relative bias below R / 2^32 (7e-9 for the
// paper's R = 30), far under anything a test or a training run could see, and no rejection
// loop, so the draw costs the same on every thread. A resumed run draws the same
// augmentation from the seed and the epoch alone, and no result depends on thread count or
// on which backend draws.
#pragma once

#include <cstdint>

#include "alexnet/op_params.h"
#include "alexnet/rng_streams.h"
#include "kernels/hd.cuh"
#include "kernels/philox.cuh"

namespace alexnet::kernels {

// A word w -> floor(w * range / 2^32), in [0, range).
AX_HD int uniform_below(uint32_t w, uint32_t range) {
  return static_cast<int>((static_cast<uint64_t>(w) * range) >> 32);
}

// a * b rounded on its own: nvcc would otherwise fuse the lighting sum's products into
// multiply-adds, and a shift drawn on the device would differ in the last bit from the host's.
AX_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

// The sample's random choices (see the top of this file). Requires 0 < crop <= size.
// random_crop = false takes the centre crop, flip = false never mirrors, lighting_std = 0
// gives an exactly zero shift (and then eigval, eigvec may be null).
AX_HD AugmentSample draw_augment(uint64_t seed, uint64_t epoch, uint32_t image_id, int size,
                                 int crop, bool random_crop, bool flip, float lighting_std,
                                 const float* eigval /*(3)*/,
                                 const float* eigvec /*(3, 3), columns are eigenvectors*/) {
  AugmentSample s;
  const Philox4 w = philox_draw(seed, epoch, rng::kAugment, image_id);
  if (random_crop) {
    const uint32_t range = static_cast<uint32_t>(size - crop + 1);
    s.x0 = uniform_below(w.v[0], range);
    s.y0 = uniform_below(w.v[1], range);
  } else {
    s.x0 = (size - crop) / 2;
    s.y0 = (size - crop) / 2;
  }
  s.flip = flip && (w.v[2] >> 31) != 0u;
  if (lighting_std != 0.0f) {
    // A call of its own: Box-Muller needs four more words than the first call has left.
    const Philox4 g = philox_draw(seed, epoch, rng::kAugment + 1, image_id);
    float z[4];
    box_muller(g.v[0], g.v[1], z[0], z[1]);
    box_muller(g.v[2], g.v[3], z[2], z[3]);
    for (int c = 0; c < 3; ++c) {
      float sum = 0.0f;
      for (int i = 0; i < 3; ++i)
        sum += mul_rn(mul_rn(eigvec[c * 3 + i], mul_rn(lighting_std, z[i])), eigval[i]);
      s.rgb_shift[c] = sum;
    }
  }
  return s;
}

// The paper's ten test-time crops, k = 0..9: top-left, top-right, bottom-left, bottom-right
// and centre, then the same five mirrored. No lighting.
AX_HD AugmentSample ten_crop(int k, int size, int crop) {
  AugmentSample s;
  const int far = size - crop;
  const int corner = k % 5;  // bit 0: right, bit 1: bottom; 4: centre
  s.x0 = corner == 4 ? far / 2 : (corner & 1) * far;
  s.y0 = corner == 4 ? far / 2 : (corner >> 1) * far;
  s.flip = k >= 5;
  return s;
}

// One output value: the pixel, shifted by its channel's lighting, less the mean, scaled. The CUDA
// kernel (one value per thread) and the CPU's row loop (src/cpu/augment.cpp) both compute this.
template <class T>
AX_HD T augment_value(uint8_t pixel, float rgb_shift, float mean, T scale) {
  return (static_cast<T>(pixel) + static_cast<T>(rgb_shift) - static_cast<T>(mean)) * scale;
}

template <class T>
struct AugmentFunctor {
  int size = 256, crop = 227;
  T scale = 1;
  const uint8_t* images = nullptr;         // (N, S, S, 3) RGB
  const float* mean = nullptr;             // (3, S, S)
  const AugmentSample* samples = nullptr;  // (N)
  T* out = nullptr;                        // (N, 3, crop, crop)
  AX_HD void operator()(int64_t i) const {
    const int x = static_cast<int>(i % crop);
    const int y = static_cast<int>((i / crop) % crop);
    const int c = static_cast<int>((i / (static_cast<int64_t>(crop) * crop)) % 3);
    const int64_t n = i / (3 * static_cast<int64_t>(crop) * crop);
    const AugmentSample& s = samples[n];
    const int64_t sx = s.x0 + (s.flip ? crop - 1 - x : x);
    const int64_t sy = s.y0 + y;
    const uint8_t pixel = images[((n * size + sy) * size + sx) * 3 + c];
    const float m = mean[(c * static_cast<int64_t>(size) + sy) * size + sx];
    out[i] = augment_value(pixel, s.rgb_shift[c], m, scale);
  }
};

}  // namespace alexnet::kernels

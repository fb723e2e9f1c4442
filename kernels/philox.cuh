// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
// counter-based generator, so any draw is a pure function of (key, counter) and the CPU and
// the GPU produce the same numbers without carrying generator state between calls.
//
// Keying used throughout alexnet (philox_draw):
//   key     = (seed & 0xffffffff, seed >> 32)            the run's 64-bit seed
//   counter = (element, stream, step & 0xffffffff, step >> 32)
// where `element` is the 32-bit index of the value within one tensor, `stream` names who draws
// (a dropout layer, an augmentation field, ...) and `step` is the training step. Each call
// yields four independent 32-bit words; a consumer that needs one value per element takes word
// 0, one that needs several (Box-Muller) takes more words of the same call. Distinct
// (stream, step, element) triples therefore never share a draw, and a resumed run needs only
// the seed and the step to draw the same masks and crops again.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/hd.cuh"

namespace alexnet::kernels {

struct Philox4 {
  uint32_t v[4];
};

AX_HD Philox4 philox4x32_10(Philox4 ctr, uint32_t key0, uint32_t key1) {
  // Constants from the paper and Random123's philox.h.
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * ctr.v[0];
    const uint64_t p1 = static_cast<uint64_t>(kM1) * ctr.v[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    ctr = Philox4{{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
    key0 += kW0;  // the bump after the last round is unused, so it need not be skipped
    key1 += kW1;
  }
  return ctr;
}

// The alexnet keying described at the top of this file.
AX_HD Philox4 philox_draw(uint64_t seed, uint64_t step, uint32_t stream, uint32_t element) {
  const Philox4 ctr{
      {element, stream, static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32)}};
  return philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// The top 24 bits as a float in [0, 1): every value is exactly representable, so the result
// can never round up to 1 (which using all 32 bits would).
AX_HD float uniform01(uint32_t bits) {
  return static_cast<float>(bits >> 8) * 0x1p-24f;
}

// Box-Muller: two words -> two independent N(0, 1) floats. u1 is taken in (0, 1] so that the
// logarithm stays finite.
AX_HD void box_muller(uint32_t a, uint32_t b, float& z0, float& z1) {
  const float u1 = static_cast<float>((a >> 8) + 1u) * 0x1p-24f;
  const float u2 = uniform01(b);
  const float r = std::sqrt(-2.0f * std::log(u1));
  const float theta = 6.28318530717958647692f * u2;
  z0 = r * std::cos(theta);
  z1 = r * std::sin(theta);
}

}  // namespace alexnet::kernels

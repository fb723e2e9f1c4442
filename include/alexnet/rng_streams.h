// Who draws from the counter-based generator (kernels/philox.cuh): every consumer has its
// own stream id, so no two ever share a draw and each is reproducible from (seed, step).
#pragma once

#include <cstdint>

namespace alexnet::rng {

constexpr uint32_t kInit = 0x100;            // + index of the whole weight tensor
constexpr uint32_t kDropout = 0x200;         // + 16 * layer + tower
constexpr uint32_t kSyntheticClass = 0x300;  // synthetic data: per-class pattern
constexpr uint32_t kSyntheticImage = 0x301;  // synthetic data: per-image noise and shift
constexpr uint32_t kShuffle = 0x400;         // the per-epoch order of the training set
constexpr uint32_t kChunkOrder = 0x401;      // quasi-random order: the chunks' order
constexpr uint32_t kWindowShuffle = 0x402;   // quasi-random order: images within a window
constexpr uint32_t kPackOrder = 0x403;       // alexnet-prep pack: the order of a shuffled pack
constexpr uint32_t kAugment = 0x500;         // + 0 crop and mirror, + 1 lighting (augment.cuh)

}  // namespace alexnet::rng

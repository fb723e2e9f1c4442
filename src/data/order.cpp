// The order in which an epoch visits the training set: a pure function of (seed, epoch) and the
// config, so that a resumed run sees exactly the samples the straight run would have.
#include <algorithm>
#include <stdexcept>

#include "alexnet/data.h"
#include "alexnet/rng_streams.h"
#include "kernels/philox.cuh"

namespace alexnet {
namespace {

// Fisher-Yates over v[0, n) driven by Philox keyed on (seed, counter: the epoch); element i of the
// draw is `first + i`, so that shuffles of disjoint ranges under one stream never share a draw.
void shuffle(int64_t* v, int64_t n, uint64_t seed, int counter, uint32_t stream, int64_t first) {
  for (int64_t i = n - 1; i > 0; --i) {
    const auto bits = kernels::philox_draw(seed, static_cast<uint64_t>(counter), stream,
                                           static_cast<uint32_t>(first + i));
    // 64 random bits modulo i+1: the bias is below 2^-32 for any real dataset.
    const uint64_t r = (uint64_t{bits.v[0]} << 32 | bits.v[1]) % static_cast<uint64_t>(i + 1);
    std::swap(v[i], v[r]);
  }
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

}  // namespace

std::vector<int64_t> random_permutation(uint64_t seed, int counter, uint32_t stream, int64_t size) {
  std::vector<int64_t> order = iota(size);
  shuffle(order.data(), size, seed, counter, stream, 0);
  return order;
}

std::vector<int64_t> epoch_order(uint64_t seed, int epoch, int64_t size) {
  return random_permutation(seed, epoch, rng::kShuffle, size);
}

std::vector<int64_t> quasi_random_order(uint64_t seed, int epoch, int64_t size, int64_t chunk,
                                        int64_t window) {
  if (chunk < 1 || window < 1) throw std::invalid_argument("quasi_random_order: chunk, window < 1");
  const int64_t chunks = (size + chunk - 1) / chunk;
  std::vector<int64_t> chunk_order = iota(chunks);
  shuffle(chunk_order.data(), chunks, seed, epoch, rng::kChunkOrder, 0);
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(size));
  for (int64_t w = 0; w < chunks; w += window) {
    const auto start = static_cast<int64_t>(order.size());
    for (int64_t c = w; c < std::min(chunks, w + window); ++c) {
      const int64_t first = chunk_order[static_cast<size_t>(c)] * chunk;
      for (int64_t i = first; i < std::min(size, first + chunk); ++i) order.push_back(i);
    }
    // Each window's draws are numbered by epoch position: no two windows share one.
    shuffle(order.data() + start, static_cast<int64_t>(order.size()) - start, seed, epoch,
            rng::kWindowShuffle, start);
  }
  return order;
}

std::vector<int64_t> training_order(const Config& config, int epoch, int64_t size) {
  if (config.data.order == "quasi_random")
    return quasi_random_order(config.seed, epoch, size, config.data.quasi_random.chunk,
                              config.data.quasi_random.window);
  return epoch_order(config.seed, epoch, size);
}

}  // namespace alexnet

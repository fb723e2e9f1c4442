#include <cstring>

#include "alexnet/data.h"
#include "alexnet/rng_streams.h"
#include "kernels/philox.cuh"
#include "src/data/parallel_for.h"

namespace alexnet {

// Fisher-Yates driven by Philox keyed on (seed, epoch): the same order on every machine.
std::vector<int64_t> epoch_order(uint64_t seed, int epoch, int64_t size) {
  std::vector<int64_t> order(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) order[static_cast<size_t>(i)] = i;
  for (int64_t i = size - 1; i > 0; --i) {
    const auto bits = kernels::philox_draw(seed, static_cast<uint64_t>(epoch), rng::kShuffle,
                                           static_cast<uint32_t>(i));
    // 64 random bits modulo i+1: the bias is below 2^-32 for any real dataset.
    const uint64_t r = (uint64_t{bits.v[0]} << 32 | bits.v[1]) % static_cast<uint64_t>(i + 1);
    std::swap(order[static_cast<size_t>(i)], order[r]);
  }
  return order;
}

void load_batch(const DataSource& source, const DataStats& stats, double scale,
                const int64_t* indices, int n, int workers, Tensor& images, int32_t* labels) {
  const int S = source.image_size();
  const size_t pixels = static_cast<size_t>(3) * S * S;
  parallel_for(n, workers, [&](int64_t i) {
    std::vector<uint8_t> image(pixels);
    labels[i] = source.load(indices[i], image.data());
    const size_t offset = static_cast<size_t>(i) * pixels;
    if (images.dtype() == DType::f64) {
      double* out = images.data<double>() + offset;
      for (size_t j = 0; j < pixels; ++j) out[j] = (image[j] - double{stats.mean[j]}) * scale;
    } else {
      float* out = images.data<float>() + offset;
      const float s = static_cast<float>(scale);
      for (size_t j = 0; j < pixels; ++j)
        out[j] = (static_cast<float>(image[j]) - stats.mean[j]) * s;
    }
  });
}

}  // namespace alexnet

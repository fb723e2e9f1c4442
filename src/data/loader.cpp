#include <cstring>
#include <type_traits>

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
    // image (S, S, 3) -> out (3, S, S)
    const size_t offset = static_cast<size_t>(i) * pixels, plane = pixels / 3;
    auto convert = [&](auto* out) {
      using T = std::remove_pointer_t<decltype(out)>;
      for (size_t c = 0; c < 3; ++c)
        for (size_t j = 0; j < plane; ++j)
          out[c * plane + j] =
              static_cast<T>((image[3 * j + c] - double{stats.mean[c * plane + j]}) * scale);
    };
    if (images.dtype() == DType::f64)
      convert(images.data<double>() + offset);
    else
      convert(images.data<float>() + offset);
  });
}

}  // namespace alexnet

// CPU augmentation: kernels/augment.cuh's augment_value, row by row. The GPU runs one thread per
// output value (AugmentFunctor), which recovers (n, c, y, x) from the flat index with four
// divisions; here a loop walks a row of the crop, pixel by pixel, writing the three channel
// planes, with no index arithmetic per value (4-5x faster). The values are the same.
#include "kernels/augment.cuh"

#include "alexnet/cpu_ops.h"
#include "kernels/for_each.h"

namespace alexnet::cpu {

template <class T>
void augment_image(const AugmentGeom& g, const uint8_t* image, const float* mean,
                   const AugmentSample& s, T* out) {
  const int64_t size = g.size, crop = g.crop, plane = crop * crop;
  const auto scale = static_cast<T>(g.scale);
  // Copies: out is written through a T*, which may alias the sample as far as the compiler knows.
  const float shift[3] = {s.rgb_shift[0], s.rgb_shift[1], s.rgb_shift[2]};
  const bool flip = s.flip;
  for (int64_t y = 0; y < crop; ++y) {
    const int64_t sy = s.y0 + y;
    const uint8_t* pixels = image + (sy * size + s.x0) * 3;  // (x0, sy)
    const float* mean_r = mean + sy * size + s.x0;
    const float* mean_g = mean_r + size * size;
    const float* mean_b = mean_g + size * size;
    T* r = out + y * crop;
    T* g_out = r + plane;
    T* b = g_out + plane;
    // All three channels of a pixel at once, so the image row is read once; two loops, so that
    // neither has a branch inside (the compiler vectorises both).
    if (flip) {
      for (int64_t x = 0, from = crop - 1; x < crop; ++x, --from) {
        r[x] = kernels::augment_value(pixels[3 * from], shift[0], mean_r[from], scale);
        g_out[x] = kernels::augment_value(pixels[3 * from + 1], shift[1], mean_g[from], scale);
        b[x] = kernels::augment_value(pixels[3 * from + 2], shift[2], mean_b[from], scale);
      }
    } else {
      for (int64_t x = 0; x < crop; ++x) {
        r[x] = kernels::augment_value(pixels[3 * x], shift[0], mean_r[x], scale);
        g_out[x] = kernels::augment_value(pixels[3 * x + 1], shift[1], mean_g[x], scale);
        b[x] = kernels::augment_value(pixels[3 * x + 2], shift[2], mean_b[x], scale);
      }
    }
  }
}

template <class T>
void augment_batch(const AugmentGeom& g, const uint8_t* images, const float* mean,
                   const AugmentSample* samples, T* out) {
  g.check();
  // The samples are host memory here, so a crop that would read outside its image is refused
  // instead of reading out of bounds.
  g.check_samples(samples);
  const int64_t image_bytes = int64_t{3} * g.size * g.size,
                image_values = int64_t{3} * g.crop * g.crop;
  kernels::for_each_index(
      g.n,
      [&](int64_t n) {
        augment_image(g, images + n * image_bytes, mean, samples[n], out + n * image_values);
      },
      kernels::items_per_thread(image_values));
}

template void augment_image<float>(const AugmentGeom&, const uint8_t*, const float*,
                                   const AugmentSample&, float*);
template void augment_image<double>(const AugmentGeom&, const uint8_t*, const float*,
                                    const AugmentSample&, double*);
template void augment_batch<float>(const AugmentGeom&, const uint8_t*, const float*,
                                   const AugmentSample*, float*);
template void augment_batch<double>(const AugmentGeom&, const uint8_t*, const float*,
                                    const AugmentSample*, double*);

}  // namespace alexnet::cpu

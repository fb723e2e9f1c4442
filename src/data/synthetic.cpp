// The synthetic data source: learnable, deterministic, no files. Class c is an oriented colour
// grating; an image of it is the grating at a random phase and contrast plus pixel noise, so a
// network must learn orientation, frequency and colour, not memorise pixels.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "alexnet/data.h"
#include "alexnet/error.h"
#include "alexnet/rng_streams.h"
#include "kernels/philox.cuh"

namespace alexnet {
namespace {

using kernels::philox_draw;
using kernels::uniform01;

struct ClassPattern {
  double cos_t, sin_t, frequency;  // cycles per image side
  double base[3], weight[3];       // per RGB channel
};

class SyntheticSource final : public DataSource {
 public:
  SyntheticSource(const Config& c, Split split)
      : seed_(c.seed),
        size_(c.data.image_size),
        count_(split == Split::train ? c.data.synthetic.train_images : c.data.synthetic.val_images),
        // val images are drawn after all training images, so the splits never overlap
        first_(split == Split::train ? 0 : c.data.synthetic.train_images),
        noise_(c.data.synthetic.noise) {
    const int k = c.model.num_classes;
    for (int i = 0; i < k; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "class%03d", i);
      classes_.emplace_back(name);
      const auto a = philox_draw(seed_, static_cast<uint64_t>(i), rng::kSyntheticClass, 0);
      const auto b = philox_draw(seed_, static_cast<uint64_t>(i), rng::kSyntheticClass, 1);
      const auto w = philox_draw(seed_, static_cast<uint64_t>(i), rng::kSyntheticClass, 2);
      ClassPattern p;
      // Orientations spread evenly over half a turn, jittered within a slot.
      const double theta = std::numbers::pi * (i + 0.5 * uniform01(a.v[0])) / k;
      p.cos_t = std::cos(theta);
      p.sin_t = std::sin(theta);
      p.frequency = 1.5 + 3.0 * uniform01(a.v[1]);
      for (int ch = 0; ch < 3; ++ch) {
        p.base[ch] = 60.0 + 120.0 * uniform01(b.v[ch]);
        p.weight[ch] = 0.4 + 0.6 * uniform01(w.v[ch]);
      }
      patterns_.push_back(p);
    }
  }

  int64_t size() const override { return count_; }
  int image_size() const override { return size_; }
  const std::vector<std::string>& classes() const override { return classes_; }

  std::string describe(int64_t index) const override {
    return "synthetic image #" + std::to_string(first_ + index);
  }

  int32_t load(int64_t index, uint8_t* image) const override {
    const uint64_t id = static_cast<uint64_t>(first_ + index);
    const int S = size_;
    const uint32_t pixels = static_cast<uint32_t>(3 * S * S);
    // Per-image draws come after the per-pixel ones in the same stream.
    const auto u = philox_draw(seed_, id, rng::kSyntheticImage, pixels);
    const int32_t label = static_cast<int32_t>(u.v[0] % patterns_.size());
    const ClassPattern& p = patterns_[static_cast<size_t>(label)];
    const double phase = 2 * std::numbers::pi * uniform01(u.v[1]);
    const double contrast = 70.0 * (0.6 + 0.4 * uniform01(u.v[2]));
    const double k = 2 * std::numbers::pi * p.frequency / S;
    for (uint32_t i = 0; i < pixels; i += 2) {
      const auto bits = philox_draw(seed_, id, rng::kSyntheticImage, i / 2);
      float z[2];
      kernels::box_muller(bits.v[0], bits.v[1], z[0], z[1]);
      for (uint32_t j = i; j < std::min(i + 2, pixels); ++j) {
        // (S, S, 3): j = (y * S + x) * 3 + ch
        const int ch = static_cast<int>(j) % 3, y = static_cast<int>(j) / 3 / S,
                  x = static_cast<int>(j) / 3 % S;
        const double wave = std::sin(k * (x * p.cos_t + y * p.sin_t) + phase);
        const double v = p.base[ch] + contrast * p.weight[ch] * wave + noise_ * z[j - i];
        image[j] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
    }
    return label;
  }

 private:
  uint64_t seed_;
  int size_;
  int64_t count_, first_;
  double noise_;
  std::vector<std::string> classes_;
  std::vector<ClassPattern> patterns_;
};

}  // namespace

std::unique_ptr<DataSource> make_synthetic_source(const Config& config, Split split) {
  return std::make_unique<SyntheticSource>(config, split);
}

}  // namespace alexnet

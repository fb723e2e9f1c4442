// conv1's kernels as a picture (the paper's Figure 3).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "alexnet/error.h"
#include "alexnet/plots.h"

namespace alexnet {

cv::Point FilterGrid::tile(int tower, int i) const {
  const int row = i / columns, column = i % columns;
  return {kFilterGap + column * (side + kFilterGap),
          kFilterGap + tower * (rows_per_tower * (side + kFilterGap) + kFilterTowerGap) +
              row * (side + kFilterGap)};
}

FilterGrid filter_grid(int kernels, int kernel_size, int towers) {
  if (kernels < 1 || kernel_size < 1 || towers < 1 || kernels % towers != 0)
    throw std::logic_error("filter_grid: bad kernel count, size or towers");
  FilterGrid g;
  g.towers = towers;
  g.per_tower = kernels / towers;
  g.columns = std::min(16, g.per_tower);
  g.rows_per_tower = (g.per_tower + g.columns - 1) / g.columns;
  g.kernel_size = kernel_size;
  g.scale = (40 + kernel_size - 1) / kernel_size;
  g.side = kernel_size * g.scale;
  g.width = kFilterGap + g.columns * (g.side + kFilterGap);
  g.height = kFilterGap + towers * g.rows_per_tower * (g.side + kFilterGap) +
             (towers - 1) * kFilterTowerGap;
  return g;
}

cv::Mat draw_filters(const std::vector<float>& weights, int kernels, int kernel_size, int towers) {
  const FilterGrid g = filter_grid(kernels, kernel_size, towers);
  const int S = kernel_size;
  const size_t per_kernel = static_cast<size_t>(3) * S * S;
  if (weights.size() != per_kernel * static_cast<size_t>(kernels))
    throw Error("conv1.weight has " + std::to_string(weights.size()) + " values, not " +
                std::to_string(kernels) + " x 3 x " + std::to_string(S) + " x " +
                std::to_string(S) + " (a picture needs RGB kernels)");
  cv::Mat img(g.height, g.width, CV_8UC3, cv::Scalar(255, 255, 255));
  for (int k = 0; k < kernels; ++k) {
    const float* w = weights.data() + static_cast<size_t>(k) * per_kernel;
    const auto [lo, hi] = std::minmax_element(w, w + per_kernel);
    const double range = static_cast<double>(*hi) - static_cast<double>(*lo);
    const cv::Point at = g.tile(k / g.per_tower, k % g.per_tower);
    for (int y = 0; y < g.side; ++y)
      for (int x = 0; x < g.side; ++x) {
        auto& pixel = img.at<cv::Vec3b>(at.y + y, at.x + x);
        for (int c = 0; c < 3; ++c) {
          const double v = w[(static_cast<size_t>(c) * S + y / g.scale) * S + x / g.scale];
          pixel[c] = range > 0 ? static_cast<uint8_t>(std::lround(255.0 * (v - *lo) / range)) : 128;
        }
      }
  }
  return img;
}

}  // namespace alexnet

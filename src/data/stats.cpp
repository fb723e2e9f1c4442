// Input statistics: the paper's "mean activity over the training set" per pixel, and the RGB
// covariance whose principal components drive the PCA lighting augmentation.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>

#include "alexnet/data.h"
#include "alexnet/error.h"
#include "alexnet/image.h"
#include "alexnet/safetensors.h"
#include "alexnet/thread_pool.h"

namespace alexnet {
namespace {

// Eigen-decomposition of a symmetric 3x3 matrix by Jacobi rotations; columns of v are the
// eigenvectors, sorted by descending eigenvalue.
void symmetric_eigen3(std::array<double, 9> a, std::array<double, 3>& w, std::array<double, 9>& v) {
  v = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  for (int sweep = 0; sweep < 64; ++sweep) {
    const double off = a[1] * a[1] + a[2] * a[2] + a[5] * a[5];
    if (off < 1e-30) break;
    for (int p = 0; p < 2; ++p)
      for (int q = p + 1; q < 3; ++q) {
        const double apq = a[p * 3 + q];
        if (std::abs(apq) < 1e-300) continue;
        const double theta = (a[q * 3 + q] - a[p * 3 + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < 3; ++k) {  // a <- J^T a J
          const double akp = a[k * 3 + p], akq = a[k * 3 + q];
          a[k * 3 + p] = c * akp - s * akq;
          a[k * 3 + q] = s * akp + c * akq;
        }
        for (int k = 0; k < 3; ++k) {
          const double apk = a[p * 3 + k], aqk = a[q * 3 + k];
          a[p * 3 + k] = c * apk - s * aqk;
          a[q * 3 + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < 3; ++k) {
          const double vkp = v[k * 3 + p], vkq = v[k * 3 + q];
          v[k * 3 + p] = c * vkp - s * vkq;
          v[k * 3 + q] = s * vkp + c * vkq;
        }
      }
  }
  std::array<int, 3> order = {0, 1, 2};
  std::sort(order.begin(), order.end(), [&](int i, int j) { return a[i * 3 + i] > a[j * 3 + j]; });
  const auto vv = v;
  for (int k = 0; k < 3; ++k) {
    w[k] = a[order[k] * 3 + order[k]];
    for (int r = 0; r < 3; ++r) v[r * 3 + k] = vv[r * 3 + order[k]];
  }
}

}  // namespace

DataStats compute_stats(const DataSource& source, int64_t max_images, int workers,
                        const std::function<void(int64_t, int64_t)>& progress) {
  const int S = source.image_size();
  const int64_t count = std::min(source.size(), max_images);
  if (count < 1) throw Error("cannot compute input statistics of an empty dataset");
  // A sample spread evenly over the dataset: its order groups the classes together.
  auto sample = [&](int64_t i) { return count == source.size() ? i : i * source.size() / count; };
  const size_t plane = static_cast<size_t>(S) * S, pixels = 3 * plane;

  // Sums per fixed chunk of images, added to the totals in chunk order: the result does not
  // depend on the number of threads. Chunks go in waves of `workers`, so memory stays bounded.
  struct Partial {
    std::vector<double> sum;  // (3, S, S)
    std::array<double, 9> outer{};
    std::array<double, 3> rgb{};
    int64_t images = 0;
    std::vector<BadSample> bad;
  };
  constexpr int64_t kChunk = 64;
  const int64_t chunks = (count + kChunk - 1) / kChunk;
  const int wave = std::max(1, workers);
  std::vector<Partial> partial(static_cast<size_t>(wave));
  std::vector<double> total(pixels, 0.0);
  std::array<double, 9> xx{};
  std::array<double, 3> x{};
  DataStats st;
  for (int64_t first = 0; first < chunks; first += wave) {
    const int64_t in_wave = std::min<int64_t>(wave, chunks - first);
    parallel_for(in_wave, workers, [&](int64_t w) {
      Partial& p = partial[static_cast<size_t>(w)];
      p.sum.assign(pixels, 0.0);
      p.outer.fill(0);
      p.rgb.fill(0);
      p.images = 0;
      p.bad.clear();
      std::vector<uint8_t> image(pixels);
      const int64_t c = first + w;
      for (int64_t i = c * kChunk; i < std::min(count, (c + 1) * kChunk); ++i) {
        try {
          source.load(sample(i), image.data());
        } catch (const BadImage& e) {
          p.bad.push_back({sample(i), source.describe(sample(i)), e.what()});
          continue;
        }
        ++p.images;
        for (size_t j = 0; j < plane; ++j) {  // image (S, S, 3) -> sums (3, S, S)
          const double px[3] = {double(image[3 * j]), double(image[3 * j + 1]),
                                double(image[3 * j + 2])};
          for (int a = 0; a < 3; ++a) {
            p.sum[static_cast<size_t>(a) * plane + j] += px[a];
            p.rgb[static_cast<size_t>(a)] += px[a];
            for (int b = 0; b < 3; ++b) p.outer[static_cast<size_t>(a * 3 + b)] += px[a] * px[b];
          }
        }
      }
    });
    for (int64_t w = 0; w < in_wave; ++w) {
      const Partial& p = partial[static_cast<size_t>(w)];
      for (size_t j = 0; j < pixels; ++j) total[j] += p.sum[j];
      for (size_t a = 0; a < 9; ++a) xx[a] += p.outer[a];
      for (size_t a = 0; a < 3; ++a) x[a] += p.rgb[a];
      st.images += p.images;
      st.skipped.insert(st.skipped.end(), p.bad.begin(), p.bad.end());
    }
    if (progress) progress(std::min(count, (first + in_wave) * kChunk), count);
  }
  if (st.images == 0) throw Error("not one image of the dataset could be decoded");

  st.size = S;
  st.mean.resize(pixels);
  for (size_t j = 0; j < pixels; ++j)
    st.mean[j] = static_cast<float>(total[j] / static_cast<double>(st.images));
  const double n = static_cast<double>(st.images) * static_cast<double>(plane);
  std::array<double, 9> cov{};
  for (size_t a = 0; a < 3; ++a)
    for (size_t b = 0; b < 3; ++b) cov[a * 3 + b] = xx[a * 3 + b] / n - (x[a] / n) * (x[b] / n);
  std::array<double, 3> w{};
  std::array<double, 9> v{};
  symmetric_eigen3(cov, w, v);
  st.eigval.assign(w.begin(), w.end());
  st.eigvec.assign(v.begin(), v.end());
  return st;
}

std::vector<SafetensorsView> stats_views(const DataStats& st) {
  const int64_t S = st.size;
  return {{"data.mean", "F32", {3, S, S}, st.mean.data(), st.mean.size() * sizeof(float)},
          {"data.pca_eigval", "F32", {3}, st.eigval.data(), st.eigval.size() * sizeof(float)},
          {"data.pca_eigvec", "F32", {3, 3}, st.eigvec.data(), st.eigvec.size() * sizeof(float)}};
}

void save_stats(const std::string& path, const DataStats& st) {
  write_safetensors(path, stats_views(st),
                    {{"format", "alexnet-stats/1"}, {"images", std::to_string(st.images)}});
}

DataStats stats_from(const SafetensorsFile& file, const std::string& origin) {
  auto get = [&](const char* name, size_t rank) -> const SafetensorsTensor& {
    const auto* t = file.find(name);
    if (!t) throw Error(origin + " has no tensor '" + name + "'");
    if (t->dtype != "F32" || t->shape.size() != rank)
      throw Error(origin + ": '" + name + "' must be F32 of rank " + std::to_string(rank));
    return *t;
  };
  const auto& mean = get("data.mean", 3);
  const auto& eigval = get("data.pca_eigval", 1);
  const auto& eigvec = get("data.pca_eigvec", 2);
  if (mean.shape[0] != 3 || mean.shape[1] != mean.shape[2] || eigval.shape[0] != 3 ||
      eigvec.shape[0] != 3 || eigvec.shape[1] != 3)
    throw Error(origin +
                ": expected data.mean [3, S, S], data.pca_eigval [3], data.pca_eigvec [3, 3]");
  DataStats st;
  st.size = static_cast<int>(mean.shape[1]);
  auto floats = [](const SafetensorsTensor& t) {
    std::vector<float> f(t.data.size() / sizeof(float));
    std::memcpy(f.data(), t.data.data(), t.data.size());
    return f;
  };
  st.mean = floats(mean);
  st.eigval = floats(eigval);
  st.eigvec = floats(eigvec);
  return st;
}

DataStats load_stats(const std::string& path) {
  return stats_from(read_safetensors(path), "statistics file '" + path + "'");
}

}  // namespace alexnet

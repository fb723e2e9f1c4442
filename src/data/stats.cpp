// Input statistics: the paper's "mean activity over the training set" per pixel, and the RGB
// covariance whose principal components drive the PCA lighting augmentation.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "alexnet/data.h"
#include "alexnet/error.h"
#include "alexnet/safetensors.h"
#include "src/data/parallel_for.h"

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

DataStats compute_stats(const DataSource& source, int64_t max_images, int workers) {
  const int S = source.image_size();
  const int64_t count = std::min(source.size(), max_images);
  if (count < 1) throw Error("cannot compute input statistics of an empty dataset");
  const size_t pixels = static_cast<size_t>(3) * S * S;
  // Sums per fixed chunk of images, combined in chunk order: the result does not depend on
  // the number of threads.
  constexpr int64_t kChunk = 64;
  const int64_t chunks = (count + kChunk - 1) / kChunk;
  std::vector<std::vector<double>> sum(static_cast<size_t>(chunks));
  std::vector<std::array<double, 9>> outer(static_cast<size_t>(chunks));
  std::vector<std::array<double, 3>> rgb(static_cast<size_t>(chunks));
  parallel_for(chunks, workers, [&](int64_t c) {
    std::vector<uint8_t> image(pixels);
    auto& s = sum[static_cast<size_t>(c)];
    auto& o = outer[static_cast<size_t>(c)];
    auto& m = rgb[static_cast<size_t>(c)];
    s.assign(pixels, 0.0);
    o.fill(0);
    m.fill(0);
    for (int64_t i = c * kChunk; i < std::min(count, (c + 1) * kChunk); ++i) {
      source.load(i, image.data());
      // image (S, S, 3) -> sums (3, S, S)
      const size_t plane = static_cast<size_t>(S) * S;
      for (size_t j = 0; j < plane; ++j) {
        const double px[3] = {double(image[3 * j]), double(image[3 * j + 1]),
                              double(image[3 * j + 2])};
        for (int a = 0; a < 3; ++a) s[static_cast<size_t>(a) * plane + j] += px[a];
        for (int a = 0; a < 3; ++a) {
          m[a] += px[a];
          for (int b = 0; b < 3; ++b) o[a * 3 + b] += px[a] * px[b];
        }
      }
    }
  });
  std::vector<double> total(pixels, 0.0);
  std::array<double, 9> xx{};
  std::array<double, 3> x{};
  for (int64_t c = 0; c < chunks; ++c) {
    for (size_t j = 0; j < pixels; ++j) total[j] += sum[static_cast<size_t>(c)][j];
    for (int a = 0; a < 9; ++a) xx[a] += outer[static_cast<size_t>(c)][a];
    for (int a = 0; a < 3; ++a) x[a] += rgb[static_cast<size_t>(c)][a];
  }
  DataStats st;
  st.size = S;
  st.mean.resize(pixels);
  for (size_t j = 0; j < pixels; ++j)
    st.mean[j] = static_cast<float>(total[j] / static_cast<double>(count));
  const double n = static_cast<double>(count) * S * S;
  std::array<double, 9> cov{};
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) cov[a * 3 + b] = xx[a * 3 + b] / n - (x[a] / n) * (x[b] / n);
  std::array<double, 3> w{};
  std::array<double, 9> v{};
  symmetric_eigen3(cov, w, v);
  st.eigval.assign(w.begin(), w.end());
  st.eigvec.assign(v.begin(), v.end());
  return st;
}

DataStats load_stats(const std::string& path) {
  const auto file = read_safetensors(path);
  auto get = [&](const char* name, size_t rank) -> const SafetensorsTensor& {
    const auto* t = file.find(name);
    if (!t) throw Error("statistics file '" + path + "' has no tensor '" + name + "'");
    if (t->dtype != "F32" || t->shape.size() != rank)
      throw Error("statistics file '" + path + "': '" + name + "' must be F32 of rank " +
                  std::to_string(rank));
    return *t;
  };
  const auto& mean = get("data.mean", 3);
  const auto& eigval = get("data.pca_eigval", 1);
  const auto& eigvec = get("data.pca_eigvec", 2);
  if (mean.shape[0] != 3 || mean.shape[1] != mean.shape[2] || eigval.shape[0] != 3 ||
      eigvec.shape[0] != 3 || eigvec.shape[1] != 3)
    throw Error("statistics file '" + path +
                "': expected data.mean [3, S, S], data.pca_eigval [3], data.pca_eigvec [3, 3]");
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

}  // namespace alexnet

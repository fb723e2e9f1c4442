// Input statistics: the mean image and the RGB covariance's eigen-decomposition recovered from
// images whose colours are drawn from a known distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "alexnet/data.h"
#include "alexnet/image.h"

namespace alexnet {
namespace {

// Pixels i.i.d. N(mu, R diag(lambda) R^T), rounded to bytes; every 7th image is bad.
class GaussianColours final : public DataSource {
 public:
  static constexpr int kSize = 32;
  explicit GaussianColours(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  int image_size() const override { return kSize; }
  const std::vector<std::string>& classes() const override { return classes_; }
  int32_t load(int64_t index, uint8_t* image) const override {
    if (index % 7 == 3) throw BadImage("synthetic bad file");
    std::mt19937_64 gen(static_cast<uint64_t>(index) + 1);
    std::normal_distribution<double> z;
    for (int p = 0; p < kSize * kSize; ++p) {
      const double a = std::sqrt(kLambda[0]) * z(gen), b = std::sqrt(kLambda[1]) * z(gen),
                   c = std::sqrt(kLambda[2]) * z(gen);
      for (int ch = 0; ch < 3; ++ch) {
        const double v = kMu[ch] + kR[ch][0] * a + kR[ch][1] * b + kR[ch][2] * c;
        image[p * 3 + ch] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
    }
    return 0;
  }
  static constexpr double kMu[3] = {120, 128, 110};
  static constexpr double kLambda[3] = {900, 225, 64};
  // A rotation: columns are the eigenvectors.
  static constexpr double kR[3][3] = {{0.57735027, -0.70710678, 0.40824829},
                                      {0.57735027, 0.70710678, 0.40824829},
                                      {0.57735027, 0.0, -0.81649658}};

 private:
  int64_t n_;
  std::vector<std::string> classes_ = std::vector<std::string>(1, std::string("only"));
};

TEST(Stats, RecoversAKnownColourCovariance) {
  const GaussianColours source(300);
  int64_t calls = 0, last_done = 0;
  const DataStats st = compute_stats(source, 1000, 2, [&](int64_t done, int64_t total) {
    ++calls;
    EXPECT_EQ(total, 300);
    EXPECT_GE(done, last_done);
    last_done = done;
  });
  EXPECT_GT(calls, 0);
  EXPECT_EQ(last_done, 300);
  // 300 images, 43 of them bad (index % 7 == 3): skipped and listed, not counted.
  EXPECT_EQ(st.skipped.size(), 43u);
  EXPECT_EQ(st.images, 257);
  EXPECT_EQ(st.skipped[0].reason, "synthetic bad file");
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR(st.eigval[static_cast<size_t>(k)], GaussianColours::kLambda[k],
                0.01 * GaussianColours::kLambda[k])
        << "eigenvalue " << k;
    double dot = 0;  // eigenvectors agree up to sign
    for (int c = 0; c < 3; ++c)
      dot += st.eigvec[static_cast<size_t>(c * 3 + k)] * GaussianColours::kR[c][k];
    EXPECT_GT(std::abs(dot), 0.99) << "eigenvector " << k;
  }
  double mean_r = 0;
  for (int j = 0; j < 32 * 32; ++j) mean_r += st.mean[static_cast<size_t>(j)];
  EXPECT_NEAR(mean_r / (32 * 32), GaussianColours::kMu[0], 0.5);
}

TEST(Stats, ASampleIsSpreadOverTheDatasetAndTheResultIgnoresThreads) {
  const GaussianColours source(300);
  const DataStats a = compute_stats(source, 100, 1), b = compute_stats(source, 100, 3);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.eigval, b.eigval);
  // samples 0, 3, 6, ..., 297: spread over the set (the first 100 would end at 94)
  EXPECT_EQ(a.skipped.back().index, 297);
}

}  // namespace
}  // namespace alexnet

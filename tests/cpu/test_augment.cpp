// Augmentation: the fused op against a naive loop from the header's formula, the distribution
// of the random crops, mirrors and lighting shifts, their keying, and the ten test crops.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "alexnet/error.h"
#include "alexnet/rng_streams.h"
#include "kernels/augment.cuh"
#include "kernels/philox.cuh"

namespace alexnet::cpu {
namespace {

using kernels::draw_augment;
using kernels::ten_crop;

constexpr uint64_t kSeed = 0x5eed5eed1234ull;
constexpr uint64_t kEpoch = 7;

// ImageNet's RGB eigen-decomposition as commonly quoted (fb.resnet.torch), pixel scale 0..255:
// a nearly orthogonal, far from diagonal eigenvector matrix. Row c is the colour, column i the
// eigenvector.
constexpr float kEigval[3] = {0.2175f * 255, 0.0188f * 255, 0.0045f * 255};
constexpr float kEigvec[9] = {-0.5675f, 0.7192f,  0.4009f,   //
                              -0.5808f, -0.0045f, -0.8140f,  //
                              -0.5836f, -0.6948f, 0.4203f};

std::vector<uint8_t> random_images(int n, int size, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(0, 255);
  std::vector<uint8_t> v(static_cast<size_t>(n) * size * size * 3);
  for (auto& e : v) e = static_cast<uint8_t>(dist(gen));
  return v;
}

std::vector<float> random_mean(int size, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(0.0f, 255.0f);
  std::vector<float> v(static_cast<size_t>(3) * size * size);
  for (auto& e : v) e = dist(gen);
  return v;
}

// Straight from the header: x' = x0 + (flip ? crop - 1 - x : x), y' = y0 + y,
//   out[n, c, y, x] = (image[n, y', x', c] + rgb_shift[c] - mean[c, y', x']) * scale
template <class T>
std::vector<T> naive_augment(const AugmentGeom& g, const std::vector<uint8_t>& images,
                             const std::vector<float>& mean,
                             const std::vector<AugmentSample>& samples) {
  const int s = g.size, k = g.crop;
  std::vector<T> out(static_cast<size_t>(g.n) * 3 * k * k);
  for (int n = 0; n < g.n; ++n)
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < k; ++y)
        for (int x = 0; x < k; ++x) {
          const AugmentSample& a = samples[static_cast<size_t>(n)];
          const int xs = a.x0 + (a.flip ? k - 1 - x : x);
          const int ys = a.y0 + y;
          const uint8_t pixel = images[static_cast<size_t>(((n * s + ys) * s + xs) * 3 + c)];
          const float m = mean[static_cast<size_t>((c * s + ys) * s + xs)];
          out[static_cast<size_t>(((n * 3 + c) * k + y) * k + x)] =
              (static_cast<T>(pixel) + static_cast<T>(a.rgb_shift[c]) - static_cast<T>(m)) *
              static_cast<T>(g.scale);
        }
  return out;
}

template <class T>
std::vector<T> run_augment(const AugmentGeom& g, const std::vector<uint8_t>& images,
                           const std::vector<float>& mean,
                           const std::vector<AugmentSample>& samples) {
  // NaN everywhere first, so an element the op forgets cannot match by accident.
  std::vector<T> out(static_cast<size_t>(g.n) * 3 * g.crop * g.crop,
                     std::numeric_limits<T>::quiet_NaN());
  augment_batch<T>(g, images.data(), mean.data(), samples.data(), out.data());
  return out;
}

AugmentSample make_sample(int x0, int y0, bool flip, float r, float gr, float b) {
  AugmentSample s;
  s.x0 = x0;
  s.y0 = y0;
  s.flip = flip;
  s.rgb_shift[0] = r;
  s.rgb_shift[1] = gr;
  s.rgb_shift[2] = b;
  return s;
}

template <class T>
void expect_matches_naive(const AugmentGeom& g, const std::vector<AugmentSample>& samples) {
  const auto images = random_images(g.n, g.size, 11);
  const auto mean = random_mean(g.size, 12);
  // Exact equality: the op and the loop do the same three IEEE operations (+, -, *) in the
  // same order and type on the same operands, with no multiply-add a compiler could fuse; any
  // difference is an indexing error, not rounding.
  EXPECT_EQ(run_augment<T>(g, images, mean, samples), naive_augment<T>(g, images, mean, samples));
}

TEST(Augment, BatchMatchesNaiveFormula) {
  // Corners, interior, both mirrors and shifts of both signs; scale not a power of two.
  const std::vector<AugmentSample> small = {
      make_sample(0, 0, false, 0, 0, 0),          make_sample(3, 3, true, 12.5f, -3.25f, 0.7f),
      make_sample(1, 2, true, -20.f, 4.f, 9.1f),  make_sample(2, 0, false, 1.f, 2.f, 3.f),
      make_sample(0, 3, true, 0.f, -0.5f, 0.25f), make_sample(3, 1, false, -7.f, 7.f, -7.f)};
  const AugmentGeom g_small{static_cast<int>(small.size()), 10, 7, 1.0 / 58.4};
  const std::vector<AugmentSample> large = {make_sample(29, 5, true, 8.75f, -1.5f, 3.3f)};
  const AugmentGeom g_large{1, 256, 227, 0.017};
  {
    SCOPED_TRACE("float");
    expect_matches_naive<float>(g_small, small);
    expect_matches_naive<float>(g_large, large);
  }
  {
    SCOPED_TRACE("double");
    expect_matches_naive<double>(g_small, small);
    expect_matches_naive<double>(g_large, large);
  }
}

TEST(Augment, BatchRefusesCropsOutsideTheImage) {
  const auto images = random_images(1, 10, 1);
  const auto mean = random_mean(10, 2);
  std::vector<float> out(3 * 7 * 7);
  const AugmentSample inside = make_sample(3, 3, false, 0, 0, 0);
  EXPECT_NO_THROW(augment_batch<float>(AugmentGeom{1, 10, 7, 1}, images.data(), mean.data(),
                                       &inside, out.data()));
  for (const AugmentSample& bad :
       {make_sample(4, 0, false, 0, 0, 0), make_sample(0, 4, true, 0, 0, 0),
        make_sample(-1, 0, false, 0, 0, 0)})
    EXPECT_THROW(augment_batch<float>(AugmentGeom{1, 10, 7, 1}, images.data(), mean.data(), &bad,
                                      out.data()),
                 Error);
  EXPECT_THROW(augment_batch<float>(AugmentGeom{1, 10, 11, 1}, images.data(), mean.data(), &inside,
                                    out.data()),
               Error);
  EXPECT_THROW(augment_batch<float>(AugmentGeom{1, 10, 0, 1}, images.data(), mean.data(), &inside,
                                    out.data()),
               Error);
}

double chi_square(const std::vector<int64_t>& counts, double expected) {
  double chi2 = 0;
  for (const int64_t c : counts) {
    const double d = static_cast<double>(c) - expected;
    chi2 += d * d / expected;
  }
  return chi2;
}

TEST(Augment, CropOffsetsAreUniformOverAllPositions) {
  // S = 256, crop = 227: 30 x 30 positions, 100 draws expected in each.
  constexpr int kSize = 256, kCrop = 227, kRange = kSize - kCrop + 1;
  constexpr int kDraws = 90000;
  std::vector<int64_t> cells(kRange * kRange, 0), xs(kRange, 0), ys(kRange, 0);
  for (uint32_t id = 0; id < kDraws; ++id) {
    const AugmentSample s =
        draw_augment(kSeed, kEpoch, id, kSize, kCrop, true, true, 0.0f, nullptr, nullptr);
    ASSERT_GE(s.x0, 0);
    ASSERT_LT(s.x0, kRange);
    ASSERT_GE(s.y0, 0);
    ASSERT_LT(s.y0, kRange);
    ++cells[static_cast<size_t>(s.y0 * kRange + s.x0)];
    ++xs[static_cast<size_t>(s.x0)];
    ++ys[static_cast<size_t>(s.y0)];
  }
  // Two-sided at p = 0.001 in each tail (computed from the regularised incomplete gamma; the
  // normal approximation 899 + 3.09 * sqrt(2 * 899) gives 1030.0 for the upper one):
  //   dof 899: 773.64 < chi2 < 1035.75;  dof 29: 10.99 < chi2 < 58.30.
  // The lower bound catches draws that are too even, e.g. cycling through the positions.
  const double joint = chi_square(cells, static_cast<double>(kDraws) / (kRange * kRange));
  const double cx = chi_square(xs, static_cast<double>(kDraws) / kRange);
  const double cy = chi_square(ys, static_cast<double>(kDraws) / kRange);
  EXPECT_GT(joint, 773.64);
  EXPECT_LT(joint, 1035.75);
  for (const double c : {cx, cy}) {
    EXPECT_GT(c, 10.99);
    EXPECT_LT(c, 58.30);
  }
  std::printf("chi2: joint %.1f (dof 899), x %.1f, y %.1f (dof 29)\n", joint, cx, cy);
}

TEST(Augment, MirrorHalfTheTimeAndFixedChoicesWhenOff) {
  constexpr int kDraws = 90000, kRange = 30;
  int64_t flips = 0;
  std::vector<int64_t> joint(2 * kRange * kRange, 0);  // (flip, y0, x0)
  for (uint32_t id = 0; id < kDraws; ++id) {
    const AugmentSample s =
        draw_augment(kSeed, kEpoch, id, 256, 227, true, true, 0.0f, nullptr, nullptr);
    flips += s.flip;
    ++joint[static_cast<size_t>(((s.flip ? 1 : 0) * kRange + s.y0) * kRange + s.x0)];
    const AugmentSample fixed =
        draw_augment(kSeed, kEpoch, id, 256, 227, false, false, 0.1f, kEigval, kEigvec);
    ASSERT_FALSE(fixed.flip);
    ASSERT_EQ(fixed.x0, 14);  // (256 - 227) / 2
    ASSERT_EQ(fixed.y0, 14);
  }
  // Binomial(90000, 1/2): sd 150, so 4 sd is 600.
  EXPECT_NEAR(static_cast<double>(flips), kDraws / 2.0, 600.0);
  // The mirror must not be tied to the crop (as it would be if it reused a crop word's top
  // bit): uniform over all 1800 (flip, y0, x0) cells, two-sided p = 0.001 per tail, dof 1799.
  const double chi2 = chi_square(joint, static_cast<double>(kDraws) / (2 * kRange * kRange));
  EXPECT_GT(chi2, 1619.32);
  EXPECT_LT(chi2, 1990.08);
  std::printf("flips %lld of %d; chi2 (flip, y0, x0) %.1f (dof 1799)\n",
              static_cast<long long>(flips), kDraws, chi2);
  const AugmentSample centre =
      draw_augment(kSeed, kEpoch, 5, 10, 7, false, true, 0.0f, nullptr, nullptr);
  EXPECT_EQ(centre.x0, 1);
  EXPECT_EQ(centre.y0, 1);
}

// The documented lighting draw re-derived in double: g = philox_draw(seed, epoch,
// kAugment + 1, id); Box-Muller with u1 = ((a >> 8) + 1) / 2^24 in (0, 1], u2 = (b >> 8) / 2^24;
// alpha_i = sigma * (z0, z1 from words 0, 1; z2 the cosine branch of words 2, 3).
std::array<double, 3> reference_alpha(uint64_t seed, uint64_t epoch, uint32_t id, double sigma) {
  const kernels::Philox4 g = kernels::philox_draw(seed, epoch, rng::kAugment + 1, id);
  auto normals = [](uint32_t a, uint32_t b, double& z0, double& z1) {
    const double u1 = static_cast<double>((a >> 8) + 1) / 16777216.0;
    const double u2 = static_cast<double>(b >> 8) / 16777216.0;
    const double r = std::sqrt(-2.0 * std::log(u1));
    z0 = r * std::cos(2.0 * std::numbers::pi * u2);
    z1 = r * std::sin(2.0 * std::numbers::pi * u2);
  };
  double z[4];
  normals(g.v[0], g.v[1], z[0], z[1]);
  normals(g.v[2], g.v[3], z[2], z[3]);
  return {sigma * z[0], sigma * z[1], sigma * z[2]};
}

// Solves shift = P diag(lambda) alpha for alpha (Cramer's rule, in double).
std::array<double, 3> recover_alpha(const AugmentSample& s) {
  double m[3][3];
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < 3; ++i) m[r][i] = double{kEigvec[r * 3 + i]} * kEigval[i];
  auto det = [](const double a[3][3]) {
    return a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
           a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
           a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  };
  const double d = det(m);
  std::array<double, 3> alpha{};
  for (int i = 0; i < 3; ++i) {
    double mi[3][3];
    for (int r = 0; r < 3; ++r)
      for (int j = 0; j < 3; ++j) mi[r][j] = j == i ? double{s.rgb_shift[r]} : m[r][j];
    alpha[static_cast<size_t>(i)] = det(mi) / d;
  }
  return alpha;
}

TEST(Augment, LightingShiftIsSumOfAlphaLambdaP) {
  constexpr double kSigma = 0.1;
  for (uint32_t id = 0; id < 2000; ++id) {
    const AugmentSample s = draw_augment(kSeed, kEpoch, id, 256, 227, true, true,
                                         static_cast<float>(kSigma), kEigval, kEigvec);
    const auto alpha = reference_alpha(kSeed, kEpoch, id, kSigma);
    for (int c = 0; c < 3; ++c) {
      double expected = 0, magnitude = 0;
      for (int i = 0; i < 3; ++i) {
        const double term = double{kEigvec[c * 3 + i]} * alpha[static_cast<size_t>(i)] * kEigval[i];
        expected += term;
        // Float Box-Muller: about 1e-7 relative in r and 4e-7 absolute in cos/sin of an angle
        // up to 2 pi, plus the rounding of three products and sums; 1e-5 of each term's size
        // (with |z| + 1 standing in for r) bounds all of it with room to spare.
        magnitude += std::abs(kEigvec[c * 3 + i]) * kEigval[i] * kSigma *
                     (std::abs(alpha[static_cast<size_t>(i)]) / kSigma + 1);
      }
      ASSERT_NEAR(s.rgb_shift[c], expected, 1e-5 * magnitude) << "id " << id << " channel " << c;
    }
    // The lighting draw leaves crop and mirror alone.
    const AugmentSample dark =
        draw_augment(kSeed, kEpoch, id, 256, 227, true, true, 0.0f, nullptr, nullptr);
    ASSERT_EQ(dark.x0, s.x0);
    ASSERT_EQ(dark.y0, s.y0);
    ASSERT_EQ(dark.flip, s.flip);
    for (int c = 0; c < 3; ++c) ASSERT_EQ(dark.rgb_shift[c], 0.0f);
  }
}

TEST(Augment, LightingAlphasAreIndependentNormalsWithStdSigma) {
  constexpr double kSigma = 0.1;
  constexpr int kDraws = 20000;
  double sum[3] = {0, 0, 0}, sq[3] = {0, 0, 0}, cross[3] = {0, 0, 0};
  for (uint32_t id = 0; id < kDraws; ++id) {
    const auto a = recover_alpha(draw_augment(kSeed, kEpoch + 1, id, 256, 227, true, true,
                                              static_cast<float>(kSigma), kEigval, kEigvec));
    for (int i = 0; i < 3; ++i) {
      sum[i] += a[static_cast<size_t>(i)];
      sq[i] += a[static_cast<size_t>(i)] * a[static_cast<size_t>(i)];
      cross[i] += a[static_cast<size_t>(i)] * a[static_cast<size_t>((i + 1) % 3)];
    }
  }
  const double n = kDraws;
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(testing::Message() << "alpha " << i);
    const double mean = sum[i] / n;
    const double var = (sq[i] - n * mean * mean) / (n - 1);
    // 4 standard errors: sigma / sqrt(n) for the mean, sigma^2 sqrt(2 / (n - 1)) for the
    // sample variance of a normal, about sigma^2 / sqrt(n) for a product moment.
    EXPECT_NEAR(mean, 0.0, 4 * kSigma / std::sqrt(n));
    EXPECT_NEAR(var, kSigma * kSigma, 4 * kSigma * kSigma * std::sqrt(2 / (n - 1)));
    EXPECT_NEAR(cross[i] / n, 0.0, 4 * kSigma * kSigma / std::sqrt(n));
    std::printf("alpha %d: mean %.5f, std %.5f, E[a%d a%d] %.6f\n", i, mean, std::sqrt(var), i,
                (i + 1) % 3, cross[i] / n);
  }
}

bool same(const AugmentSample& a, const AugmentSample& b) {
  return a.x0 == b.x0 && a.y0 == b.y0 && a.flip == b.flip && a.rgb_shift[0] == b.rgb_shift[0] &&
         a.rgb_shift[1] == b.rgb_shift[1] && a.rgb_shift[2] == b.rgb_shift[2];
}

AugmentSample draw(uint64_t seed, uint64_t epoch, uint32_t id) {
  return draw_augment(seed, epoch, id, 256, 227, true, true, 0.1f, kEigval, kEigvec);
}

TEST(Augment, DrawIsAFunctionOfSeedEpochAndImage) {
  constexpr int kIds = 1000;
  struct Other {
    uint64_t seed, epoch;
  };
  // Either half of the 64-bit seed and epoch must matter.
  const Other others[] = {{kSeed + 1, kEpoch},
                          {kSeed + (uint64_t{1} << 32), kEpoch},
                          {kSeed, kEpoch + 1},
                          {kSeed, kEpoch + (uint64_t{1} << 32)}};
  for (const Other& o : others) {
    int identical = 0, same_x0 = 0;
    for (uint32_t id = 0; id < kIds; ++id) {
      const AugmentSample a = draw(kSeed, kEpoch, id);
      ASSERT_TRUE(same(a, draw(kSeed, kEpoch, id)));
      const AugmentSample b = draw(o.seed, o.epoch, id);
      identical += same(a, b) ? 1 : 0;
      same_x0 += a.x0 == b.x0 ? 1 : 0;
    }
    // Independent draws: the float shifts never coincide, x0 does 1/30 of the time.
    EXPECT_EQ(identical, 0) << "seed " << o.seed << " epoch " << o.epoch;
    EXPECT_LT(same_x0, kIds / 10) << "seed " << o.seed << " epoch " << o.epoch;
  }
}

TEST(Augment, TenCropsAreTheCornersAndCentreThenMirrored) {
  for (const auto& [size, crop] : {std::array<int, 2>{256, 227}, std::array<int, 2>{10, 7}}) {
    const int f = size - crop;
    const int expected[5][2] = {{0, 0}, {f, 0}, {0, f}, {f, f}, {f / 2, f / 2}};
    for (int k = 0; k < 10; ++k) {
      const AugmentSample s = ten_crop(k, size, crop);
      EXPECT_EQ(s.x0, expected[k % 5][0]) << "k " << k << " size " << size;
      EXPECT_EQ(s.y0, expected[k % 5][1]) << "k " << k << " size " << size;
      EXPECT_EQ(s.flip, k >= 5) << "k " << k;
      for (int c = 0; c < 3; ++c) EXPECT_EQ(s.rgb_shift[c], 0.0f);
    }
  }
}

TEST(Augment, TenCropsThroughTheBatchSeeTheRightPixels) {
  // Pixels encode their position: R = x, G = y, B = (x + 2 y) mod 256; zero mean, scale 1.
  constexpr int kSize = 256, kCrop = 227;
  std::vector<uint8_t> image(static_cast<size_t>(kSize) * kSize * 3);
  for (int y = 0; y < kSize; ++y)
    for (int x = 0; x < kSize; ++x) {
      uint8_t* p = &image[static_cast<size_t>((y * kSize + x) * 3)];
      p[0] = static_cast<uint8_t>(x);
      p[1] = static_cast<uint8_t>(y);
      p[2] = static_cast<uint8_t>((x + 2 * y) % 256);
    }
  std::vector<uint8_t> images;
  std::vector<AugmentSample> samples;
  for (int k = 0; k < 10; ++k) {
    images.insert(images.end(), image.begin(), image.end());
    samples.push_back(ten_crop(k, kSize, kCrop));
  }
  const std::vector<float> mean(static_cast<size_t>(3) * kSize * kSize, 0.0f);
  const auto out = run_augment<float>(AugmentGeom{10, kSize, kCrop, 1.0}, images, mean, samples);
  auto at = [&](int k, int c, int y, int x) {
    return out[static_cast<size_t>(((k * 3 + c) * kCrop + y) * kCrop + x)];
  };
  const int f = kSize - kCrop;
  const int origin[5][2] = {{0, 0}, {f, 0}, {0, f}, {f, f}, {f / 2, f / 2}};
  for (int k = 0; k < 10; ++k) {
    const int x0 = origin[k % 5][0], y0 = origin[k % 5][1];
    for (int y = 0; y < kCrop; ++y)
      for (int x = 0; x < kCrop; ++x) {
        const int sx = x0 + (k >= 5 ? kCrop - 1 - x : x), sy = y0 + y;
        ASSERT_EQ(at(k, 0, y, x), static_cast<float>(sx)) << "k " << k << " y " << y << " x " << x;
        ASSERT_EQ(at(k, 1, y, x), static_cast<float>(sy)) << "k " << k << " y " << y << " x " << x;
        ASSERT_EQ(at(k, 2, y, x), static_cast<float>((sx + 2 * sy) % 256))
            << "k " << k << " y " << y << " x " << x;
      }
  }
  // The mirrored crop's first column is the plain crop's last, in every channel and row.
  for (int k = 0; k < 5; ++k)
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < kCrop; ++y) {
        ASSERT_EQ(at(k + 5, c, y, 0), at(k, c, y, kCrop - 1)) << "k " << k;
        ASSERT_EQ(at(k + 5, c, y, kCrop - 1), at(k, c, y, 0)) << "k " << k;
      }
}

}  // namespace
}  // namespace alexnet::cpu

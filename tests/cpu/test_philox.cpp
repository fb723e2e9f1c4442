// Philox4x32-10: published known answers, the alexnet keying, and the distributions.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/philox.cuh"

namespace alexnet::kernels {
namespace {

void expect_words(const Philox4& got, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  EXPECT_EQ(got.v[0], a);
  EXPECT_EQ(got.v[1], b);
  EXPECT_EQ(got.v[2], c);
  EXPECT_EQ(got.v[3], d);
}

TEST(Philox, KnownAnswersFromRandom123) {
  // Random123's kat_vectors, philox4x32 with 10 rounds: counter, key -> output.
  expect_words(philox4x32_10(Philox4{{0, 0, 0, 0}}, 0, 0), 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu,
               0x9b00dbd8u);
  expect_words(philox4x32_10(Philox4{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
                             0xffffffffu, 0xffffffffu),
               0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu);
  expect_words(philox4x32_10(Philox4{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
                             0xa4093822u, 0x299f31d0u),
               0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u);
}

TEST(Philox, DrawUsesTheDocumentedKeying) {
  // key = (seed lo, seed hi), counter = (element, stream, step lo, step hi); with the third
  // known answer's words placed accordingly.
  const uint64_t seed = 0x299f31d0a4093822ull;
  const uint64_t step = 0x0370734413198a2eull;
  expect_words(philox_draw(seed, step, 0x85a308d3u, 0x243f6a88u), 0xd16cfe09u, 0x94fdccebu,
               0x5001e420u, 0x24126ea1u);
}

TEST(Philox, Uniform01IsInTheHalfOpenUnitInterval) {
  EXPECT_EQ(uniform01(0u), 0.0f);
  EXPECT_LT(uniform01(0xffffffffu), 1.0f);
  EXPECT_EQ(uniform01(0xffffffffu), 1.0f - 0x1p-24f);
  EXPECT_EQ(uniform01(0x80000000u), 0.5f);

  constexpr int kDraws = 100000;
  double sum = 0, sum_sq = 0;
  std::vector<int> bins(10, 0);
  for (uint32_t i = 0; i < kDraws; ++i) {
    const float u = uniform01(philox_draw(7, 3, 1, i).v[0]);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
    sum_sq += static_cast<double>(u) * u;
    ++bins[static_cast<size_t>(u * 10.0f)];
  }
  const double mean = sum / kDraws;
  EXPECT_NEAR(mean, 0.5, 0.005);
  EXPECT_NEAR(sum_sq / kDraws - mean * mean, 1.0 / 12.0, 0.003);
  for (int b : bins) EXPECT_NEAR(b, kDraws / 10, 500);
}

TEST(Philox, BoxMullerGivesStandardNormals) {
  constexpr int kDraws = 50000;  // two calls' worth of normals each: 200000 values
  double sum = 0, sum_sq = 0, sum_4 = 0;
  int n = 0;
  for (uint32_t i = 0; i < kDraws; ++i) {
    const Philox4 r = philox_draw(11, 0, 2, i);
    float z[4];
    box_muller(r.v[0], r.v[1], z[0], z[1]);
    box_muller(r.v[2], r.v[3], z[2], z[3]);
    for (float v : z) {
      ASSERT_TRUE(std::isfinite(v));
      sum += v;
      sum_sq += static_cast<double>(v) * v;
      sum_4 += static_cast<double>(v) * v * v * v;
      ++n;
    }
  }
  const double mean = sum / n;
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(sum_sq / n - mean * mean, 1.0, 0.01);
  EXPECT_NEAR(sum_4 / n, 3.0, 0.1);  // the fourth moment tells a normal from a uniform
}

TEST(Philox, BoxMullerExtremesStayFinite) {
  float z0 = 0, z1 = 0;
  box_muller(0u, 0u, z0, z1);  // u1 = 2^-24: the largest radius
  EXPECT_TRUE(std::isfinite(z0));
  EXPECT_NEAR(z0, std::sqrt(-2.0 * std::log(0x1p-24)), 1e-4);
  box_muller(0xffffffffu, 0x40000000u, z0, z1);  // u1 = 1: radius 0
  EXPECT_EQ(z0, 0.0f);
}

}  // namespace
}  // namespace alexnet::kernels

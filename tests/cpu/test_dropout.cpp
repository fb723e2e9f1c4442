// Dropout: drop rate, determinism in (seed, step, layer), the same mask backward, scaling.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "alexnet/error.h"
#include "kernels/philox.cuh"

namespace alexnet::cpu {
namespace {

constexpr int64_t kCount = 100000;

std::vector<float> run_forward(const DropoutParams& d, int64_t count = kCount) {
  const std::vector<float> ones(static_cast<size_t>(count), 1.0f);
  std::vector<float> y(static_cast<size_t>(count));
  dropout_forward(d, count, ones.data(), y.data());
  return y;
}

double fraction_zero(const std::vector<float>& y) {
  int64_t zeros = 0;
  for (float v : y) zeros += v == 0.0f ? 1 : 0;
  return static_cast<double>(zeros) / static_cast<double>(y.size());
}

double fraction_differing(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff += (a[i] == 0.0f) != (b[i] == 0.0f) ? 1 : 0;
  return static_cast<double>(diff) / static_cast<double>(a.size());
}

TEST(Dropout, DropsAFractionP) {
  for (const double p : {0.5, 0.2, 0.9}) {
    const DropoutParams d{p, 1234, 7, 3};
    EXPECT_NEAR(fraction_zero(run_forward(d)), p, 0.01) << "p=" << p;
  }
}

TEST(Dropout, KeptUnitsAreScaledByOneOverOneMinusP) {
  const DropoutParams d{0.25, 99, 1, 0};
  std::vector<double> x(1000), y(1000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.5 + static_cast<double>(i);
  dropout_forward(d, 1000, x.data(), y.data());
  int kept = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (y[i] == 0.0) continue;
    ++kept;
    EXPECT_NEAR(y[i], x[i] / 0.75, 1e-12 * x[i]);
  }
  EXPECT_GT(kept, 650);
  EXPECT_LT(kept, 850);
  // The expectation is preserved: E[y] = x.
  double mean = 0;
  for (float v : run_forward(d)) mean += v;
  EXPECT_NEAR(mean / kCount, 1.0, 0.01);
}

TEST(Dropout, MaskIsAFunctionOfSeedStepLayerAndIndex) {
  const DropoutParams d{0.5, 42, 1000, 2};
  const auto a = run_forward(d);
  EXPECT_EQ(a, run_forward(d));
  // Element i does not depend on how many elements the call has.
  const auto prefix = run_forward(d, 777);
  EXPECT_EQ(prefix, std::vector<float>(a.begin(), a.begin() + 777));
  // Changing any of seed, step (also only its high word) or layer gives an unrelated mask:
  // two independent masks of p = 0.5 differ in half the places.
  for (const DropoutParams& other :
       {DropoutParams{0.5, 43, 1000, 2}, DropoutParams{0.5, 42 + (uint64_t{1} << 32), 1000, 2},
        DropoutParams{0.5, 42, 1001, 2}, DropoutParams{0.5, 42, 1000 + (uint64_t{1} << 32), 2},
        DropoutParams{0.5, 42, 1000, 3}})
    EXPECT_NEAR(fraction_differing(a, run_forward(other)), 0.5, 0.02)
        << "seed " << other.seed << " step " << other.step << " layer " << other.layer;
}

TEST(Dropout, NeighboursAreIndependent) {
  // Adjacent elements must not share a draw: both are dropped with probability p^2.
  for (const double p : {0.5, 0.3}) {
    const auto y = run_forward(DropoutParams{p, 8, 9, 10});
    int64_t both = 0;
    for (size_t i = 0; i + 1 < y.size(); ++i) both += y[i] == 0.0f && y[i + 1] == 0.0f ? 1 : 0;
    EXPECT_NEAR(static_cast<double>(both) / static_cast<double>(y.size() - 1), p * p, 0.01);
  }
}

TEST(Dropout, MaskFollowsTheDocumentedKeying) {
  // keep(i) = uniform01(word 0 of Philox(key = seed, counter = (i, layer, step lo, step hi)))
  // >= p: the contract that lets the GPU and a resumed run draw the same masks.
  const DropoutParams d{0.5, 0x123456789abcdefull, (uint64_t{3} << 32) + 5, 6};
  const auto y = run_forward(d, 4096);
  for (uint32_t i = 0; i < 4096; ++i) {
    const bool keep = kernels::uniform01(kernels::philox_draw(d.seed, d.step, d.layer, i).v[0]) >=
                      static_cast<float>(d.p);
    EXPECT_EQ(y[i] != 0.0f, keep) << i;
  }
}

// A rank's share of a larger batch (first > 0) draws exactly the masks of those elements of the
// whole batch, forward and backward, and the 32-bit counter's end is refused.
TEST(Dropout, AShareDrawsTheWholeBatchsMasks) {
  const DropoutParams whole{0.5, 77, 12, 4};
  const auto all = run_forward(whole, 4096);
  DropoutParams share = whole;
  share.first = 1000;
  const auto part = run_forward(share, 3096);
  for (size_t i = 0; i < 3096; ++i) ASSERT_EQ(part[i], all[1000 + i]) << i;
  std::vector<float> dy(3096, 1.0f);
  dropout_backward(share, 3096, dy.data(), dy.data());
  for (size_t i = 0; i < 3096; ++i) ASSERT_EQ(dy[i], all[1000 + i]) << i;
  share.first = (int64_t{1} << 32) - 10;
  EXPECT_NO_THROW(share.check(10));
  EXPECT_THROW(share.check(11), Error);
}

TEST(Dropout, BackwardUsesTheForwardMask) {
  const DropoutParams d{0.5, 5, 17, 1};
  const auto y = run_forward(d, 5000);
  std::vector<float> dy(5000), dx(5000);
  for (size_t i = 0; i < dy.size(); ++i) dy[i] = 1.0f + static_cast<float>(i % 7);
  dropout_backward(d, 5000, dy.data(), dx.data());
  for (size_t i = 0; i < dy.size(); ++i) {
    if (y[i] == 0.0f)
      EXPECT_EQ(dx[i], 0.0f) << i;
    else
      EXPECT_EQ(dx[i], 2.0f * dy[i]) << i;
  }
  // In place, as the op layer uses it.
  dropout_backward(d, 5000, dy.data(), dy.data());
  EXPECT_EQ(dy, dx);
}

TEST(Dropout, PZeroIsTheIdentityAndPOneDropsEverything) {
  std::vector<double> x = {1.5, -2.0, 1e30, -0.0, 3.0};
  std::vector<double> y(5);
  dropout_forward(DropoutParams{0.0, 1, 2, 3}, 5, x.data(), y.data());
  EXPECT_EQ(y, x);
  x[0] = INFINITY;
  dropout_forward(DropoutParams{1.0, 1, 2, 3}, 5, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{0, 0, 0, 0, 0}));  // exactly 0, also for inf
}

TEST(Dropout, RejectsPOutsideTheUnitInterval) {
  float x = 1, y = 0;
  EXPECT_THROW(dropout_forward(DropoutParams{-0.1, 0, 0, 0}, 1, &x, &y), Error);
  EXPECT_THROW(dropout_forward(DropoutParams{1.5, 0, 0, 0}, 1, &x, &y), Error);
  EXPECT_THROW(dropout_backward(DropoutParams{NAN, 0, 0, 0}, 1, &x, &y), Error);
}

}  // namespace
}  // namespace alexnet::cpu

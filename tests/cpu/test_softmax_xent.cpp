// Softmax cross-entropy: hand-computed cases, top-1/top-5 counting, overflow, gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "alexnet/error.h"
#include "tests/cpu/test_util.h"

namespace alexnet::cpu {
namespace {

using test::kFdAtol;
using test::max_rel_error;
using test::numeric_gradient;
using test::random_vector;

TEST(SoftmaxXent, HandComputedTwoSamples) {
  // Sample 0: logits (0, ln 2, 0), label 1: exp = (1, 2, 1), softmax (1/4, 1/2, 1/4),
  //           loss ln 2 = 0.6931471805599453, top-1 hit.
  // Sample 1: logits (3, 1, 2), label 2: softmax = e^(3,1,2) / (e^3 + e + e^2)
  //           = (0.6652409557748219, 0.09003057317038046, 0.24472847105479767),
  //           loss = ln(e^3 + e + e^2) - 2 = 3 + ln(1 + e^-2 + e^-1) - 2 = 1.4076059644443801,
  //           top-1 miss (class 0 scores above it), top-5 hit (only 3 classes).
  // dlogits = (softmax - onehot) / 2.
  const std::vector<double> logits = {0, std::log(2.0), 0, 3, 1, 2};
  const std::vector<int32_t> labels = {1, 2};
  std::vector<double> dlogits(6), probs(6);
  const XentResult r =
      softmax_xent(2, 3, logits.data(), labels.data(), dlogits.data(), probs.data());
  EXPECT_NEAR(r.loss_sum, 0.6931471805599453 + 1.4076059644443801, 1e-14);
  EXPECT_EQ(r.top1, 1);
  EXPECT_EQ(r.top5, 2);
  const std::vector<double> p = {
      0.25, 0.5, 0.25, 0.6652409557748219, 0.09003057317038046, 0.24472847105479767};
  const std::vector<double> g = {
      0.125, -0.25, 0.125, 0.33262047788741095, 0.04501528658519023, -0.37763576447260117};
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_NEAR(probs[i], p[i], 1e-15) << i;
    EXPECT_NEAR(dlogits[i], g[i], 1e-15) << i;
  }

  const std::vector<float> lf(logits.begin(), logits.end());
  std::vector<float> df(6);
  const XentResult rf = softmax_xent<float>(2, 3, lf.data(), labels.data(), df.data(), nullptr);
  EXPECT_NEAR(rf.loss_sum, 0.6931471805599453 + 1.4076059644443801, 1e-6);
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(df[i], g[i], 1e-7) << i;
}

// A rank's share of a batch 3 times larger (mean_over = 3n): the gradient of the global batch's
// mean loss, a third of the share's own mean; the loss and hits are the share's sums as before.
TEST(SoftmaxXent, AShareTakesTheGlobalBatchsMean) {
  const std::vector<double> logits = {0, std::log(2.0), 0, 3, 1, 2};
  const std::vector<int32_t> labels = {1, 2};
  std::vector<double> own(6), share(6);
  const XentResult a =
      softmax_xent<double>(2, 3, logits.data(), labels.data(), own.data(), nullptr);
  const XentResult b =
      softmax_xent<double>(2, 3, logits.data(), labels.data(), share.data(), nullptr, 6);
  EXPECT_EQ(a.loss_sum, b.loss_sum);
  EXPECT_EQ(a.top1, b.top1);
  // own = (softmax - onehot) / 2 (hand-computed above: 0.125, -0.25, ...); share = ... / 6.
  EXPECT_NEAR(share[0], 0.125 / 3, 1e-15);
  EXPECT_NEAR(share[1], -0.25 / 3, 1e-15);
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(share[i], own[i] / 3, 1e-15) << i;
}

TEST(SoftmaxXent, TopKCountsClassesStrictlyAbove) {
  // K = 8, one sample per case; the label is class 0 with logit 1.
  //   a: 4 classes above (2), the rest below: top-5 hit, top-1 miss
  //   b: 5 classes above: top-5 miss
  //   c: 4 above, 3 tied with the label: ties do not count, top-5 hit
  //   d: 7 tied with the label, none above: top-1 and top-5 hit
  const std::vector<double> logits = {
      1, 2, 2, 2, 2, 0, 0, 0,  // a
      1, 2, 2, 2, 2, 2, 0, 0,  // b
      1, 2, 2, 2, 2, 1, 1, 1,  // c
      1, 1, 1, 1, 1, 1, 1, 1,  // d
  };
  const std::vector<int32_t> labels = {0, 0, 0, 0};
  const XentResult r = softmax_xent<double>(4, 8, logits.data(), labels.data(), nullptr, nullptr);
  EXPECT_EQ(r.top1, 1);  // d
  EXPECT_EQ(r.top5, 3);  // a, c, d

  // Fewer than five classes: the label is always in the top 5, even when last.
  const std::vector<float> small = {5, 4, 3, 2};
  const std::vector<int32_t> last = {3};
  const XentResult s = softmax_xent<float>(1, 4, small.data(), last.data(), nullptr, nullptr);
  EXPECT_EQ(s.top1, 0);
  EXPECT_EQ(s.top5, 1);
}

TEST(SoftmaxXent, HugeLogitsDoNotOverflow) {
  // (1000, 0, -1000): softmax = (1, e^-1000, e^-2000) to double precision.
  // Label 0: loss = ln(1 + e^-1000 + e^-2000) = 0 in double; label 2: loss = 2000.
  const std::vector<float> logits = {1000, 0, -1000, 1000, 0, -1000};
  const std::vector<int32_t> labels = {0, 2};
  std::vector<float> dlogits(6), probs(6);
  const XentResult r =
      softmax_xent(2, 3, logits.data(), labels.data(), dlogits.data(), probs.data());
  EXPECT_EQ(r.loss_sum, 2000.0);
  EXPECT_EQ(r.top1, 1);
  for (float v : dlogits) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(probs[0], 1.0f);
  EXPECT_EQ(probs[2], 0.0f);
  EXPECT_EQ(dlogits[0], 0.0f);   // (1 - 1) / 2
  EXPECT_EQ(dlogits[3], 0.5f);   // (1 - 0) / 2
  EXPECT_EQ(dlogits[5], -0.5f);  // (0 - 1) / 2
}

TEST(SoftmaxXent, GradientMatchesFiniteDifferences) {
  const int n = 4, k = 7;
  auto logits = random_vector<double>(n * k, 31, -3.0, 3.0);
  const std::vector<int32_t> labels = {0, 6, 3, 3};
  auto mean_loss = [&] {
    return softmax_xent<double>(n, k, logits.data(), labels.data(), nullptr, nullptr).loss_sum / n;
  };
  std::vector<double> dlogits(n * k);
  softmax_xent<double>(n, k, logits.data(), labels.data(), dlogits.data(), nullptr);
  EXPECT_LT(max_rel_error(dlogits, numeric_gradient(logits, mean_loss), kFdAtol), 1e-6);
}

TEST(SoftmaxXent, RejectsLabelsOutsideTheClasses) {
  const std::vector<float> logits(6, 0.0f);
  for (const int32_t bad : {-1, 3, 1000}) {
    const std::vector<int32_t> labels = {0, bad};
    EXPECT_THROW(softmax_xent<float>(2, 3, logits.data(), labels.data(), nullptr, nullptr), Error)
        << bad;
  }
}

}  // namespace
}  // namespace alexnet::cpu

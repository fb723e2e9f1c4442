// Momentum SGD: the paper's rule, stepped by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "kernels/for_each.h"
#include "kernels/sgd.cuh"

namespace alexnet::cpu {
namespace {

// lr 0.01, momentum 0.9, decay 0.0005 (the paper's), w0 = 1, v0 = 0:
// step 1, g = 0.5:   v = 0.9*0 - 0.0005*0.01*1 - 0.01*0.5 = -0.000005 - 0.005 = -0.005005
//                    w = 1 - 0.005005 = 0.994995
// step 2, g = -0.25: v = 0.9*(-0.005005) - 0.0005*0.01*0.994995 - 0.01*(-0.25)
//                      = -0.0045045 - 0.000004974975 + 0.0025 = -0.002009474975
//                    w = 0.994995 - 0.002009474975 = 0.992985525025
// A second element (w0 = -2, v0 = 0.1, g = 0 then 1) checks the indexing:
// step 1: v = 0.09 + 0.00001 - 0 = 0.09001;            w = -1.90999
// step 2: v = 0.081009 + 0.0000095499500 - 0.01 = 0.0710185499500;  w = -1.8389714500500
template <class T>
void two_steps(double tol) {
  std::vector<T> w = {T(1), T(-2)}, v = {T(0), T(0.1)};
  const std::vector<T> g1 = {T(0.5), T(0)}, g2 = {T(-0.25), T(1)};
  sgd_update(2, 0.01, 0.9, 0.0005, w.data(), v.data(), g1.data());
  EXPECT_NEAR(v[0], -0.005005, tol);
  EXPECT_NEAR(w[0], 0.994995, tol);
  EXPECT_NEAR(v[1], 0.09001, tol);
  EXPECT_NEAR(w[1], -1.90999, tol);
  sgd_update(2, 0.01, 0.9, 0.0005, w.data(), v.data(), g2.data());
  EXPECT_NEAR(v[0], -0.002009474975, tol);
  EXPECT_NEAR(w[0], 0.992985525025, tol);
  EXPECT_NEAR(v[1], 0.07101854995, tol);
  EXPECT_NEAR(w[1], -1.83897145005, tol);
}

TEST(Sgd, TwoHandComputedStepsDouble) {
  two_steps<double>(1e-15);
}
TEST(Sgd, TwoHandComputedStepsFloat) {
  two_steps<float>(1e-6);
}

// The GPU's one-launch functor, run here over the same segments: the segment search must send
// every element to its own tensor, including around an empty tensor.
TEST(Sgd, OneLaunchFunctorFindsEachElementsTensor) {
  std::vector<float> w = {1, 2, 3, 4, 5, 6}, v(6, 0.0f), g = {1, 1, 1, 1, 1, 1};
  std::vector<float> w_ref = w, v_ref = v;
  // tensors [0, 2), [2, 2) (empty), [2, 5), [5, 6) with decays 0, 9, 0.5, 0
  const std::vector<kernels::SgdSegment<float>> segments = {
      {w.data(), v.data(), g.data(), 0, 0.0f},
      {w.data() + 2, v.data() + 2, g.data() + 2, 2, 9.0f},
      {w.data() + 2, v.data() + 2, g.data() + 2, 2, 0.5f},
      {w.data() + 5, v.data() + 5, g.data() + 5, 5, 0.0f}};
  kernels::for_each_index(6, kernels::SgdUpdateAll<float>{0.1f, 0.9f, segments.data(), 4});
  const double decays[] = {0, 0, 0.5, 0.5, 0.5, 0};
  for (int i = 0; i < 6; ++i) {
    sgd_update(1, 0.1, 0.9, decays[i], w_ref.data() + i, v_ref.data() + i, g.data() + i);
    EXPECT_EQ(w[static_cast<size_t>(i)], w_ref[static_cast<size_t>(i)]) << "element " << i;
    EXPECT_EQ(v[static_cast<size_t>(i)], v_ref[static_cast<size_t>(i)]) << "element " << i;
  }
}

// LARS, one step by hand: lr 2, momentum 0.9, eta 0.001, decay 0.0005.
// A weight w = (3, 4), grad = (0.6, 0.8), v = (0.1, -0.1): |w| = 5, |grad| = 1, so the trust
// ratio is 0.001 * 5 / (1 + 0.0005 * 5) = 0.005 / 1.0025, and lr * ratio = 0.01 / 1.0025.
// grad + decay * w = 0.2005 * w, so the step is lr * ratio * 0.2005 * w = 0.002 * w:
//   v = 0.09 - 0.006 = 0.084,  w = 3.084;   v = -0.09 - 0.008 = -0.098,  w = 3.902.
// A bias (eta 0, no decay) w = 1, grad = 0.5, v = 0: plain SGD, v = -1, w = 0.
// A weight with no gradient, w = 2, v = 0: ratio 1 (a zero norm), v = -0.0005 * 2 * 2 = -0.002.
template <class T>
void one_lars_step(double tol) {
  std::vector<T> w = {T(3), T(4), T(1), T(2)}, v = {T(0.1), T(-0.1), T(0), T(0)};
  const std::vector<T> g = {T(0.6), T(0.8), T(0.5), T(0)};
  const std::vector<kernels::SgdSegment<T>> segments = {
      {w.data(), v.data(), g.data(), 0, T(0.0005), T(0.001)},
      {w.data() + 2, v.data() + 2, g.data() + 2, 2, T(0), T(0)},
      {w.data() + 3, v.data() + 3, g.data() + 3, 3, T(0.0005), T(0.001)}};
  std::vector<T> scales(3);
  lars_scales(segments.data(), 3, 4, scales.data());
  EXPECT_NEAR(scales[0], 0.005 / 1.0025, tol * 0.005);
  EXPECT_EQ(scales[1], T(1));
  EXPECT_EQ(scales[2], T(1));
  sgd_update_all(2.0, 0.9, segments.data(), 3, 4, scales.data());
  const double v_want[] = {0.084, -0.098, -1, -0.002}, w_want[] = {3.084, 3.902, 0, 1.998};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(v[i], v_want[i], tol) << "element " << i;
    EXPECT_NEAR(w[i], w_want[i], tol) << "element " << i;
  }
}

TEST(Sgd, OneHandComputedLarsStepDouble) {
  one_lars_step<double>(1e-15);
}
TEST(Sgd, OneHandComputedLarsStepFloat) {
  one_lars_step<float>(1e-6);
}

TEST(Sgd, LarsTrustRatioIsOneWhenANormIsZero) {
  EXPECT_EQ(kernels::lars_trust_ratio(0.001, 0.0, 1.0, 0.0005), 1.0);
  EXPECT_EQ(kernels::lars_trust_ratio(0.001, 1.0, 0.0, 0.0005), 1.0);
  EXPECT_DOUBLE_EQ(kernels::lars_trust_ratio(0.001, 2.0, 3.0, 0.5), 0.001 * 2 / (3 + 0.5 * 2));
}

TEST(Sgd, ZeroCountTouchesNothing) {
  double w = 3, v = 4, g = 5;
  sgd_update(0, 0.1, 0.9, 0.1, &w, &v, &g);
  EXPECT_EQ(w, 3);
  EXPECT_EQ(v, 4);
}

}  // namespace
}  // namespace alexnet::cpu

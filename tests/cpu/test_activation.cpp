// ReLU and tanh: hand values and finite-difference gradients; the GPU's fused conv epilogue
// (bias + activation in one pass) against adding the bias and activating by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "kernels/activation.cuh"
#include "kernels/for_each.h"
#include "tests/cpu/test_util.h"

namespace alexnet::cpu {
namespace {

using test::kFdAtol;
using test::max_rel_error;
using test::numeric_gradient;
using test::random_vector;
using test::weighted_sum;

std::vector<double> forward(Activation a, const std::vector<double>& x) {
  std::vector<double> y(x.size());
  activation_forward(a, static_cast<int64_t>(x.size()), x.data(), y.data());
  return y;
}

TEST(Activation, HandValues) {
  const std::vector<float> x = {-2.0f, -0.0f, 0.0f, 0.5f, 3.0f};
  std::vector<float> y(x.size());
  activation_forward(Activation::relu, 5, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{0.0f, 0.0f, 0.0f, 0.5f, 3.0f}));
  activation_forward(Activation::tanh, 5, x.data(), y.data());
  EXPECT_FLOAT_EQ(y[0], -0.96402758007581690f);  // tanh(2) = 0.9640275800758169
  EXPECT_FLOAT_EQ(y[2], 0.0f);
  EXPECT_FLOAT_EQ(y[3], 0.46211715726000974f);  // tanh(0.5)
}

TEST(Activation, ReluBackwardPassesOnlyWherePositive) {
  const std::vector<float> y = {0.0f, 2.0f, 0.0f, 0.25f};
  const std::vector<float> dy = {1.0f, 2.0f, 3.0f, 4.0f};
  std::vector<float> dx(4, -7.0f);
  activation_backward(Activation::relu, 4, y.data(), dy.data(), dx.data());
  EXPECT_EQ(dx, (std::vector<float>{0.0f, 2.0f, 0.0f, 4.0f}));
}

TEST(Activation, InPlace) {
  std::vector<double> x = {-1.0, 0.5, 2.0};
  activation_forward(Activation::relu, 3, x.data(), x.data());
  EXPECT_EQ(x, (std::vector<double>{0.0, 0.5, 2.0}));
  std::vector<double> g = {5.0, 6.0, 7.0};
  activation_backward(Activation::relu, 3, x.data(), g.data(), g.data());
  EXPECT_EQ(g, (std::vector<double>{0.0, 6.0, 7.0}));
}

void check_gradient(Activation a, std::vector<double> x) {
  const auto w = random_vector<double>(x.size(), 11);
  const auto y = forward(a, x);
  std::vector<double> dx(x.size());
  activation_backward(a, static_cast<int64_t>(x.size()), y.data(), w.data(), dx.data());
  const auto numeric = numeric_gradient(x, [&] { return weighted_sum(forward(a, x), w); });
  EXPECT_LT(max_rel_error(dx, numeric, kFdAtol), 1e-6);
}

TEST(Activation, ReluGradientMatchesFiniteDifferences) {
  // Away from the kink at 0, where the central difference is not the derivative.
  auto x = random_vector<double>(200, 3, 0.1, 1.0);
  for (size_t i = 0; i < x.size(); i += 2) x[i] = -x[i];
  check_gradient(Activation::relu, x);
}

TEST(Activation, TanhGradientMatchesFiniteDifferences) {
  check_gradient(Activation::tanh, random_vector<double>(200, 4, -3.0, 3.0));
}

// kernels::BiasActivation over (N=2, K=3, 2x2): element (n, k, y, x) gets bias[k], then the
// activation, exactly as a separate bias add and activation_forward would give it.
TEST(Activation, BiasActivationEpilogueMatchesTwoPasses) {
  const int n = 2, k = 3, plane = 4;
  const auto y0 = random_vector<float>(n * k * plane, 11, -2.0, 2.0);
  const std::vector<float> bias = {0.5f, -1.25f, 0.0f};
  for (const Activation a : {Activation::relu, Activation::tanh})
    for (const bool with_bias : {true, false}) {
      std::vector<float> want = y0;
      for (int i = 0; i < n * k * plane; ++i)
        if (with_bias) want[static_cast<size_t>(i)] += bias[static_cast<size_t>(i / plane % k)];
      activation_forward(a, n * k * plane, want.data(), want.data());
      std::vector<float> got = y0;
      kernels::for_each_index(n * k * plane,
                              kernels::BiasActivation<float>{
                                  a, plane, k, with_bias ? bias.data() : nullptr, got.data()});
      EXPECT_EQ(got, want) << (a == Activation::relu ? "relu" : "tanh") << " bias " << with_bias;
    }
}

}  // namespace
}  // namespace alexnet::cpu

// Overlapping max pooling: naive window loops, a scatter-form backward, ties and
// finite-difference gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "kernels/maxpool.cuh"
#include "tests/cpu/test_util.h"

namespace alexnet::cpu {
namespace {

using test::kFdAtol;
using test::max_rel_error;
using test::numeric_gradient;
using test::random_vector;
using test::weighted_sum;

// Forward by window loops, and backward in the scatter form (each window hands its dy to its
// first maximum), written from the definition. (The CPU backend scatters too, plane by plane;
// CUDA's gather is checked against it below.)
void naive_pool(const PoolGeom& g, const std::vector<double>& x, const std::vector<double>& dy,
                std::vector<double>& y, std::vector<double>& dx) {
  const int ph = (g.h - g.size) / g.stride + 1, pw = (g.w - g.size) / g.stride + 1;
  y.assign(static_cast<size_t>(g.n * g.c * ph * pw), 0.0);
  dx.assign(x.size(), 0.0);
  for (int plane = 0; plane < g.n * g.c; ++plane)
    for (int oy = 0; oy < ph; ++oy)
      for (int ox = 0; ox < pw; ++ox) {
        size_t arg = 0;
        double best = 0;
        bool first = true;
        for (int r = 0; r < g.size; ++r)
          for (int s = 0; s < g.size; ++s) {
            const size_t at =
                static_cast<size_t>((plane * g.h + oy * g.stride + r) * g.w + ox * g.stride + s);
            if (first || x[at] > best) {
              best = x[at];
              arg = at;
              first = false;
            }
          }
        const auto out = static_cast<size_t>((plane * ph + oy) * pw + ox);
        y[out] = best;
        dx[arg] += dy[out];
      }
}

// Distinct values at least 1e-3 apart, so that no finite-difference step changes an argmax.
std::vector<double> distinct_values(size_t count, uint32_t seed) {
  std::vector<double> v(count);
  std::iota(v.begin(), v.end(), 0.0);
  std::shuffle(v.begin(), v.end(), std::mt19937(seed));
  for (auto& e : v) e = e * 1e-3 - 0.5 * static_cast<double>(count) * 1e-3;
  return v;
}

void check_against_naive(const PoolGeom& g) {
  const size_t in = static_cast<size_t>(g.n * g.c * g.h * g.w);
  const size_t out = static_cast<size_t>(g.n * g.c * g.out_h() * g.out_w());
  // Coarse values (multiples of 1/8) so that windows do contain ties; dy in multiples of
  // 1/1024, so that every sum of a few of them is exact in float as in double.
  auto x = random_vector<double>(in, 5, -2.0, 2.0);
  for (auto& e : x) e = std::round(e * 8.0) / 8.0;
  auto dy = random_vector<double>(out, 6);
  for (auto& e : dy) e = std::round(e * 1024.0) / 1024.0;
  std::vector<double> ref_y, ref_dx;
  naive_pool(g, x, dy, ref_y, ref_dx);

  std::vector<double> y(out), dx(in, 123.0);  // dx must be overwritten, not accumulated
  std::vector<int32_t> argmax(out, -1);
  maxpool_forward(g, x.data(), y.data(), argmax.data());
  maxpool_backward(g, argmax.data(), dy.data(), dx.data());
  EXPECT_EQ(y, ref_y);
  EXPECT_EQ(dx, ref_dx);

  const std::vector<float> xf(x.begin(), x.end()), dyf(dy.begin(), dy.end());
  std::vector<float> yf(out), dxf(in);
  std::vector<int32_t> argmaxf(out, -1);
  maxpool_forward(g, xf.data(), yf.data(), argmaxf.data());
  EXPECT_EQ(argmaxf, argmax);
  maxpool_backward(g, argmaxf.data(), dyf.data(), dxf.data());
  EXPECT_EQ(std::vector<double>(yf.begin(), yf.end()), ref_y);
  EXPECT_EQ(std::vector<double>(dxf.begin(), dxf.end()), ref_dx);
}

// The per-element functors CUDA launches (backward as a gather over the windows), run here
// element by element, against the CPU's plane loops (backward as a scatter): bit-identical,
// ties included, as each input sums its windows' gradients in the same order.
TEST(Maxpool, CpuMatchesTheCudaFunctors) {
  const PoolGeom g{3, 5, 28, 27, 3, 2};
  const size_t in = static_cast<size_t>(g.n * g.c * g.h * g.w);
  const size_t out = static_cast<size_t>(g.n * g.c * g.out_h() * g.out_w());
  auto x = random_vector<float>(in, 11, -2.0, 2.0);
  for (auto& e : x) e = std::max(0.0f, std::round(e * 4.0f) / 4.0f);  // ReLU-like: many ties
  const auto dy = random_vector<float>(out, 12);

  std::vector<float> y(out), dx(in, 7.0f);
  std::vector<int32_t> argmax(out, -1);
  maxpool_forward(g, x.data(), y.data(), argmax.data());
  maxpool_backward(g, argmax.data(), dy.data(), dx.data());

  std::vector<float> fy(out), fdx(in, 7.0f);
  std::vector<int32_t> fargmax(out, -1);
  const kernels::MaxpoolForward<float> forward{kernels::pool_dims(g), x.data(), fy.data(),
                                               fargmax.data()};
  for (size_t i = 0; i < out; ++i) forward(static_cast<int64_t>(i));
  const kernels::MaxpoolBackward<float> backward{kernels::pool_dims(g), fargmax.data(), dy.data(),
                                                 fdx.data()};
  for (size_t i = 0; i < in; ++i) backward(static_cast<int64_t>(i));
  EXPECT_EQ(y, fy);
  EXPECT_EQ(argmax, fargmax);
  EXPECT_EQ(dx, fdx);
}

TEST(Maxpool, Conv1Size55To27MatchesNaive) {
  const PoolGeom g{1, 3, 55, 55, 3, 2};
  EXPECT_EQ(g.out_h(), 27);
  EXPECT_EQ(g.out_w(), 27);
  check_against_naive(g);
}

TEST(Maxpool, Conv5Size13To6MatchesNaive) {
  const PoolGeom g{2, 4, 13, 13, 3, 2};
  EXPECT_EQ(g.out_h(), 6);
  check_against_naive(g);
}

TEST(Maxpool, UncoveredEdgesAndOtherGeometries) {
  check_against_naive(PoolGeom{2, 2, 14, 9, 3, 2});  // row 13 lies in no window: dx = 0
  check_against_naive(PoolGeom{1, 2, 8, 8, 2, 2});   // non-overlapping
  check_against_naive(PoolGeom{1, 1, 9, 10, 3, 3});
}

TEST(Maxpool, GradientMatchesFiniteDifferences) {
  const PoolGeom g{2, 2, 7, 9, 3, 2};
  const size_t in = static_cast<size_t>(g.n * g.c * g.h * g.w);
  const size_t out = static_cast<size_t>(g.n * g.c * g.out_h() * g.out_w());
  auto x = distinct_values(in, 9);
  const auto w = random_vector<double>(out, 10);
  auto loss = [&] {
    std::vector<double> y(out);
    maxpool_forward(g, x.data(), y.data(), nullptr);
    return weighted_sum(y, w);
  };
  std::vector<double> y(out), dx(in);
  std::vector<int32_t> argmax(out);
  maxpool_forward(g, x.data(), y.data(), argmax.data());
  maxpool_backward(g, argmax.data(), w.data(), dx.data());
  EXPECT_LT(max_rel_error(dx, numeric_gradient(x, loss), kFdAtol), 1e-6);
}

TEST(Maxpool, TiesGoToTheFirstMaximumOnly) {
  // One window, maximum 5 at (0,1), (1,0) and (2,2): row-major first is (0,1).
  const PoolGeom g{1, 1, 3, 3, 3, 2};
  const std::vector<double> x = {0, 5, 0, 5, 0, 0, 0, 0, 5};
  const std::vector<double> dy = {1.5};
  std::vector<double> y(1), dx(9);
  std::vector<int32_t> argmax(y.size());
  maxpool_forward(g, x.data(), y.data(), argmax.data());
  maxpool_backward(g, argmax.data(), dy.data(), dx.data());
  EXPECT_EQ(y[0], 5.0);
  EXPECT_EQ(dx, (std::vector<double>{0, 1.5, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(Maxpool, ConstantInputOverlappingWindows) {
  // 5x5 of ones -> 2x2 windows starting at (0,0), (0,2), (2,0), (2,2). Every window's first
  // maximum is its own top-left corner, so (0,2), (2,0) and (2,2) receive one window's dy each
  // although they also lie in earlier windows, and nothing else receives any.
  const PoolGeom g{1, 1, 5, 5, 3, 2};
  const std::vector<float> x(25, 1.0f), dy = {1, 2, 3, 4};
  std::vector<float> y(4), dx(25);
  std::vector<int32_t> argmax(y.size());
  maxpool_forward(g, x.data(), y.data(), argmax.data());
  maxpool_backward(g, argmax.data(), dy.data(), dx.data());
  EXPECT_EQ(y, (std::vector<float>{1, 1, 1, 1}));
  std::vector<float> expect(25, 0.0f);
  expect[0] = 1;
  expect[2] = 2;
  expect[10] = 3;
  expect[12] = 4;
  EXPECT_EQ(dx, expect);
}

TEST(Maxpool, SharedMaximumCollectsEveryWindow) {
  // The centre (2,2) of a 5x5 plane lies in all four windows and is the maximum of each.
  const PoolGeom g{1, 1, 5, 5, 3, 2};
  std::vector<double> x(25, 0.0);
  x[12] = 5.0;
  const std::vector<double> dy = {1, 2, 3, 4};
  std::vector<double> y(4), dx(25);
  std::vector<int32_t> argmax(y.size());
  maxpool_forward(g, x.data(), y.data(), argmax.data());
  maxpool_backward(g, argmax.data(), dy.data(), dx.data());
  EXPECT_EQ(y, (std::vector<double>{5, 5, 5, 5}));
  std::vector<double> expect(25, 0.0);
  expect[12] = 10.0;
  EXPECT_EQ(dx, expect);
}

}  // namespace
}  // namespace alexnet::cpu

// LRN: a naive loop straight from the paper's formula, hand-computed values with the paper's
// constants, tower separation and finite-difference gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "alexnet/error.h"
#include "kernels/lrn.cuh"
#include "tests/cpu/test_util.h"

namespace alexnet::cpu {
namespace {

using test::kFdAtol;
using test::max_rel_error;
using test::numeric_gradient;
using test::random_vector;
using test::weighted_sum;

// b[n,i,y,x] = a[n,i,y,x] / (k + alpha' * sum_{j=max(0,i-size/2)}^{min(C-1,i+size/2)}
// a[n,j,y,x]^2)^beta
void naive_lrn(const LrnParams& p, int n, int c, int h, int w, const std::vector<double>& a,
               std::vector<double>& b, std::vector<double>& scale) {
  const double alpha = p.alpha_over_n ? p.alpha / p.size : p.alpha;
  auto at = [&](int ni, int ci, int yi, int xi) {
    return static_cast<size_t>(((ni * c + ci) * h + yi) * w + xi);
  };
  b.assign(a.size(), 0.0);
  scale.assign(a.size(), 0.0);
  for (int ni = 0; ni < n; ++ni)
    for (int i = 0; i < c; ++i)
      for (int yi = 0; yi < h; ++yi)
        for (int xi = 0; xi < w; ++xi) {
          double sum = 0;
          for (int j = std::max(0, i - p.size / 2); j <= std::min(c - 1, i + p.size / 2); ++j)
            sum += a[at(ni, j, yi, xi)] * a[at(ni, j, yi, xi)];
          scale[at(ni, i, yi, xi)] = p.k + alpha * sum;
          b[at(ni, i, yi, xi)] = a[at(ni, i, yi, xi)] / std::pow(p.k + alpha * sum, p.beta);
        }
}

LrnParams strong(bool alpha_over_n) {
  // alpha large enough that the normalisation, and its gradient, are far from negligible.
  LrnParams p;
  p.alpha = 0.1;
  p.alpha_over_n = alpha_over_n;
  return p;
}

TEST(Lrn, ForwardMatchesNaiveFormula) {
  const int n = 2, h = 3, w = 4;
  for (const int c : {1, 3, 5, 8}) {
    for (const bool over_n : {false, true}) {
      SCOPED_TRACE(testing::Message() << "C=" << c << " alpha_over_n=" << over_n);
      const LrnParams p = strong(over_n);
      const size_t count = static_cast<size_t>(n * c * h * w);
      const auto x = random_vector<double>(count, 7, -2.0, 2.0);
      std::vector<double> ref, ref_scale;
      naive_lrn(p, n, c, h, w, x, ref, ref_scale);

      std::vector<double> y(count), scale(count);
      lrn_forward(p, n, c, h, w, x.data(), y.data(), scale.data());
      EXPECT_LT(max_rel_error(y, ref), 1e-13);
      EXPECT_LT(max_rel_error(scale, ref_scale), 1e-13);

      std::vector<double> y_noscale(count);
      lrn_forward<double>(p, n, c, h, w, x.data(), y_noscale.data(), nullptr);
      EXPECT_EQ(y_noscale, y);

      const std::vector<float> xf(x.begin(), x.end());
      std::vector<float> yf(count);
      lrn_forward<float>(p, n, c, h, w, xf.data(), yf.data(), nullptr);
      EXPECT_LT(max_rel_error(std::vector<double>(yf.begin(), yf.end()), ref, 1e-6), 1e-5);
    }
  }
}

TEST(Lrn, HandComputedPaperConstants) {
  // k = 2, n = 5, alpha = 1e-4, beta = 0.75; C = 3 channels at one pixel, a = (1, 2, 3).
  // n/2 = 2, so every channel's window is channels 0..2: sum of squares 1 + 4 + 9 = 14.
  // scale = 2 + 1e-4 * 14 = 2.0014;  2.0014^0.75 = exp(0.75 * ln 2.0014) = 1.6826756945086119
  // b = a / 1.6826756945086119 = (0.5942915817132711, 1.1885831634265422, 1.7828747451398135)
  const LrnParams p;  // the paper's defaults
  const std::vector<double> a = {1, 2, 3};
  std::vector<double> b(3), scale(3);
  lrn_forward(p, 1, 3, 1, 1, a.data(), b.data(), scale.data());
  EXPECT_NEAR(b[0], 0.5942915817132711, 1e-6);
  EXPECT_NEAR(b[1], 1.1885831634265422, 1e-6);
  EXPECT_NEAR(b[2], 1.7828747451398135, 1e-6);
  for (double s : scale) EXPECT_NEAR(s, 2.0014, 1e-12);

  std::vector<float> af(a.begin(), a.end()), bf(3);
  lrn_forward<float>(p, 1, 3, 1, 1, af.data(), bf.data(), nullptr);
  EXPECT_NEAR(bf[0], 0.5942915817132711, 1e-6);
  EXPECT_NEAR(bf[2], 1.7828747451398135, 1e-6);
}

TEST(Lrn, TowersAreNotNeighbours) {
  // Four maps a = (1, 2, 3, 4) at one pixel, k = 2, n = 5, alpha = 1, beta = 0.75.
  // As two towers of C = 2 (tower 0 = maps 0,1; tower 1 = maps 2,3) the windows stop at the
  // tower edge: sums 1+4 = 5 and 9+16 = 25, so
  //   b = (1/7^0.75, 2/7^0.75, 3/27^0.75, 4/27^0.75)
  //     = (0.23236808024254083, 0.46473616048508165, 0.25327856188386416, 0.3377047491784856)
  // As one net of C = 4 map 1 would see maps 0..3 (sum 30) and give 2/32^0.75 = 0.1486508...
  LrnParams p;
  p.alpha = 1.0;
  const std::vector<double> a = {1, 2, 3, 4};
  std::vector<double> b(4);
  lrn_forward<double>(p, 1, 2, 1, 1, a.data(), b.data(), nullptr);          // tower 0
  lrn_forward<double>(p, 1, 2, 1, 1, a.data() + 2, b.data() + 2, nullptr);  // tower 1
  EXPECT_NEAR(b[0], 0.23236808024254083, 1e-12);
  EXPECT_NEAR(b[1], 0.46473616048508165, 1e-12);
  EXPECT_NEAR(b[2], 0.25327856188386416, 1e-12);
  EXPECT_NEAR(b[3], 0.3377047491784856, 1e-12);

  // The same two towers as a batch of two samples with C = 2 is the same computation.
  std::vector<double> batched(4);
  lrn_forward<double>(p, 2, 2, 1, 1, a.data(), batched.data(), nullptr);
  EXPECT_NEAR(batched[1], 0.46473616048508165, 1e-12);
  EXPECT_NEAR(batched[2], 0.25327856188386416, 1e-12);

  std::vector<double> whole(4);
  lrn_forward<double>(p, 1, 4, 1, 1, a.data(), whole.data(), nullptr);
  EXPECT_NEAR(whole[1], 0.14865088937534013, 1e-12);
}

void check_gradient(const LrnParams& p, int n, int c, int h, int w) {
  SCOPED_TRACE(testing::Message() << "C=" << c << " size=" << p.size
                                  << " alpha_over_n=" << p.alpha_over_n);
  const size_t count = static_cast<size_t>(n * c * h * w);
  auto x = random_vector<double>(count, 21, -2.0, 2.0);
  const auto g = random_vector<double>(count, 22);
  auto loss = [&] {
    std::vector<double> y(count);
    lrn_forward<double>(p, n, c, h, w, x.data(), y.data(), nullptr);
    return weighted_sum(y, g);
  };
  std::vector<double> y(count), scale(count), dx(count), dx_noscale(count);
  lrn_forward(p, n, c, h, w, x.data(), y.data(), scale.data());
  lrn_backward(p, n, c, h, w, x.data(), y.data(), scale.data(), g.data(), dx.data());
  lrn_backward<double>(p, n, c, h, w, x.data(), y.data(), nullptr, g.data(), dx_noscale.data());
  const auto numeric = numeric_gradient(x, loss);
  EXPECT_LT(max_rel_error(dx, numeric, kFdAtol), 1e-6);
  EXPECT_LT(max_rel_error(dx_noscale, numeric, kFdAtol), 1e-6);
}

TEST(Lrn, GradientMatchesFiniteDifferences) {
  for (const bool over_n : {false, true})
    for (const int c : {1, 2, 3, 7, 16}) check_gradient(strong(over_n), 2, c, 2, 3);
  LrnParams p3 = strong(false);
  p3.size = 3;
  p3.beta = 0.5;
  p3.k = 1.0;
  check_gradient(p3, 1, 6, 3, 2);
}

// The CPU loops (pixel blocks of 256, pixel loop innermost) against the per-element functors
// that CUDA launches, run here element by element: the same expression, so the same bits. The
// planes are larger than one block and end in a partial one.
template <class T>
void check_cpu_matches_functors(const LrnParams& p) {
  SCOPED_TRACE(testing::Message() << "beta=" << p.beta << " sizeof(T)=" << sizeof(T));
  const int n = 2, c = 7, h = 17, w = 19;
  const size_t count = static_cast<size_t>(n * c * h * w);
  const auto xd = random_vector<double>(count, 31, -3.0, 3.0);
  const auto dyd = random_vector<double>(count, 32);
  const std::vector<T> x(xd.begin(), xd.end()), dy(dyd.begin(), dyd.end());
  const auto q = kernels::lrn_coeffs<T>(p, c, h, w);

  std::vector<T> y(count), scale(count), dx(count);
  lrn_forward<T>(p, n, c, h, w, x.data(), y.data(), scale.data());
  lrn_backward<T>(p, n, c, h, w, x.data(), y.data(), scale.data(), dy.data(), dx.data());
  std::vector<T> fy(count), fscale(count), fdx(count);
  const kernels::LrnForward<T> forward{q, x.data(), fy.data(), fscale.data()};
  for (size_t i = 0; i < count; ++i) forward(static_cast<int64_t>(i));
  const kernels::LrnBackward<T> backward{q,         x.data(),  fy.data(), fscale.data(),
                                         dy.data(), fdx.data()};
  for (size_t i = 0; i < count; ++i) backward(static_cast<int64_t>(i));
  EXPECT_EQ(y, fy);
  EXPECT_EQ(scale, fscale);
  EXPECT_EQ(dx, fdx);

  std::vector<double> ref, ref_scale;
  naive_lrn(p, n, c, h, w, xd, ref, ref_scale);
  EXPECT_LT(max_rel_error(std::vector<double>(y.begin(), y.end()), ref, 1e-6), 1e-5);
}

TEST(Lrn, CpuLoopsMatchTheCudaFunctors) {
  for (const double beta : {0.75, 0.6}) {
    LrnParams p = strong(false);
    p.beta = beta;
    check_cpu_matches_functors<float>(p);
    check_cpu_matches_functors<double>(p);
  }
}

TEST(Lrn, RejectsEvenSize) {
  LrnParams p;
  p.size = 4;
  std::vector<double> x(4, 1.0), y(4);
  EXPECT_THROW(lrn_forward<double>(p, 1, 4, 1, 1, x.data(), y.data(), nullptr), Error);
}

}  // namespace
}  // namespace alexnet::cpu

// Fully connected layers against naive loops, finite differences and the beta contract.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "tests/cpu/test_util.h"

namespace alexnet {
namespace {

using test::max_rel_error;
using test::numeric_gradient;
using test::random_vector;
using test::weighted_sum;

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
// |a - b| <= tol * (1 + |ref|): the atol + |ref| * eps form with atol = eps.
constexpr double kDoubleTol = 1e-12;
constexpr double kFloatTol = 1e-5;
constexpr double kFdTol = 1e-6;

struct Sizes {
  int n, in, out;
};
size_t sz(int a, int b) {
  return static_cast<size_t>(a) * static_cast<size_t>(b);
}

// ---------------------------------------------------------------- naive references (double)
// x (N, I), w (O, I), y (N, O) as nn.Linear: y[n][o] = b[o] + sum_i x[n][i] w[o][i].
std::vector<double> ref_forward(const Sizes& s, const std::vector<double>& x,
                                const std::vector<double>& w, const std::vector<double>& b) {
  std::vector<double> y(sz(s.n, s.out));
  for (size_t n = 0; n < static_cast<size_t>(s.n); ++n)
    for (size_t o = 0; o < static_cast<size_t>(s.out); ++o) {
      double acc = b.empty() ? 0.0 : b[o];
      for (size_t i = 0; i < static_cast<size_t>(s.in); ++i)
        acc += x[n * static_cast<size_t>(s.in) + i] * w[o * static_cast<size_t>(s.in) + i];
      y[n * static_cast<size_t>(s.out) + o] = acc;
    }
  return y;
}

struct RefGrads {
  std::vector<double> dx, dw, db;
};
RefGrads ref_backward(const Sizes& s, const std::vector<double>& x, const std::vector<double>& w,
                      const std::vector<double>& dy) {
  RefGrads g{std::vector<double>(sz(s.n, s.in), 0.0), std::vector<double>(sz(s.out, s.in), 0.0),
             std::vector<double>(static_cast<size_t>(s.out), 0.0)};
  const size_t in = static_cast<size_t>(s.in), out = static_cast<size_t>(s.out);
  for (size_t n = 0; n < static_cast<size_t>(s.n); ++n)
    for (size_t o = 0; o < out; ++o) {
      const double d = dy[n * out + o];
      g.db[o] += d;
      for (size_t i = 0; i < in; ++i) {
        g.dx[n * in + i] += d * w[o * in + i];
        g.dw[o * in + i] += d * x[n * in + i];
      }
    }
  return g;
}

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}
template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}
// Double data already rounded to float, so a float run and its double reference see the same
// inputs and differ only by float arithmetic.
std::vector<double> float_exact(size_t count, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  return to_double(random_vector<float>(count, seed, lo, hi));
}

const std::vector<Sizes> kSizes = {{3, 7, 5}, {1, 4, 9}, {4, 33, 17}, {5, 1, 3}, {2, 16, 1}};

class Fc : public ::testing::TestWithParam<Sizes> {};

// ---------------------------------------------------------------- vs naive loops
TEST_P(Fc, ForwardMatchesNaive) {
  const Sizes s = GetParam();
  const auto x = float_exact(sz(s.n, s.in), 1);
  const auto w = float_exact(sz(s.out, s.in), 2);
  const auto b = float_exact(static_cast<size_t>(s.out), 3);
  const auto want = ref_forward(s, x, w, b);

  std::vector<double> y(want.size(), kNan), y_nobias(want.size(), kNan);
  cpu::fc_forward<double>(s.n, s.in, s.out, x.data(), w.data(), b.data(), y.data(), 0.0);
  cpu::fc_forward<double>(s.n, s.in, s.out, x.data(), w.data(), nullptr, y_nobias.data(), 0.0);
  EXPECT_LT(max_rel_error(y, want, 1.0), kDoubleTol);
  EXPECT_LT(max_rel_error(y_nobias, ref_forward(s, x, w, {}), 1.0), kDoubleTol);

  const auto xf = cast<float>(x), wf = cast<float>(w), bf = cast<float>(b);
  std::vector<float> yf(want.size());
  cpu::fc_forward<float>(s.n, s.in, s.out, xf.data(), wf.data(), bf.data(), yf.data(), 0.0f);
  EXPECT_LT(max_rel_error(to_double(yf), want, 1.0), kFloatTol);
}

TEST_P(Fc, BackwardMatchesNaive) {
  const Sizes s = GetParam();
  const auto x = float_exact(sz(s.n, s.in), 4);
  const auto w = float_exact(sz(s.out, s.in), 5);
  const auto dy = float_exact(sz(s.n, s.out), 6);
  const RefGrads want = ref_backward(s, x, w, dy);

  std::vector<double> dx(want.dx.size()), dw(want.dw.size()), db(want.db.size());
  cpu::fc_backward_data<double>(s.n, s.in, s.out, dy.data(), w.data(), dx.data(), 0.0);
  cpu::fc_backward_weights<double>(s.n, s.in, s.out, x.data(), dy.data(), dw.data(), db.data(),
                                   0.0);
  EXPECT_LT(max_rel_error(dx, want.dx, 1.0), kDoubleTol);
  EXPECT_LT(max_rel_error(dw, want.dw, 1.0), kDoubleTol);
  EXPECT_LT(max_rel_error(db, want.db, 1.0), kDoubleTol);

  const auto xf = cast<float>(x), wf = cast<float>(w), dyf = cast<float>(dy);
  std::vector<float> dxf(dx.size()), dwf(dw.size()), dbf(db.size());
  cpu::fc_backward_data<float>(s.n, s.in, s.out, dyf.data(), wf.data(), dxf.data(), 0.0f);
  cpu::fc_backward_weights<float>(s.n, s.in, s.out, xf.data(), dyf.data(), dwf.data(), dbf.data(),
                                  0.0f);
  EXPECT_LT(max_rel_error(to_double(dxf), want.dx, 1.0), kFloatTol);
  EXPECT_LT(max_rel_error(to_double(dwf), want.dw, 1.0), kFloatTol);
  EXPECT_LT(max_rel_error(to_double(dbf), want.db, 1.0), kFloatTol);
}

// ---------------------------------------------------------------- finite differences
// L = sum v * y, so dL/dy = v.
TEST_P(Fc, GradientsMatchFiniteDifferences) {
  const Sizes s = GetParam();
  auto x = random_vector<double>(sz(s.n, s.in), 7);
  auto w = random_vector<double>(sz(s.out, s.in), 8);
  auto b = random_vector<double>(static_cast<size_t>(s.out), 9);
  const auto v = random_vector<double>(sz(s.n, s.out), 10);
  std::vector<double> y(v.size());
  const auto loss = [&] {
    cpu::fc_forward<double>(s.n, s.in, s.out, x.data(), w.data(), b.data(), y.data(), 0.0);
    return weighted_sum(y, v);
  };

  std::vector<double> dx(x.size(), kNan), dw(w.size(), kNan), db(b.size(), kNan);
  cpu::fc_backward_data<double>(s.n, s.in, s.out, v.data(), w.data(), dx.data(), 0.0);
  cpu::fc_backward_weights<double>(s.n, s.in, s.out, x.data(), v.data(), dw.data(), db.data(), 0.0);
  EXPECT_LT(max_rel_error(dx, numeric_gradient(x, loss, 1e-6), 1.0), kFdTol) << "dx";
  EXPECT_LT(max_rel_error(dw, numeric_gradient(w, loss, 1e-6), 1.0), kFdTol) << "dw";
  EXPECT_LT(max_rel_error(db, numeric_gradient(b, loss, 1e-6), 1.0), kFdTol) << "db";
}

// ---------------------------------------------------------------- beta
// beta = 0 must overwrite NaN without reading it; 1 accumulates; anything else scales.
TEST_P(Fc, BetaSemantics) {
  const Sizes s = GetParam();
  const auto x = random_vector<double>(sz(s.n, s.in), 11);
  const auto w = random_vector<double>(sz(s.out, s.in), 12);
  const auto b = random_vector<double>(static_cast<size_t>(s.out), 13);
  const auto dy = random_vector<double>(sz(s.n, s.out), 14);
  const auto y_ref = ref_forward(s, x, w, b);
  const RefGrads g_ref = ref_backward(s, x, w, dy);
  const auto y0 = random_vector<double>(y_ref.size(), 15);
  const auto dx0 = random_vector<double>(g_ref.dx.size(), 16);
  const auto dw0 = random_vector<double>(g_ref.dw.size(), 17);
  const auto db0 = random_vector<double>(g_ref.db.size(), 18);

  for (const double beta : {0.0, 1.0, 0.5}) {
    SCOPED_TRACE("beta " + std::to_string(beta));
    const auto start = [&](const std::vector<double>& old) {
      return beta == 0.0 ? std::vector<double>(old.size(), kNan) : old;
    };
    const auto expect = [&](const std::vector<double>& old, const std::vector<double>& ref) {
      std::vector<double> e(ref);
      if (beta != 0.0)
        for (size_t i = 0; i < e.size(); ++i) e[i] += beta * old[i];
      return e;
    };
    auto y = start(y0), dx = start(dx0), dw = start(dw0), db = start(db0);
    cpu::fc_forward<double>(s.n, s.in, s.out, x.data(), w.data(), b.data(), y.data(), beta);
    cpu::fc_backward_data<double>(s.n, s.in, s.out, dy.data(), w.data(), dx.data(), beta);
    cpu::fc_backward_weights<double>(s.n, s.in, s.out, x.data(), dy.data(), dw.data(), db.data(),
                                     beta);
    EXPECT_LT(max_rel_error(y, expect(y0, y_ref), 1.0), kDoubleTol);
    EXPECT_LT(max_rel_error(dx, expect(dx0, g_ref.dx), 1.0), kDoubleTol);
    EXPECT_LT(max_rel_error(dw, expect(dw0, g_ref.dw), 1.0), kDoubleTol);
    EXPECT_LT(max_rel_error(db, expect(db0, g_ref.db), 1.0), kDoubleTol);
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, Fc, ::testing::ValuesIn(kSizes),
                         [](const ::testing::TestParamInfo<Sizes>& param_info) {
                           const Sizes& s = param_info.param;
                           return "n" + std::to_string(s.n) + "_in" + std::to_string(s.in) +
                                  "_out" + std::to_string(s.out);
                         });

// A null db leaves the bias gradient alone and still computes dw.
TEST(FcWeights, WithoutBias) {
  const Sizes s{3, 6, 4};
  const auto x = random_vector<double>(sz(s.n, s.in), 19);
  const auto dy = random_vector<double>(sz(s.n, s.out), 20);
  std::vector<double> dw(sz(s.out, s.in), kNan);
  cpu::fc_backward_weights<double>(s.n, s.in, s.out, x.data(), dy.data(), dw.data(), nullptr, 0.0);
  const std::vector<double> unused_w(sz(s.out, s.in), 0.0);
  EXPECT_LT(max_rel_error(dw, ref_backward(s, x, unused_w, dy).dw, 1.0), kDoubleTol);
}

// ---------------------------------------------------------------- float vs double, larger
// Reductions this long make float errors scale with the outputs' magnitude, so the absolute
// part of the tolerance is the reference's RMS rather than 1.
double rms(const std::vector<double>& v) {
  double s = 0;
  for (const double e : v) s += e * e;
  return std::sqrt(s / static_cast<double>(v.size()));
}

// An fc7-shaped slice in both precisions from the same inputs.
TEST(FcLarge, FloatAgreesWithDouble) {
  const Sizes s{16, 1024, 300};
  const auto x = float_exact(sz(s.n, s.in), 21);
  const auto w = float_exact(sz(s.out, s.in), 22, -0.05, 0.05);
  const auto b = float_exact(static_cast<size_t>(s.out), 23);
  const auto dy = float_exact(sz(s.n, s.out), 24);
  const auto xf = cast<float>(x), wf = cast<float>(w), bf = cast<float>(b), dyf = cast<float>(dy);

  std::vector<double> y(sz(s.n, s.out)), dx(x.size()), dw(w.size()), db(b.size());
  std::vector<float> yf(y.size()), dxf(dx.size()), dwf(dw.size()), dbf(db.size());
  cpu::fc_forward<double>(s.n, s.in, s.out, x.data(), w.data(), b.data(), y.data(), 0.0);
  cpu::fc_forward<float>(s.n, s.in, s.out, xf.data(), wf.data(), bf.data(), yf.data(), 0.0f);
  cpu::fc_backward_data<double>(s.n, s.in, s.out, dy.data(), w.data(), dx.data(), 0.0);
  cpu::fc_backward_data<float>(s.n, s.in, s.out, dyf.data(), wf.data(), dxf.data(), 0.0f);
  cpu::fc_backward_weights<double>(s.n, s.in, s.out, x.data(), dy.data(), dw.data(), db.data(),
                                   0.0);
  cpu::fc_backward_weights<float>(s.n, s.in, s.out, xf.data(), dyf.data(), dwf.data(), dbf.data(),
                                  0.0f);
  EXPECT_LT(max_rel_error(to_double(yf), y, rms(y)), kFloatTol);
  EXPECT_LT(max_rel_error(to_double(dxf), dx, rms(dx)), kFloatTol);
  EXPECT_LT(max_rel_error(to_double(dwf), dw, rms(dw)), kFloatTol);
  EXPECT_LT(max_rel_error(to_double(dbf), db, rms(db)), kFloatTol);
}

TEST(FcLarge, RejectsBadSizes) {
  std::vector<double> buf(16, 0.0);
  EXPECT_THROW(cpu::fc_forward<double>(2, 0, 3, buf.data(), buf.data(), nullptr, buf.data(), 0.0),
               std::invalid_argument);
}

}  // namespace
}  // namespace alexnet

// Convolution (im2col + GEMM) against naive seven-loop references written from the definition,
// finite-difference gradients, and the beta contract.
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

size_t x_count(const ConvGeom& g) {
  return static_cast<size_t>(g.n * g.c * g.h * g.w);
}
size_t w_count(const ConvGeom& g) {
  return static_cast<size_t>(g.k * (g.c / g.groups) * g.r * g.s);
}
size_t y_count(const ConvGeom& g) {
  return static_cast<size_t>(g.n * g.k * g.out_h() * g.out_w());
}

// ---------------------------------------------------------------- naive references (double)
// Every output element visits every tap of its window; taps that land in the padding add nothing.
// The backward references run the same loops and scatter instead of gather.
struct Tap {
  size_t x, w, y;
};
template <class F>
void for_each_tap(const ConvGeom& g, F&& f) {
  const int cg = g.c / g.groups, kg = g.k / g.groups, p_out = g.out_h(), q_out = g.out_w();
  for (int n = 0; n < g.n; ++n)
    for (int k = 0; k < g.k; ++k)
      for (int p = 0; p < p_out; ++p)
        for (int q = 0; q < q_out; ++q)
          for (int c = 0; c < cg; ++c)
            for (int r = 0; r < g.r; ++r)
              for (int s = 0; s < g.s; ++s) {
                const int ih = p * g.stride - g.pad + r, iw = q * g.stride - g.pad + s;
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                const int ci = (k / kg) * cg + c;  // input channel in the whole tensor
                f(Tap{static_cast<size_t>(((n * g.c + ci) * g.h + ih) * g.w + iw),
                      static_cast<size_t>(((k * cg + c) * g.r + r) * g.s + s),
                      static_cast<size_t>(((n * g.k + k) * p_out + p) * q_out + q)});
              }
}

std::vector<double> ref_forward(const ConvGeom& g, const std::vector<double>& x,
                                const std::vector<double>& w, const std::vector<double>& bias) {
  std::vector<double> y(y_count(g), 0.0);  // (N, K, P, Q)
  for_each_tap(g, [&](const Tap& t) { y[t.y] += x[t.x] * w[t.w]; });
  const size_t pq = static_cast<size_t>(g.out_h() * g.out_w());
  if (!bias.empty())
    for (size_t i = 0; i < y.size(); ++i) y[i] += bias[(i / pq) % static_cast<size_t>(g.k)];
  return y;
}

std::vector<double> ref_backward_data(const ConvGeom& g, const std::vector<double>& dy,
                                      const std::vector<double>& w) {
  std::vector<double> dx(x_count(g), 0.0);  // (N, C, H, W)
  for_each_tap(g, [&](const Tap& t) { dx[t.x] += dy[t.y] * w[t.w]; });
  return dx;
}

std::vector<double> ref_backward_filter(const ConvGeom& g, const std::vector<double>& x,
                                        const std::vector<double>& dy) {
  std::vector<double> dw(w_count(g), 0.0);  // (K, C/groups, R, S)
  for_each_tap(g, [&](const Tap& t) { dw[t.w] += dy[t.y] * x[t.x]; });
  return dw;
}

std::vector<double> ref_backward_bias(const ConvGeom& g, const std::vector<double>& dy) {
  std::vector<double> db(static_cast<size_t>(g.k), 0.0);
  const size_t pq = static_cast<size_t>(g.out_h() * g.out_w());
  for (size_t i = 0; i < dy.size(); ++i) db[(i / pq) % static_cast<size_t>(g.k)] += dy[i];
  return db;
}

// ---------------------------------------------------------------- helpers
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
std::vector<double> float_exact(size_t count, uint32_t seed) {
  return to_double(random_vector<float>(count, seed));
}

std::vector<double> forward(const ConvGeom& g, const std::vector<double>& x,
                            const std::vector<double>& w, const std::vector<double>& bias) {
  std::vector<double> y(y_count(g));
  cpu::conv_forward<double>(g, x.data(), w.data(), bias.empty() ? nullptr : bias.data(), y.data(),
                            0.0);
  return y;
}

// |a - b| <= tol * (1 + |ref|): the atol + |ref| * eps form with atol = eps.
constexpr double kDoubleTol = 1e-12;
constexpr double kFloatTol = 1e-5;

struct Case {
  std::string name;
  ConvGeom g;
};
std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << c.name;
}

ConvGeom geom(int n, int c, int h, int w, int k, int r, int s, int stride, int pad, int groups) {
  ConvGeom g;
  g.n = n, g.c = c, g.h = h, g.w = w, g.k = k, g.r = r, g.s = s;
  g.stride = stride, g.pad = pad, g.groups = groups;
  return g;
}

// Geometries with small enough tensors for a finite-difference check of every element.
const std::vector<Case>& small_cases() {
  static const std::vector<Case> cases = {
      {"basic_3x3_pad1", geom(2, 3, 7, 9, 4, 3, 3, 1, 1, 1)},
      {"groups2_stride2_rect_kernel", geom(2, 4, 9, 8, 6, 3, 2, 2, 0, 2)},
      {"groups3_5x5_pad2", geom(2, 6, 8, 10, 9, 5, 5, 1, 2, 3)},
      {"groups2_stride2_pad1_ragged", geom(2, 4, 6, 11, 4, 3, 3, 2, 1, 2)},
      {"stride3_pad1_2x3", geom(2, 2, 8, 7, 3, 2, 3, 3, 1, 1)},
      {"stride4_11x11_small", geom(2, 2, 19, 23, 3, 11, 11, 4, 0, 1)},
      {"direct_1x1_groups2", geom(2, 6, 5, 4, 4, 1, 1, 1, 0, 2)},
      {"1x1_stride2_skips_pixels", geom(2, 3, 5, 6, 2, 1, 1, 2, 0, 1)},
      {"kernel_equals_input", geom(3, 2, 4, 5, 3, 4, 5, 1, 0, 1)},
  };
  return cases;
}

// Larger geometries: checked against the naive loops, too big to be worth differencing.
const std::vector<Case>& all_cases() {
  static const std::vector<Case> cases = [] {
    std::vector<Case> v = small_cases();
    v.push_back({"conv1_like_3to8_11x11_stride4", geom(2, 3, 31, 31, 8, 11, 11, 4, 0, 1)});
    v.push_back({"conv2_like_groups2_5x5_pad2", geom(2, 8, 13, 13, 12, 5, 5, 1, 2, 2)});
    v.push_back({"conv3_like_3x3_pad1_k_lt_c", geom(3, 10, 6, 6, 4, 3, 3, 1, 1, 1)});
    // More images than the filter gradient's 8 slots, unevenly split among them.
    v.push_back({"batch19_uneven_slots_groups2", geom(19, 4, 6, 5, 6, 3, 3, 1, 1, 2)});
    return v;
  }();
  return cases;
}

class ConvAll : public ::testing::TestWithParam<Case> {};
class ConvSmall : public ::testing::TestWithParam<Case> {};

// ---------------------------------------------------------------- forward vs naive loops
TEST_P(ConvAll, ForwardDoubleMatchesNaive) {
  const ConvGeom& g = GetParam().g;
  const auto x = random_vector<double>(x_count(g), 1);
  const auto w = random_vector<double>(w_count(g), 2);
  const auto b = random_vector<double>(static_cast<size_t>(g.k), 3);
  EXPECT_LT(max_rel_error(forward(g, x, w, b), ref_forward(g, x, w, b), 1.0), kDoubleTol);
  EXPECT_LT(max_rel_error(forward(g, x, w, {}), ref_forward(g, x, w, {}), 1.0), kDoubleTol);
}

TEST_P(ConvAll, ForwardFloatMatchesNaive) {
  const ConvGeom& g = GetParam().g;
  const auto x = float_exact(x_count(g), 4);
  const auto w = float_exact(w_count(g), 5);
  const auto b = float_exact(static_cast<size_t>(g.k), 6);
  const auto xf = cast<float>(x), wf = cast<float>(w), bf = cast<float>(b);
  std::vector<float> y(y_count(g));
  cpu::conv_forward<float>(g, xf.data(), wf.data(), bf.data(), y.data(), 0.0f);
  EXPECT_LT(max_rel_error(to_double(y), ref_forward(g, x, w, b), 1.0), kFloatTol);
}

// ---------------------------------------------------------------- backward vs naive loops
TEST_P(ConvAll, BackwardDoubleMatchesNaive) {
  const ConvGeom& g = GetParam().g;
  const auto x = random_vector<double>(x_count(g), 7);
  const auto w = random_vector<double>(w_count(g), 8);
  const auto dy = random_vector<double>(y_count(g), 9);
  std::vector<double> dx(x_count(g)), dw(w_count(g)), db(static_cast<size_t>(g.k));
  cpu::conv_backward_data<double>(g, dy.data(), w.data(), dx.data(), 0.0);
  cpu::conv_backward_filter<double>(g, x.data(), dy.data(), dw.data(), db.data(), 0.0);
  EXPECT_LT(max_rel_error(dx, ref_backward_data(g, dy, w), 1.0), kDoubleTol);
  EXPECT_LT(max_rel_error(dw, ref_backward_filter(g, x, dy), 1.0), kDoubleTol);
  EXPECT_LT(max_rel_error(db, ref_backward_bias(g, dy), 1.0), kDoubleTol);
}

TEST_P(ConvAll, BackwardFloatMatchesNaive) {
  const ConvGeom& g = GetParam().g;
  const auto x = float_exact(x_count(g), 10);
  const auto w = float_exact(w_count(g), 11);
  const auto dy = float_exact(y_count(g), 12);
  const auto xf = cast<float>(x), wf = cast<float>(w), dyf = cast<float>(dy);
  std::vector<float> dx(x_count(g)), dw(w_count(g)), db(static_cast<size_t>(g.k));
  cpu::conv_backward_data<float>(g, dyf.data(), wf.data(), dx.data(), 0.0f);
  cpu::conv_backward_filter<float>(g, xf.data(), dyf.data(), dw.data(), db.data(), 0.0f);
  EXPECT_LT(max_rel_error(to_double(dx), ref_backward_data(g, dy, w), 1.0), kFloatTol);
  EXPECT_LT(max_rel_error(to_double(dw), ref_backward_filter(g, x, dy), 1.0), kFloatTol);
  EXPECT_LT(max_rel_error(to_double(db), ref_backward_bias(g, dy), 1.0), kFloatTol);
}

// ---------------------------------------------------------------- beta
// beta = 0 must overwrite NaN without reading it; 1 accumulates; anything else scales.
TEST_P(ConvAll, BetaSemantics) {
  const ConvGeom& g = GetParam().g;
  const auto x = random_vector<double>(x_count(g), 13);
  const auto w = random_vector<double>(w_count(g), 14);
  const auto b = random_vector<double>(static_cast<size_t>(g.k), 15);
  const auto dy = random_vector<double>(y_count(g), 16);
  const auto y_ref = ref_forward(g, x, w, b);
  const auto dx_ref = ref_backward_data(g, dy, w);
  const auto dw_ref = ref_backward_filter(g, x, dy);
  const auto db_ref = ref_backward_bias(g, dy);
  const auto y0 = random_vector<double>(y_ref.size(), 17);
  const auto dx0 = random_vector<double>(dx_ref.size(), 18);
  const auto dw0 = random_vector<double>(dw_ref.size(), 19);
  const auto db0 = random_vector<double>(db_ref.size(), 20);

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
    cpu::conv_forward<double>(g, x.data(), w.data(), b.data(), y.data(), beta);
    cpu::conv_backward_data<double>(g, dy.data(), w.data(), dx.data(), beta);
    cpu::conv_backward_filter<double>(g, x.data(), dy.data(), dw.data(), db.data(), beta);
    EXPECT_LT(max_rel_error(y, expect(y0, y_ref), 1.0), kDoubleTol);
    EXPECT_LT(max_rel_error(dx, expect(dx0, dx_ref), 1.0), kDoubleTol);
    EXPECT_LT(max_rel_error(dw, expect(dw0, dw_ref), 1.0), kDoubleTol);
    EXPECT_LT(max_rel_error(db, expect(db0, db_ref), 1.0), kDoubleTol);
  }
}

// A null dbias leaves the bias gradient alone and still computes dw.
TEST(Conv, BackwardFilterWithoutBias) {
  const ConvGeom g = geom(2, 4, 6, 5, 4, 3, 3, 1, 1, 2);
  const auto x = random_vector<double>(x_count(g), 21);
  const auto dy = random_vector<double>(y_count(g), 22);
  std::vector<double> dw(w_count(g), kNan);
  cpu::conv_backward_filter<double>(g, x.data(), dy.data(), dw.data(), nullptr, 0.0);
  EXPECT_LT(max_rel_error(dw, ref_backward_filter(g, x, dy), 1.0), kDoubleTol);
}

// ---------------------------------------------------------------- finite differences
// L = sum_i v_i y_i, so dL/dy = v; the analytic gradients must match central differences of
// the real forward pass.
constexpr double kFdTol = 1e-6;

TEST_P(ConvSmall, GradientsMatchFiniteDifferences) {
  const ConvGeom& g = GetParam().g;
  auto x = random_vector<double>(x_count(g), 23);
  auto w = random_vector<double>(w_count(g), 24);
  auto b = random_vector<double>(static_cast<size_t>(g.k), 25);
  const auto v = random_vector<double>(y_count(g), 26);
  const auto loss = [&] { return weighted_sum(forward(g, x, w, b), v); };

  std::vector<double> dx(x_count(g), kNan), dw(w_count(g), kNan), db(b.size(), kNan);
  cpu::conv_backward_data<double>(g, v.data(), w.data(), dx.data(), 0.0);
  cpu::conv_backward_filter<double>(g, x.data(), v.data(), dw.data(), db.data(), 0.0);

  EXPECT_LT(max_rel_error(dx, numeric_gradient(x, loss, 1e-6), 1.0), kFdTol) << "dx";
  EXPECT_LT(max_rel_error(dw, numeric_gradient(w, loss, 1e-6), 1.0), kFdTol) << "dw";
  EXPECT_LT(max_rel_error(db, numeric_gradient(b, loss, 1e-6), 1.0), kFdTol) << "db";
}

const auto kCaseName = [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; };
INSTANTIATE_TEST_SUITE_P(Geometries, ConvAll, ::testing::ValuesIn(all_cases()), kCaseName);
INSTANTIATE_TEST_SUITE_P(Geometries, ConvSmall, ::testing::ValuesIn(small_cases()), kCaseName);

// ---------------------------------------------------------------- float vs double, larger
// Reductions this long make float errors scale with the outputs' magnitude, so the absolute
// part of the tolerance is the reference's RMS rather than 1.
double rms(const std::vector<double>& v) {
  double s = 0;
  for (const double e : v) s += e * e;
  return std::sqrt(s / static_cast<double>(v.size()));
}

// A conv2-sized slice (groups 2, 5x5 pad 2, 27x27) in both precisions from the same inputs.
TEST(Conv, FloatAgreesWithDoubleOnLargerCase) {
  const ConvGeom g = geom(4, 32, 27, 27, 48, 5, 5, 1, 2, 2);
  const auto x = float_exact(x_count(g), 27);
  const auto w = float_exact(w_count(g), 28);
  const auto b = float_exact(static_cast<size_t>(g.k), 29);
  const auto dy = float_exact(y_count(g), 30);
  const auto xf = cast<float>(x), wf = cast<float>(w), bf = cast<float>(b), dyf = cast<float>(dy);

  std::vector<double> y(y_count(g)), dx(x_count(g)), dw(w_count(g)), db(b.size());
  std::vector<float> yf(y.size()), dxf(dx.size()), dwf(dw.size()), dbf(db.size());
  cpu::conv_forward<double>(g, x.data(), w.data(), b.data(), y.data(), 0.0);
  cpu::conv_forward<float>(g, xf.data(), wf.data(), bf.data(), yf.data(), 0.0f);
  cpu::conv_backward_data<double>(g, dy.data(), w.data(), dx.data(), 0.0);
  cpu::conv_backward_data<float>(g, dyf.data(), wf.data(), dxf.data(), 0.0f);
  cpu::conv_backward_filter<double>(g, x.data(), dy.data(), dw.data(), db.data(), 0.0);
  cpu::conv_backward_filter<float>(g, xf.data(), dyf.data(), dwf.data(), dbf.data(), 0.0f);

  EXPECT_LT(max_rel_error(to_double(yf), y, rms(y)), kFloatTol);
  EXPECT_LT(max_rel_error(to_double(dxf), dx, rms(dx)), kFloatTol);
  EXPECT_LT(max_rel_error(to_double(dwf), dw, rms(dw)), kFloatTol);
  EXPECT_LT(max_rel_error(to_double(dbf), db, rms(db)), kFloatTol);
}

// ---------------------------------------------------------------- the paper's layers
// Full-size conv1 and conv2 (one image) in float, checked at sampled outputs against a direct
// sum, so the geometry the network really runs is covered without a naive pass over all of it.
double direct_output(const ConvGeom& g, const std::vector<float>& x, const std::vector<float>& w,
                     int n, int k, int p, int q) {
  const int cg = g.c / g.groups, kg = g.k / g.groups;
  double acc = 0;
  for (int c = 0; c < cg; ++c)
    for (int r = 0; r < g.r; ++r)
      for (int s = 0; s < g.s; ++s) {
        const int ih = p * g.stride - g.pad + r, iw = q * g.stride - g.pad + s;
        if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
        const int ci = (k / kg) * cg + c;
        acc += static_cast<double>(x[static_cast<size_t>(((n * g.c + ci) * g.h + ih) * g.w + iw)]) *
               static_cast<double>(w[static_cast<size_t>(((k * cg + c) * g.r + r) * g.s + s)]);
      }
  return acc;
}

TEST(Conv, PaperGeometriesAtSampledOutputs) {
  for (const Case& c : {Case{"conv1", geom(1, 3, 227, 227, 96, 11, 11, 4, 0, 1)},
                        Case{"conv2", geom(1, 96, 27, 27, 256, 5, 5, 1, 2, 2)}}) {
    SCOPED_TRACE(c.name);
    const ConvGeom& g = c.g;
    const auto x = random_vector<float>(x_count(g), 31);
    const auto w = random_vector<float>(w_count(g), 32, -0.1, 0.1);
    std::vector<float> y(y_count(g), std::numeric_limits<float>::quiet_NaN());
    cpu::conv_forward<float>(g, x.data(), w.data(), nullptr, y.data(), 0.0f);
    std::vector<double> got, want;
    const int p_out = g.out_h(), q_out = g.out_w();
    // Corners and edges (where padding matters) plus a stride through the interior.
    for (int k = 0; k < g.k; k += 7)
      for (int p : {0, 1, p_out / 2, p_out - 2, p_out - 1})
        for (int q : {0, 1, q_out / 3, q_out - 2, q_out - 1}) {
          got.push_back(y[static_cast<size_t>((k * p_out + p) * q_out + q)]);
          want.push_back(direct_output(g, x, w, 0, k, p, q));
        }
    EXPECT_LT(max_rel_error(got, want, 1.0), kFloatTol);
  }
}

TEST(Conv, RejectsBadGeometry) {
  std::vector<double> buf(4096, 0.0);
  const auto run = [&](const ConvGeom& g) {
    cpu::conv_forward<double>(g, buf.data(), buf.data(), nullptr, buf.data(), 0.0);
  };
  EXPECT_THROW(run(geom(1, 3, 8, 8, 4, 3, 3, 1, 0, 2)), std::invalid_argument);  // c % groups
  EXPECT_THROW(run(geom(1, 4, 8, 8, 3, 3, 3, 1, 0, 2)), std::invalid_argument);  // k % groups
  EXPECT_THROW(run(geom(1, 2, 4, 4, 2, 5, 5, 1, 0, 1)), std::invalid_argument);  // no output
  EXPECT_THROW(run(geom(1, 2, 4, 4, 2, 5, 5, 2, 0, 1)), std::invalid_argument);  // out_h 1 anyway
}

}  // namespace
}  // namespace alexnet

// Every op of alexnet/ops.h, one test body for every place the network runs: the CPU in F64 and
// F32, and cuda:0 in F32 (skipped, with the reason, when there is no usable GPU). Each body
// checks the op against an independent oracle computed in double on the host: naive loops
// straight from the definitions, the definition of the dropout mask, and for LRN's backward pass
// finite differences of its naive forward. The inputs are drawn in the tensor's precision, so
// the oracle sees exactly what the op sees.
//
// Tolerance: |got - want| / (floor + |want|) <= 1e-12 in F64 and 1e-5 in F32, where `floor` is the
// size of what the op sums (1 for these O(1) operands), since a sum that cancels to far below its
// terms is rounded relative to them, not to itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

#include "alexnet/error.h"
#include "alexnet/ops.h"
#include "alexnet/tensor.h"
#include "kernels/philox.cuh"
#include "tests/cpu/test_util.h"

namespace alexnet {
namespace {

using test::numeric_gradient;
using test::weighted_sum;

struct Place {
  const char* name;  // the test's suffix
  Device device;
  DType dtype;
};

const Place kPlaces[] = {
    {"CpuF64", Device{}, DType::f64},
    {"CpuF32", Device{}, DType::f32},
    {"Cuda0F32", Device{Device::Kind::cuda, 0}, DType::f32},
};

// The helpers are public: the bodies share them with free functions (check_conv).
class OpsOnEveryDevice : public testing::TestWithParam<Place> {
 public:
  void SetUp() override {
    const Device d = GetParam().device;
    if (d.is_cpu()) return;
    const std::string why = ops::gpu_unavailable_reason(d.index);
    if (!why.empty()) GTEST_SKIP() << "GPU test skipped: no usable CUDA device: " << why;
  }

  bool f64() const { return GetParam().dtype == DType::f64; }
  double tol() const { return f64() ? 1e-12 : 1e-5; }

  // Values in [lo, hi), rounded to the tensor's precision.
  std::vector<double> random(size_t count, uint32_t seed, double lo = -1.0, double hi = 1.0) const {
    std::vector<double> v = test::random_vector<double>(count, seed, lo, hi);
    if (!f64())
      for (double& e : v) e = static_cast<float>(e);
    return v;
  }

  // A tensor of the parameter's type on its device holding `values`.
  Tensor tensor(std::vector<int64_t> shape, const std::vector<double>& values) const {
    Tensor host(std::move(shape), GetParam().dtype);
    EXPECT_EQ(static_cast<size_t>(host.numel()), values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      if (f64())
        host.data<double>()[i] = values[i];
      else
        host.data<float>()[i] = static_cast<float>(values[i]);
    }
    return host.to(GetParam().device);
  }

  std::vector<double> values(const Tensor& t) const {
    const Tensor host = t.to(Device{});
    std::vector<double> v(static_cast<size_t>(host.numel()));
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = f64() ? host.data<double>()[i] : static_cast<double>(host.data<float>()[i]);
    return v;
  }

  // Every element within tol(): |got - want| / (floor + |want|); a NaN fails.
  void expect_close(const char* what, const Tensor& got, const std::vector<double>& want,
                    double floor = 1.0, double tolerance = 0) const {
    const std::vector<double> g = values(got);
    ASSERT_EQ(g.size(), want.size()) << what;
    const double limit = tolerance > 0 ? tolerance : tol();
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      const double e = std::abs(g[i] - want[i]) / (floor + std::abs(want[i]));
      if (!(e <= worst)) {
        worst = std::isnan(e) ? INFINITY : e;
        at = i;
      }
    }
    EXPECT_LE(worst, limit) << what << ": worst at element " << at << " of " << g.size() << ": got "
                            << g[at] << ", want " << want[at];
  }

  // For what both precisions compute exactly (copies, x * 2, the same sums in the same order).
  void expect_exact(const char* what, const Tensor& got, const std::vector<double>& want) const {
    const std::vector<double> g = values(got);
    ASSERT_EQ(g.size(), want.size()) << what;
    for (size_t i = 0; i < g.size(); ++i)
      ASSERT_EQ(g[i], want[i]) << what << ": element " << i << " of " << g.size();
  }
};

void PrintTo(const Place& p, std::ostream* os) {
  *os << p.name;
}

INSTANTIATE_TEST_SUITE_P(Every, OpsOnEveryDevice, testing::ValuesIn(kPlaces),
                         [](const testing::TestParamInfo<Place>& p) { return p.param.name; });

double activate(Activation a, double x) {
  return a == Activation::relu ? std::max(x, 0.0) : std::tanh(x);
}

// ---------------------------------------------------------------- convolution
// The definitions, loop by loop: y[n,k,p,q] = sum over the group's channels c and the window
// (r, s) of x[n, c, p*stride - pad + r, q*stride - pad + s] * w[k, c - group start, r, s].
struct NaiveConv {
  ConvGeom g;
  int P = g.out_h(), Q = g.out_w(), CG = g.c / g.groups, KG = g.k / g.groups;

  size_t xi(int n, int c, int h, int w) const {
    return static_cast<size_t>(((int64_t{n} * g.c + c) * g.h + h) * g.w + w);
  }
  size_t yi(int n, int k, int p, int q) const {
    return static_cast<size_t>(((int64_t{n} * g.k + k) * P + p) * Q + q);
  }
  size_t wi(int k, int c, int r, int s) const {
    return static_cast<size_t>(((int64_t{k} * CG + c) * g.r + r) * g.s + s);
  }

  // Calls f(x index, y index, w index) for every product the convolution sums.
  template <class F>
  void each_product(F f) const {
    for (int n = 0; n < g.n; ++n)
      for (int k = 0; k < g.k; ++k)
        for (int p = 0; p < P; ++p)
          for (int q = 0; q < Q; ++q)
            for (int c = 0; c < CG; ++c)
              for (int r = 0; r < g.r; ++r)
                for (int s = 0; s < g.s; ++s) {
                  const int h = p * g.stride - g.pad + r, w = q * g.stride - g.pad + s;
                  if (h < 0 || h >= g.h || w < 0 || w >= g.w) continue;
                  f(xi(n, k / KG * CG + c, h, w), yi(n, k, p, q), wi(k, c, r, s));
                }
  }
};

void check_conv(OpsOnEveryDevice& t, const ConvGeom& g, uint32_t seed) {
  SCOPED_TRACE("conv " + std::to_string(g.c) + "->" + std::to_string(g.k) + " groups " +
               std::to_string(g.groups) + " stride " + std::to_string(g.stride) + " pad " +
               std::to_string(g.pad));
  const NaiveConv nc{g};
  const int64_t P = nc.P, Q = nc.Q, CG = nc.CG;
  const std::vector<int64_t> xs = {g.n, g.c, g.h, g.w}, ys = {g.n, g.k, P, Q},
                             ws = {g.k, CG, g.r, g.s};
  const size_t nx = static_cast<size_t>(g.n * g.c * g.h * g.w),
               ny = static_cast<size_t>(g.n * g.k * P * Q),
               nw = static_cast<size_t>(g.k * CG * g.r * g.s), nk = static_cast<size_t>(g.k);
  const auto x = t.random(nx, seed), w = t.random(nw, seed + 1, -0.3, 0.3),
             bias = t.random(nk, seed + 2), dy = t.random(ny, seed + 3),
             y0 = t.random(ny, seed + 4), dx0 = t.random(nx, seed + 5),
             dw0 = t.random(nw, seed + 6), db0 = t.random(nk, seed + 7);
  const Tensor X = t.tensor(xs, x), W = t.tensor(ws, w), B = t.tensor({g.k}, bias),
               DY = t.tensor(ys, dy);
  for (const double beta : {0.0, 1.0}) {
    SCOPED_TRACE("beta " + std::to_string(beta));
    std::vector<double> y(ny), dx(nx), dw(nw), db(nk);
    for (size_t i = 0; i < ny; ++i) y[i] = beta * y0[i] + bias[i / static_cast<size_t>(P * Q) % nk];
    for (size_t i = 0; i < nx; ++i) dx[i] = beta * dx0[i];
    for (size_t i = 0; i < nw; ++i) dw[i] = beta * dw0[i];
    for (size_t i = 0; i < nk; ++i) db[i] = beta * db0[i];
    for (size_t i = 0; i < ny; ++i) db[i / static_cast<size_t>(P * Q) % nk] += dy[i];
    nc.each_product([&](size_t xi, size_t yi, size_t wi) {
      y[yi] += x[xi] * w[wi];
      dx[xi] += dy[yi] * w[wi];
      dw[wi] += x[xi] * dy[yi];
    });

    Tensor Y = t.tensor(ys, y0);
    ops::conv_forward(g, X, W, &B, Y, beta);
    t.expect_close("conv_forward", Y, y);
    for (const Activation a : {Activation::relu, Activation::tanh}) {
      SCOPED_TRACE(a == Activation::relu ? "relu" : "tanh");
      std::vector<double> ya(ny);
      for (size_t i = 0; i < ny; ++i) ya[i] = activate(a, y[i]);
      Tensor YA = t.tensor(ys, y0);
      ops::conv_forward_activation(a, g, X, W, &B, YA, beta);
      t.expect_close("conv_forward_activation", YA, ya);
    }
    Tensor DX = t.tensor(xs, dx0), DW = t.tensor(ws, dw0), DB = t.tensor({g.k}, db0);
    ops::conv_backward_data(g, DY, W, DX, beta);
    t.expect_close("conv_backward_data", DX, dx);
    ops::conv_backward_filter(g, X, DY, DW, &DB, beta);
    t.expect_close("conv_backward_filter dw", DW, dw);
    t.expect_close("conv_backward_filter db", DB, db);
  }
}

TEST_P(OpsOnEveryDevice, ConvMatchesNaiveLoops) {
  // conv1's stride 4 with no padding; conv2's two groups with padding 2; a 3x3 "same" conv
  // on a batch of 3 with an odd side.
  check_conv(*this, {.n = 2, .c = 3, .h = 19, .w = 19, .k = 4, .r = 11, .s = 11, .stride = 4}, 10);
  check_conv(*this, {.n = 2, .c = 4, .h = 7, .w = 7, .k = 6, .r = 5, .s = 5, .pad = 2, .groups = 2},
             20);
  check_conv(*this, {.n = 3, .c = 5, .h = 9, .w = 9, .k = 7, .r = 3, .s = 3, .pad = 1}, 30);
}

// ---------------------------------------------------------------- fully connected
TEST_P(OpsOnEveryDevice, FcMatchesNaiveLoops) {
  // n of the capacity's rows are used: the last row must be left alone.
  const int cap = 6, n = 5, in = 37, out = 11;
  const size_t N = cap, I = in, O = out;
  const auto x = random(N * I, 40), w = random(O * I, 41, -0.3, 0.3), b = random(O, 42),
             dy = random(N * O, 43), y0 = random(N * O, 44), dx0 = random(N * I, 45),
             dw0 = random(O * I, 46), db0 = random(O, 47);
  const Tensor X = tensor({cap, in}, x), W = tensor({out, in}, w), B = tensor({out}, b),
               DY = tensor({cap, out}, dy);
  for (const double beta : {0.0, 1.0}) {
    SCOPED_TRACE("beta " + std::to_string(beta));
    std::vector<double> y = y0, dx = dx0, dw(O * I), db(O);
    for (size_t r = 0; r < static_cast<size_t>(n); ++r)
      for (size_t o = 0; o < O; ++o) {
        double s = beta * y0[r * O + o] + b[o];
        for (size_t i = 0; i < I; ++i) s += x[r * I + i] * w[o * I + i];
        y[r * O + o] = s;
      }
    for (size_t r = 0; r < static_cast<size_t>(n); ++r)
      for (size_t i = 0; i < I; ++i) {
        double s = beta * dx0[r * I + i];
        for (size_t o = 0; o < O; ++o) s += dy[r * O + o] * w[o * I + i];
        dx[r * I + i] = s;
      }
    for (size_t o = 0; o < O; ++o) {
      db[o] = beta * db0[o];
      for (size_t r = 0; r < static_cast<size_t>(n); ++r) db[o] += dy[r * O + o];
      for (size_t i = 0; i < I; ++i) {
        double s = beta * dw0[o * I + i];
        for (size_t r = 0; r < static_cast<size_t>(n); ++r) s += dy[r * O + o] * x[r * I + i];
        dw[o * I + i] = s;
      }
    }
    Tensor Y = tensor({cap, out}, y0), DX = tensor({cap, in}, dx0), DW = tensor({out, in}, dw0),
           DB = tensor({out}, db0);
    ops::fc_forward(n, X, W, &B, Y, beta);
    expect_close("fc_forward", Y, y);
    ops::fc_backward_data(n, DY, W, DX, beta);
    expect_close("fc_backward_data", DX, dx);
    ops::fc_backward_weights(n, X, DY, DW, &DB, beta);
    expect_close("fc_backward_weights dw", DW, dw);
    expect_close("fc_backward_weights db", DB, db);
  }
}

// ---------------------------------------------------------------- activations
TEST_P(OpsOnEveryDevice, ActivationsFollowTheirDefinitions) {
  // 250 of 300 elements: the rest must be left alone. Exact zeros of both signs included.
  const size_t total = 300, count = 250;
  auto x = random(total, 50, -3.0, 3.0);
  x[0] = 0.0;
  x[1] = -0.0;
  const auto dy = random(total, 51);
  for (const Activation a : {Activation::relu, Activation::tanh}) {
    SCOPED_TRACE(a == Activation::relu ? "relu" : "tanh");
    std::vector<double> y = x, dx = dy;
    for (size_t i = 0; i < count; ++i) y[i] = activate(a, x[i]);
    Tensor Y = tensor({static_cast<int64_t>(total)}, x);
    ops::activation_forward(a, static_cast<int64_t>(count), Y);
    expect_close("activation_forward", Y, y);
    // Both derivatives are functions of the output the op gave: relu' = (y > 0), tanh' = 1 - y^2.
    const std::vector<double> y_op = values(Y);
    for (size_t i = 0; i < count; ++i)
      dx[i] = a == Activation::relu ? (y_op[i] > 0 ? dy[i] : 0.0) : dy[i] * (1 - y_op[i] * y_op[i]);
    Tensor DY = tensor({static_cast<int64_t>(total)}, dy);
    ops::activation_backward(a, static_cast<int64_t>(count), Y, DY);
    expect_close("activation_backward", DY, dx);
  }
}

// ---------------------------------------------------------------- local response normalisation
// The paper's formula: y_i = x_i / (k + alpha * sum_{j = max(0, i - n/2)}^{min(C-1, i + n/2)}
// x_j^2)^beta.
std::vector<double> naive_lrn(const LrnParams& p, int n, int c, int hw,
                              const std::vector<double>& x, std::vector<double>* scale) {
  const double alpha = p.alpha_over_n ? p.alpha / p.size : p.alpha;
  std::vector<double> y(x.size());
  if (scale) scale->assign(x.size(), 0.0);
  auto at = [&](int ni, int ci, int pix) { return (static_cast<size_t>(ni) * c + ci) * hw + pix; };
  for (int ni = 0; ni < n; ++ni)
    for (int i = 0; i < c; ++i)
      for (int pix = 0; pix < hw; ++pix) {
        double sum = 0;
        for (int j = std::max(0, i - p.size / 2); j <= std::min(c - 1, i + p.size / 2); ++j)
          sum += x[at(ni, j, pix)] * x[at(ni, j, pix)];
        const double s = p.k + alpha * sum;
        if (scale) (*scale)[at(ni, i, pix)] = s;
        y[at(ni, i, pix)] = x[at(ni, i, pix)] / std::pow(s, p.beta);
      }
  return y;
}

TEST_P(OpsOnEveryDevice, LrnMatchesItsFormulaAndFiniteDifferences) {
  const int n = 2, c = 7, h = 3, w = 5;
  for (const bool over_n : {false, true}) {
    SCOPED_TRACE(over_n ? "alpha / n" : "alpha");
    // alpha large enough that the normalisation and its gradient are far from negligible.
    const LrnParams p{.size = 5, .k = 2.0, .alpha = 0.1, .beta = 0.75, .alpha_over_n = over_n};
    const size_t count = static_cast<size_t>(n * c * h * w);
    const std::vector<int64_t> shape = {n, c, h, w};
    auto x = random(count, 60, -2.0, 2.0);
    const auto dy = random(count, 61);
    std::vector<double> scale;
    const auto y = naive_lrn(p, n, c, h * w, x, &scale);
    // The gradient of sum(dy * y) with respect to x, by central differences of the formula.
    const auto dx = numeric_gradient(
        x, [&] { return weighted_sum(naive_lrn(p, n, c, h * w, x, nullptr), dy); });

    const Tensor X = tensor(shape, x), DY = tensor(shape, dy);
    Tensor Y = tensor(shape, random(count, 62)), S = tensor(shape, random(count, 63)),
           DX = tensor(shape, random(count, 64));
    ops::lrn_forward(p, n, c, h, w, X, Y, S);
    expect_close("lrn_forward y", Y, y);
    expect_close("lrn_forward scale", S, scale);
    ops::lrn_backward(p, n, c, h, w, X, Y, S, DY, DX);
    // Finite differences carry ~1e-9 of rounding: in F64 the gradient is held to 1e-6 of
    // (1e-2 + |dx|), as the CPU's own LRN tests do.
    if (f64())
      expect_close("lrn_backward", DX, dx, test::kFdAtol, 1e-6);
    else
      expect_close("lrn_backward", DX, dx);
  }
}

// ---------------------------------------------------------------- max pooling
TEST_P(OpsOnEveryDevice, MaxpoolTakesEachWindowsFirstMaximum) {
  // Overlapping 3x3 windows of stride 2 on an odd side; values from a few levels so that ties
  // are common: the first maximum in row-major window order wins.
  const PoolGeom g{.n = 2, .c = 3, .h = 13, .w = 13, .size = 3, .stride = 2};
  const int P = g.out_h(), Q = g.out_w();
  const size_t nx = static_cast<size_t>(g.n * g.c * g.h * g.w),
               ny = static_cast<size_t>(g.n * g.c * P * Q);
  std::vector<double> x = random(nx, 70);
  for (double& e : x) e = std::round(e * 3) / 4;
  const auto dy = random(ny, 71);
  std::vector<double> y(ny), dx(nx, 0.0);
  std::vector<int32_t> argmax(ny);
  for (int plane = 0; plane < g.n * g.c; ++plane)
    for (int p = 0; p < P; ++p)
      for (int q = 0; q < Q; ++q) {
        int best = -1;
        for (int r = 0; r < g.size; ++r)
          for (int s = 0; s < g.size; ++s) {
            const int at = (p * g.stride + r) * g.w + q * g.stride + s;
            if (best < 0 || x[static_cast<size_t>(plane * g.h * g.w + at)] >
                                x[static_cast<size_t>(plane * g.h * g.w + best)])
              best = at;
          }
        const size_t o = static_cast<size_t>((plane * P + p) * Q + q);
        y[o] = x[static_cast<size_t>(plane * g.h * g.w + best)];
        argmax[o] = best;
        dx[static_cast<size_t>(plane * g.h * g.w + best)] += dy[o];
      }
  const std::vector<int64_t> xs = {g.n, g.c, g.h, g.w}, ys = {g.n, g.c, P, Q};
  const Tensor X = tensor(xs, x), DY = tensor(ys, dy);
  Tensor Y = tensor(ys, random(ny, 72)), DX = tensor(xs, random(nx, 73));
  Tensor A = Tensor(ys, DType::i32).to(GetParam().device);
  ops::maxpool_forward(g, X, Y, &A);
  expect_exact("maxpool_forward", Y, y);  // a copy: exact
  const Tensor a = A.to(Device{});
  EXPECT_EQ(std::vector<int32_t>(a.data<int32_t>(), a.data<int32_t>() + ny), argmax);
  ops::maxpool_backward(g, A, DY, DX);
  expect_close("maxpool_backward", DX, dx);
}

// ---------------------------------------------------------------- dropout
TEST_P(OpsOnEveryDevice, DropoutKeepsWhatItsMaskSays) {
  // Element i is kept when uniform01(Philox(seed, step, layer, i)) >= p, and scaled by 1/(1-p);
  // a dropped element is exactly 0. Backward applies the same mask.
  const DropoutParams d{.p = 0.5, .seed = 1234, .step = 77, .layer = 0x206};
  const size_t total = 1030, count = 1000;
  const auto x = random(total, 80), dy = random(total, 81);
  std::vector<double> y = x, dx = dy;
  size_t kept = 0;
  for (size_t i = 0; i < count; ++i) {
    const bool keep =
        kernels::uniform01(
            kernels::philox_draw(d.seed, d.step, d.layer, static_cast<uint32_t>(i)).v[0]) >= 0.5f;
    kept += keep;
    y[i] = keep ? x[i] * 2 : 0.0;
    dx[i] = keep ? dy[i] * 2 : 0.0;
  }
  EXPECT_GT(kept, count * 2 / 5);  // about half
  EXPECT_LT(kept, count * 3 / 5);
  const Tensor X = tensor({static_cast<int64_t>(total)}, x);
  Tensor Y = tensor({static_cast<int64_t>(total)}, x),
         DY = tensor({static_cast<int64_t>(total)}, dy);
  ops::dropout_forward(d, static_cast<int64_t>(count), X, Y);
  expect_exact("dropout_forward", Y, y);  // x * 2: exact
  ops::dropout_backward(d, static_cast<int64_t>(count), DY);
  expect_exact("dropout_backward", DY, dx);
  // A p outside [0, 1] is refused on every device before any kernel runs.
  EXPECT_THROW(ops::dropout_forward({.p = 1.5}, static_cast<int64_t>(count), X, Y), Error);
  EXPECT_THROW(ops::dropout_backward({.p = -0.1}, static_cast<int64_t>(count), DY), Error);
}

// ---------------------------------------------------------------- softmax cross-entropy
TEST_P(OpsOnEveryDevice, SoftmaxXentMatchesItsDefinition) {
  const int cap = 10, n = 9, k = 12;
  const size_t N = static_cast<size_t>(n), K = static_cast<size_t>(k);
  auto logits = random(static_cast<size_t>(cap) * K, 90, -3.0, 3.0);
  std::vector<int32_t> labels(N);
  for (size_t s = 0; s < N; ++s) labels[s] = static_cast<int32_t>((s * 5 + 3) % K);
  logits[0 * K + 3] = 9.0;  // sample 0: its label first
  for (size_t c = 0; c < 5; ++c)
    logits[1 * K + c] = 5.0 + static_cast<double>(c);  // sample 1 (label 8): 5 above
  const auto d0 = random(static_cast<size_t>(cap) * K, 91),
             p0 = random(static_cast<size_t>(cap) * K, 92);
  // loss = log sum exp(logits) - logit[label]; dlogits = (softmax - onehot) / n; top-k counts
  // the classes strictly above the label.
  std::vector<double> probs = p0, dlogits = d0;
  double loss = 0;
  int top1 = 0, top5 = 0;
  for (size_t s = 0; s < N; ++s) {
    const double* l = &logits[s * K];
    const double m = *std::max_element(l, l + K);
    double z = 0;
    for (size_t c = 0; c < K; ++c) z += std::exp(l[c] - m);
    const auto label = static_cast<size_t>(labels[s]);
    loss += m + std::log(z) - l[label];
    const auto above = std::count_if(l, l + K, [&](double v) { return v > l[label]; });
    top1 += above < 1;
    top5 += above < 5;
    for (size_t c = 0; c < K; ++c) {
      probs[s * K + c] = std::exp(l[c] - m) / z;
      dlogits[s * K + c] = (probs[s * K + c] - (c == label ? 1.0 : 0.0)) / n;
    }
  }
  const Tensor L = tensor({cap, k}, logits);
  Tensor D = tensor({cap, k}, d0), P = tensor({cap, k}, p0);
  const XentResult r = ops::softmax_xent(n, L, labels.data(), &D, &P);
  EXPECT_EQ(r.top1, top1);
  EXPECT_EQ(r.top5, top5);
  EXPECT_LE(std::abs(r.loss_sum - loss) / (1.0 + std::abs(loss)), tol())
      << r.loss_sum << " vs " << loss;
  expect_close("softmax_xent dlogits", D, dlogits);
  expect_close("softmax_xent probs", P, probs);
  const XentResult bare = ops::softmax_xent(n, L, labels.data(), nullptr, nullptr);
  EXPECT_EQ(bare.loss_sum, r.loss_sum);
  EXPECT_EQ(bare.top5, r.top5);
  labels[4] = k;  // a label out of range is refused, naming it
  try {
    ops::softmax_xent(n, L, labels.data(), nullptr, nullptr);
    ADD_FAILURE() << "no error for label " << k << " of " << k << " classes";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(k)), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- SGD
// The paper's rule: v <- momentum * v - decay * lr * w - lr * grad; w <- w + v. Three tensors of
// odd sizes, one without decay, updated one at a time and all at once; the last step updates two
// of them with other decays (on a GPU, a segment table that differs from the one it holds).
TEST_P(OpsOnEveryDevice, SgdFollowsThePapersRule) {
  const double lr = 0.01, momentum = 0.9;
  const std::vector<std::vector<int64_t>> shapes = {{33, 7}, {5}, {1000, 3}};
  const std::vector<std::vector<double>> decays_by_step = {
      {0.0005, 0.0, 0.0005}, {0.0005, 0.0, 0.0005}, {0.001, 0.001}};
  std::vector<std::vector<double>> w, v;
  std::vector<Tensor> W1, V1, W, V;  // updated one at a time, and all at once
  for (uint32_t k = 0; k < shapes.size(); ++k) {
    const auto count = static_cast<size_t>(
        std::accumulate(shapes[k].begin(), shapes[k].end(), int64_t{1}, std::multiplies<>()));
    w.push_back(random(count, 100 + k));
    v.push_back(random(count, 110 + k, -0.1, 0.1));
    W1.push_back(tensor(shapes[k], w[k]));
    V1.push_back(tensor(shapes[k], v[k]));
    W.push_back(tensor(shapes[k], w[k]));
    V.push_back(tensor(shapes[k], v[k]));
  }
  for (uint32_t step = 0; step < decays_by_step.size(); ++step) {
    const std::vector<double>& decays = decays_by_step[step];
    std::vector<Tensor> G;
    for (size_t k = 0; k < decays.size(); ++k) {
      const auto g = random(w[k].size(), 120 + 10 * step + static_cast<uint32_t>(k));
      for (size_t i = 0; i < g.size(); ++i) {
        v[k][i] = momentum * v[k][i] - decays[k] * lr * w[k][i] - lr * g[i];
        w[k][i] += v[k][i];
      }
      G.push_back(tensor(shapes[k], g));
    }
    std::vector<ops::SgdTensor> all;
    for (size_t k = 0; k < decays.size(); ++k) {
      ops::sgd_update(lr, momentum, decays[k], W1[k], V1[k], G[k]);
      all.push_back({&W[k], &V[k], &G[k], decays[k]});
    }
    ops::sgd_update_all(lr, momentum, all);
  }
  for (size_t k = 0; k < shapes.size(); ++k) {
    SCOPED_TRACE("tensor " + std::to_string(k));
    expect_close("sgd_update w", W1[k], w[k]);
    expect_close("sgd_update v", V1[k], v[k]);
    // The fused update gives the same bits as one update per tensor.
    expect_exact("sgd_update_all w", W[k], values(W1[k]));
    expect_exact("sgd_update_all v", V[k], values(V1[k]));
  }
}

// LARS: each weight tensor's lr times eta * |w| / (|grad| + decay * |w|), biases (eta 0) and a
// tensor with no gradient (ratio 1) plain SGD. Three steps against the formula in double.
TEST_P(OpsOnEveryDevice, LarsScalesEachWeightTensorsStep) {
  const double lr = 2.0, momentum = 0.9, eta = 0.001, decay = 0.0005;
  const std::vector<int64_t> sizes = {231, 7, 3000, 5};
  const std::vector<double> etas = {eta, 0.0, eta, eta}, decays = {decay, 0.0, decay, decay};
  std::vector<std::vector<double>> w, v;
  std::vector<Tensor> W, V;
  for (uint32_t k = 0; k < sizes.size(); ++k) {
    w.push_back(random(static_cast<size_t>(sizes[k]), 140 + k));
    v.push_back(random(static_cast<size_t>(sizes[k]), 150 + k, -0.1, 0.1));
    W.push_back(tensor({sizes[k]}, w[k]));
    V.push_back(tensor({sizes[k]}, v[k]));
  }
  for (uint32_t step = 0; step < 3; ++step) {
    std::vector<Tensor> G;
    std::vector<ops::SgdTensor> all;
    for (size_t k = 0; k < sizes.size(); ++k) {
      std::vector<double> g = random(w[k].size(), 160 + 10 * step + static_cast<uint32_t>(k));
      if (k == 3) std::fill(g.begin(), g.end(), 0.0);  // no gradient: the ratio is 1
      double ww = 0, gg = 0;
      for (size_t i = 0; i < g.size(); ++i) {
        ww += w[k][i] * w[k][i];
        gg += g[i] * g[i];
      }
      const double wn = std::sqrt(ww), gn = std::sqrt(gg);
      const double ratio =
          etas[k] > 0 && wn > 0 && gn > 0 ? etas[k] * wn / (gn + decays[k] * wn) : 1.0;
      for (size_t i = 0; i < g.size(); ++i) {
        v[k][i] = momentum * v[k][i] - decays[k] * lr * ratio * w[k][i] - lr * ratio * g[i];
        w[k][i] += v[k][i];
      }
      G.push_back(tensor({sizes[k]}, g));
    }
    for (size_t k = 0; k < sizes.size(); ++k)
      all.push_back({&W[k], &V[k], &G[k], decays[k], etas[k]});
    ops::sgd_update_all(lr, momentum, all);
  }
  for (size_t k = 0; k < sizes.size(); ++k) {
    SCOPED_TRACE("tensor " + std::to_string(k));
    expect_close("lars w", W[k], w[k]);
    expect_close("lars v", V[k], v[k]);
  }
}

// ---------------------------------------------------------------- column blocks and sums
TEST_P(OpsOnEveryDevice, ColumnBlocksAndSumsAreExact) {
  const int n = 3;  // of 4 rows: the last row is left alone
  const auto src = random(20, 130), wide0 = random(48, 131), narrow0 = random(20, 132);
  std::vector<double> wide = wide0, narrow = narrow0;
  for (size_t r = 0; r < static_cast<size_t>(n); ++r)
    for (size_t c = 0; c < 5; ++c) wide[r * 12 + 6 + c] = src[r * 5 + c];
  for (size_t r = 0; r < static_cast<size_t>(n); ++r)
    for (size_t c = 0; c < 5; ++c) narrow[r * 5 + c] = wide[r * 12 + 4 + c];
  Tensor Wide = tensor({4, 12}, wide0), Narrow = tensor({4, 5}, narrow0);
  ops::copy_into_columns(n, tensor({4, 5}, src), Wide, 6);
  expect_exact("copy_into_columns", Wide, wide);
  ops::copy_from_columns(n, Wide, 4, Narrow);
  expect_exact("copy_from_columns", Narrow, narrow);

  // The sum in the order given: ((a + b) + c) in the tensor's precision, for 45 of 50.
  const auto a = random(50, 133), b = random(50, 134), c = random(50, 135), out0 = random(50, 136);
  std::vector<double> sum = out0;
  for (size_t i = 0; i < 45; ++i)
    if (f64()) {
      sum[i] = (a[i] + b[i]) + c[i];
    } else {
      const float ab = static_cast<float>(a[i]) + static_cast<float>(b[i]);
      sum[i] = ab + static_cast<float>(c[i]);
    }
  const Tensor A = tensor({50}, a), B = tensor({50}, b), C = tensor({50}, c);
  Tensor Out = tensor({50}, out0);
  const Tensor* in[] = {&A, &B, &C};
  ops::sum_into(45, in, 3, Out);
  expect_exact("sum_into", Out, sum);
}

}  // namespace
}  // namespace alexnet

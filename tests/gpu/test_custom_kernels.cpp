// The custom CUDA kernels (kernels/kernels.h) against the CPU ops (alexnet/cpu_ops.h), which
// the CPU suite checks against independent oracles. Each op runs on fresh random data from a
// fixed seed, at the network's real per-tower sizes (a batch of 8, or the paper's 128 where that
// is cheap) and on small odd shapes whose last block, row or window is partial.
//
// - Every output buffer is poisoned first (all bytes 0xFF: NaN as float or double, -1 as
//   int32), so an element a kernel never writes fails the comparison instead of matching
//   whatever the memory held.
// - Floats are compared by the relative error |gpu - cpu| / (floor + |cpu|) <= 1e-5 (our
//   GPU tolerance; TF32 plays no part in these kernels). `floor` is the size of the operands the op
//   combines: where a result cancels to far below them, a GPU fused multiply-add rounds
//   differently by an amount relative to the operands, not to the tiny result.
// - Indices, counts and masks, and results both backends reach by the same IEEE operations with
//   nothing to fuse (copies, x * scale, the same terms summed in the same order), must be equal.
// Without a usable GPU every test skips, saying "GPU test skipped: <why>".
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "alexnet/rng_streams.h"
#include "kernels/augment.cuh"
#include "kernels/kernels.h"
#include "tests/cpu/test_util.h"
#include "tests/gpu/gpu_test_util.h"

namespace alexnet {
namespace {

using test::DeviceBuffer;
using test::random_vector;

constexpr double kRtol = 1e-5;
// The floor for results that are products, quotients or library functions of the inputs, with
// no cancellation: their rounding is relative to the result itself.
constexpr double kRelativeOnly = 0.0;
// The default stream; DeviceBuffer::to_host() synchronises the device before copying, so a
// fault in a kernel surfaces there as an alexnet::Error.
constexpr cudaStream_t kStream = nullptr;
constexpr uint64_t kSeed = 0x5eed5eed1234ull;

// ---------------------------------------------------------------- comparisons

// Every element within rtol: |got - ref| / (floor + |ref|) <= rtol. A NaN on either side (a
// poisoned element the kernel did not write) or an infinity that is not matched fails.
template <class T>
testing::AssertionResult all_close(const std::vector<T>& got, const std::vector<T>& ref,
                                   double floor, double rtol = kRtol) {
  if (got.size() != ref.size())
    return testing::AssertionFailure() << "sizes differ: " << got.size() << " vs " << ref.size();
  size_t nans = 0, first_nan = 0, worst_at = 0;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const auto g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    if (std::isnan(g) || std::isnan(r)) {
      if (nans++ == 0) first_nan = i;
      continue;
    }
    double e = g == r ? 0.0 : std::abs(g - r) / (floor + std::abs(r));
    if (!std::isfinite(e)) e = INFINITY;
    if (e > worst) {
      worst = e;
      worst_at = i;
    }
  }
  if (nans > 0)
    return testing::AssertionFailure()
           << nans << " of " << got.size() << " elements are NaN (unwritten?), the first at "
           << first_nan << ": got " << got[first_nan] << ", want " << ref[first_nan];
  if (worst > rtol)
    return testing::AssertionFailure()
           << "relative error " << worst << " > " << rtol << " (floor " << floor << ") at element "
           << worst_at << " of " << got.size() << ": got " << got[worst_at] << ", want "
           << ref[worst_at];
  return testing::AssertionSuccess() << "max relative error " << worst;
}

// Exact equality (NaN never equals anything, so a poisoned element fails).
template <class T>
testing::AssertionResult all_equal(const std::vector<T>& got, const std::vector<T>& ref) {
  if (got.size() != ref.size())
    return testing::AssertionFailure() << "sizes differ: " << got.size() << " vs " << ref.size();
  size_t differ = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(got[i] == ref[i]) && differ++ == 0) first = i;
  if (differ > 0)
    return testing::AssertionFailure()
           << differ << " of " << got.size() << " elements differ, the first at " << first
           << ": got " << got[first] << ", want " << ref[first];
  return testing::AssertionSuccess();
}

// ---------------------------------------------------------------- data

// Values in ±[0.1, 1.1): never zero, so a dropped unit (exactly 0) is told apart from a kept one.
std::vector<float> nonzero_random(size_t count, uint32_t seed) {
  std::vector<float> v = random_vector<float>(count, seed, -1.0, 1.0);
  for (float& e : v) e += e < 0.0f ? -0.1f : 0.1f;
  return v;
}

// ---------------------------------------------------------------- activations

// One tower's conv1 output for the paper's batch of 128 (18.6M elements): more than one pass of
// the launcher's largest grid (65535 blocks x 256 threads = 16.8M), so its grid-stride loop
// takes a second round. Then a count that ends inside a block, and a single element.
constexpr int64_t kActivationCounts[] = {int64_t{128} * 48 * 55 * 55, 1000003, 1};

// [-4, 4) with exact zeros of both signs mixed in: ReLU's boundary (only y > 0 passes) and
// tanh's fixed point.
std::vector<float> activation_input(size_t count, uint32_t seed) {
  std::vector<float> x = random_vector<float>(count, seed, -4.0, 4.0);
  for (size_t i = 0; i < count; i += 16) x[i] = 0.0f;
  for (size_t i = 7; i < count; i += 16) x[i] = -0.0f;
  return x;
}

std::vector<float> cpu_activation_forward(Activation a, const std::vector<float>& x) {
  std::vector<float> y(x.size());
  cpu::activation_forward(a, std::ssize(x), x.data(), y.data());
  return y;
}

// ReLU only copies or zeroes: exact. tanh: the CPU's libm and CUDA's tanhf, each within 2 ulp.
testing::AssertionResult activation_matches(Activation a, const std::vector<float>& got,
                                            const std::vector<float>& ref, double tanh_floor) {
  return a == Activation::relu ? all_equal(got, ref) : all_close(got, ref, tanh_floor);
}

void check_activation_forward(Activation a) {
  for (const int64_t count : kActivationCounts) {
    SCOPED_TRACE("count " + std::to_string(count));
    const auto x = activation_input(static_cast<size_t>(count), 1);
    const auto ref = cpu_activation_forward(a, x);
    DeviceBuffer<float> d_x(x);
    DeviceBuffer<float> d_y(x.size());
    d_y.poison();
    kernels::activation_forward_cuda(a, count, d_x.ptr, d_y.ptr, kStream);
    EXPECT_TRUE(activation_matches(a, d_y.to_host(), ref, kRelativeOnly)) << "out of place";
    // In place (x == y), as the network runs it.
    kernels::activation_forward_cuda(a, count, d_x.ptr, d_x.ptr, kStream);
    EXPECT_TRUE(activation_matches(a, d_x.to_host(), ref, kRelativeOnly)) << "in place";
  }
}

void check_activation_backward(Activation a) {
  for (const int64_t count : kActivationCounts) {
    SCOPED_TRACE("count " + std::to_string(count));
    const auto n = static_cast<size_t>(count);
    // The backward takes the forward's output y (with its zeros for ReLU).
    const auto y = cpu_activation_forward(a, activation_input(n, 2));
    const auto dy = random_vector<float>(n, 3);
    std::vector<float> ref(n);
    cpu::activation_backward(a, count, y.data(), dy.data(), ref.data());
    const DeviceBuffer<float> d_y(y);
    DeviceBuffer<float> d_dy(dy);
    DeviceBuffer<float> d_dx(n);
    d_dx.poison();
    kernels::activation_backward_cuda(a, count, d_y.ptr, d_dy.ptr, d_dx.ptr, kStream);
    // tanh' = dy * (1 - y^2): 1 and y^2 cancel for |y| near 1, and the GPU fuses 1 - y*y, so
    // the error is relative to the operands, which are O(1) (|dy| < 1).
    EXPECT_TRUE(activation_matches(a, d_dx.to_host(), ref, 1.0)) << "out of place";
    kernels::activation_backward_cuda(a, count, d_y.ptr, d_dy.ptr, d_dy.ptr, kStream);
    EXPECT_TRUE(activation_matches(a, d_dy.to_host(), ref, 1.0)) << "in place (dy == dx)";
  }
}

TEST(ActivationCuda, ReluForward) {
  AX_REQUIRE_GPU();
  check_activation_forward(Activation::relu);
}

TEST(ActivationCuda, ReluBackward) {
  AX_REQUIRE_GPU();
  check_activation_backward(Activation::relu);
}

TEST(ActivationCuda, TanhForward) {
  AX_REQUIRE_GPU();
  check_activation_forward(Activation::tanh);
}

TEST(ActivationCuda, TanhBackward) {
  AX_REQUIRE_GPU();
  check_activation_backward(Activation::tanh);
}

// ---------------------------------------------------------------- LRN

struct LrnCase {
  const char* what;
  LrnParams p;
  int n, c, h, w;
  size_t count() const { return static_cast<size_t>(n) * c * h * w; }
};

std::vector<LrnCase> lrn_cases() {
  const LrnParams paper;  // n 5, k 2, alpha 1e-4 (not divided by n), beta 0.75
  LrnParams caffe;
  caffe.k = 1;
  caffe.alpha_over_n = true;
  LrnParams other;  // beta != 0.75 takes the pow path instead of the two square roots
  other.size = 3;
  other.k = 1.5;
  other.alpha = 1e-3;
  other.beta = 0.6;
  return {
      {"conv1 tower (48 x 55 x 55), batch 8", paper, 8, 48, 55, 55},
      {"conv2 tower (128 x 27 x 27), batch 8, Caffe's k 1 and alpha / n", caffe, 8, 128, 27, 27},
      {"odd 3 x 7 x 5 x 3, window 3, beta 0.6", other, 3, 7, 5, 3},
      {"2 channels, narrower than the window", paper, 2, 2, 4, 5}};
}

// Conv outputs up to |x| = 60, so that alpha * sum x^2 is comparable to k and the
// normalisation is far from a constant factor.
std::vector<float> lrn_input(const LrnCase& t, uint32_t seed) {
  return random_vector<float>(t.count(), seed, -60.0, 60.0);
}

TEST(LrnCuda, Forward) {
  AX_REQUIRE_GPU();
  uint32_t seed = 10;
  for (const LrnCase& t : lrn_cases()) {
    SCOPED_TRACE(t.what);
    const auto x = lrn_input(t, seed++);
    std::vector<float> y(t.count()), scale(t.count());
    cpu::lrn_forward(t.p, t.n, t.c, t.h, t.w, x.data(), y.data(), scale.data());

    const DeviceBuffer<float> d_x(x);
    DeviceBuffer<float> d_y(t.count()), d_scale(t.count()), d_y_alone(t.count());
    d_y.poison();
    d_scale.poison();
    d_y_alone.poison();
    kernels::lrn_forward_cuda(t.p, t.n, t.c, t.h, t.w, d_x.ptr, d_y.ptr, d_scale.ptr, kStream);
    // Inference keeps no scale (null).
    kernels::lrn_forward_cuda(t.p, t.n, t.c, t.h, t.w, d_x.ptr, d_y_alone.ptr, nullptr, kStream);
    // scale = k + alpha * (a sum of squares) and y = x * scale^-beta: no cancellation.
    EXPECT_TRUE(all_close(d_y.to_host(), y, kRelativeOnly)) << "y";
    EXPECT_TRUE(all_close(d_scale.to_host(), scale, kRelativeOnly)) << "scale";
    EXPECT_TRUE(all_close(d_y_alone.to_host(), y, kRelativeOnly)) << "y without scale";
  }
}

TEST(LrnCuda, Backward) {
  AX_REQUIRE_GPU();
  uint32_t seed = 20;
  for (const LrnCase& t : lrn_cases()) {
    SCOPED_TRACE(t.what);
    const auto x = lrn_input(t, seed++);
    const auto dy = random_vector<float>(t.count(), seed++);
    // Both backends get the same forward results (the CPU's), so only the backward is compared.
    std::vector<float> y(t.count()), scale(t.count());
    cpu::lrn_forward(t.p, t.n, t.c, t.h, t.w, x.data(), y.data(), scale.data());
    std::vector<float> dx(t.count()), dx_recomputed(t.count());
    cpu::lrn_backward(t.p, t.n, t.c, t.h, t.w, x.data(), y.data(), scale.data(), dy.data(),
                      dx.data());
    cpu::lrn_backward<float>(t.p, t.n, t.c, t.h, t.w, x.data(), y.data(), nullptr, dy.data(),
                             dx_recomputed.data());

    const DeviceBuffer<float> d_x(x), d_y(y), d_scale(scale), d_dy(dy);
    DeviceBuffer<float> d_dx(t.count()), d_dx_recomputed(t.count());
    d_dx.poison();
    d_dx_recomputed.poison();
    kernels::lrn_backward_cuda(t.p, t.n, t.c, t.h, t.w, d_x.ptr, d_y.ptr, d_scale.ptr, d_dy.ptr,
                               d_dx.ptr, kStream);
    // Without the forward's scales the kernel recomputes them from x.
    kernels::lrn_backward_cuda(t.p, t.n, t.c, t.h, t.w, d_x.ptr, d_y.ptr, nullptr, d_dy.ptr,
                               d_dx_recomputed.ptr, kStream);
    // dx = dy * scale^-beta - 2 alpha beta x * sum(dy y / scale): two terms of about the size of
    // dy (< 1 here) that can cancel, so the floor is 1.
    EXPECT_TRUE(all_close(d_dx.to_host(), dx, 1.0)) << "dx from the forward's scales";
    EXPECT_TRUE(all_close(d_dx_recomputed.to_host(), dx_recomputed, 1.0))
        << "dx with the scales recomputed";
  }
}

// ---------------------------------------------------------------- max pooling

struct PoolCase {
  const char* what;
  PoolGeom g;
};

std::vector<PoolCase> pool_cases() {
  return {{"pool1: conv1 tower 48 x 55 x 55 -> 27 x 27, batch 8", {8, 48, 55, 55, 3, 2}},
          {"pool2: conv2 tower 128 x 27 x 27 -> 13 x 13, batch 8", {8, 128, 27, 27, 3, 2}},
          {"pool5: conv5 tower 128 x 13 x 13 -> 6 x 6, batch 8", {8, 128, 13, 13, 3, 2}},
          // (8 - 3) / 2 + 1 = 3 rows of windows cover rows 0..6; 4 columns cover 0..8.
          {"8 x 10: the last row and column lie in no window", {2, 3, 8, 10, 3, 2}},
          // 4 x 3 windows of 2 x 2 at stride 3: rows 2, 5, 8 and columns 2, 5 lie in none.
          {"2 x 2 windows at stride 3: gaps between the windows", {1, 5, 11, 8, 2, 3}}};
}

size_t in_count(const PoolGeom& g) {
  return static_cast<size_t>(g.n) * g.c * g.h * g.w;
}
size_t out_count(const PoolGeom& g) {
  return static_cast<size_t>(g.n) * g.c * g.out_h() * g.out_w();
}

// ReLU outputs full of ties: about 45% exact zeros and the rest multiples of 0.25 up to 1.5, so
// most windows hold several equal maxima and only the first-maximum rule fixes the argmax; every
// fifth plane is all zero (a dead map), where every window is a tie of all its elements.
std::vector<float> relu_with_ties(const PoolGeom& g, uint32_t seed) {
  std::vector<float> x = random_vector<float>(in_count(g), seed, -1.0, 1.5);
  for (float& e : x) e = std::max(0.0f, std::round(e * 4.0f) / 4.0f);
  const size_t plane = static_cast<size_t>(g.h) * g.w;
  for (size_t p = 0; p < static_cast<size_t>(g.n) * g.c; p += 5)
    std::fill_n(x.data() + p * plane, plane, 0.0f);
  return x;
}

struct PoolInput {
  const char* what;
  std::vector<float> x;
};

std::vector<PoolInput> pool_inputs(const PoolGeom& g, uint32_t seed) {
  std::vector<PoolInput> inputs;
  inputs.push_back({"continuous values", random_vector<float>(in_count(g), seed)});
  inputs.push_back({"ReLU output with ties", relu_with_ties(g, seed + 1)});
  return inputs;
}

TEST(MaxpoolCuda, Forward) {
  AX_REQUIRE_GPU();
  uint32_t seed = 30;
  for (const PoolCase& t : pool_cases()) {
    for (const PoolInput& in : pool_inputs(t.g, seed)) {
      SCOPED_TRACE(std::string(t.what) + ", " + in.what);
      const size_t out = out_count(t.g);
      std::vector<float> y(out);
      std::vector<int32_t> argmax(out);
      cpu::maxpool_forward(t.g, in.x.data(), y.data(), argmax.data());

      const DeviceBuffer<float> d_x(in.x);
      DeviceBuffer<float> d_y(out), d_y_alone(out);
      DeviceBuffer<int32_t> d_argmax(out);
      d_y.poison();
      d_y_alone.poison();
      d_argmax.poison();  // -1: never a valid offset
      kernels::maxpool_forward_cuda(t.g, d_x.ptr, d_y.ptr, d_argmax.ptr, kStream);
      kernels::maxpool_forward_cuda(t.g, d_x.ptr, d_y_alone.ptr, nullptr, kStream);
      // A window's maximum is a copy of an input and its argmax an index: both exact. With ties
      // y agrees whichever maximum is taken; the argmax shows that it was the first.
      EXPECT_TRUE(all_equal(d_y.to_host(), y)) << "y";
      EXPECT_TRUE(all_equal(d_argmax.to_host(), argmax)) << "argmax";
      EXPECT_TRUE(all_equal(d_y_alone.to_host(), y)) << "y without argmax";
    }
    seed += 2;
  }
}

TEST(MaxpoolCuda, Backward) {
  AX_REQUIRE_GPU();
  uint32_t seed = 40;
  for (const PoolCase& t : pool_cases()) {
    for (const PoolInput& in : pool_inputs(t.g, seed)) {
      SCOPED_TRACE(std::string(t.what) + ", " + in.what);
      const size_t out = out_count(t.g);
      // Both backends get the CPU forward's argmax, so only the backward is compared; with ties,
      // overlapping windows often share an argmax and dx sums several dy.
      std::vector<float> y(out);
      std::vector<int32_t> argmax(out);
      cpu::maxpool_forward(t.g, in.x.data(), y.data(), argmax.data());
      const auto dy = random_vector<float>(out, seed + 100);
      std::vector<float> dx(in_count(t.g));
      cpu::maxpool_backward(t.g, argmax.data(), dy.data(), dx.data());

      const DeviceBuffer<int32_t> d_argmax(argmax);
      const DeviceBuffer<float> d_dy(dy);
      DeviceBuffer<float> d_dx(in_count(t.g));
      d_dx.poison();
      kernels::maxpool_backward_cuda(t.g, d_argmax.ptr, d_dy.ptr, d_dx.ptr, kStream);
      // The GPU's gather adds the same dy terms in the same (oy, ox) order as the CPU's scatter,
      // so dx is bit-identical; elements in no window must be written as 0, not left poisoned.
      EXPECT_TRUE(all_equal(d_dx.to_host(), dx)) << "dx";
    }
    seed += 2;
  }
}

// ---------------------------------------------------------------- dropout

struct DropoutCase {
  const char* what;
  DropoutParams d;  // p, seed, step, layer (the Philox stream)
  int64_t count;
};

std::vector<DropoutCase> dropout_cases() {
  const uint64_t big_step = (uint64_t{1} << 32) + 12345;  // the counter's high word matters
  return {{"fc6 tower 1, batch 128, p 0.5, step past 2^32",
           {0.5, kSeed, big_step, rng::kDropout + 16 * 6 + 1},
           int64_t{128} * 2048},
          {"fc7 tower 0, batch 128, p 0.5", {0.5, kSeed, 777, rng::kDropout + 16 * 7}, 128 * 2048},
          {"odd count, p 0.3 (1 / (1 - p) inexact)", {0.3, 99, 5, 3}, 1001},
          {"p 0 keeps everything", {0.0, 1, 2, 3}, 257},
          {"p 1 drops everything", {1.0, 1, 2, 3}, 257}};
}

double fraction_zero(const std::vector<float>& v) {
  return static_cast<double>(std::count(v.begin(), v.end(), 0.0f)) / static_cast<double>(v.size());
}

// Runs the GPU forward into a poisoned buffer.
std::vector<float> gpu_dropout_forward(const DropoutParams& d, const std::vector<float>& x) {
  const DeviceBuffer<float> d_x(x);
  DeviceBuffer<float> d_y(x.size());
  d_y.poison();
  kernels::dropout_forward_cuda(d, std::ssize(x), d_x.ptr, d_y.ptr, kStream);
  return d_y.to_host();
}

TEST(DropoutCuda, Forward) {
  AX_REQUIRE_GPU();
  uint32_t seed = 50;
  for (const DropoutCase& t : dropout_cases()) {
    SCOPED_TRACE(t.what);
    const auto x = nonzero_random(static_cast<size_t>(t.count), seed++);
    std::vector<float> y(x.size());
    cpu::dropout_forward(t.d, t.count, x.data(), y.data());
    const auto got = gpu_dropout_forward(t.d, x);
    // The mask is one Philox draw of (seed, step, layer, index) on both backends, a kept unit
    // is x * (1 / (1 - p)) (one multiply) and a dropped one exactly 0: so the outputs are equal,
    // and since x is never 0 that also says the masks are.
    EXPECT_TRUE(all_equal(got, y));
    // And the mask is not trivial: a fraction p dropped (within 5 standard deviations).
    const double sd = std::sqrt(t.d.p * (1 - t.d.p) / static_cast<double>(t.count));
    EXPECT_NEAR(fraction_zero(got), t.d.p, 5 * sd + 1e-12);
  }
}

TEST(DropoutCuda, Backward) {
  AX_REQUIRE_GPU();
  uint32_t seed = 60;
  for (const DropoutCase& t : dropout_cases()) {
    SCOPED_TRACE(t.what);
    const auto n = static_cast<size_t>(t.count);
    const auto x = nonzero_random(n, seed++);
    const auto dy = nonzero_random(n, seed++);
    std::vector<float> dx(n);
    cpu::dropout_backward(t.d, t.count, dy.data(), dx.data());

    const DeviceBuffer<float> d_dy(dy);
    DeviceBuffer<float> d_dx(n);
    d_dx.poison();
    kernels::dropout_backward_cuda(t.d, t.count, d_dy.ptr, d_dx.ptr, kStream);
    const auto got = d_dx.to_host();
    EXPECT_TRUE(all_equal(got, dx)) << "dx";
    // The backward redraws the forward's mask on the GPU too: dx is 0 exactly where y is.
    const auto y = gpu_dropout_forward(t.d, x);
    size_t differ = 0;
    for (size_t i = 0; i < n; ++i) differ += (got[i] == 0.0f) != (y[i] == 0.0f) ? 1 : 0;
    EXPECT_EQ(differ, 0u) << "elements whose forward and backward masks differ";
  }
}

// ---------------------------------------------------------------- softmax cross-entropy

struct XentCase {
  const char* what;
  int n, k;
};

std::vector<int32_t> random_labels(int n, int k, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> dist(0, k - 1);
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (auto& l : labels) l = dist(gen);
  labels.front() = 0;  // both ends of a row
  labels.back() = k - 1;
  return labels;
}

// Logits in [-6, 6) with the label placed four ways, cycling over the samples: as drawn (rarely
// in the top 5 of 1000), raised by 9 (a confident hit), equal to the third largest logit (a
// top-5 hit and a top-1 miss), and on an integer grid equal to the row's maximum (a top-1 hit
// although other classes tie with it: only classes strictly above the label count).
std::vector<float> make_logits(int n, int k, const std::vector<int32_t>& labels, uint32_t seed) {
  std::vector<float> logits = random_vector<float>(static_cast<size_t>(n) * k, seed, -6.0, 6.0);
  for (int s = 0; s < n; ++s) {
    float* row = logits.data() + static_cast<size_t>(s) * k;
    float& target = row[labels[static_cast<size_t>(s)]];
    switch (s % 4) {
      case 1:
        target += 9.0f;
        break;
      case 2: {
        std::vector<float> sorted(row, row + k);
        std::sort(sorted.begin(), sorted.end(), std::greater<>());
        target = sorted[static_cast<size_t>(std::min(2, k - 1))];
        break;
      }
      case 3:
        for (int j = 0; j < k; ++j) row[j] = std::round(row[j]);
        target = *std::max_element(row, row + k);
        break;
      default:
        break;
    }
  }
  return logits;
}

TEST(SoftmaxXentCuda, LossGradientProbabilitiesAndTopK) {
  AX_REQUIRE_GPU();
  const XentCase cases[] = {{"fc8: batch 128, 1000 classes", 128, 1000},
                            {"batch 300 (two blocks), 10 classes", 300, 10},
                            {"5 samples, 3 classes: every label is in the top 5", 5, 3}};
  uint32_t seed = 70;
  for (const XentCase& t : cases) {
    SCOPED_TRACE(t.what);
    const auto labels = random_labels(t.n, t.k, seed++);
    const auto logits = make_logits(t.n, t.k, labels, seed++);
    const size_t nk = static_cast<size_t>(t.n) * t.k, n = static_cast<size_t>(t.n);

    // CPU: the whole batch (gradient, probabilities, sums), then each sample alone for its own
    // loss and hits (the CPU op returns only sums; the CUDA op returns per-sample values).
    std::vector<float> dlogits(nk), probs(nk);
    const XentResult batch = cpu::softmax_xent<float>(t.n, t.k, logits.data(), labels.data(),
                                                      dlogits.data(), probs.data());
    std::vector<double> loss(n);
    std::vector<int32_t> top1(n), top5(n);
    for (size_t s = 0; s < n; ++s) {
      const XentResult one =
          cpu::softmax_xent<float>(1, t.k, logits.data() + s * t.k, &labels[s], nullptr, nullptr);
      loss[s] = one.loss_sum;
      top1[s] = one.top1;
      top5[s] = one.top5;
    }
    // The cases are built so that the counts are neither all nor nothing.
    EXPECT_GT(batch.top1, 0);
    EXPECT_LT(batch.top1, t.n);
    EXPECT_GT(batch.top5, batch.top1);

    const DeviceBuffer<float> d_logits(logits);
    const DeviceBuffer<int32_t> d_labels(labels);
    DeviceBuffer<float> d_dlogits(nk), d_probs(nk);
    DeviceBuffer<double> d_loss(n);
    DeviceBuffer<int32_t> d_top1(n), d_top5(n);
    d_dlogits.poison();
    d_probs.poison();
    d_loss.poison();  // NaN
    d_top1.poison();  // -1
    d_top5.poison();
    kernels::softmax_xent_cuda(t.n, t.k, d_logits.ptr, d_labels.ptr, d_dlogits.ptr, d_probs.ptr,
                               d_loss.ptr, d_top1.ptr, d_top5.ptr, 1.0 / t.n, kStream);
    const auto got_loss = d_loss.to_host();
    const auto got_top1 = d_top1.to_host();
    const auto got_top5 = d_top5.to_host();

    // The loss is computed in double on both backends (exp and log within an ulp or two of
    // double), so it agrees far beyond fp32's 1e-5.
    EXPECT_TRUE(all_close(got_loss, loss, kRelativeOnly, 1e-9)) << "per-sample loss";
    const double got_sum = std::accumulate(got_loss.begin(), got_loss.end(), 0.0);
    EXPECT_NEAR(got_sum, batch.loss_sum, 1e-9 * batch.loss_sum) << "loss sum";
    EXPECT_TRUE(all_equal(got_top1, top1)) << "top-1 hits";
    EXPECT_TRUE(all_equal(got_top5, top5)) << "top-5 hits";
    EXPECT_EQ(std::accumulate(got_top1.begin(), got_top1.end(), 0), batch.top1);
    EXPECT_EQ(std::accumulate(got_top5.begin(), got_top5.end(), 0), batch.top5);
    // Probabilities and gradient are computed in double and rounded once to float: at most an
    // ulp apart, relative to the value itself (however small).
    EXPECT_TRUE(all_close(d_dlogits.to_host(), dlogits, kRelativeOnly)) << "dlogits";
    EXPECT_TRUE(all_close(d_probs.to_host(), probs, kRelativeOnly)) << "probs";
  }
}

// ---------------------------------------------------------------- SGD

TEST(SgdCuda, SeveralStepsMatchCpu) {
  AX_REQUIRE_GPU();
  // fc7's weights on one tower (2048 x 4096) and an odd count. Five steps of the paper's rule,
  // the learning rate divided by 10 after the third as the plateau schedule does, with w and v
  // staying on the device between steps as in training. w and v are updated in place, so they
  // cannot be poisoned; an element the kernel skipped keeps its old value, which differs from
  // the updated one by |v| ~ 1e-3, a hundred times the tolerance.
  constexpr double kMomentum = 0.9, kDecay = 0.0005;
  uint32_t seed = 80;
  for (const int64_t count : {int64_t{2048} * 4096, int64_t{1001}}) {
    SCOPED_TRACE("count " + std::to_string(count));
    const auto n = static_cast<size_t>(count);
    auto w = random_vector<float>(n, seed++, -0.03, 0.03);  // ~ N(0, 0.01^2) after some training
    auto v = random_vector<float>(n, seed++, -1e-3, 1e-3);  // momentum of a resumed run
    DeviceBuffer<float> d_w(w), d_v(v);
    for (int step = 0; step < 5; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      const double lr = step < 3 ? 0.01 : 0.001;
      const auto grad = random_vector<float>(n, seed++, -0.1, 0.1);
      cpu::sgd_update(count, lr, kMomentum, kDecay, w.data(), v.data(), grad.data());
      const DeviceBuffer<float> d_grad(grad);
      kernels::sgd_update_cuda(count, lr, kMomentum, kDecay, d_w.ptr, d_v.ptr, d_grad.ptr, kStream);
      // The GPU fuses v's three products into multiply-adds; the terms (0.9 v, lr * grad) are
      // about 1e-3 and may cancel, and w + v adds terms of about 1e-2.
      EXPECT_TRUE(all_close(d_v.to_host(), v, 1e-3)) << "v";
      EXPECT_TRUE(all_close(d_w.to_host(), w, 1e-2)) << "w";
    }
  }
}

// ---------------------------------------------------------------- augmentation

// ImageNet's RGB eigen-decomposition as commonly quoted (fb.resnet.torch), pixel scale 0..255,
// as in the CPU suite: row c is the colour, column i the eigenvector.
constexpr float kEigval[3] = {0.2175f * 255, 0.0188f * 255, 0.0045f * 255};
constexpr float kEigvec[9] = {-0.5675f, 0.7192f,  0.4009f,   //
                              -0.5808f, -0.0045f, -0.8140f,  //
                              -0.5836f, -0.6948f, 0.4203f};
constexpr float kLightingStd = 0.1f;  // the paper's

std::vector<uint8_t> random_images(int n, int size, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(0, 255);
  std::vector<uint8_t> v(static_cast<size_t>(n) * size * size * 3);
  for (auto& e : v) e = static_cast<uint8_t>(dist(gen));
  return v;
}

AugmentSample make_sample(int x0, int y0, bool flip) {
  AugmentSample s;
  s.x0 = x0;
  s.y0 = y0;
  s.flip = flip;
  return s;
}

// Random training samples as the loader draws them on the host: crop, mirror and PCA lighting.
std::vector<AugmentSample> training_samples(int n, int size, int crop, uint64_t epoch) {
  std::vector<AugmentSample> samples;
  for (int i = 0; i < n; ++i)
    samples.push_back(kernels::draw_augment(kSeed, epoch, static_cast<uint32_t>(1000 + i), size,
                                            crop, true, true, kLightingStd, kEigval, kEigvec));
  return samples;
}

// Images (N, S, S, 3) and a mean (3, S, S) at random; the samples copied to the device as the
// trainer does; the output poisoned.
void check_augment(const AugmentGeom& g, const std::vector<AugmentSample>& samples, uint32_t seed) {
  ASSERT_EQ(samples.size(), static_cast<size_t>(g.n));
  const auto images = random_images(g.n, g.size, seed);
  const auto mean =
      random_vector<float>(static_cast<size_t>(3) * g.size * g.size, seed + 1, 0.0, 255.0);
  const size_t count = static_cast<size_t>(g.n) * 3 * g.crop * g.crop;
  std::vector<float> out(count);
  cpu::augment_batch<float>(g, images.data(), mean.data(), samples.data(), out.data());

  const DeviceBuffer<uint8_t> d_images(images);
  const DeviceBuffer<float> d_mean(mean);
  const DeviceBuffer<AugmentSample> d_samples(samples);
  DeviceBuffer<float> d_out(count);
  d_out.poison();
  kernels::augment_batch_cuda(g, d_images.ptr, d_mean.ptr, d_samples.ptr, d_out.ptr, kStream);
  // (pixel + shift - mean) * scale: the same three operations on both backends with nothing to
  // fuse, so bit-identical in fact; the tolerance is the issue's, with one grey level (times
  // scale) as the floor. A wrong source pixel is off by grey levels, far beyond it.
  EXPECT_TRUE(all_close(d_out.to_host(), out, g.scale));
}

TEST(AugmentCuda, TrainingBatch) {
  AX_REQUIRE_GPU();
  // 16 samples of the paper's 227 crops of 256 x 256 images, input scale 1.
  const AugmentGeom g{16, 256, 227, 1.0};
  const auto samples = training_samples(g.n, g.size, g.crop, 3);
  // The draw must include both mirrors, off-centre crops and lighting, or the test proves less.
  const auto flips =
      std::count_if(samples.begin(), samples.end(), [](const AugmentSample& s) { return s.flip; });
  ASSERT_GT(flips, 0);
  ASSERT_LT(flips, g.n);
  ASSERT_NE(samples[0].rgb_shift[0], 0.0f);
  ASSERT_TRUE(std::any_of(samples.begin(), samples.end(),
                          [](const AugmentSample& s) { return s.x0 != 14 || s.y0 != 14; }));
  check_augment(g, samples, 90);
}

TEST(AugmentCuda, TenCropsAndOddShape) {
  AX_REQUIRE_GPU();
  {
    SCOPED_TRACE("evaluation: the ten crops and the centre crop, scale 1/58.4");
    const AugmentGeom g{11, 256, 227, 1.0 / 58.4};
    std::vector<AugmentSample> samples;
    for (int k = 0; k < 10; ++k) samples.push_back(kernels::ten_crop(k, g.size, g.crop));
    samples.push_back(
        kernels::draw_augment(kSeed, 0, 0, g.size, g.crop, false, false, 0.0f, nullptr, nullptr));
    check_augment(g, samples, 91);
  }
  {
    SCOPED_TRACE("odd: crops of 9 from 13 x 13, scale 0.5, with the extreme corners");
    const AugmentGeom g{7, 13, 9, 0.5};
    auto samples = training_samples(5, g.size, g.crop, 4);
    samples.push_back(make_sample(g.size - g.crop, g.size - g.crop, true));
    samples.push_back(make_sample(0, g.size - g.crop, false));
    check_augment(g, samples, 92);
  }
}

}  // namespace
}  // namespace alexnet

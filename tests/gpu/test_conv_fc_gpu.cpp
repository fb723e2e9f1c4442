// The cuDNN convolutions and cuBLAS fully-connected layers against the CPU ops, which run in
// double on the same float inputs: forward (with and without bias), backward-data,
// backward-filter and the bias gradient, each with beta 0 (the output poisoned with NaN first,
// so a read of it shows) and beta 1 (random old contents to accumulate onto).
// Errors are max |gpu - ref| / (1 + |ref|), and the data are scaled so results are O(1).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "alexnet/error.h"
#include "src/cuda/conv_cudnn.h"
#include "src/cuda/fc_cublas.h"
#include "src/cuda/handles.h"
#include "tests/gpu/gpu_test_util.h"

namespace alexnet {
namespace {

using test::DeviceBuffer;

constexpr double kFp32Tol = 1e-5;  // exact fp32 (TF32 off)
constexpr double kTf32Tol = 5e-3;  // TF32 rounds the inputs to a 10-bit mantissa

// ---------------------------------------------------------------- helpers
std::vector<float> random_floats(size_t count, uint32_t seed, double scale) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(-scale, scale);
  std::vector<float> v(count);
  for (auto& e : v) e = static_cast<float>(dist(gen));
  return v;
}

std::vector<double> widen(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

struct Diff {
  double max_err = 0;  // max |got - ref| / (1 + |ref|); infinite on a size mismatch
  size_t nans = 0;     // NaN or infinite elements in got
  size_t worst = 0;    // where max_err is
};

Diff compare(const std::vector<float>& got, const std::vector<double>& ref) {
  Diff d;
  if (got.size() != ref.size()) {
    d.max_err = INFINITY;
    return d;
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) {
      ++d.nans;
      continue;
    }
    const double e = std::abs(static_cast<double>(got[i]) - ref[i]) / (1.0 + std::abs(ref[i]));
    if (e > d.max_err) {
      d.max_err = e;
      d.worst = i;
    }
  }
  return d;
}

void expect_close(const char* what, const DeviceBuffer<float>& got_dev,
                  const std::vector<double>& ref, double tol) {
  const std::vector<float> got = got_dev.to_host();
  const Diff d = compare(got, ref);
  EXPECT_EQ(d.nans, 0u) << what << ": non-finite elements";
  EXPECT_LE(d.max_err, tol) << what << ": worst at " << d.worst << ": got "
                            << (d.worst < got.size() ? got[d.worst] : NAN) << ", expected "
                            << (d.worst < ref.size() ? ref[d.worst] : NAN);
}

// An output buffer holding `old` for beta 1, all NaN for beta 0.
void prepare_output(DeviceBuffer<float>& buf, float beta) {
  if (beta == 0.0f) buf.poison();
}

// A stream of its own, so the ops are seen to run on the stream they are given. Blocking (the
// default flags), so it waits for the tests' synchronous cudaMemcpy/cudaMemset uploads.
struct Stream {
  cudaStream_t s = nullptr;
  Stream() { AX_CUDA_CHECK(cudaStreamCreate(&s)); }
  ~Stream() { cudaStreamDestroy(s); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
};

std::string geom_name(const ConvGeom& g) {
  char text[160];
  std::snprintf(text, sizeof text, "n%d c%d %dx%d k%d %dx%d stride%d pad%d groups%d", g.n, g.c, g.h,
                g.w, g.k, g.r, g.s, g.stride, g.pad, g.groups);
  return text;
}

// ---------------------------------------------------------------- convolution
size_t x_count(const ConvGeom& g) {
  return static_cast<size_t>(g.n) * g.c * g.h * g.w;
}
size_t w_count(const ConvGeom& g) {
  return static_cast<size_t>(g.k) * (g.c / g.groups) * g.r * g.s;
}
size_t y_count(const ConvGeom& g) {
  return static_cast<size_t>(g.n) * g.k * g.out_h() * g.out_w();
}

// All three directions of one geometry through one plan, against cpu::conv_* in double.
void check_conv(const ConvGeom& g, const gpu::ConvAlgoOptions& options = {},
                bool allow_tf32 = false) {
  SCOPED_TRACE(geom_name(g));
  const double tol = allow_tf32 ? kTf32Tol : kFp32Tol;
  Stream stream;
  gpu::Handles h(stream.s, allow_tf32);
  const gpu::ConvPlan plan(h, g, options);
  std::printf("  %s\n", plan.describe().c_str());
  EXPECT_LE(plan.workspace_bytes(), options.workspace_limit);

  const size_t xc = x_count(g), wc = w_count(g), yc = y_count(g), kc = static_cast<size_t>(g.k);
  const double fan_in = static_cast<double>(g.c / g.groups) * g.r * g.s;
  const double pixels = static_cast<double>(g.n) * g.out_h() * g.out_w();
  const uint32_t seed = static_cast<uint32_t>(g.n * 7919 + g.c * 104729 + g.h * 31 + g.k * 17);
  // Scaled so every result is O(1): w by 1/sqrt(fan-in), the filter's dy by 1/sqrt(N P Q).
  const auto x = random_floats(xc, seed + 1, 1.0);
  const auto w = random_floats(wc, seed + 2, std::sqrt(3.0 / fan_in));
  const auto bias = random_floats(kc, seed + 3, 1.0);
  const auto dy = random_floats(yc, seed + 4, 1.0);
  const auto dy_f = random_floats(yc, seed + 5, std::sqrt(3.0 / pixels));
  const auto old_y = random_floats(yc, seed + 6, 1.0);
  const auto old_dx = random_floats(xc, seed + 7, 1.0);
  const auto old_dw = random_floats(wc, seed + 8, 1.0);
  const auto old_db = random_floats(kc, seed + 9, 1.0);
  const auto xd = widen(x), wd = widen(w), bd = widen(bias), dyd = widen(dy), dyfd = widen(dy_f);

  const DeviceBuffer<float> x_dev(x), w_dev(w), bias_dev(bias), dy_dev(dy), dyf_dev(dy_f);

  struct Variant {
    float beta;
    bool bias;
  };
  for (const Variant v : {Variant{0.0f, true}, Variant{1.0f, true}, Variant{0.0f, false}}) {
    SCOPED_TRACE("beta " + std::to_string(v.beta) + (v.bias ? " with bias" : " without bias"));
    const double beta = v.beta;

    // y (N, K, P, Q) = beta*y + conv(x, w) + bias
    std::vector<double> y_ref = widen(old_y);
    cpu::conv_forward<double>(g, xd.data(), wd.data(), v.bias ? bd.data() : nullptr, y_ref.data(),
                              beta);
    DeviceBuffer<float> y(old_y);
    prepare_output(y, v.beta);
    gpu::conv_forward(h, plan, x_dev.ptr, w_dev.ptr, v.bias ? bias_dev.ptr : nullptr, y.ptr,
                      v.beta);
    expect_close("forward y", y, y_ref, tol);

    // dx (N, C, H, W) = beta*dx + conv_transpose(dy, w)
    std::vector<double> dx_ref = widen(old_dx);
    cpu::conv_backward_data<double>(g, dyd.data(), wd.data(), dx_ref.data(), beta);
    DeviceBuffer<float> dx(old_dx);
    prepare_output(dx, v.beta);
    gpu::conv_backward_data(h, plan, dy_dev.ptr, w_dev.ptr, dx.ptr, v.beta);
    expect_close("backward-data dx", dx, dx_ref, tol);

    // dw (K, C/g, R, S) = beta*dw + corr(x, dy);  db (K) = beta*db + sum dy
    std::vector<double> dw_ref = widen(old_dw), db_ref = widen(old_db);
    cpu::conv_backward_filter<double>(g, xd.data(), dyfd.data(), dw_ref.data(),
                                      v.bias ? db_ref.data() : nullptr, beta);
    DeviceBuffer<float> dw(old_dw), db(old_db);
    prepare_output(dw, v.beta);
    prepare_output(db, v.beta);
    gpu::conv_backward_filter(h, plan, x_dev.ptr, dyf_dev.ptr, dw.ptr, v.bias ? db.ptr : nullptr,
                              v.beta);
    expect_close("backward-filter dw", dw, dw_ref, tol);
    if (v.bias) expect_close("backward-bias db", db, db_ref, tol);
  }
}

// The paper's conv1: 11x11, stride 4, 227 -> 55, one tower's 48 filters, a batch of 2.
TEST(ConvGpu, PaperConv1Stride4) {
  AX_REQUIRE_GPU();
  check_conv({.n = 2, .c = 3, .h = 227, .w = 227, .k = 48, .r = 11, .s = 11, .stride = 4});
}

// conv2's shape scaled down: 5x5, pad 2, two groups (each filter sees its tower's half).
TEST(ConvGpu, Conv2Groups2Pad2) {
  AX_REQUIRE_GPU();
  check_conv({.n = 3, .c = 16, .h = 27, .w = 27, .k = 32, .r = 5, .s = 5, .pad = 2, .groups = 2});
}

// conv3 (3x3, pad 1, all channels) and conv4/conv5 (the same with two groups), scaled down.
TEST(ConvGpu, Conv3x3Pad1) {
  AX_REQUIRE_GPU();
  check_conv({.n = 2, .c = 24, .h = 13, .w = 13, .k = 20, .r = 3, .s = 3, .pad = 1});
  check_conv({.n = 2, .c = 16, .h = 13, .w = 13, .k = 24, .r = 3, .s = 3, .pad = 1, .groups = 2});
}

// Non-square inputs and filters, strides that leave rows over, padding with stride, 1x1, n = 1.
TEST(ConvGpu, RaggedShapes) {
  AX_REQUIRE_GPU();
  check_conv({.n = 3,
              .c = 6,
              .h = 18,
              .w = 11,
              .k = 10,
              .r = 5,
              .s = 3,
              .stride = 2,
              .pad = 1,
              .groups = 2});
  check_conv(
      {.n = 5, .c = 4, .h = 9, .w = 6, .k = 6, .r = 3, .s = 3, .stride = 3, .pad = 2, .groups = 2});
  check_conv({.n = 1, .c = 5, .h = 7, .w = 9, .k = 3, .r = 1, .s = 1});
  check_conv({.n = 2, .c = 3, .h = 12, .w = 12, .k = 7, .r = 12, .s = 12});  // one output pixel
}

// The cudnnFind path and the deterministic filter: still exact, and repeated calls agree bit
// for bit.
TEST(ConvGpu, BenchmarkedDeterministicAlgorithms) {
  AX_REQUIRE_GPU();
  const ConvGeom g{
      .n = 3, .c = 16, .h = 27, .w = 27, .k = 32, .r = 5, .s = 5, .pad = 2, .groups = 2};
  const gpu::ConvAlgoOptions options{.benchmark = true, .deterministic = true};
  check_conv(g, options);
  check_conv({.n = 2, .c = 3, .h = 227, .w = 227, .k = 48, .r = 11, .s = 11, .stride = 4}, options);

  gpu::Handles h;
  const gpu::ConvPlan plan(h, g, options);
  const DeviceBuffer<float> x(random_floats(x_count(g), 11, 1.0));
  const DeviceBuffer<float> dy(random_floats(y_count(g), 12, 0.01));
  DeviceBuffer<float> dw1(w_count(g)), dw2(w_count(g));
  gpu::conv_backward_filter(h, plan, x.ptr, dy.ptr, dw1.ptr, nullptr, 0.0f);
  gpu::conv_backward_filter(h, plan, x.ptr, dy.ptr, dw2.ptr, nullptr, 0.0f);
  const auto a = dw1.to_host(), b = dw2.to_host();
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

// TF32 allowed: runs, and is close at TF32's precision.
TEST(ConvGpu, Tf32Allowed) {
  AX_REQUIRE_GPU();
  check_conv({.n = 3, .c = 16, .h = 27, .w = 27, .k = 32, .r = 5, .s = 5, .pad = 2, .groups = 2},
             {}, /*allow_tf32=*/true);
}

// A small workspace limit is honoured. Whether every direction has an algorithm within it is
// cuDNN's business; if one has none, the error must say what the cheapest needs.
TEST(ConvGpu, WorkspaceLimit) {
  AX_REQUIRE_GPU();
  const ConvGeom conv1{.n = 2, .c = 3, .h = 227, .w = 227, .k = 48, .r = 11, .s = 11, .stride = 4};
  for (const size_t limit : {size_t{1} << 20, size_t{0}}) {
    SCOPED_TRACE("workspace limit " + std::to_string(limit));
    try {
      {
        gpu::Handles h;
        const gpu::ConvPlan plan(h, conv1, {.workspace_limit = limit});
        EXPECT_LE(plan.workspace_bytes(), limit);
      }
      check_conv(conv1, {.workspace_limit = limit});
    } catch (const Error& e) {
      std::printf("  limit %zu: %s\n", limit, e.what());
      EXPECT_NE(std::string(e.what()).find("workspace limit"), std::string::npos) << e.what();
    }
  }
}

TEST(ConvGpu, PlanCacheReusesPlans) {
  AX_REQUIRE_GPU();
  gpu::Handles h;
  gpu::ConvPlanCache cache;
  const ConvGeom g{.n = 4, .c = 8, .h = 13, .w = 13, .k = 8, .r = 3, .s = 3, .pad = 1};
  const gpu::ConvPlan& a = cache.get(h, g);
  EXPECT_EQ(&a, &cache.get(h, g));
  ConvGeom last_batch = g;
  last_batch.n = 3;
  EXPECT_NE(&a, &cache.get(h, last_batch));
  EXPECT_EQ(cache.size(), 2u);
}

TEST(ConvGpu, BadGeometryThrows) {
  AX_REQUIRE_GPU();
  gpu::Handles h;
  EXPECT_THROW((void)gpu::ConvPlan(h, {.n = 1, .c = 3, .h = 8, .w = 8, .k = 4, .groups = 2}),
               std::invalid_argument);  // c not divisible by groups
  EXPECT_THROW((void)gpu::ConvPlan(h, {.n = 0, .c = 2, .h = 8, .w = 8, .k = 4}),
               std::invalid_argument);
  EXPECT_THROW((void)gpu::ConvPlan(h, {.n = 1, .c = 2, .h = 4, .w = 4, .k = 4, .r = 7, .s = 7}),
               std::invalid_argument);  // filter larger than the padded input
}

// Running out of memory names the request, what is free and what to lower; the error is
// cleared, so the handles stay usable.
TEST(GpuHandles, OutOfMemoryIsAClearError) {
  AX_REQUIRE_GPU();
  gpu::Handles h;
  size_t free_bytes = 0, total_bytes = 0;
  AX_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  try {
    h.workspace(2 * total_bytes);
    FAIL() << "twice the device's memory was allocated";
  } catch (const Error& e) {
    const std::string msg = e.what();
    std::printf("  %s\n", msg.c_str());
    EXPECT_NE(msg.find("asked for"), std::string::npos) << msg;
    EXPECT_NE(msg.find("free of"), std::string::npos) << msg;
    EXPECT_NE(msg.find("workspace limit"), std::string::npos) << msg;
  }
  EXPECT_NE(h.workspace(1024), nullptr);
  AX_CUDA_CHECK(cudaDeviceSynchronize());
}

// ---------------------------------------------------------------- fully connected
void check_fc(int n, int in, int out, bool allow_tf32 = false) {
  SCOPED_TRACE("fc n=" + std::to_string(n) + " in=" + std::to_string(in) +
               " out=" + std::to_string(out));
  const double tol = allow_tf32 ? kTf32Tol : kFp32Tol;
  Stream stream;
  gpu::Handles h(stream.s, allow_tf32);
  const size_t nu = static_cast<size_t>(n), iu = static_cast<size_t>(in),
               ou = static_cast<size_t>(out);
  const uint32_t seed = static_cast<uint32_t>(n * 131 + in * 7 + out);
  // Scaled so every result is O(1): w by 1/sqrt(in), the weights' dy by 1/sqrt(n).
  const auto x = random_floats(nu * iu, seed + 1, 1.0);
  const auto w = random_floats(ou * iu, seed + 2, std::sqrt(3.0 / in));
  const auto b = random_floats(ou, seed + 3, 1.0);
  const auto dy = random_floats(nu * ou, seed + 4, 1.0);
  const auto dy_w = random_floats(nu * ou, seed + 5, std::sqrt(3.0 / n));
  const auto old_y = random_floats(nu * ou, seed + 6, 1.0);
  const auto old_dx = random_floats(nu * iu, seed + 7, 1.0);
  const auto old_dw = random_floats(ou * iu, seed + 8, 1.0);
  const auto old_db = random_floats(ou, seed + 9, 1.0);
  const auto xd = widen(x), wd = widen(w), bd = widen(b), dyd = widen(dy), dywd = widen(dy_w);

  const DeviceBuffer<float> x_dev(x), w_dev(w), b_dev(b), dy_dev(dy), dyw_dev(dy_w);

  struct Variant {
    float beta;
    bool bias;
  };
  for (const Variant v : {Variant{0.0f, true}, Variant{1.0f, true}, Variant{0.0f, false}}) {
    SCOPED_TRACE("beta " + std::to_string(v.beta) + (v.bias ? " with bias" : " without bias"));
    const double beta = v.beta;

    std::vector<double> y_ref = widen(old_y);
    cpu::fc_forward<double>(n, in, out, xd.data(), wd.data(), v.bias ? bd.data() : nullptr,
                            y_ref.data(), beta);
    DeviceBuffer<float> y(old_y);
    prepare_output(y, v.beta);
    gpu::fc_forward(h, n, in, out, x_dev.ptr, w_dev.ptr, v.bias ? b_dev.ptr : nullptr, y.ptr,
                    v.beta);
    expect_close("fc forward y", y, y_ref, tol);

    std::vector<double> dx_ref = widen(old_dx);
    cpu::fc_backward_data<double>(n, in, out, dyd.data(), wd.data(), dx_ref.data(), beta);
    DeviceBuffer<float> dx(old_dx);
    prepare_output(dx, v.beta);
    gpu::fc_backward_data(h, n, in, out, dy_dev.ptr, w_dev.ptr, dx.ptr, v.beta);
    expect_close("fc backward-data dx", dx, dx_ref, tol);

    std::vector<double> dw_ref = widen(old_dw), db_ref = widen(old_db);
    cpu::fc_backward_weights<double>(n, in, out, xd.data(), dywd.data(), dw_ref.data(),
                                     v.bias ? db_ref.data() : nullptr, beta);
    DeviceBuffer<float> dw(old_dw), db(old_db);
    prepare_output(dw, v.beta);
    prepare_output(db, v.beta);
    gpu::fc_backward_weights(h, n, in, out, x_dev.ptr, dyw_dev.ptr, dw.ptr,
                             v.bias ? db.ptr : nullptr, v.beta);
    expect_close("fc backward-weights dw", dw, dw_ref, tol);
    if (v.bias) expect_close("fc bias gradient db", db, db_ref, tol);
  }
}

// fc6's shape scaled down: pool5's 256x3x3 = 2304 inputs, 512 outputs, a batch of 16.
TEST(FcGpu, Fc6Like) {
  AX_REQUIRE_GPU();
  check_fc(16, 2304, 512);
}

TEST(FcGpu, RaggedShapes) {
  AX_REQUIRE_GPU();
  check_fc(5, 37, 13);
  check_fc(1, 3, 1);
  check_fc(33, 1, 7);
}

TEST(FcGpu, Tf32Allowed) {
  AX_REQUIRE_GPU();
  check_fc(16, 2304, 512, /*allow_tf32=*/true);
}

TEST(FcGpu, BadSizesThrow) {
  AX_REQUIRE_GPU();
  gpu::Handles h;
  EXPECT_THROW(gpu::fc_forward(h, 0, 4, 4, nullptr, nullptr, nullptr, nullptr, 0.0f),
               std::invalid_argument);
  EXPECT_THROW(gpu::fc_backward_data(h, 2, 0, 4, nullptr, nullptr, nullptr, 0.0f),
               std::invalid_argument);
  EXPECT_THROW(gpu::fc_backward_weights(h, 2, 4, -1, nullptr, nullptr, nullptr, nullptr, 0.0f),
               std::invalid_argument);
}

}  // namespace
}  // namespace alexnet

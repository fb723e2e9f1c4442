// The Tensor-level ops on CUDA tensors against the same ops:: calls on CPU tensors (float on
// both sides): every op, small shapes, relative error max |gpu - cpu| / (1 + |cpu|) <= 1e-5.
// Also device tensors themselves (round trips, zero, clone), the out-of-memory message, and the
// errors for tensors on two devices and for F64 on a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "alexnet/error.h"
#include "alexnet/ops.h"
#include "alexnet/tensor.h"
#include "tests/gpu/gpu_test_util.h"

namespace alexnet {
namespace {

constexpr double kTol = 1e-5;
const Device kCpu{};
const Device kCuda0{Device::Kind::cuda, 0};

// ---------------------------------------------------------------- helpers
Tensor random_tensor(std::vector<int64_t> shape, uint32_t seed, double scale = 1.0) {
  Tensor t(std::move(shape), DType::f32);
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(-scale, scale);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(dist(gen));
  return t;
}

// One tensor twice: on the CPU and on cuda:0, with the same contents.
struct Both {
  Tensor cpu, gpu;
  explicit Both(Tensor host) : cpu(std::move(host)), gpu(cpu.to(kCuda0)) {}
};

Both random_both(std::vector<int64_t> shape, uint32_t seed, double scale = 1.0) {
  return Both(random_tensor(std::move(shape), seed, scale));
}

// max |gpu - cpu| / (1 + |cpu|) within kTol, and no NaN.
void expect_close(const char* what, const Both& t, double tol = kTol) {
  const Tensor got = t.gpu.to(kCpu);
  ASSERT_EQ(got.numel(), t.cpu.numel()) << what;
  const float* g = got.data<float>();
  const float* r = t.cpu.data<float>();
  double worst = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    ASSERT_TRUE(std::isfinite(g[i])) << what << ": element " << i << " is " << g[i];
    const double e = std::abs(static_cast<double>(g[i]) - r[i]) / (1.0 + std::abs(r[i]));
    if (e > worst) {
      worst = e;
      at = i;
    }
  }
  EXPECT_LE(worst, tol) << what << ": worst at " << at << ": gpu " << g[at] << ", cpu " << r[at];
}

void expect_equal_i32(const char* what, const Tensor& gpu, const Tensor& cpu) {
  const Tensor got = gpu.to(kCpu);
  ASSERT_EQ(got.numel(), cpu.numel()) << what;
  EXPECT_EQ(std::memcmp(got.raw(), cpu.raw(), cpu.nbytes()), 0) << what;
}

// ---------------------------------------------------------------- tensors on the device
TEST(TensorCuda, RoundTripEveryDtype) {
  AX_REQUIRE_GPU();
  for (const DType dt : {DType::f32, DType::f64, DType::i32}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor host({3, 5, 7}, dt);
    auto* bytes = static_cast<uint8_t*>(host.raw());
    for (size_t i = 0; i < host.nbytes(); ++i) bytes[i] = static_cast<uint8_t>(i * 37 + 11);
    const Tensor dev = host.to(kCuda0);
    EXPECT_EQ(dev.device(), kCuda0);
    EXPECT_EQ(dev.shape(), host.shape());
    EXPECT_EQ(dev.dtype(), dt);
    EXPECT_EQ(dev.to(kCuda0).raw(), dev.raw());  // same device: the same handle
    const Tensor back = dev.to(kCpu);
    EXPECT_NE(back.raw(), host.raw());
    EXPECT_EQ(std::memcmp(back.raw(), host.raw(), host.nbytes()), 0);
  }
}

TEST(TensorCuda, NewTensorIsZeroed) {
  AX_REQUIRE_GPU();
  const Tensor dev({1000}, DType::f32, kCuda0);
  const Tensor host = dev.to(kCpu);
  for (int64_t i = 0; i < host.numel(); ++i) ASSERT_EQ(host.data<float>()[i], 0.0f) << i;
}

TEST(TensorCuda, ZeroAndCloneOnTheDevice) {
  AX_REQUIRE_GPU();
  const Tensor host = random_tensor({4, 9}, 1);
  Tensor dev = host.to(kCuda0);
  const Tensor copy = dev.clone();
  EXPECT_EQ(copy.device(), kCuda0);
  EXPECT_NE(copy.raw(), dev.raw());
  dev.zero();
  const Tensor zeroed = dev.to(kCpu), cloned = copy.to(kCpu);
  for (int64_t i = 0; i < host.numel(); ++i) {
    EXPECT_EQ(zeroed.data<float>()[i], 0.0f) << i;
    EXPECT_EQ(cloned.data<float>()[i], host.data<float>()[i]) << i;
  }
}

TEST(TensorCuda, OutOfMemorySaysHowMuchAndWhatToLower) {
  AX_REQUIRE_GPU();
  size_t free_bytes = 0, total_bytes = 0;
  AX_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const auto floats = static_cast<int64_t>(total_bytes / 4 + (int64_t{1} << 28));
  try {
    const Tensor t({floats}, DType::f32, kCuda0);
    FAIL() << "allocated more than the device has";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("out of GPU memory on cuda:0"), std::string::npos) << m;
    EXPECT_NE(m.find("asked for"), std::string::npos) << m;
    EXPECT_NE(m.find("free of"), std::string::npos) << m;
    EXPECT_NE(m.find("data.batch_size"), std::string::npos) << m;
  }
  // The failure is not sticky: the device still works.
  const Tensor ok = random_tensor({8}, 2).to(kCuda0);
  EXPECT_EQ(ok.to(kCpu).data<float>()[3], random_tensor({8}, 2).data<float>()[3]);
}

TEST(TensorCuda, MixedDevicesNameTheOpAndBoth) {
  AX_REQUIRE_GPU();
  const ConvGeom g{.n = 1, .c = 2, .h = 5, .w = 5, .k = 3, .r = 3, .s = 3};
  const Tensor x({1, 2, 5, 5}, DType::f32, kCuda0);
  const Tensor w({3, 2, 3, 3}, DType::f32);  // on the CPU
  Tensor y({1, 3, 3, 3}, DType::f32, kCuda0);
  try {
    ops::conv_forward(g, x, w, nullptr, y, 0.0);
    FAIL() << "no error for x on cuda:0 and w on cpu";
  } catch (const std::logic_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("conv_forward"), std::string::npos) << m;
    EXPECT_NE(m.find("cuda:0 and cpu"), std::string::npos) << m;
  }
}

TEST(TensorCuda, F64OnTheGpuIsAnErrorNamingTheOp) {
  AX_REQUIRE_GPU();
  Tensor x({16}, DType::f64, kCuda0);
  try {
    ops::activation_forward(Activation::relu, 16, x);
    FAIL() << "no error for F64 on cuda:0";
  } catch (const std::logic_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("activation_forward"), std::string::npos) << m;
    EXPECT_NE(m.find("F64"), std::string::npos) << m;
  }
}

// ---------------------------------------------------------------- convolution
void check_conv(const ConvGeom& g, uint32_t seed) {
  SCOPED_TRACE("conv groups " + std::to_string(g.groups) + " stride " + std::to_string(g.stride));
  const int64_t p = g.out_h(), q = g.out_w();
  const double fan_in = static_cast<double>(g.c / g.groups) * g.r * g.s;
  const Both x = random_both({g.n, g.c, g.h, g.w}, seed);
  const Both w = random_both({g.k, g.c / g.groups, g.r, g.s}, seed + 1, std::sqrt(3.0 / fan_in));
  const Both bias = random_both({g.k}, seed + 2);
  const Both dy = random_both({g.n, g.k, p, q}, seed + 3, 1.0 / std::sqrt(double(g.n * p * q)));
  for (const double beta : {0.0, 1.0}) {
    SCOPED_TRACE("beta " + std::to_string(beta));
    Both y = random_both({g.n, g.k, p, q}, seed + 4);
    ops::conv_forward(g, x.cpu, w.cpu, &bias.cpu, y.cpu, beta);
    ops::conv_forward(g, x.gpu, w.gpu, &bias.gpu, y.gpu, beta);
    expect_close("conv_forward y", y);

    // With the epilogue: ReLU and tanh, with the bias and without it.
    for (const auto act : {Activation::relu, Activation::tanh})
      for (const bool with_bias : {true, false}) {
        SCOPED_TRACE(std::string(act == Activation::relu ? "relu" : "tanh") +
                     (with_bias ? " with bias" : " without bias"));
        Both ya = random_both({g.n, g.k, p, q}, seed + 8);
        ops::conv_forward_activation(act, g, x.cpu, w.cpu, with_bias ? &bias.cpu : nullptr, ya.cpu,
                                     beta);
        ops::conv_forward_activation(act, g, x.gpu, w.gpu, with_bias ? &bias.gpu : nullptr, ya.gpu,
                                     beta);
        expect_close("conv_forward_activation y", ya);
      }

    Both dx = random_both({g.n, g.c, g.h, g.w}, seed + 5);
    ops::conv_backward_data(g, dy.cpu, w.cpu, dx.cpu, beta);
    ops::conv_backward_data(g, dy.gpu, w.gpu, dx.gpu, beta);
    expect_close("conv_backward_data dx", dx);

    Both dw = random_both({g.k, g.c / g.groups, g.r, g.s}, seed + 6);
    Both db = random_both({g.k}, seed + 7);
    ops::conv_backward_filter(g, x.cpu, dy.cpu, dw.cpu, &db.cpu, beta);
    ops::conv_backward_filter(g, x.gpu, dy.gpu, dw.gpu, &db.gpu, beta);
    expect_close("conv_backward_filter dw", dw);
    expect_close("conv_backward_filter db", db);
  }
}

TEST(OpsCuda, Conv) {
  AX_REQUIRE_GPU();
  check_conv({.n = 2, .c = 3, .h = 11, .w = 11, .k = 4, .r = 3, .s = 3, .stride = 2, .pad = 1}, 10);
  check_conv({.n = 2, .c = 4, .h = 7, .w = 7, .k = 6, .r = 3, .s = 3, .pad = 1, .groups = 2}, 20);
}

// ---------------------------------------------------------------- fully connected
TEST(OpsCuda, Fc) {
  AX_REQUIRE_GPU();
  const int n = 5, in = 12, out = 7;
  const Both x = random_both({n, in}, 30);
  const Both w = random_both({out, in}, 31, std::sqrt(3.0 / in));
  const Both b = random_both({out}, 32);
  const Both dy = random_both({n, out}, 33, 1.0 / std::sqrt(double(n)));
  for (const double beta : {0.0, 1.0}) {
    SCOPED_TRACE("beta " + std::to_string(beta));
    Both y = random_both({n, out}, 34);
    ops::fc_forward(n, x.cpu, w.cpu, &b.cpu, y.cpu, beta);
    ops::fc_forward(n, x.gpu, w.gpu, &b.gpu, y.gpu, beta);
    expect_close("fc_forward y", y);
    Both dx = random_both({n, in}, 35);
    ops::fc_backward_data(n, dy.cpu, w.cpu, dx.cpu, beta);
    ops::fc_backward_data(n, dy.gpu, w.gpu, dx.gpu, beta);
    expect_close("fc_backward_data dx", dx);
    Both dw = random_both({out, in}, 36), db = random_both({out}, 37);
    ops::fc_backward_weights(n, x.cpu, dy.cpu, dw.cpu, &db.cpu, beta);
    ops::fc_backward_weights(n, x.gpu, dy.gpu, dw.gpu, &db.gpu, beta);
    expect_close("fc_backward_weights dw", dw);
    expect_close("fc_backward_weights db", db);
  }
}

// ---------------------------------------------------------------- custom kernels
TEST(OpsCuda, Activation) {
  AX_REQUIRE_GPU();
  for (const auto a : {Activation::relu, Activation::tanh}) {
    SCOPED_TRACE(static_cast<int>(a));
    Both x = random_both({3, 100}, 40);
    ops::activation_forward(a, 250, x.cpu);  // not all of it: the count is honoured
    ops::activation_forward(a, 250, x.gpu);
    expect_close("activation_forward", x);
    Both dy = random_both({3, 100}, 41);
    ops::activation_backward(a, 300, x.cpu, dy.cpu);
    ops::activation_backward(a, 300, x.gpu, dy.gpu);
    expect_close("activation_backward", dy);
  }
}

TEST(OpsCuda, Lrn) {
  AX_REQUIRE_GPU();
  const int n = 2, c = 7, h = 4, w = 5;
  const LrnParams p{.size = 5, .k = 2.0, .alpha = 1e-1, .beta = 0.75};
  const Both x = random_both({n, c, h, w}, 50, 2.0);
  Both y = random_both({n, c, h, w}, 51), scale = random_both({n, c, h, w}, 52);
  ops::lrn_forward(p, n, c, h, w, x.cpu, y.cpu, scale.cpu);
  ops::lrn_forward(p, n, c, h, w, x.gpu, y.gpu, scale.gpu);
  expect_close("lrn_forward y", y);
  expect_close("lrn_forward scale", scale);
  const Both dy = random_both({n, c, h, w}, 53);
  Both dx = random_both({n, c, h, w}, 54);
  ops::lrn_backward(p, n, c, h, w, x.cpu, y.cpu, scale.cpu, dy.cpu, dx.cpu);
  ops::lrn_backward(p, n, c, h, w, x.gpu, y.gpu, scale.gpu, dy.gpu, dx.gpu);
  expect_close("lrn_backward dx", dx);
}

TEST(OpsCuda, Maxpool) {
  AX_REQUIRE_GPU();
  const PoolGeom g{.n = 2, .c = 3, .h = 13, .w = 13, .size = 3, .stride = 2};
  const int64_t p = g.out_h(), q = g.out_w();
  const Both x = random_both({g.n, g.c, g.h, g.w}, 60);
  Both y = random_both({g.n, g.c, p, q}, 61);
  Tensor argmax_cpu({g.n, g.c, p, q}, DType::i32);
  Tensor argmax_gpu = argmax_cpu.to(kCuda0);
  ops::maxpool_forward(g, x.cpu, y.cpu, &argmax_cpu);
  ops::maxpool_forward(g, x.gpu, y.gpu, &argmax_gpu);
  expect_close("maxpool_forward y", y, 0.0);
  expect_equal_i32("maxpool_forward argmax", argmax_gpu, argmax_cpu);
  const Both dy = random_both({g.n, g.c, p, q}, 62);
  Both dx = random_both({g.n, g.c, g.h, g.w}, 63);
  ops::maxpool_backward(g, argmax_cpu, dy.cpu, dx.cpu);
  ops::maxpool_backward(g, argmax_gpu, dy.gpu, dx.gpu);
  expect_close("maxpool_backward dx", dx);
}

TEST(OpsCuda, Dropout) {
  AX_REQUIRE_GPU();
  const DropoutParams d{.p = 0.5, .seed = 1234, .step = 77, .layer = 6};
  const Both x = random_both({4, 256}, 70);
  Both y = random_both({4, 256}, 71);
  ops::dropout_forward(d, x.cpu.numel(), x.cpu, y.cpu);
  ops::dropout_forward(d, x.gpu.numel(), x.gpu, y.gpu);
  expect_close("dropout_forward y", y, 0.0);
  Both dy = random_both({4, 256}, 72);
  ops::dropout_backward(d, dy.cpu.numel(), dy.cpu);
  ops::dropout_backward(d, dy.gpu.numel(), dy.gpu);
  expect_close("dropout_backward dy", dy, 0.0);
}

TEST(OpsCuda, SoftmaxXent) {
  AX_REQUIRE_GPU();
  const int n = 9, k = 12;
  const Both logits = random_both({n, k}, 80, 3.0);
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int s = 0; s < n; ++s) labels[static_cast<size_t>(s)] = (s * 5 + 3) % k;
  Both dlogits = random_both({n, k}, 81), probs = random_both({n, k}, 82);
  const XentResult rc = ops::softmax_xent(n, logits.cpu, labels.data(), &dlogits.cpu, &probs.cpu);
  const XentResult rg = ops::softmax_xent(n, logits.gpu, labels.data(), &dlogits.gpu, &probs.gpu);
  EXPECT_EQ(rg.top1, rc.top1);
  EXPECT_EQ(rg.top5, rc.top5);
  EXPECT_LE(std::abs(rg.loss_sum - rc.loss_sum) / (1.0 + std::abs(rc.loss_sum)), kTol)
      << rg.loss_sum << " vs " << rc.loss_sum;
  expect_close("softmax_xent dlogits", dlogits);
  expect_close("softmax_xent probs", probs);
  // Without the optional outputs: the same sums.
  const XentResult bare = ops::softmax_xent(n, logits.gpu, labels.data(), nullptr, nullptr);
  EXPECT_EQ(bare.top1, rc.top1);
  EXPECT_EQ(bare.loss_sum, rg.loss_sum);
  // A bad label is refused before launching, with the CPU op's message.
  labels[4] = k;
  std::string cpu_message, gpu_message;
  try {
    ops::softmax_xent(n, logits.cpu, labels.data(), nullptr, nullptr);
  } catch (const Error& e) {
    cpu_message = e.what();
  }
  try {
    ops::softmax_xent(n, logits.gpu, labels.data(), nullptr, nullptr);
  } catch (const Error& e) {
    gpu_message = e.what();
  }
  EXPECT_FALSE(cpu_message.empty());
  EXPECT_EQ(gpu_message, cpu_message);
}

TEST(OpsCuda, SgdUpdate) {
  AX_REQUIRE_GPU();
  Both w = random_both({33, 7}, 90), v = random_both({33, 7}, 91, 0.1);
  for (uint32_t step = 0; step < 3; ++step) {
    const Both grad = random_both({33, 7}, 92 + step);
    ops::sgd_update(0.01, 0.9, 0.0005, w.cpu, v.cpu, grad.cpu);
    ops::sgd_update(0.01, 0.9, 0.0005, w.gpu, v.gpu, grad.gpu);
  }
  expect_close("sgd w", w);
  expect_close("sgd v", v);
}

// Three tensors of odd sizes, one without decay, in one launch; then again with the table the
// device already holds, then with a table that differs (so it is uploaded anew).
TEST(OpsCuda, SgdUpdateAllOfSeveralTensors) {
  AX_REQUIRE_GPU();
  std::vector<Both> w, v;
  const std::vector<std::vector<int64_t>> shapes = {{33, 7}, {5}, {1000, 3}};
  for (uint32_t k = 0; k < shapes.size(); ++k) {
    w.push_back(random_both(shapes[k], 110 + k));
    v.push_back(random_both(shapes[k], 120 + k, 0.1));
  }
  auto step = [&](uint32_t seed, const std::vector<double>& decays, size_t count) {
    std::vector<Both> grads;
    for (size_t k = 0; k < count; ++k)
      grads.push_back(random_both(shapes[k], seed + static_cast<uint32_t>(k)));
    std::vector<ops::SgdTensor> on_cpu, on_gpu;
    for (size_t k = 0; k < count; ++k) {
      on_cpu.push_back({&w[k].cpu, &v[k].cpu, &grads[k].cpu, decays[k]});
      on_gpu.push_back({&w[k].gpu, &v[k].gpu, &grads[k].gpu, decays[k]});
    }
    ops::sgd_update_all(0.01, 0.9, on_cpu);
    ops::sgd_update_all(0.01, 0.9, on_gpu);
  };
  step(130, {0.0005, 0.0, 0.0005}, 3);
  step(140, {0.0005, 0.0, 0.0005}, 3);
  step(150, {0.001, 0.001, 0.0}, 2);  // a new table: two tensors, other decays
  for (size_t k = 0; k < shapes.size(); ++k) {
    expect_close("sgd_update_all w", w[k]);
    expect_close("sgd_update_all v", v[k]);
  }
}

// ---------------------------------------------------------------- queues
// Queue 1 updates x in many launches; queue 2 then sums it into y after queue_wait. Without the
// wait, queue 2 would read x while queue 1 still writes it; with it, y is exactly the CPU's.
TEST(OpsCuda, QueueWaitOrdersOneQueueAfterAnother) {
  AX_REQUIRE_GPU();
  const int64_t n = int64_t{1} << 22;
  Both x = random_both({n}, 160), v = random_both({n}, 161, 0.1), y = random_both({n}, 162);
  const Both grad = random_both({n}, 163);
  const Device gpu = kCuda0;
  for (int pass = 0; pass < 2; ++pass) {
    {
      const ops::QueueScope queue(gpu, 1);
      for (int i = 0; i < 30; ++i) ops::sgd_update(0.01, 0.9, 0.0005, x.gpu, v.gpu, grad.gpu);
    }
    ops::queue_wait(gpu, 2, 1);
    {
      const ops::QueueScope queue(gpu, 2);
      const Tensor* in[] = {&x.gpu, &grad.gpu};
      ops::sum_into(n, in, 2, y.gpu);
    }
    for (int i = 0; i < 30; ++i) ops::sgd_update(0.01, 0.9, 0.0005, x.cpu, v.cpu, grad.cpu);
    const Tensor* in[] = {&x.cpu, &grad.cpu};
    ops::sum_into(n, in, 2, y.cpu);
  }
  ops::synchronize(gpu);
  expect_close("x", x);
  expect_close("y, read after the wait", y);
}

// ---------------------------------------------------------------- column blocks and sums
TEST(OpsCuda, ColumnBlocksAndSums) {
  AX_REQUIRE_GPU();
  const int n = 3;  // of 4 rows: the last row is left alone
  const Both src = random_both({4, 5}, 100);
  Both wide = random_both({4, 12}, 101);
  ops::copy_into_columns(n, src.cpu, wide.cpu, 6);
  ops::copy_into_columns(n, src.gpu, wide.gpu, 6);
  expect_close("copy_into_columns", wide, 0.0);
  Both narrow = random_both({4, 5}, 102);
  ops::copy_from_columns(n, wide.cpu, 4, narrow.cpu);
  ops::copy_from_columns(n, wide.gpu, 4, narrow.gpu);
  expect_close("copy_from_columns", narrow, 0.0);

  const Both a = random_both({50}, 103), b = random_both({50}, 104), c = random_both({50}, 105);
  Both out = random_both({50}, 106);
  const Tensor* in_cpu[] = {&a.cpu, &b.cpu, &c.cpu};
  const Tensor* in_gpu[] = {&a.gpu, &b.gpu, &c.gpu};
  ops::sum_into(45, in_cpu, 3, out.cpu);
  ops::sum_into(45, in_gpu, 3, out.gpu);
  expect_close("sum_into", out, 0.0);  // the same additions in the same order
}

}  // namespace
}  // namespace alexnet

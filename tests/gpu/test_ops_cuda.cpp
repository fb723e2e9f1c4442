// Device tensors themselves (round trips, zero, clone), the out-of-memory message, the errors for
// tensors on two devices and for F64 on a GPU, and the ordering of one tower queue after another.
// The ops on CUDA tensors are checked against their oracles by the same test bodies as on the
// CPU: tests/cpu/test_ops_every_device.cpp.
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

}  // namespace
}  // namespace alexnet

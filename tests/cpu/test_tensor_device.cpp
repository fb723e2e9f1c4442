// Tensors and devices on a machine without a GPU: a CUDA tensor fails with a message that says
// why (no usable GPU, or a build without CUDA), to() copies between devices and is a cheap
// handle on the same one, and an op refuses tensors on two devices.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "alexnet/error.h"
#include "alexnet/ops.h"
#include "alexnet/tensor.h"

namespace alexnet {
namespace {

bool says_no_gpu(const std::string& m) {
  return m.find("no usable CUDA device") != std::string::npos ||
         m.find("no CUDA device") != std::string::npos ||
         m.find("not built with CUDA") != std::string::npos;
}

TEST(TensorDevice, CudaTensorWithoutGpuSaysWhy) {
  const Device cuda0{Device::Kind::cuda, 0};
  try {
    const Tensor t({4}, DType::f32, cuda0);
    GTEST_SKIP() << "a GPU is usable here: tests/gpu/test_ops_cuda.cpp covers device tensors";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_TRUE(says_no_gpu(m)) << m;
    EXPECT_NE(m.find("cuda:0"), std::string::npos) << m;
  }
}

TEST(TensorDevice, CudaIndexBeyondTheDevicesIsAnError) {
  const Device far{Device::Kind::cuda, 999};
  try {
    const Tensor t({4}, DType::f32, far);
    FAIL() << "a tensor on cuda:999 was created";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_TRUE(says_no_gpu(m)) << m;
    EXPECT_NE(m.find("cuda:999"), std::string::npos) << m;
  }
}

TEST(TensorDevice, ToTheSameDeviceIsTheSameStorage) {
  Tensor t({3}, DType::f32);
  t.data<float>()[1] = 2.5f;
  const Tensor same = t.to(Device{});
  EXPECT_EQ(same.raw(), t.raw());
}

TEST(TensorDevice, ToAnotherDeviceCopies) {
  Tensor t({2, 3}, DType::i32);
  for (int i = 0; i < 6; ++i) t.data<int32_t>()[i] = 10 * i - 7;
  const Device cpu1{Device::Kind::cpu, 1};
  const Tensor u = t.to(cpu1);
  EXPECT_NE(u.raw(), t.raw());
  EXPECT_EQ(u.device(), cpu1);
  EXPECT_EQ(u.shape(), t.shape());
  EXPECT_EQ(u.dtype(), DType::i32);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(u.data<int32_t>()[i], 10 * i - 7);
}

TEST(TensorDevice, OpOnTwoDevicesNamesTheOpAndBoth) {
  const Tensor y({4}, DType::f32);
  Tensor dy({4}, DType::f32, Device{Device::Kind::cpu, 1});
  try {
    ops::activation_backward(Activation::relu, 4, y, dy);
    FAIL() << "no error for tensors on cpu and cpu:1";
  } catch (const std::logic_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("activation_backward"), std::string::npos) << m;
    EXPECT_NE(m.find("cpu and cpu:1"), std::string::npos) << m;
  }
}

// The layout travels with the tensor (clone, to), and an op refuses one it does not implement
// instead of reading channels-last memory as NCHW.
TEST(TensorDevice, LayoutIsKeptByCopiesAndCheckedByTheOps) {
  Tensor x({1, 3, 4, 4}, DType::f32, Device{}, Layout::nhwc);
  EXPECT_EQ(x.clone().layout(), Layout::nhwc);
  EXPECT_EQ(x.to(Device{Device::Kind::cpu, 1}).layout(), Layout::nhwc);
  EXPECT_EQ(Tensor({2}).layout(), Layout::nchw);
  Tensor y({1, 3, 2, 2});
  try {
    ops::maxpool_forward({1, 3, 4, 4, 2, 2}, x, y, nullptr);
    FAIL() << "no error for an NHWC input";
  } catch (const std::logic_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("maxpool_forward: a NHWC tensor [1, 3, 4, 4]"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace alexnet

// Shared by the GPU tests: skip when there is no usable GPU (CI and the development machines
// have the CUDA toolkit but no device), and move data between host vectors and the device.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "alexnet/cuda_check.h"
#include "alexnet/train.h"

namespace alexnet::test {

// First line of every GPU test.
#define AX_REQUIRE_GPU()                                                                  \
  do {                                                                                    \
    const std::string why = ::alexnet::cuda_unavailable_reason(0);                        \
    if (!why.empty()) GTEST_SKIP() << "GPU test skipped: no usable CUDA device: " << why; \
  } while (0)

// A device buffer of n elements of T, freed on scope exit.
template <class T>
struct DeviceBuffer {
  T* ptr = nullptr;
  size_t count = 0;
  explicit DeviceBuffer(size_t n) : count(n) {
    void* p = nullptr;
    AX_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T) + 1));
    ptr = static_cast<T*>(p);
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    AX_CUDA_CHECK(cudaMemcpy(ptr, host.data(), count * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // Fills every byte with 0xFF (NaN for float): an element a kernel forgets to write shows.
  void poison() { AX_CUDA_CHECK(cudaMemset(ptr, 0xFF, count * sizeof(T))); }
  std::vector<T> to_host() const {
    std::vector<T> host(count);
    AX_CUDA_CHECK(cudaDeviceSynchronize());
    AX_CUDA_CHECK(cudaMemcpy(host.data(), ptr, count * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
};

}  // namespace alexnet::test

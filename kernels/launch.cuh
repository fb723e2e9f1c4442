// The one generic CUDA launcher: a grid-stride loop that calls a per-element functor
// (kernels/*.cuh) for every index 0..n-1. The functor does all index arithmetic, so this is
// the only GPU-specific code a custom op needs; kernels/for_each.h is its CPU twin.
#pragma once

#if defined(__CUDACC__)

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "alexnet/cuda_check.h"

namespace alexnet::kernels {

template <class F>
__global__ void elementwise_kernel(int64_t n, F f) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    f(i);
}

template <class F>
void launch_elementwise(int64_t n, F f, cudaStream_t stream) {
  if (n <= 0) return;
  constexpr int kThreads = 256;
  // Enough blocks to fill any current GPU several times over; larger tensors loop instead of
  // growing the grid, which keeps the block count within every limit.
  constexpr int64_t kMaxBlocks = 65535;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks);
  elementwise_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(n, f);
  AX_CUDA_CHECK(cudaGetLastError());
}

}  // namespace alexnet::kernels

#endif  // __CUDACC__

// The CPU counterpart of launch_elementwise (launch.cuh): run a per-element functor over
// 0..n-1. Every custom op is such a functor, so this loop and the CUDA launcher are the only
// code that differs between the backends.
//
// Large ranges are split into contiguous chunks over the machine's cores. Each element is
// computed by exactly one call of f, which writes only its own outputs, so the result is the
// same for any number of threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace alexnet::kernels {

template <class F>
void for_each_index(int64_t n, const F& f) {
  // Below this, starting threads costs more than the loop (tens of microseconds).
  constexpr int64_t kMinPerThread = 1 << 15;
  static const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  const int64_t threads = std::clamp<int64_t>(n / kMinPerThread, 1, cores);
  if (threads == 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  const int64_t chunk = (n + threads - 1) / threads;
  std::vector<std::jthread> workers;
  for (int64_t t = 1; t < threads; ++t)
    workers.emplace_back([&f, t, chunk, n] {
      for (int64_t i = t * chunk; i < std::min(n, (t + 1) * chunk); ++i) f(i);
    });
  for (int64_t i = 0; i < std::min(n, chunk); ++i) f(i);
}

}  // namespace alexnet::kernels

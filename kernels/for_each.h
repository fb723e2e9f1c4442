// The CPU counterpart of launch_elementwise (launch.cuh): run a per-element functor over
// 0..n-1. Every custom op is such a functor, so this loop and the CUDA launcher are the only
// code that differs between the backends.
//
// Large ranges are split into contiguous chunks over the cores of the process's thread pool
// (alexnet/thread_pool.h). Each element is computed by exactly one call of f, which writes only
// its own outputs, so the result is the same for any number of threads. CPU code only: nvcc
// never sees this header.
#pragma once

#include <algorithm>
#include <cstdint>

#include "alexnet/thread_pool.h"

namespace alexnet::kernels {

// Below this many elements per thread, handing chunks to the pool costs more than the loop.
constexpr int64_t kMinElementsPerThread = 1 << 15;

// For a loop over items of `elements_per_item` elements each (a plane, an image): the items
// one thread needs to get kMinElementsPerThread elements, as for_each_index's min_per_thread.
inline int64_t items_per_thread(int64_t elements_per_item) {
  return kMinElementsPerThread / std::max<int64_t>(elements_per_item, 1) + 1;
}

using alexnet::core_count;

// `min_per_thread`: callers whose f(i) covers many elements (a whole plane) pass a smaller one.
template <class F>
void for_each_index(int64_t n, const F& f, int64_t min_per_thread = kMinElementsPerThread) {
  const int64_t threads =
      std::clamp<int64_t>(n / std::max<int64_t>(min_per_thread, 1), 1, core_count());
  if (threads == 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  parallel_chunks(n, threads, [&f](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) f(i);
  });
}

}  // namespace alexnet::kernels

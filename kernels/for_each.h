// The CPU counterpart of launch_elementwise (launch.cuh): run a per-element functor over
// 0..n-1. Every custom op is such a functor, so this loop and the CUDA launcher are the only
// code that differs between the backends.
#pragma once

#include <cstdint>

namespace alexnet::kernels {

template <class F>
void for_each_index(int64_t n, const F& f) {
  for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace alexnet::kernels

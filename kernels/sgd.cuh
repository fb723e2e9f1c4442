// The paper's momentum SGD with weight decay, one parameter element per call:
//   v <- momentum*v - decay*lr*w - lr*grad;  w <- w + v
// lr, momentum and decay are converted to T once (on the host) and the update is computed
// in T, so a float parameter is updated in float arithmetic exactly as the GPU does it
// (up to the GPU's fused multiply-adds).
#pragma once

#include <cstdint>

#include "kernels/hd.cuh"

namespace alexnet::kernels {

template <class T>
struct SgdUpdate {
  T lr, momentum, decay;
  T* w;           // (count)
  T* v;           // (count) momentum buffer
  const T* grad;  // (count)
  AX_HD void operator()(int64_t i) const {
    const T vn = momentum * v[i] - decay * lr * w[i] - lr * grad[i];
    v[i] = vn;
    w[i] += vn;
  }
};

}  // namespace alexnet::kernels

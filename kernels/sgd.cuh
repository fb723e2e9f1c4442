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

// Every parameter of the net in one pass (one kernel launch on a GPU instead of one per tensor):
// element i of the concatenation belongs to the last segment whose `begin` is <= i, and gets
// exactly SgdUpdate's arithmetic with that segment's decay (biases may have none).
template <class T>
struct SgdSegment {
  T* w;
  T* v;
  const T* grad;
  int64_t begin;  // offset of this tensor in the concatenation; segments in increasing order
  T decay;
};

template <class T>
struct SgdUpdateAll {
  T lr, momentum;
  const SgdSegment<T>* segments;  // (count)
  int count;
  AX_HD void operator()(int64_t i) const {
    int lo = 0, hi = count - 1;  // binary search: a few dozen segments, ~6 steps
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (segments[mid].begin <= i)
        lo = mid;
      else
        hi = mid - 1;
    }
    const SgdSegment<T>& s = segments[lo];
    SgdUpdate<T>{lr, momentum, s.decay, s.w, s.v, s.grad}(i - s.begin);
  }
};

}  // namespace alexnet::kernels

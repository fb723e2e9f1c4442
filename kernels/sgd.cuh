// The paper's momentum SGD with weight decay, one parameter element per call:
//   v <- momentum*v - decay*lr*w - lr*grad;  w <- w + v
// and LARS (You et al. 2017), the same update with each tensor's lr times its trust ratio.
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
  T lars_eta = 0;  // > 0: LARS scales this tensor's lr by its trust ratio; 0: plain SGD
};

// LARS's layer-wise trust ratio, eta * |w| / (|grad| + decay * |w|) (the norms are L2 over the
// whole tensor). 1 when either norm is zero, as in the reference implementations: a tensor
// that starts at zero, or gets no gradient, takes plain SGD's step rather than none or a huge one.
template <class T>
AX_HD T lars_trust_ratio(T eta, T w_norm, T grad_norm, T decay) {
  if (!(w_norm > T(0)) || !(grad_norm > T(0))) return T(1);
  return eta * w_norm / (grad_norm + decay * w_norm);
}

// One lr scale per segment from its norms: scales[k] = the trust ratio of segment k from
// norms[2k] = |w_k| and norms[2k+1] = |grad_k|, or 1 for a segment LARS leaves alone.
template <class T>
struct LarsScales {
  const SgdSegment<T>* segments;  // (count)
  const T* norms;                 // (2 * count)
  T* scales;                      // (count)
  AX_HD void operator()(int64_t k) const {
    const SgdSegment<T>& s = segments[k];
    scales[k] = s.lars_eta > T(0)
                    ? lars_trust_ratio(s.lars_eta, norms[2 * k], norms[2 * k + 1], s.decay)
                    : T(1);
  }
};

template <class T>
struct SgdUpdateAll {
  T lr, momentum;
  const SgdSegment<T>* segments;  // (count)
  int count;
  const T* lr_scales = nullptr;  // (count): segment k steps with lr * lr_scales[k]; null: all 1
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
    const T segment_lr = lr_scales != nullptr ? lr * lr_scales[lo] : lr;
    SgdUpdate<T>{segment_lr, momentum, s.decay, s.w, s.v, s.grad}(i - s.begin);
  }
};

}  // namespace alexnet::kernels

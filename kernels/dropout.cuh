// Inverted dropout as per-element functors. Element i is kept when
//   uniform01(philox_draw(seed, step, layer, first + i).v[0]) >= p
// (philox.cuh), so the mask is a pure function of (seed, step, layer, i): it is never stored,
// backward redraws it, and the CPU and the GPU draw the same one. Kept units are scaled by
// 1/(1-p), dropped ones are exactly 0 (not x * 0, which would let a NaN or inf through).
// p is compared as a float: uniform01 has 24-bit resolution anyway.
#pragma once

#include <cstdint>

#include "alexnet/op_params.h"
#include "kernels/hd.cuh"
#include "kernels/philox.cuh"

namespace alexnet::kernels {

template <class T>
struct DropoutMask {
  uint64_t seed = 0, step = 0;
  uint32_t layer = 0;
  float p = 0.5f;
  T scale = 2;        // 1 / (1 - p); 0 when p == 1 (nothing is kept)
  int64_t first = 0;  // the mask index of element 0 (DropoutParams::first)
  AX_HD bool keep(int64_t i) const {
    return uniform01(philox_draw(seed, step, layer, static_cast<uint32_t>(first + i)).v[0]) >= p;
  }
};

// The mask of d (checked by d.check(count) first).
template <class T>
DropoutMask<T> dropout_mask(const DropoutParams& d) {
  return DropoutMask<T>{d.seed,
                        d.step,
                        d.layer,
                        static_cast<float>(d.p),
                        d.p < 1.0 ? static_cast<T>(1.0 / (1.0 - d.p)) : T(0),
                        d.first};
}

template <class T>
struct DropoutForward {
  DropoutMask<T> m;
  const T* x;  // (count); x == y is fine
  T* y;
  AX_HD void operator()(int64_t i) const { y[i] = m.keep(i) ? x[i] * m.scale : T(0); }
};

template <class T>
struct DropoutBackward {
  DropoutMask<T> m;
  const T* dy;  // (count); dy == dx is fine
  T* dx;
  AX_HD void operator()(int64_t i) const { dx[i] = m.keep(i) ? dy[i] * m.scale : T(0); }
};

}  // namespace alexnet::kernels

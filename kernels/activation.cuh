// ReLU and tanh as per-element functors (run by for_each_index or launch_elementwise).
// Every element reads only its own inputs, so x == y (and dy == dx) in place is fine.
#pragma once

#include <cmath>
#include <cstdint>

#include "alexnet/op_params.h"
#include "kernels/hd.cuh"

namespace alexnet::kernels {

template <class T>
struct ReluForward {
  const T* x;  // (count)
  T* y;        // (count)
  AX_HD void operator()(int64_t i) const {
    const T v = x[i];
    y[i] = v > T(0) ? v : T(0);
  }
};

// The derivative from the output: y > 0 exactly where x > 0, and the backward pass then needs
// no copy of the input.
template <class T>
struct ReluBackward {
  const T* y;
  const T* dy;
  T* dx;
  AX_HD void operator()(int64_t i) const { dx[i] = y[i] > T(0) ? dy[i] : T(0); }
};

template <class T>
struct TanhForward {
  const T* x;
  T* y;
  AX_HD void operator()(int64_t i) const { y[i] = std::tanh(x[i]); }
};

template <class T>
struct TanhBackward {
  const T* y;
  const T* dy;
  T* dx;
  AX_HD void operator()(int64_t i) const {
    const T t = y[i];
    dx[i] = dy[i] * (T(1) - t * t);
  }
};

// A convolution's epilogue in one pass over its output y (N, K, P, Q): y = act(y + bias[k]),
// bias may be null. The same arithmetic as adding the bias and then running ReluForward or
// TanhForward, without the second pass over memory.
template <class T>
struct BiasActivation {
  Activation act;
  int64_t plane;  // P * Q
  int64_t maps;   // K
  const T* bias;  // (K) or null
  T* y;           // (N, K, P, Q)
  AX_HD void operator()(int64_t i) const {
    T v = y[i];
    if (bias != nullptr) v += bias[(i / plane) % maps];
    y[i] = act == Activation::relu ? (v > T(0) ? v : T(0)) : std::tanh(v);
  }
};

}  // namespace alexnet::kernels

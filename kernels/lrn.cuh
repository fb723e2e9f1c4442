// Local response normalisation across channels (the paper's §3.3), as per-element functors.
//
//   scale_i = k + alpha' * sum_{j = max(0, i - n/2)}^{min(C - 1, i + n/2)} x_j^2
//   y_i     = x_i * scale_i^(-beta)
// over the C channels of one tower at one (sample, pixel); alpha' = alpha / n under the
// Caffe/PyTorch convention, alpha otherwise. The window is symmetric (n odd), so "j's window
// contains i" is the same as "i's window contains j", which the backward gather relies on:
//   dx_i = dy_i * scale_i^(-beta)
//          - 2 alpha' beta x_i * sum_{j in window(i)} dy_j * y_j / scale_j
// (from dy_j/dx_i = delta_ij scale_j^(-beta) - beta x_j scale_j^(-beta-1) * 2 alpha' x_i).
// Buffers must not alias: every element reads its neighbours.
#pragma once

#include <cmath>
#include <cstdint>

#include "alexnet/op_params.h"
#include "kernels/hd.cuh"

namespace alexnet::kernels {

template <class T>
struct LrnCoeffs {
  int c = 1;                           // channels of one tower
  int64_t plane = 1;                   // H * W: the stride between channels
  int half = 2;                        // n / 2: the window of channel i is i - half .. i + half
  T k = 2, alpha = 1e-4, beta = 0.75;  // alpha already divided by n where asked
};

// Host-side: converts p to the element type once for both backends (the caller has run
// p.check(): an odd, positive size).
template <class T>
LrnCoeffs<T> lrn_coeffs(const LrnParams& p, int c, int h, int w) {
  const double alpha = p.alpha_over_n ? p.alpha / p.size : p.alpha;
  return LrnCoeffs<T>{c,
                      static_cast<int64_t>(h) * w,
                      p.size / 2,
                      static_cast<T>(p.k),
                      static_cast<T>(alpha),
                      static_cast<T>(p.beta)};
}

// Channels lo..hi of the window around channel ch, clipped to the tower.
struct LrnWindow {
  int lo, hi;
};
template <class T>
AX_HD LrnWindow lrn_window(const LrnCoeffs<T>& q, int ch) {
  return {ch - q.half < 0 ? 0 : ch - q.half, ch + q.half > q.c - 1 ? q.c - 1 : ch + q.half};
}

// scale of channel ch; base points at channel 0 of the element's (sample, pixel). The squares
// are summed in channel order lo..hi; the CPU's pixel-vectorised loop keeps that order.
template <class T>
AX_HD T lrn_scale(const LrnCoeffs<T>& q, const T* base, int ch) {
  const LrnWindow win = lrn_window(q, ch);
  T sum = 0;
  for (int j = win.lo; j <= win.hi; ++j) {
    const T a = base[j * q.plane];
    sum += a * a;
  }
  return q.k + q.alpha * sum;
}

// s^-0.75 = s^-1/2 * s^-1/4: two square roots instead of a pow, several times faster on both
// backends and as accurate (the paper's beta).
template <class T>
AX_HD T lrn_pow_three_quarters(T s) {
  const T r = T(1) / std::sqrt(s);
  return r * std::sqrt(r);
}

// scale^(-beta).
template <class T>
AX_HD T lrn_pow(T s, T beta) {
  return beta == T(0.75) ? lrn_pow_three_quarters(s) : std::pow(s, -beta);
}

template <class T>
struct LrnForward {
  LrnCoeffs<T> q;
  const T* x;  // (N, C, H, W)
  T* y;        // (N, C, H, W)
  T* scale;    // (N, C, H, W), may be null
  AX_HD void operator()(int64_t i) const {
    const int ch = static_cast<int>((i / q.plane) % q.c);
    at(i - ch * q.plane, ch);
  }
  // Channel ch at the (sample, pixel) whose channel 0 is element `base`: the CPU loops over
  // (sample, channel, pixel) instead of dividing.
  AX_HD void at(int64_t base, int ch) const {
    const int64_t i = base + ch * q.plane;
    const T s = lrn_scale(q, x + base, ch);
    if (scale != nullptr) scale[i] = s;
    y[i] = x[i] * lrn_pow(s, q.beta);
  }
};

template <class T>
struct LrnBackward {
  LrnCoeffs<T> q;
  const T* x;      // (N, C, H, W)
  const T* y;      // (N, C, H, W)
  const T* scale;  // (N, C, H, W) from the forward pass; null: recomputed from x
  const T* dy;     // (N, C, H, W)
  T* dx;           // (N, C, H, W)
  AX_HD void operator()(int64_t i) const {
    const int ch = static_cast<int>((i / q.plane) % q.c);
    at(i - ch * q.plane, ch);
  }
  AX_HD void at(int64_t base, int ch) const {
    const int64_t i = base + ch * q.plane;
    const LrnWindow win = lrn_window(q, ch);
    T acc = 0;
    for (int j = win.lo; j <= win.hi; ++j) {
      const int64_t e = base + j * q.plane;
      const T sj = scale != nullptr ? scale[e] : lrn_scale(q, x + base, j);
      acc += dy[e] * y[e] / sj;
    }
    const T si = scale != nullptr ? scale[i] : lrn_scale(q, x + base, ch);
    dx[i] = dy[i] * lrn_pow(si, q.beta) - T(2) * q.alpha * q.beta * x[i] * acc;
  }
};

}  // namespace alexnet::kernels

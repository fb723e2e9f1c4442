// Overlapping max pooling (size x size windows, stride, no padding) as per-element functors.
// The argmax of a window is its FIRST maximum in row-major order; forward and backward use
// the same rule, so with ties the whole gradient goes to one element.
// The forward pass records each window's argmax (an offset within the input plane), so the
// backward pass is a cheap gather: each input element visits the output windows that contain
// it (at most four for 3x3/2) and takes dy from those that recorded it. No atomics,
// deterministic, dx overwritten. (Recomputing the argmax instead is slow after ReLU: whole
// windows of zeros tie.)
#pragma once

#include <cstdint>

#include "alexnet/op_params.h"
#include "kernels/hd.cuh"

namespace alexnet::kernels {

struct PoolDims {
  int h = 1, w = 1;          // input plane
  int out_h = 1, out_w = 1;  // output plane
  int size = 3, stride = 2;
};

inline PoolDims pool_dims(const PoolGeom& g) {
  return PoolDims{g.h, g.w, g.out_h(), g.out_w(), g.size, g.stride};
}

// Offset within the input plane of the first maximum of output window (oy, ox).
template <class T>
AX_HD int pool_argmax(const PoolDims& d, const T* plane, int oy, int ox) {
  const int y0 = oy * d.stride, x0 = ox * d.stride;
  int best = y0 * d.w + x0;
  T best_v = plane[best];
  for (int r = 0; r < d.size; ++r) {
    for (int s = 0; s < d.size; ++s) {
      const int o = (y0 + r) * d.w + x0 + s;
      if (plane[o] > best_v) {  // strict: an equal later value never displaces the first
        best = o;
        best_v = plane[o];
      }
    }
  }
  return best;
}

template <class T>
struct MaxpoolForward {
  PoolDims d;
  const T* x;       // (N, C, H, W)
  T* y;             // (N, C, P, Q)
  int32_t* argmax;  // (N, C, P, Q) offsets within the input plane, or null
  AX_HD void operator()(int64_t i) const {
    const int64_t out_plane = static_cast<int64_t>(d.out_h) * d.out_w;
    const int64_t nc = i / out_plane;
    const int rem = static_cast<int>(i - nc * out_plane);
    at(nc, rem / d.out_w, rem % d.out_w);
  }
  // Output (oy, ox) of plane nc: the CPU loops over the coordinates instead of dividing.
  AX_HD void at(int64_t nc, int oy, int ox) const {
    const int64_t i = (nc * d.out_h + oy) * d.out_w + ox;
    const T* in = x + nc * d.h * d.w;
    const int best = pool_argmax(d, in, oy, ox);
    y[i] = in[best];
    if (argmax != nullptr) argmax[i] = best;
  }
};

template <class T>
struct MaxpoolBackward {
  PoolDims d;
  const int32_t* argmax;  // (N, C, P, Q) from the forward pass
  const T* dy;            // (N, C, P, Q)
  T* dx;                  // (N, C, H, W)
  AX_HD void operator()(int64_t i) const {
    const int64_t in_plane = static_cast<int64_t>(d.h) * d.w;
    const int64_t nc = i / in_plane;
    const int self = static_cast<int>(i - nc * in_plane);
    const int iy = self / d.w, ix = self % d.w;
    const T* grad = dy + nc * d.out_h * d.out_w;
    const int32_t* best = argmax + nc * d.out_h * d.out_w;
    // Windows oy with oy*stride <= iy <= oy*stride + size - 1, clipped to the output.
    const int oy_lo = first_window(iy), ox_lo = first_window(ix);
    const int oy_hi = last_window(iy, d.out_h), ox_hi = last_window(ix, d.out_w);
    T acc = 0;
    for (int oy = oy_lo; oy <= oy_hi; ++oy)
      for (int ox = ox_lo; ox <= ox_hi; ++ox)
        if (best[oy * d.out_w + ox] == self) acc += grad[oy * d.out_w + ox];
    dx[i] = acc;
  }
  AX_HD int first_window(int v) const {
    const int lo = v - d.size + 1;
    return lo <= 0 ? 0 : (lo + d.stride - 1) / d.stride;
  }
  AX_HD int last_window(int v, int out) const {
    const int hi = v / d.stride;
    return hi < out - 1 ? hi : out - 1;
  }
};

// The same gradient for a whole plane by scattering instead of gathering: one pass over the
// output windows in row-major order, dx[argmax] += dy. Each input element receives its terms
// in the same (oy, ox) order as the gather above, so the sums are bit-identical; on a CPU core
// it avoids the gather's per-element window arithmetic.
template <class T>
AX_HD void maxpool_backward_plane(const PoolDims& d, const int32_t* argmax, const T* dy, T* dx) {
  for (int i = 0; i < d.h * d.w; ++i) dx[i] = T(0);
  for (int o = 0; o < d.out_h * d.out_w; ++o) dx[argmax[o]] += dy[o];
}

}  // namespace alexnet::kernels

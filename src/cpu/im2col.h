// im2col / col2im for one image and one group: the lowering that turns a convolution into a GEMM.
// The column matrix is (C*R*S, P*Q): row (c, r, s) holds input pixel (p*stride - pad + r,
// q*stride - pad + s) of channel c for every output position (p, q), 0 where that is padding.
// `ld` is the distance between its rows, so several images can sit side by side in one wider
// matrix (C*R*S, images * P*Q) and share one GEMM.
#pragma once

#include <algorithm>
#include <cstdint>

namespace alexnet::cpu::detail {

struct Im2colGeom {
  int c, h, w;  // input (C, H, W) of one group
  int r, s;
  int stride, pad;
  int p, q;  // output (P, Q)
};

// Output positions [lo, hi) of one axis whose input index i*stride + offset lies in [0, in).
// Computed once per row so the inner loops carry no bounds test.
struct Span {
  int lo, hi;
};
inline Span valid_span(int out, int in, int stride, int offset) {
  int lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int hi = in - 1 - offset < 0 ? 0 : (in - 1 - offset) / stride + 1;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
  return {lo, hi};
}

// col (C*R*S, P*Q), rows ld apart <- x (C, H, W); every element of those columns is written.
template <class T>
void im2col(const Im2colGeom& g, const T* x, T* col, int64_t ld) {
  const int64_t pq = static_cast<int64_t>(g.p) * g.q;
  for (int c = 0; c < g.c; ++c) {
    const T* xc = x + static_cast<int64_t>(c) * g.h * g.w;
    for (int r = 0; r < g.r; ++r) {
      const Span ps = valid_span(g.p, g.h, g.stride, r - g.pad);
      for (int s = 0; s < g.s; ++s) {
        T* row = col + ((static_cast<int64_t>(c) * g.r + r) * g.s + s) * ld;
        const Span qs = valid_span(g.q, g.w, g.stride, s - g.pad);
        std::fill(row, row + static_cast<int64_t>(ps.lo) * g.q, T(0));
        for (int p = ps.lo; p < ps.hi; ++p) {
          T* out = row + static_cast<int64_t>(p) * g.q;
          const T* in = xc + static_cast<int64_t>(p * g.stride - g.pad + r) * g.w;
          const int shift = s - g.pad;
          std::fill(out, out + qs.lo, T(0));
          for (int q = qs.lo; q < qs.hi; ++q) out[q] = in[q * g.stride + shift];
          std::fill(out + qs.hi, out + g.q, T(0));
        }
        std::fill(row + static_cast<int64_t>(ps.hi) * g.q, row + pq, T(0));
      }
    }
  }
}

// x (C, H, W) += col2im(col (C*R*S, P*Q), rows ld apart): the adjoint of im2col, summing
// overlapping windows.
template <class T>
void col2im_add(const Im2colGeom& g, const T* col, T* x, int64_t ld) {
  for (int c = 0; c < g.c; ++c) {
    T* xc = x + static_cast<int64_t>(c) * g.h * g.w;
    for (int r = 0; r < g.r; ++r) {
      const Span ps = valid_span(g.p, g.h, g.stride, r - g.pad);
      for (int s = 0; s < g.s; ++s) {
        const T* row = col + ((static_cast<int64_t>(c) * g.r + r) * g.s + s) * ld;
        const Span qs = valid_span(g.q, g.w, g.stride, s - g.pad);
        for (int p = ps.lo; p < ps.hi; ++p) {
          const T* in = row + static_cast<int64_t>(p) * g.q;
          T* out = xc + static_cast<int64_t>(p * g.stride - g.pad + r) * g.w;
          const int shift = s - g.pad;
          for (int q = qs.lo; q < qs.hi; ++q) out[q * g.stride + shift] += in[q];
        }
      }
    }
  }
}

}  // namespace alexnet::cpu::detail

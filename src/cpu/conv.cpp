// Convolution as im2col + GEMM, one image and one group at a time: the column buffer is then
// at most (C/g*R*S, P*Q) (4.4 MB for the paper's conv1 in float), independent of the batch.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "src/cpu/gemm.h"
#include "src/cpu/im2col.h"

namespace alexnet::cpu {
namespace {

// Sizes derived once from a ConvGeom; element offsets are int64 so a whole batch never
// overflows, GEMM dimensions are int as CBLAS wants.
struct Dims {
  int cg, kg;   // channels and filters per group
  int crs;      // C/g * R * S: the GEMM inner dimension of forward
  int pq;       // output pixels per map
  int64_t hw;   // input pixels per map
  bool direct;  // 1x1, stride 1, no padding: the column matrix is the input itself
  detail::Im2colGeom col;
};

Dims dims_of(const ConvGeom& g) {
  if (g.n < 0 || g.c <= 0 || g.h <= 0 || g.w <= 0 || g.k <= 0 || g.r <= 0 || g.s <= 0 ||
      g.stride <= 0 || g.pad < 0 || g.groups <= 0 || g.c % g.groups != 0 || g.k % g.groups != 0 ||
      g.h + 2 * g.pad < g.r || g.w + 2 * g.pad < g.s) {
    throw std::invalid_argument(
        "conv: bad geometry n=" + std::to_string(g.n) + " c=" + std::to_string(g.c) +
        " h=" + std::to_string(g.h) + " w=" + std::to_string(g.w) + " k=" + std::to_string(g.k) +
        " r=" + std::to_string(g.r) + " s=" + std::to_string(g.s) +
        " stride=" + std::to_string(g.stride) + " pad=" + std::to_string(g.pad) +
        " groups=" + std::to_string(g.groups));
  }
  Dims d{};
  d.cg = g.c / g.groups;
  d.kg = g.k / g.groups;
  d.crs = d.cg * g.r * g.s;
  d.pq = g.out_h() * g.out_w();
  d.hw = static_cast<int64_t>(g.h) * g.w;
  d.direct = g.r == 1 && g.s == 1 && g.stride == 1 && g.pad == 0;
  d.col = {d.cg, g.h, g.w, g.r, g.s, g.stride, g.pad, g.out_h(), g.out_w()};
  return d;
}

// out = beta * out without reading out when beta == 0 (it may hold NaN).
template <class T>
void scale(T* out, int64_t count, T beta) {
  if (beta == T(0)) {
    std::fill(out, out + count, T(0));
  } else if (beta != T(1)) {
    for (int64_t i = 0; i < count; ++i) out[i] *= beta;
  }
}

}  // namespace

template <class T>
void conv_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y, T beta) {
  const Dims d = dims_of(g);
  std::vector<T> col(d.direct ? 0 : static_cast<size_t>(d.crs) * static_cast<size_t>(d.pq));
  for (int n = 0; n < g.n; ++n) {
    for (int gi = 0; gi < g.groups; ++gi) {
      const T* xg = x + (static_cast<int64_t>(n) * g.c + gi * d.cg) * d.hw;  // (C/g, H, W)
      const T* wg = w + static_cast<int64_t>(gi) * d.kg * d.crs;             // (K/g, C/g*R*S)
      T* yg = y + (static_cast<int64_t>(n) * g.k + gi * d.kg) * d.pq;        // (K/g, P*Q)
      const T* cols = xg;                                                    // (C/g*R*S, P*Q)
      if (!d.direct) {
        detail::im2col(d.col, xg, col.data());
        cols = col.data();
      }
      detail::gemm(false, false, d.kg, d.pq, d.crs, T(1), wg, d.crs, cols, d.pq, beta, yg, d.pq);
      if (bias != nullptr) {
        for (int k = 0; k < d.kg; ++k) {
          const T b = bias[gi * d.kg + k];
          T* row = yg + static_cast<int64_t>(k) * d.pq;
          for (int i = 0; i < d.pq; ++i) row[i] += b;
        }
      }
    }
  }
}

template <class T>
void conv_backward_data(const ConvGeom& g, const T* dy, const T* w, T* dx, T beta) {
  const Dims d = dims_of(g);
  std::vector<T> col(d.direct ? 0 : static_cast<size_t>(d.crs) * static_cast<size_t>(d.pq));
  for (int n = 0; n < g.n; ++n) {
    for (int gi = 0; gi < g.groups; ++gi) {
      const T* dyg = dy + (static_cast<int64_t>(n) * g.k + gi * d.kg) * d.pq;  // (K/g, P*Q)
      const T* wg = w + static_cast<int64_t>(gi) * d.kg * d.crs;               // (K/g, C/g*R*S)
      T* dxg = dx + (static_cast<int64_t>(n) * g.c + gi * d.cg) * d.hw;        // (C/g, H, W)
      if (d.direct) {
        detail::gemm(true, false, d.crs, d.pq, d.kg, T(1), wg, d.crs, dyg, d.pq, beta, dxg, d.pq);
        continue;
      }
      // col (C/g*R*S, P*Q) = W_g^T dy_g, then scattered back onto the input pixels.
      detail::gemm(true, false, d.crs, d.pq, d.kg, T(1), wg, d.crs, dyg, d.pq, T(0), col.data(),
                   d.pq);
      scale(dxg, d.cg * d.hw, beta);
      detail::col2im_add(d.col, col.data(), dxg);
    }
  }
}

template <class T>
void conv_backward_filter(const ConvGeom& g, const T* x, const T* dy, T* dw, T* dbias, T beta) {
  const Dims d = dims_of(g);
  if (dbias != nullptr) {
    // A double accumulator: in float a batch of conv1 sums 128 * 3025 terms per filter.
    for (int k = 0; k < g.k; ++k) {
      double sum = 0;
      for (int n = 0; n < g.n; ++n) {
        const T* row = dy + (static_cast<int64_t>(n) * g.k + k) * d.pq;
        for (int i = 0; i < d.pq; ++i) sum += static_cast<double>(row[i]);
      }
      dbias[k] = (beta == T(0) ? T(0) : beta * dbias[k]) + static_cast<T>(sum);
    }
  }
  if (g.n == 0) {
    scale(dw, static_cast<int64_t>(g.k) * d.crs, beta);
    return;
  }
  std::vector<T> col(d.direct ? 0 : static_cast<size_t>(d.crs) * static_cast<size_t>(d.pq));
  for (int n = 0; n < g.n; ++n) {
    // The first image applies beta, the rest accumulate onto it.
    const T beta_n = n == 0 ? beta : T(1);
    for (int gi = 0; gi < g.groups; ++gi) {
      const T* xg = x + (static_cast<int64_t>(n) * g.c + gi * d.cg) * d.hw;    // (C/g, H, W)
      const T* dyg = dy + (static_cast<int64_t>(n) * g.k + gi * d.kg) * d.pq;  // (K/g, P*Q)
      T* dwg = dw + static_cast<int64_t>(gi) * d.kg * d.crs;                   // (K/g, C/g*R*S)
      const T* cols = xg;                                                      // (C/g*R*S, P*Q)
      if (!d.direct) {
        detail::im2col(d.col, xg, col.data());
        cols = col.data();
      }
      // dW_g (K/g, C/g*R*S) += dy_g (K/g, P*Q) col^T (P*Q, C/g*R*S)
      detail::gemm(false, true, d.kg, d.crs, d.pq, T(1), dyg, d.pq, cols, d.pq, beta_n, dwg, d.crs);
    }
  }
}

#define ALEXNET_INSTANTIATE_CONV(T)                                                    \
  template void conv_forward<T>(const ConvGeom&, const T*, const T*, const T*, T*, T); \
  template void conv_backward_data<T>(const ConvGeom&, const T*, const T*, T*, T);     \
  template void conv_backward_filter<T>(const ConvGeom&, const T*, const T*, T*, T*, T);
ALEXNET_INSTANTIATE_CONV(float)
ALEXNET_INSTANTIATE_CONV(double)
#undef ALEXNET_INSTANTIATE_CONV

}  // namespace alexnet::cpu

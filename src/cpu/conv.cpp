// Convolution as im2col + GEMM, one image at a time, the images of a batch spread over the
// cores. Each image's column matrix is small enough to stay in cache between im2col and its
// GEMM (235 KB for the demo's conv1, 4.4 MB for the paper's), and the cores never wait for
// each other within a layer. (BLAS itself is single-threaded, gemm.h: a per-image GEMM such as
// the demo's conv1, 12 x 784 x 75, is far too small to split.)
//
// The filter gradient sums over images; to keep its bits independent of the number of cores,
// the images are cut into a fixed number of slots by the batch size alone, each slot sums its
// images in order into its own buffer, and the slots are added in order at the end.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "kernels/for_each.h"
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

// One thread's column matrix, kept between calls: a fresh allocation per image and layer
// would cost its page faults every time.
template <class T>
T* column_buffer(const Dims& d) {
  thread_local std::vector<T> col;
  const size_t size = d.direct ? 0 : static_cast<size_t>(d.crs) * static_cast<size_t>(d.pq);
  if (col.size() < size) col.resize(size);
  return col.data();
}

// Runs f(n) for every image, the images split over the cores.
template <class F>
void for_each_image(int n, const F& f) {
  kernels::for_each_index(
      n, [&](int64_t i) { f(static_cast<int>(i)); }, 1);
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

// col (C/g*R*S, P*Q) of image n, group gi: the lowered input, or the input itself for 1x1.
template <class T>
const T* lowered(const ConvGeom& g, const Dims& d, const T* x, int n, int gi, T* col) {
  const T* xg = x + (static_cast<int64_t>(n) * g.c + gi * d.cg) * d.hw;  // (C/g, H, W)
  if (d.direct) return xg;
  detail::im2col(d.col, xg, col, d.pq);
  return col;
}

// The filter-gradient slots: as many as there are cores to use, but fixed by the batch size.
constexpr int kFilterSlots = 8;

}  // namespace

template <class T>
void conv_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y, T beta) {
  const Dims d = dims_of(g);
  for_each_image(g.n, [&](int n) {
    T* col = column_buffer<T>(d);
    for (int gi = 0; gi < g.groups; ++gi) {
      const T* wg = w + static_cast<int64_t>(gi) * d.kg * d.crs;       // (K/g, C/g*R*S)
      T* yg = y + (static_cast<int64_t>(n) * g.k + gi * d.kg) * d.pq;  // (K/g, P*Q)
      const T* cols = lowered(g, d, x, n, gi, col);
      detail::gemm(false, false, d.kg, d.pq, d.crs, T(1), wg, d.crs, cols, d.pq, beta, yg, d.pq);
      if (bias != nullptr) {
        for (int k = 0; k < d.kg; ++k) {
          const T b = bias[gi * d.kg + k];
          T* row = yg + static_cast<int64_t>(k) * d.pq;
          for (int i = 0; i < d.pq; ++i) row[i] += b;
        }
      }
    }
  });
}

template <class T>
void conv_backward_data(const ConvGeom& g, const T* dy, const T* w, T* dx, T beta) {
  const Dims d = dims_of(g);
  for_each_image(g.n, [&](int n) {
    T* col = column_buffer<T>(d);
    for (int gi = 0; gi < g.groups; ++gi) {
      const T* dyg = dy + (static_cast<int64_t>(n) * g.k + gi * d.kg) * d.pq;  // (K/g, P*Q)
      const T* wg = w + static_cast<int64_t>(gi) * d.kg * d.crs;               // (K/g, C/g*R*S)
      T* dxg = dx + (static_cast<int64_t>(n) * g.c + gi * d.cg) * d.hw;        // (C/g, H, W)
      if (d.direct) {
        detail::gemm(true, false, d.crs, d.pq, d.kg, T(1), wg, d.crs, dyg, d.pq, beta, dxg, d.pq);
        continue;
      }
      // col (C/g*R*S, P*Q) = W_g^T dy_g, then scattered back onto the input pixels.
      detail::gemm(true, false, d.crs, d.pq, d.kg, T(1), wg, d.crs, dyg, d.pq, T(0), col, d.pq);
      scale(dxg, d.cg * d.hw, beta);
      detail::col2im_add(d.col, col, dxg, d.pq);
    }
  });
}

template <class T>
void conv_backward_filter(const ConvGeom& g, const T* x, const T* dy, T* dw, T* dbias, T beta) {
  const Dims d = dims_of(g);
  if (dbias != nullptr) {
    // A double accumulator: in float a batch of conv1 sums 128 * 3025 terms per filter.
    kernels::for_each_index(
        g.k,
        [&](int64_t k) {
          double sum = 0;
          for (int n = 0; n < g.n; ++n) {
            const T* row = dy + (static_cast<int64_t>(n) * g.k + k) * d.pq;
            for (int i = 0; i < d.pq; ++i) sum += static_cast<double>(row[i]);
          }
          dbias[k] = (beta == T(0) ? T(0) : beta * dbias[k]) + static_cast<T>(sum);
        },
        kernels::items_per_thread(int64_t{g.n} * d.pq));
  }
  const int64_t wcount = static_cast<int64_t>(g.k) * d.crs;
  const int slots = std::min(g.n, kFilterSlots);
  if (slots == 0) {
    scale(dw, wcount, beta);
    return;
  }
  std::vector<T> partial(static_cast<size_t>(slots) * static_cast<size_t>(wcount));
  for_each_image(slots, [&](int slot) {
    T* col = column_buffer<T>(d);
    T* dw_slot = partial.data() + slot * wcount;
    const int first = static_cast<int>(static_cast<int64_t>(g.n) * slot / slots);
    const int last = static_cast<int>(static_cast<int64_t>(g.n) * (slot + 1) / slots);
    for (int n = first; n < last; ++n) {
      for (int gi = 0; gi < g.groups; ++gi) {
        const T* dyg = dy + (static_cast<int64_t>(n) * g.k + gi * d.kg) * d.pq;  // (K/g, P*Q)
        const T* cols = lowered(g, d, x, n, gi, col);
        // dW_g (K/g, C/g*R*S) += dy_g (K/g, P*Q) col^T (P*Q, C/g*R*S); the slot's first
        // image overwrites.
        detail::gemm(false, true, d.kg, d.crs, d.pq, T(1), dyg, d.pq, cols, d.pq,
                     n == first ? T(0) : T(1), dw_slot + static_cast<int64_t>(gi) * d.kg * d.crs,
                     d.crs);
      }
    }
  });
  scale(dw, wcount, beta);
  for (int slot = 0; slot < slots; ++slot) {
    const T* p = partial.data() + slot * wcount;
    for (int64_t i = 0; i < wcount; ++i) dw[i] += p[i];
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

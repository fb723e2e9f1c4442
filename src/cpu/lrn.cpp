// CPU local response normalisation: the kernels/lrn.cuh arithmetic with the loops turned
// inside out. CUDA computes one element per thread; here one (sample, channel) plane at a time,
// a block of pixels at once, with the pixel loop innermost so that it runs on SIMD lanes. The
// sums keep the functors' order (channels lo..hi), so both compute the same expression.
#include <algorithm>

#include "alexnet/cpu_ops.h"
#include "kernels/for_each.h"
#include "kernels/lrn.cuh"

namespace alexnet::cpu {
namespace {

constexpr int64_t kBlock = 256;  // pixels per block: the block's sums stay in L1

// Runs f(sample_offset, ch, p0, count) for every block of pixels of every (sample, channel)
// plane, the planes split over the cores.
template <class F>
void for_each_block(int n, int c, int64_t plane, const F& f) {
  kernels::for_each_index(
      static_cast<int64_t>(n) * c,
      [&](int64_t nc) {
        const int64_t sample = (nc / c) * c * plane;
        const int ch = static_cast<int>(nc % c);
        for (int64_t p0 = 0; p0 < plane; p0 += kBlock)
          f(sample, ch, p0, static_cast<int>(std::min(kBlock, plane - p0)));
      },
      kernels::items_per_thread(plane));
}

// sums[p] = sum_{j in window(ch)} x_j[p]^2 for the block of pixels x points at (channel 0).
template <class T>
void window_sum_of_squares(const kernels::LrnCoeffs<T>& q, const T* x, int ch, int count, T* sums) {
  const kernels::LrnWindow win = kernels::lrn_window(q, ch);
  std::fill(sums, sums + count, T(0));
  for (int j = win.lo; j <= win.hi; ++j) {
    const T* row = x + j * q.plane;
    for (int p = 0; p < count; ++p) sums[p] += row[p] * row[p];
  }
}

}  // namespace

template <class T>
void lrn_forward(const LrnParams& p, int n, int c, int h, int w, const T* x, T* y, T* scale) {
  p.check();
  const auto q = kernels::lrn_coeffs<T>(p, c, h, w);
  const bool three_quarters = q.beta == T(0.75);
  for_each_block(n, c, q.plane, [&](int64_t sample, int ch, int64_t p0, int count) {
    T s[kBlock];
    window_sum_of_squares(q, x + sample + p0, ch, count, s);
    const int64_t at = sample + ch * q.plane + p0;
    for (int i = 0; i < count; ++i) s[i] = q.k + q.alpha * s[i];
    if (scale != nullptr) std::copy_n(s, count, scale + at);
    if (three_quarters) {
      for (int i = 0; i < count; ++i) y[at + i] = x[at + i] * kernels::lrn_pow_three_quarters(s[i]);
    } else {
      for (int i = 0; i < count; ++i) y[at + i] = x[at + i] * kernels::lrn_pow(s[i], q.beta);
    }
  });
}

template <class T>
void lrn_backward(const LrnParams& p, int n, int c, int h, int w, const T* x, const T* y,
                  const T* scale, const T* dy, T* dx) {
  p.check();
  const auto q = kernels::lrn_coeffs<T>(p, c, h, w);
  if (scale == nullptr) {
    // Without the forward's scales, the functor recomputes them per element (tests only).
    const kernels::LrnBackward<T> f{q, x, y, scale, dy, dx};
    for_each_block(n, c, q.plane, [&](int64_t sample, int ch, int64_t p0, int count) {
      for (int i = 0; i < count; ++i) f.at(sample + p0 + i, ch);
    });
    return;
  }
  const bool three_quarters = q.beta == T(0.75);
  for_each_block(n, c, q.plane, [&](int64_t sample, int ch, int64_t p0, int count) {
    // acc[p] = sum_{j in window(ch)} dy_j y_j / scale_j, as LrnBackward.
    T acc[kBlock];
    std::fill(acc, acc + count, T(0));
    const kernels::LrnWindow win = kernels::lrn_window(q, ch);
    for (int j = win.lo; j <= win.hi; ++j) {
      const int64_t row = sample + j * q.plane + p0;
      for (int i = 0; i < count; ++i) acc[i] += dy[row + i] * y[row + i] / scale[row + i];
    }
    const int64_t at = sample + ch * q.plane + p0;
    const T two_alpha_beta = T(2) * q.alpha * q.beta;
    if (three_quarters) {
      for (int i = 0; i < count; ++i)
        dx[at + i] = dy[at + i] * kernels::lrn_pow_three_quarters(scale[at + i]) -
                     two_alpha_beta * x[at + i] * acc[i];
    } else {
      for (int i = 0; i < count; ++i)
        dx[at + i] = dy[at + i] * kernels::lrn_pow(scale[at + i], q.beta) -
                     two_alpha_beta * x[at + i] * acc[i];
    }
  });
}

template void lrn_forward<float>(const LrnParams&, int, int, int, int, const float*, float*,
                                 float*);
template void lrn_forward<double>(const LrnParams&, int, int, int, int, const double*, double*,
                                  double*);
template void lrn_backward<float>(const LrnParams&, int, int, int, int, const float*, const float*,
                                  const float*, const float*, float*);
template void lrn_backward<double>(const LrnParams&, int, int, int, int, const double*,
                                   const double*, const double*, const double*, double*);

}  // namespace alexnet::cpu

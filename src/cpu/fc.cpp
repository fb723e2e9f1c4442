// Fully connected layers as single GEMMs over the whole batch, in nn.Linear's layouts, each
// split over the cores by output columns (gemm_parallel).
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "src/cpu/gemm.h"

namespace alexnet::cpu {
namespace {

void check_dims(int n, int in, int out) {
  if (n < 0 || in <= 0 || out <= 0) {
    throw std::invalid_argument("fc: bad sizes n=" + std::to_string(n) +
                                " in=" + std::to_string(in) + " out=" + std::to_string(out));
  }
}

}  // namespace

template <class T>
void fc_forward(int n, int in, int out, const T* x, const T* w, const T* b, T* y, T beta) {
  check_dims(n, in, out);
  // y (N, O) = beta * y + x (N, I) w^T (I, O)
  detail::gemm_parallel(false, true, n, out, in, T(1), x, in, w, in, beta, y, out);
  if (b != nullptr) {
    for (int i = 0; i < n; ++i) {
      T* row = y + static_cast<int64_t>(i) * out;
      for (int o = 0; o < out; ++o) row[o] += b[o];
    }
  }
}

template <class T>
void fc_backward_data(int n, int in, int out, const T* dy, const T* w, T* dx, T beta) {
  check_dims(n, in, out);
  // dx (N, I) = beta * dx + dy (N, O) w (O, I)
  detail::gemm_parallel(false, false, n, in, out, T(1), dy, out, w, in, beta, dx, in);
}

template <class T>
void fc_backward_weights(int n, int in, int out, const T* x, const T* dy, T* dw, T* db, T beta) {
  check_dims(n, in, out);
  // dw (O, I) = beta * dw + dy^T (O, N) x (N, I); with N == 0 BLAS still applies beta.
  detail::gemm_parallel(true, false, out, in, n, T(1), dy, out, x, in, beta, dw, in);
  if (db != nullptr) {
    // Double accumulators keep float sums over a large batch as exact as the double path;
    // rows outer so dy is read in order.
    std::vector<double> sum(static_cast<size_t>(out), 0.0);
    for (int i = 0; i < n; ++i) {
      const T* row = dy + static_cast<int64_t>(i) * out;
      for (int o = 0; o < out; ++o) sum[static_cast<size_t>(o)] += static_cast<double>(row[o]);
    }
    for (int o = 0; o < out; ++o) {
      const T s = static_cast<T>(sum[static_cast<size_t>(o)]);
      db[o] = beta == T(0) ? s : beta * db[o] + s;
    }
  }
}

#define ALEXNET_INSTANTIATE_FC(T)                                                  \
  template void fc_forward<T>(int, int, int, const T*, const T*, const T*, T*, T); \
  template void fc_backward_data<T>(int, int, int, const T*, const T*, T*, T);     \
  template void fc_backward_weights<T>(int, int, int, const T*, const T*, T*, T*, T);
ALEXNET_INSTANTIATE_FC(float)
ALEXNET_INSTANTIATE_FC(double)
#undef ALEXNET_INSTANTIATE_FC

}  // namespace alexnet::cpu

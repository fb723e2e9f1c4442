// CPU local response normalisation: the kernels/lrn.cuh functors run over a plain loop.
#include "kernels/lrn.cuh"
#include "alexnet/cpu_ops.h"
#include "kernels/for_each.h"

namespace alexnet::cpu {

template <class T>
void lrn_forward(const LrnParams& p, int n, int c, int h, int w, const T* x, T* y, T* scale) {
  const auto q = kernels::lrn_coeffs<T>(p, c, h, w);
  const int64_t count = static_cast<int64_t>(n) * c * h * w;
  kernels::for_each_index(count, kernels::LrnForward<T>{q, x, y, scale});
}

template <class T>
void lrn_backward(const LrnParams& p, int n, int c, int h, int w, const T* x, const T* y,
                  const T* scale, const T* dy, T* dx) {
  const auto q = kernels::lrn_coeffs<T>(p, c, h, w);
  const int64_t count = static_cast<int64_t>(n) * c * h * w;
  kernels::for_each_index(count, kernels::LrnBackward<T>{q, x, y, scale, dy, dx});
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

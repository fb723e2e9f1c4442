// CPU momentum SGD and LARS: the kernels/sgd.cuh functors over plain loops.
#include "kernels/sgd.cuh"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "kernels/for_each.h"

namespace alexnet::cpu {

template <class T>
void sgd_update(int64_t count, double lr, double momentum, double decay, T* w, T* v,
                const T* grad) {
  const kernels::SgdUpdate<T> f{
      static_cast<T>(lr), static_cast<T>(momentum), static_cast<T>(decay), w, v, grad};
  kernels::for_each_index(count, f);
}

// Where segment k ends: the next one's begin, or the total.
template <class T>
int64_t segment_end(const kernels::SgdSegment<T>* segments, int count, int64_t total, int k) {
  return k + 1 < count ? segments[k + 1].begin : total;
}

// Tensor by tensor: one launch matters on a GPU, not here, and SgdUpdateAll's per-element
// segment search would cost the CPU a quarter of a paper-network step. The same SgdUpdate
// arithmetic, so the same bits (tests/cpu/test_sgd.cpp also runs SgdUpdateAll itself).
template <class T>
void sgd_update_all(double lr, double momentum, const kernels::SgdSegment<T>* segments, int count,
                    int64_t total, const T* lr_scales) {
  int64_t next = 0;
  for (int k = 0; k < count; ++k) {
    const kernels::SgdSegment<T>& s = segments[k];
    const int64_t end = segment_end(segments, count, total, k);
    if (s.begin != next) throw std::logic_error("sgd_update_all: segments out of order");
    // lr * scale in T, as SgdUpdateAll computes it on the GPU.
    const T segment_lr =
        lr_scales != nullptr ? static_cast<T>(lr) * lr_scales[k] : static_cast<T>(lr);
    const kernels::SgdUpdate<T> f{segment_lr, static_cast<T>(momentum), s.decay, s.w, s.v, s.grad};
    kernels::for_each_index(end - s.begin, f);
    next = end;
  }
}

template <class T>
void lars_scales(const kernels::SgdSegment<T>* segments, int count, int64_t total, T* scales) {
  std::vector<T> norms(2 * static_cast<size_t>(count), T(0));
  for (int k = 0; k < count; ++k) {
    const kernels::SgdSegment<T>& s = segments[k];
    if (!(s.lars_eta > T(0))) continue;  // its scale is 1 whatever the norms
    double ww = 0, gg = 0;
    for (int64_t i = 0, n = segment_end(segments, count, total, k) - s.begin; i < n; ++i) {
      ww += static_cast<double>(s.w[i]) * static_cast<double>(s.w[i]);
      gg += static_cast<double>(s.grad[i]) * static_cast<double>(s.grad[i]);
    }
    norms[2 * static_cast<size_t>(k)] = static_cast<T>(std::sqrt(ww));
    norms[2 * static_cast<size_t>(k) + 1] = static_cast<T>(std::sqrt(gg));
  }
  kernels::for_each_index(count, kernels::LarsScales<T>{segments, norms.data(), scales});
}

template void sgd_update<float>(int64_t, double, double, double, float*, float*, const float*);
template void sgd_update<double>(int64_t, double, double, double, double*, double*, const double*);
template void sgd_update_all<float>(double, double, const kernels::SgdSegment<float>*, int, int64_t,
                                    const float*);
template void sgd_update_all<double>(double, double, const kernels::SgdSegment<double>*, int,
                                     int64_t, const double*);
template void lars_scales<float>(const kernels::SgdSegment<float>*, int, int64_t, float*);
template void lars_scales<double>(const kernels::SgdSegment<double>*, int, int64_t, double*);

}  // namespace alexnet::cpu

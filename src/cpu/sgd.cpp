// CPU momentum SGD: the kernels/sgd.cuh functor over a plain loop.
#include "kernels/sgd.cuh"

#include <stdexcept>
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

// Tensor by tensor: one launch matters on a GPU, not here, and SgdUpdateAll's per-element
// segment search would cost the CPU a quarter of a paper-network step. The same SgdUpdate
// arithmetic, so the same bits (tests/cpu/test_sgd.cpp also runs SgdUpdateAll itself).
template <class T>
void sgd_update_all(double lr, double momentum, const kernels::SgdSegment<T>* segments, int count,
                    int64_t total) {
  int64_t next = 0;
  for (int k = 0; k < count; ++k) {
    const kernels::SgdSegment<T>& s = segments[k];
    const int64_t end = k + 1 < count ? segments[k + 1].begin : total;
    if (s.begin != next) throw std::logic_error("sgd_update_all: segments out of order");
    const kernels::SgdUpdate<T> f{
        static_cast<T>(lr), static_cast<T>(momentum), s.decay, s.w, s.v, s.grad};
    kernels::for_each_index(end - s.begin, f);
    next = end;
  }
}

template void sgd_update<float>(int64_t, double, double, double, float*, float*, const float*);
template void sgd_update<double>(int64_t, double, double, double, double*, double*, const double*);
template void sgd_update_all<float>(double, double, const kernels::SgdSegment<float>*, int,
                                    int64_t);
template void sgd_update_all<double>(double, double, const kernels::SgdSegment<double>*, int,
                                     int64_t);

}  // namespace alexnet::cpu

// CPU momentum SGD: the kernels/sgd.cuh functor over a plain loop.
#include "kernels/sgd.cuh"
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

template <class T>
void sgd_update_all(double lr, double momentum, const kernels::SgdSegment<T>* segments, int count,
                    int64_t total) {
  if (count <= 0) return;
  const kernels::SgdUpdateAll<T> f{static_cast<T>(lr), static_cast<T>(momentum), segments, count};
  kernels::for_each_index(total, f);
}

template void sgd_update<float>(int64_t, double, double, double, float*, float*, const float*);
template void sgd_update<double>(int64_t, double, double, double, double*, double*, const double*);
template void sgd_update_all<float>(double, double, const kernels::SgdSegment<float>*, int,
                                    int64_t);
template void sgd_update_all<double>(double, double, const kernels::SgdSegment<double>*, int,
                                     int64_t);

}  // namespace alexnet::cpu

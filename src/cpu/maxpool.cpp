// CPU max pooling: the kernels/maxpool.cuh functors run over a plain loop.
#include "kernels/maxpool.cuh"
#include "alexnet/cpu_ops.h"
#include "kernels/for_each.h"

namespace alexnet::cpu {

template <class T>
void maxpool_forward(const PoolGeom& g, const T* x, T* y) {
  const int64_t count = static_cast<int64_t>(g.n) * g.c * g.out_h() * g.out_w();
  kernels::for_each_index(count, kernels::MaxpoolForward<T>{kernels::pool_dims(g), x, y});
}

template <class T>
void maxpool_backward(const PoolGeom& g, const T* x, const T* y, const T* dy, T* dx) {
  const int64_t count = static_cast<int64_t>(g.n) * g.c * g.h * g.w;
  kernels::for_each_index(count, kernels::MaxpoolBackward<T>{kernels::pool_dims(g), x, y, dy, dx});
}

template void maxpool_forward<float>(const PoolGeom&, const float*, float*);
template void maxpool_forward<double>(const PoolGeom&, const double*, double*);
template void maxpool_backward<float>(const PoolGeom&, const float*, const float*, const float*,
                                      float*);
template void maxpool_backward<double>(const PoolGeom&, const double*, const double*, const double*,
                                       double*);

}  // namespace alexnet::cpu

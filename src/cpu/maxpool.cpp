// CPU max pooling: the kernels/maxpool.cuh functors run over a plain loop.
#include "kernels/maxpool.cuh"
#include "alexnet/cpu_ops.h"
#include "kernels/for_each.h"

namespace alexnet::cpu {

template <class T>
void maxpool_forward(const PoolGeom& g, const T* x, T* y, int32_t* argmax) {
  const int64_t count = static_cast<int64_t>(g.n) * g.c * g.out_h() * g.out_w();
  kernels::for_each_index(count, kernels::MaxpoolForward<T>{kernels::pool_dims(g), x, y, argmax});
}

template <class T>
void maxpool_backward(const PoolGeom& g, const int32_t* argmax, const T* dy, T* dx) {
  const int64_t count = static_cast<int64_t>(g.n) * g.c * g.h * g.w;
  kernels::for_each_index(count,
                          kernels::MaxpoolBackward<T>{kernels::pool_dims(g), argmax, dy, dx});
}

template void maxpool_forward<float>(const PoolGeom&, const float*, float*, int32_t*);
template void maxpool_forward<double>(const PoolGeom&, const double*, double*, int32_t*);
template void maxpool_backward<float>(const PoolGeom&, const int32_t*, const float*, float*);
template void maxpool_backward<double>(const PoolGeom&, const int32_t*, const double*, double*);

}  // namespace alexnet::cpu

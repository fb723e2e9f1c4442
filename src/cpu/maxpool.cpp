// CPU max pooling: the kernels/maxpool.cuh arithmetic, one plane per loop iteration so the
// coordinates come from loop counters rather than per-element division.
#include "kernels/maxpool.cuh"
#include "alexnet/cpu_ops.h"
#include "kernels/for_each.h"

namespace alexnet::cpu {

template <class T>
void maxpool_forward(const PoolGeom& g, const T* x, T* y, int32_t* argmax) {
  const kernels::MaxpoolForward<T> f{kernels::pool_dims(g), x, y, argmax};
  const int64_t planes = static_cast<int64_t>(g.n) * g.c;
  kernels::for_each_index(
      planes,
      [&](int64_t nc) {
        for (int oy = 0; oy < g.out_h(); ++oy)
          for (int ox = 0; ox < g.out_w(); ++ox) f.at(nc, oy, ox);
      },
      kernels::items_per_thread(static_cast<int64_t>(g.out_h()) * g.out_w()));
}

template <class T>
void maxpool_backward(const PoolGeom& g, const int32_t* argmax, const T* dy, T* dx) {
  const kernels::PoolDims d = kernels::pool_dims(g);
  const int64_t in_plane = static_cast<int64_t>(g.h) * g.w;
  const int64_t out_plane = static_cast<int64_t>(g.out_h()) * g.out_w();
  kernels::for_each_index(
      static_cast<int64_t>(g.n) * g.c,
      [&](int64_t nc) {
        kernels::maxpool_backward_plane(d, argmax + nc * out_plane, dy + nc * out_plane,
                                        dx + nc * in_plane);
      },
      kernels::items_per_thread(in_plane));
}

template void maxpool_forward<float>(const PoolGeom&, const float*, float*, int32_t*);
template void maxpool_forward<double>(const PoolGeom&, const double*, double*, int32_t*);
template void maxpool_backward<float>(const PoolGeom&, const int32_t*, const float*, float*);
template void maxpool_backward<double>(const PoolGeom&, const int32_t*, const double*, double*);

}  // namespace alexnet::cpu

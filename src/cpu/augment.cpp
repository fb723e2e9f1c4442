// CPU augmentation: the kernels/augment.cuh functor run over a plain loop.
#include "kernels/augment.cuh"

#include "alexnet/cpu_ops.h"
#include "kernels/for_each.h"

namespace alexnet::cpu {

template <class T>
void augment_batch(const AugmentGeom& g, const uint8_t* images, const float* mean,
                   const AugmentSample* samples, T* out) {
  g.check();
  // The samples are host memory here, so a crop that would read outside its image is refused
  // instead of reading out of bounds.
  g.check_samples(samples);
  const int64_t count = g.output_count();
  const kernels::AugmentFunctor<T> f{g.size,  g.crop, static_cast<T>(g.scale), images, mean,
                                     samples, out};
  kernels::for_each_index(count, f);
}

template void augment_batch<float>(const AugmentGeom&, const uint8_t*, const float*,
                                   const AugmentSample*, float*);
template void augment_batch<double>(const AugmentGeom&, const uint8_t*, const float*,
                                    const AugmentSample*, double*);

}  // namespace alexnet::cpu

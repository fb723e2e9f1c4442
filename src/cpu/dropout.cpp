// CPU dropout: the kernels/dropout.cuh functors run over a plain loop.
#include "kernels/dropout.cuh"
#include "alexnet/cpu_ops.h"
#include "kernels/for_each.h"

namespace alexnet::cpu {

template <class T>
void dropout_forward(const DropoutParams& d, int64_t count, const T* x, T* y) {
  d.check(count);
  kernels::for_each_index(count, kernels::DropoutForward<T>{kernels::dropout_mask<T>(d), x, y});
}

template <class T>
void dropout_backward(const DropoutParams& d, int64_t count, const T* dy, T* dx) {
  d.check(count);
  kernels::for_each_index(count, kernels::DropoutBackward<T>{kernels::dropout_mask<T>(d), dy, dx});
}

template void dropout_forward<float>(const DropoutParams&, int64_t, const float*, float*);
template void dropout_forward<double>(const DropoutParams&, int64_t, const double*, double*);
template void dropout_backward<float>(const DropoutParams&, int64_t, const float*, float*);
template void dropout_backward<double>(const DropoutParams&, int64_t, const double*, double*);

}  // namespace alexnet::cpu

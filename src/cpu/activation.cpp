// CPU activations: the kernels/activation.cuh functors run over a plain loop.
#include <string>

#include "alexnet/cpu_ops.h"
#include "alexnet/error.h"
#include "kernels/activation.cuh"
#include "kernels/for_each.h"

namespace alexnet::cpu {

template <class T>
void activation_forward(Activation a, int64_t count, const T* x, T* y) {
  switch (a) {
    case Activation::relu:
      return kernels::for_each_index(count, kernels::ReluForward<T>{x, y});
    case Activation::tanh:
      return kernels::for_each_index(count, kernels::TanhForward<T>{x, y});
  }
  throw Error("activation_forward: unknown activation " + std::to_string(static_cast<int>(a)));
}

template <class T>
void activation_backward(Activation a, int64_t count, const T* y, const T* dy, T* dx) {
  switch (a) {
    case Activation::relu:
      return kernels::for_each_index(count, kernels::ReluBackward<T>{y, dy, dx});
    case Activation::tanh:
      return kernels::for_each_index(count, kernels::TanhBackward<T>{y, dy, dx});
  }
  throw Error("activation_backward: unknown activation " + std::to_string(static_cast<int>(a)));
}

template void activation_forward<float>(Activation, int64_t, const float*, float*);
template void activation_forward<double>(Activation, int64_t, const double*, double*);
template void activation_backward<float>(Activation, int64_t, const float*, const float*, float*);
template void activation_backward<double>(Activation, int64_t, const double*, const double*,
                                          double*);

}  // namespace alexnet::cpu

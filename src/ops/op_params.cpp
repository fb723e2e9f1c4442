// The host-side checks of the ops' parameters (alexnet/op_params.h): kept out of kernels/*.cuh,
// which hold the arithmetic only.
#include "alexnet/op_params.h"

#include <string>

#include "alexnet/error.h"

namespace alexnet {

void LrnParams::check() const {
  if (size < 1 || size % 2 == 0)
    throw Error("lrn: size must be odd and positive (a symmetric window), got " +
                std::to_string(size));
}

}  // namespace alexnet

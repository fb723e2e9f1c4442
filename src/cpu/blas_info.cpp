// Which BLAS the CPU backend runs, for the start-up line and the benchmark.
#include <cblas.h>

#include <cstdlib>
#include <string>

#include "alexnet/cpu_ops.h"

namespace alexnet::cpu {

std::string blas_description() {
  // openblas_get_config(): version and build options; a DYNAMIC_ARCH build picks its kernel for
  // the processor at load time, unless OPENBLAS_CORETYPE names one.
  std::string text = std::string(openblas_get_config()) + "; kernel " + openblas_get_corename();
  if (const char* forced = std::getenv("OPENBLAS_CORETYPE"); forced && *forced)
    text += std::string(" (chosen by OPENBLAS_CORETYPE=") + forced + ")";
  return text;
}

}  // namespace alexnet::cpu

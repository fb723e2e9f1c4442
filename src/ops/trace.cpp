// alexnet/trace.h: NVTX v3 (header-only, in the CUDA toolkit) in a CUDA build, else nothing.
#include "alexnet/trace.h"

#include <string>

#ifdef ALEXNET_HAVE_CUDA
#include <nvtx3/nvToolsExt.h>
#endif

namespace alexnet {

TraceRange::TraceRange(const char* name, const char* suffix) {
#ifdef ALEXNET_HAVE_CUDA
  nvtxRangePushA(suffix ? (std::string(name) + " " + suffix).c_str() : name);
#else
  (void)name;
  (void)suffix;
#endif
}

TraceRange::~TraceRange() {
#ifdef ALEXNET_HAVE_CUDA
  nvtxRangePop();
#endif
}

}  // namespace alexnet

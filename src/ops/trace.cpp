// alexnet/trace.h: NVTX v3 (header-only, in the CUDA toolkit) in a CUDA build, else nothing.
#include "alexnet/trace.h"

#ifdef ALEXNET_HAVE_CUDA
#include <nvtx3/nvToolsExt.h>
#endif

namespace alexnet {

TraceRange::TraceRange(const char* name) {
#ifdef ALEXNET_HAVE_CUDA
  nvtxRangePushA(name);
#else
  (void)name;
#endif
}

TraceRange::~TraceRange() {
#ifdef ALEXNET_HAVE_CUDA
  nvtxRangePop();
#endif
}

}  // namespace alexnet

// AX_CUDA_CHECK(call): every CUDA runtime call goes through it, so a failure names the call,
// the file and the line instead of surfacing later as an unrelated error.
// For translation units built with the CUDA toolkit only.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "alexnet/error.h"

namespace alexnet {

// An alexnet::Error, not an abort: running out of device memory or finding no device is
// something a user's configuration causes, and the binaries report it as one line.
inline void cuda_check(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  throw Error(std::string("CUDA error ") + cudaGetErrorName(status) + " (" +
              cudaGetErrorString(status) + ") in " + call + " at " + file + ":" +
              std::to_string(line));
}

}  // namespace alexnet

#define AX_CUDA_CHECK(call) ::alexnet::cuda_check((call), #call, __FILE__, __LINE__)

// AX_CUDA_CHECK(call): every CUDA runtime, cuDNN, cuBLAS and NCCL call goes through it, so a
// failure names the call, the library's own name for the status, the file and the line instead
// of surfacing later as an unrelated error. One macro for all four libraries: the status type
// picks the overload.
// For translation units built with the CUDA toolkit only.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <nccl.h>

#include <string>

#include "alexnet/error.h"

namespace alexnet {

// An alexnet::Error, not an abort: running out of device memory or finding no device is
// something a user's configuration causes, and the binaries report it as one line.
[[noreturn]] inline void cuda_fail(const std::string& library, const std::string& status,
                                   const char* call, const char* file, int line) {
  throw Error(library + " error " + status + " in " + call + " at " + file + ":" +
              std::to_string(line));
}

inline void cuda_check(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  cuda_fail("CUDA", std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")",
            call, file, line);
}

inline void cuda_check(cudnnStatus_t status, const char* call, const char* file, int line) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  cuda_fail("cuDNN", cudnnGetErrorString(status), call, file, line);
}

inline void cuda_check(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  cuda_fail("cuBLAS",
            std::string(cublasGetStatusName(status)) + " (" + cublasGetStatusString(status) + ")",
            call, file, line);
}

inline void cuda_check(ncclResult_t status, const char* call, const char* file, int line) {
  if (status == ncclSuccess) return;
  cuda_fail("NCCL", ncclGetErrorString(status), call, file, line);
}

}  // namespace alexnet

#define AX_CUDA_CHECK(call) ::alexnet::cuda_check((call), #call, __FILE__, __LINE__)

#include "src/cuda/handles.h"

#include <string>
#include <vector>

#include "alexnet/cuda_check.h"
#include "alexnet/error.h"
#include "src/cuda/device_memory.h"

namespace alexnet::gpu {

Handles::Handles(cudaStream_t s, bool tf32) : stream(s), allow_tf32(tf32) {
  try {
    AX_CUDA_CHECK(cudaGetDevice(&device));
    AX_CUDA_CHECK(cudnnCreate(&cudnn));
    AX_CUDA_CHECK(cudnnSetStream(cudnn, stream));
    AX_CUDA_CHECK(cublasCreate(&cublas));
    AX_CUDA_CHECK(cublasSetStream(cublas, stream));
    // Default math computes float GEMMs in full fp32 (it may use tensor cores only where
    // that loses no precision); TF32 has to be asked for.
    AX_CUDA_CHECK(
        cublasSetMathMode(cublas, allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  } catch (...) {
    release();
    throw;
  }
}

Handles::~Handles() {
  // Queued work may still read the scratch buffers; a destructor cannot throw, so errors here
  // (a sticky fault from earlier work, already reported or about to be) are ignored.
  (void)cudaStreamSynchronize(stream);
  release();
}

void Handles::release() noexcept {
  device_free(workspace_, device);
  device_free(ones_, device);
  if (cublas != nullptr) cublasDestroy(cublas);
  if (cudnn != nullptr) cudnnDestroy(cudnn);
  workspace_ = nullptr;
  ones_ = nullptr;
  cublas = nullptr;
  cudnn = nullptr;
}

void* Handles::workspace(size_t bytes) {
  if (bytes <= workspace_bytes_) return bytes == 0 ? nullptr : workspace_;
  AX_CUDA_CHECK(cudaStreamSynchronize(stream));
  device_free(workspace_, device);
  workspace_ = nullptr;
  workspace_bytes_ = 0;
  workspace_ =
      device_malloc(bytes, device, "the convolution workspace",
                    "lower the convolution workspace limit or the batch size, or free the GPU");
  workspace_bytes_ = bytes;
  return workspace_;
}

const float* Handles::ones(int n) {
  if (n <= ones_count_) return ones_;
  AX_CUDA_CHECK(cudaStreamSynchronize(stream));
  device_free(ones_, device);
  ones_ = nullptr;
  ones_count_ = 0;
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  ones_ = static_cast<float*>(
      device_malloc(bytes, device, "the fully-connected ones vector",
                    "lower the convolution workspace limit or the batch size, or free the GPU"));
  const std::vector<float> host(static_cast<size_t>(n), 1.0f);
  AX_CUDA_CHECK(cudaMemcpyAsync(ones_, host.data(), bytes, cudaMemcpyHostToDevice, stream));
  // Growth happens once per larger batch; waiting here keeps `host` alive until the copy is done.
  AX_CUDA_CHECK(cudaStreamSynchronize(stream));
  ones_count_ = n;
  return ones_;
}

}  // namespace alexnet::gpu

// The library handles one user of one stream needs for cuDNN convolutions and cuBLAS
// fully-connected layers, and the device scratch memory those calls share.
//
// One Handles per (device, stream): create it with that device current and use it only there
// and from one host thread at a time (cuDNN and cuBLAS handles are not thread-safe, and the
// shared scratch buffers below assume the calls on the stream run one after another).
// For translation units built with the CUDA toolkit only.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>

namespace alexnet::gpu {

struct Handles {
  cudaStream_t stream = nullptr;  // every call through these handles is queued here
  cudnnHandle_t cudnn = nullptr;
  cublasHandle_t cublas = nullptr;
  int device = 0;  // the device current at construction
  // TF32 tensor cores for float GEMMs and convolutions (10-bit mantissa inputs, ~1e-3 relative
  // error). Off: exact fp32 (cuBLAS default math, which never rounds fp32 inputs down; cuDNN
  // CUDNN_FMA_MATH). ConvPlans read it when they are made.
  bool allow_tf32 = false;

  // stream nullptr is the legacy default stream.
  explicit Handles(cudaStream_t stream = nullptr, bool allow_tf32 = false);
  ~Handles();
  Handles(const Handles&) = delete;
  Handles& operator=(const Handles&) = delete;

  // At least `bytes` of device scratch, shared by every call on this stream: those calls run one
  // after another, so one buffer serves all layers and it is sized by the largest request.
  // Grows (waiting for the stream first, as queued work may still use the old buffer), never
  // shrinks. Null when bytes == 0. Running out of device memory throws alexnet::Error saying
  // how much was asked, how much is free and what to lower.
  void* workspace(size_t bytes);
  size_t workspace_size() const { return workspace_bytes_; }

  // A device vector of at least n floats equal to 1: the fully-connected bias is added and
  // summed over the batch through cuBLAS with it (y += b 1^T, db = dy^T 1). Grows like the
  // workspace; filled in stream order.
  const float* ones(int n);

 private:
  void release() noexcept;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  float* ones_ = nullptr;
  int ones_count_ = 0;
};

}  // namespace alexnet::gpu

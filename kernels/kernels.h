// Host entry points of the custom CUDA kernels: the kernels/*.cuh functors run by
// launch_elementwise on a stream (defined in instantiate.cu). Same parameters and layouts as
// the CPU ops in alexnet/cpu_ops.h; every pointer is device memory; float only.
// Asynchronous: a launch failure throws alexnet::Error, a fault in the kernel surfaces at the
// next synchronising call. For translation units built with the CUDA toolkit only.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "alexnet/op_params.h"

namespace alexnet::kernels {

void activation_forward_cuda(Activation a, int64_t count, const float* x, float* y,
                             cudaStream_t stream);
void activation_backward_cuda(Activation a, int64_t count, const float* y, const float* dy,
                              float* dx, cudaStream_t stream);

// y (N, K, P, Q) = act(y + bias[k]) in one pass; bias may be null.
void bias_activation_cuda(Activation a, int n, int k, int64_t plane, const float* bias, float* y,
                          cudaStream_t stream);

void lrn_forward_cuda(const LrnParams& p, int n, int c, int h, int w, const float* x, float* y,
                      float* scale, cudaStream_t stream);
void lrn_backward_cuda(const LrnParams& p, int n, int c, int h, int w, const float* x,
                       const float* y, const float* scale, const float* dy, float* dx,
                       cudaStream_t stream);

void maxpool_forward_cuda(const PoolGeom& g, const float* x, float* y, int32_t* argmax,
                          cudaStream_t stream);
void maxpool_backward_cuda(const PoolGeom& g, const int32_t* argmax, const float* dy, float* dx,
                           cudaStream_t stream);

void dropout_forward_cuda(const DropoutParams& d, int64_t count, const float* x, float* y,
                          cudaStream_t stream);
void dropout_backward_cuda(const DropoutParams& d, int64_t count, const float* dy, float* dx,
                           cudaStream_t stream);

// Per-sample results, summed by the caller: loss (N), top1 (N), top5 (N). Labels are not
// checked here (they are on the device); an out-of-range label gives a NaN loss.
// inv_n: the gradient's 1 / batch (kernels::inverse_batch).
void softmax_xent_cuda(int n, int k, const float* logits, const int32_t* labels, float* dlogits,
                       float* probs, double* loss, int32_t* top1, int32_t* top5, double inv_n,
                       cudaStream_t stream);

void sgd_update_cuda(int64_t count, double lr, double momentum, double decay, float* w, float* v,
                     const float* grad, cudaStream_t stream);
// segments (count) are device memory; `total` elements in all. lr_scales (count, device memory)
// multiply each segment's lr, or null.
void sgd_update_all_cuda(double lr, double momentum, const SgdSegment<float>* segments, int count,
                         int64_t total, const float* lr_scales, cudaStream_t stream);
// LARS: scales (count) from norms (2 * count: |w_k|, |grad_k|), all device memory.
void lars_scales_cuda(const SgdSegment<float>* segments, int count, const float* norms,
                      float* scales, cudaStream_t stream);

// samples (N) are device memory too (draw them on the host with draw_augment or ten_crop and
// copy); their offsets are not checked here, so each must lie within [0, size - crop].
void augment_batch_cuda(const AugmentGeom& g, const uint8_t* images, const float* mean,
                        const AugmentSample* samples, float* out, cudaStream_t stream);

}  // namespace alexnet::kernels

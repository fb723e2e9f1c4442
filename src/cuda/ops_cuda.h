// The CUDA side of the Tensor-level ops (include/alexnet/ops.h): the same calls on device
// pointers of GPU `device`, run through that device's context (cuDNN/cuBLAS handles on the
// default stream, the convolution plans). src/ops/ops.cpp checks devices and element types and
// calls these for tensors on a GPU.
// Plain C++ (no CUDA header) so src/ops can include it; defined only in a CUDA build.
// Float only; every pointer is device memory except softmax_xent's labels. Asynchronous (queued
// on the default stream) except softmax_xent, which returns its sums.
// The context of a device is made on first use and lives for the process; use one device from
// one host thread at a time (cuDNN and cuBLAS handles are not thread-safe). Each call goes to
// the calling thread's current queue of the device (set_queue; queue 0 until set).
#pragma once

#include <cstddef>
#include <cstdint>

#include "alexnet/op_params.h"

namespace alexnet::gpu_ops {

void conv_forward(int device, const ConvGeom& g, const float* x, const float* w, const float* bias,
                  float* y, float beta);
// y = act(beta*y + conv(x, w) + bias): cuDNN's convolution, then bias and activation in one
// kernel pass (cudnnConvolutionBiasActivationForward would tie the algorithm to one choice).
void conv_forward_activation(int device, Activation a, const ConvGeom& g, const float* x,
                             const float* w, const float* bias, float* y, float beta);
void conv_backward_data(int device, const ConvGeom& g, const float* dy, const float* w, float* dx,
                        float beta);
void conv_backward_filter(int device, const ConvGeom& g, const float* x, const float* dy, float* dw,
                          float* dbias, float beta);

void fc_forward(int device, int n, int in, int out, const float* x, const float* w, const float* b,
                float* y, float beta);
void fc_backward_data(int device, int n, int in, int out, const float* dy, const float* w,
                      float* dx, float beta);
void fc_backward_weights(int device, int n, int in, int out, const float* x, const float* dy,
                         float* dw, float* db, float beta);

void activation_forward(int device, Activation a, int64_t count, const float* x, float* y);
void activation_backward(int device, Activation a, int64_t count, const float* y, const float* dy,
                         float* dx);

void lrn_forward(int device, const LrnParams& p, int n, int c, int h, int w, const float* x,
                 float* y, float* scale);
void lrn_backward(int device, const LrnParams& p, int n, int c, int h, int w, const float* x,
                  const float* y, const float* scale, const float* dy, float* dx);

void maxpool_forward(int device, const PoolGeom& g, const float* x, float* y, int32_t* argmax);
void maxpool_backward(int device, const PoolGeom& g, const int32_t* argmax, const float* dy,
                      float* dx);

void dropout_forward(int device, const DropoutParams& d, int64_t count, const float* x, float* y);
void dropout_backward(int device, const DropoutParams& d, int64_t count, const float* dy,
                      float* dx);

// labels (N) are host memory; checked as the CPU op checks them, then uploaded. Waits for the
// result, which it sums in the CPU op's order.
XentResult softmax_xent(int device, int n, int k, const float* logits, const int32_t* labels,
                        float* dlogits, float* probs, int64_t mean_over = 0);

void sgd_update(int device, int64_t count, double lr, double momentum, double decay, float* w,
                float* v, const float* grad);
// segments (count) are host memory (a table of device pointers), `total` elements in all. The
// table is kept on the device and uploaded again only when it changes (a net's never does).
// Segments with lars_eta > 0 take LARS's trust ratio, from norms cuBLAS leaves on the device.
void sgd_update_all(int device, double lr, double momentum,
                    const kernels::SgdSegment<float>* segments, int count, int64_t total);

// Byte copies of row blocks (any element type of `elem_size` bytes):
// dst[i, col0 : col0+cols] = src[i, :] for i < n, rows of dst_cols elements.
void copy_into_columns(int device, int n, const void* src, int64_t cols, void* dst,
                       int64_t dst_cols, int64_t col0, size_t elem_size);
// dst[i, :] = src[i, col0 : col0+cols], rows of src_cols elements.
void copy_from_columns(int device, int n, const void* src, int64_t src_cols, int64_t col0,
                       void* dst, int64_t cols, size_t elem_size);

// out = inputs[0] + inputs[1] + ..., added one input after another (the CPU op's order).
void sum_into(int device, int64_t count, const float* const* inputs, int num_inputs, float* out);

// The convolution algorithm options and TF32 (alexnet/ops.h GpuOptions) for `device`; a change
// waits for the device, drops the plans made so far and sets every queue's cuBLAS math mode.
void set_options(int device, size_t workspace_limit, bool benchmark, bool deterministic, bool tf32);

// Queues (alexnet/ops.h): queue 0 is the legacy default stream, queue q >= 1 a blocking stream
// of its own with its own cuDNN/cuBLAS handles and scratch, made on first use.
// Selects this thread's queue for `device`; returns the one selected before. Never throws.
int set_queue(int device, int queue) noexcept;
void queue_wait(int device, int waiter, int producer);
// The CUDA stream of `queue` on `device` (a cudaStream_t; null is the legacy default stream),
// for the NCCL exchange, which orders its own stream against the queues with events.
void* queue_stream(int device, int queue);
void synchronize(int device);

}  // namespace alexnet::gpu_ops

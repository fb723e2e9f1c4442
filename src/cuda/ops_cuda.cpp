// The CUDA side of the Tensor-level ops: one context per device, then one library call or
// kernel launch per op, all on the device's legacy default stream.
#include "src/cuda/ops_cuda.h"

#include <cuda_runtime_api.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "alexnet/cuda_check.h"
#include "alexnet/error.h"
#include "kernels/kernels.h"
#include "src/cuda/conv_cudnn.h"
#include "src/cuda/device_memory.h"
#include "src/cuda/fc_cublas.h"
#include "src/cuda/handles.h"

namespace alexnet::gpu_ops {
namespace {

// What the ops of one device share: the library handles (with their scratch) and the
// convolution plans, made once per geometry.
struct DeviceContext {
  gpu::Handles handles;  // default stream, exact fp32
  gpu::ConvPlanCache plans;
  // softmax_xent's labels and per-sample results; grows, never shrinks. Safe to reuse because
  // softmax_xent waits for its results before returning.
  void* xent_scratch = nullptr;
  size_t xent_scratch_bytes = 0;
};

// The context of `device`, made on first use with that device current (the caller's guard).
// Never destroyed: at process exit the CUDA runtime may be torn down before static
// destructors run, and destroying cuDNN/cuBLAS handles then can crash. The driver frees it all.
DeviceContext& context(int device) {
  static std::mutex mutex;
  static auto* contexts = new std::map<int, DeviceContext*>;
  const std::lock_guard lock(mutex);
  DeviceContext*& c = (*contexts)[device];
  if (c == nullptr) c = new DeviceContext{};
  return *c;
}

// Every op starts here: makes `device` current for the call and returns its context.
struct On {
  explicit On(int device) : current(device), ctx(context(device)) {}
  gpu::CurrentDevice current;
  DeviceContext& ctx;
  gpu::Handles& h() { return ctx.handles; }
  cudaStream_t stream() { return ctx.handles.stream; }
};

}  // namespace

// ---------------------------------------------------------------- convolution (cuDNN)
void conv_forward(int device, const cpu::ConvGeom& g, const float* x, const float* w,
                  const float* bias, float* y, float beta) {
  On on(device);
  gpu::conv_forward(on.h(), on.ctx.plans.get(on.h(), g), x, w, bias, y, beta);
}

void conv_backward_data(int device, const cpu::ConvGeom& g, const float* dy, const float* w,
                        float* dx, float beta) {
  On on(device);
  gpu::conv_backward_data(on.h(), on.ctx.plans.get(on.h(), g), dy, w, dx, beta);
}

void conv_backward_filter(int device, const cpu::ConvGeom& g, const float* x, const float* dy,
                          float* dw, float* dbias, float beta) {
  On on(device);
  gpu::conv_backward_filter(on.h(), on.ctx.plans.get(on.h(), g), x, dy, dw, dbias, beta);
}

// ---------------------------------------------------------------- fully connected (cuBLAS)
void fc_forward(int device, int n, int in, int out, const float* x, const float* w, const float* b,
                float* y, float beta) {
  On on(device);
  gpu::fc_forward(on.h(), n, in, out, x, w, b, y, beta);
}

void fc_backward_data(int device, int n, int in, int out, const float* dy, const float* w,
                      float* dx, float beta) {
  On on(device);
  gpu::fc_backward_data(on.h(), n, in, out, dy, w, dx, beta);
}

void fc_backward_weights(int device, int n, int in, int out, const float* x, const float* dy,
                         float* dw, float* db, float beta) {
  On on(device);
  gpu::fc_backward_weights(on.h(), n, in, out, x, dy, dw, db, beta);
}

// ---------------------------------------------------------------- custom kernels
void activation_forward(int device, cpu::Activation a, int64_t count, const float* x, float* y) {
  On on(device);
  kernels::activation_forward_cuda(a, count, x, y, on.stream());
}

void activation_backward(int device, cpu::Activation a, int64_t count, const float* y,
                         const float* dy, float* dx) {
  On on(device);
  kernels::activation_backward_cuda(a, count, y, dy, dx, on.stream());
}

void lrn_forward(int device, const cpu::LrnParams& p, int n, int c, int h, int w, const float* x,
                 float* y, float* scale) {
  On on(device);
  kernels::lrn_forward_cuda(p, n, c, h, w, x, y, scale, on.stream());
}

void lrn_backward(int device, const cpu::LrnParams& p, int n, int c, int h, int w, const float* x,
                  const float* y, const float* scale, const float* dy, float* dx) {
  On on(device);
  kernels::lrn_backward_cuda(p, n, c, h, w, x, y, scale, dy, dx, on.stream());
}

void maxpool_forward(int device, const cpu::PoolGeom& g, const float* x, float* y,
                     int32_t* argmax) {
  On on(device);
  kernels::maxpool_forward_cuda(g, x, y, argmax, on.stream());
}

void maxpool_backward(int device, const cpu::PoolGeom& g, const int32_t* argmax, const float* dy,
                      float* dx) {
  On on(device);
  kernels::maxpool_backward_cuda(g, argmax, dy, dx, on.stream());
}

void dropout_forward(int device, const cpu::DropoutParams& d, int64_t count, const float* x,
                     float* y) {
  On on(device);
  kernels::dropout_forward_cuda(d, count, x, y, on.stream());
}

void dropout_backward(int device, const cpu::DropoutParams& d, int64_t count, const float* dy,
                      float* dx) {
  On on(device);
  kernels::dropout_backward_cuda(d, count, dy, dx, on.stream());
}

void sgd_update(int device, int64_t count, double lr, double momentum, double decay, float* w,
                float* v, const float* grad) {
  On on(device);
  kernels::sgd_update_cuda(count, lr, momentum, decay, w, v, grad, on.stream());
}

// ---------------------------------------------------------------- softmax cross-entropy
cpu::XentResult softmax_xent(int device, int n, int k, const float* logits, const int32_t* labels,
                             float* dlogits, float* probs) {
  // The CPU op's check and message (src/cpu/softmax_xent.cpp): the kernel cannot check labels,
  // an out-of-range one would only show as a NaN loss.
  for (int s = 0; s < n; ++s)
    if (labels[s] < 0 || labels[s] >= k)
      throw Error("softmax_xent: label " + std::to_string(labels[s]) + " of sample " +
                  std::to_string(s) + " is outside [0, " + std::to_string(k) + ")");
  cpu::XentResult r;
  if (n <= 0) return r;
  On on(device);
  const auto count = static_cast<size_t>(n);
  // One scratch block: loss (double, first for alignment), top1, top5, labels.
  const size_t loss_bytes = count * sizeof(double), int_bytes = count * sizeof(int32_t);
  const size_t bytes = loss_bytes + 3 * int_bytes;
  DeviceContext& c = on.ctx;
  if (bytes > c.xent_scratch_bytes) {
    AX_CUDA_CHECK(cudaStreamSynchronize(on.stream()));
    gpu::device_free(c.xent_scratch, device);
    c.xent_scratch = nullptr;
    c.xent_scratch_bytes = 0;
    c.xent_scratch = gpu::device_alloc_zeroed(bytes, device, "the softmax_xent scratch");
    c.xent_scratch_bytes = bytes;
  }
  auto* base = static_cast<std::byte*>(c.xent_scratch);
  auto* loss = reinterpret_cast<double*>(base);
  auto* top1 = reinterpret_cast<int32_t*>(base + loss_bytes);
  auto* top5 = reinterpret_cast<int32_t*>(base + loss_bytes + int_bytes);
  auto* dev_labels = reinterpret_cast<int32_t*>(base + loss_bytes + 2 * int_bytes);
  AX_CUDA_CHECK(
      cudaMemcpyAsync(dev_labels, labels, int_bytes, cudaMemcpyHostToDevice, on.stream()));
  kernels::softmax_xent_cuda(n, k, logits, dev_labels, dlogits, probs, loss, top1, top5,
                             on.stream());
  std::vector<std::byte> host(loss_bytes + 2 * int_bytes);
  AX_CUDA_CHECK(
      cudaMemcpyAsync(host.data(), base, host.size(), cudaMemcpyDeviceToHost, on.stream()));
  AX_CUDA_CHECK(cudaStreamSynchronize(on.stream()));
  // Summed as the CPU op sums: in sample order, the loss in double.
  for (size_t s = 0; s < count; ++s) {
    double l = 0;
    int32_t t1 = 0, t5 = 0;
    std::memcpy(&l, host.data() + s * sizeof(double), sizeof l);
    std::memcpy(&t1, host.data() + loss_bytes + s * sizeof(int32_t), sizeof t1);
    std::memcpy(&t5, host.data() + loss_bytes + int_bytes + s * sizeof(int32_t), sizeof t5);
    r.loss_sum += l;
    r.top1 += t1;
    r.top5 += t5;
  }
  return r;
}

// ---------------------------------------------------------------- column blocks and sums
void copy_into_columns(int device, int n, const void* src, int64_t cols, void* dst,
                       int64_t dst_cols, int64_t col0, size_t elem_size) {
  if (n <= 0 || cols <= 0) return;
  On on(device);
  const auto es = elem_size;
  // One strided copy: n rows of cols elements, from pitch cols into pitch dst_cols.
  AX_CUDA_CHECK(cudaMemcpy2DAsync(static_cast<std::byte*>(dst) + static_cast<size_t>(col0) * es,
                                  static_cast<size_t>(dst_cols) * es, src,
                                  static_cast<size_t>(cols) * es, static_cast<size_t>(cols) * es,
                                  static_cast<size_t>(n), cudaMemcpyDeviceToDevice, on.stream()));
}

void copy_from_columns(int device, int n, const void* src, int64_t src_cols, int64_t col0,
                       void* dst, int64_t cols, size_t elem_size) {
  if (n <= 0 || cols <= 0) return;
  On on(device);
  const auto es = elem_size;
  AX_CUDA_CHECK(
      cudaMemcpy2DAsync(dst, static_cast<size_t>(cols) * es,
                        static_cast<const std::byte*>(src) + static_cast<size_t>(col0) * es,
                        static_cast<size_t>(src_cols) * es, static_cast<size_t>(cols) * es,
                        static_cast<size_t>(n), cudaMemcpyDeviceToDevice, on.stream()));
}

void sum_into(int device, int64_t count, const float* const* inputs, int num_inputs, float* out) {
  if (count <= 0 || num_inputs <= 0) return;
  On on(device);
  if (inputs[0] != out)
    AX_CUDA_CHECK(cudaMemcpyAsync(out, inputs[0], static_cast<size_t>(count) * sizeof(float),
                                  cudaMemcpyDeviceToDevice, on.stream()));
  // out += inputs[i], one input after another as the CPU op adds them; 1*x + y rounds exactly
  // as x + y does, so the sums match the CPU's bit for bit.
  const float one = 1.0f;
  for (int i = 1; i < num_inputs; ++i)
    AX_CUDA_CHECK(cublasSaxpy_64(on.h().cublas, count, &one, inputs[i], 1, out, 1));
}

}  // namespace alexnet::gpu_ops

// The CUDA side of the Tensor-level ops: one context per device, then one library call or
// kernel launch per op, on the calling thread's current queue of that device.
#include "src/cuda/ops_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "alexnet/cuda_check.h"
#include "alexnet/error.h"
#include "kernels/kernels.h"
#include "kernels/sgd.cuh"
#include "kernels/softmax_xent.cuh"
#include "src/cuda/conv_cudnn.h"
#include "src/cuda/device_memory.h"
#include "src/cuda/fc_cublas.h"
#include "src/cuda/handles.h"

namespace alexnet::gpu_ops {
namespace {

// What the ops of one device share: per queue the library handles (with their scratch) and an
// event to hand work over to other queues; the convolution plans, made once per geometry.
struct DeviceContext {
  std::vector<std::unique_ptr<gpu::Handles>> queues;  // [0]: the legacy default stream
  std::vector<cudaEvent_t> done;                      // per queue: recorded by queue_wait
  gpu::ConvAlgoOptions options;                       // set_options; the defaults until then
  bool tf32 = false;
  gpu::ConvPlanCache plans{options};
  // softmax_xent's labels and per-sample results; grows, never shrinks. Safe to reuse because
  // softmax_xent waits for its results before returning.
  void* xent_scratch = nullptr;
  size_t xent_scratch_bytes = 0;
  // sgd_update_all's segment table: the host copy of what is on the device.
  std::vector<kernels::SgdSegment<float>> sgd_table;
  kernels::SgdSegment<float>* sgd_table_device = nullptr;
  size_t sgd_table_capacity = 0;
  // LARS, when the table asks for it: per segment |w| and |grad| (2 * capacity), then the lr
  // scales (capacity). Sized with the table.
  float* lars_norms = nullptr;
  float* lars_scales = nullptr;
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

// This thread's queue per device (few devices: a small array, no allocation).
constexpr int kMaxDevices = 64;
thread_local int current_queue[kMaxDevices] = {};

int queue_of(int device) {
  return device >= 0 && device < kMaxDevices ? current_queue[device] : 0;
}

// The handles of `queue`, made on first use with the device current. Queue q >= 1 is a blocking
// stream: it waits for the legacy default stream's earlier work, and that stream's later work
// waits for it (see alexnet/ops.h).
gpu::Handles& queue_handles(DeviceContext& c, int queue) {
  if (queue < 0) throw std::logic_error("negative queue index");
  const auto q = static_cast<size_t>(queue);
  while (c.queues.size() <= q) {
    cudaStream_t stream = nullptr;  // queue 0: the legacy default stream
    if (!c.queues.empty()) AX_CUDA_CHECK(cudaStreamCreate(&stream));
    c.queues.push_back(std::make_unique<gpu::Handles>(stream, c.tf32));
    cudaEvent_t e = nullptr;
    AX_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    c.done.push_back(e);
  }
  return *c.queues[q];
}

// Every op starts here: makes `device` current for the call and picks the thread's queue.
struct On {
  explicit On(int device)
      : current(device), ctx(context(device)), handles(queue_handles(ctx, queue_of(device))) {}
  gpu::CurrentDevice current;
  DeviceContext& ctx;
  gpu::Handles& handles;
  gpu::Handles& h() { return handles; }
  cudaStream_t stream() { return handles.stream; }
};

}  // namespace

// ---------------------------------------------------------------- convolution (cuDNN)
void conv_forward(int device, const ConvGeom& g, const float* x, const float* w, const float* bias,
                  float* y, float beta) {
  On on(device);
  gpu::conv_forward(on.h(), on.ctx.plans.get(on.h(), g), x, w, bias, y, beta);
}

void conv_forward_activation(int device, Activation a, const ConvGeom& g, const float* x,
                             const float* w, const float* bias, float* y, float beta) {
  On on(device);
  gpu::conv_forward(on.h(), on.ctx.plans.get(on.h(), g), x, w, nullptr, y, beta);
  kernels::bias_activation_cuda(a, g.n, g.k, static_cast<int64_t>(g.out_h()) * g.out_w(), bias, y,
                                on.stream());
}

void conv_backward_data(int device, const ConvGeom& g, const float* dy, const float* w, float* dx,
                        float beta) {
  On on(device);
  gpu::conv_backward_data(on.h(), on.ctx.plans.get(on.h(), g), dy, w, dx, beta);
}

void conv_backward_filter(int device, const ConvGeom& g, const float* x, const float* dy, float* dw,
                          float* dbias, float beta) {
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
void activation_forward(int device, Activation a, int64_t count, const float* x, float* y) {
  On on(device);
  kernels::activation_forward_cuda(a, count, x, y, on.stream());
}

void activation_backward(int device, Activation a, int64_t count, const float* y, const float* dy,
                         float* dx) {
  On on(device);
  kernels::activation_backward_cuda(a, count, y, dy, dx, on.stream());
}

void lrn_forward(int device, const LrnParams& p, int n, int c, int h, int w, const float* x,
                 float* y, float* scale) {
  On on(device);
  kernels::lrn_forward_cuda(p, n, c, h, w, x, y, scale, on.stream());
}

void lrn_backward(int device, const LrnParams& p, int n, int c, int h, int w, const float* x,
                  const float* y, const float* scale, const float* dy, float* dx) {
  On on(device);
  kernels::lrn_backward_cuda(p, n, c, h, w, x, y, scale, dy, dx, on.stream());
}

void maxpool_forward(int device, const PoolGeom& g, const float* x, float* y, int32_t* argmax) {
  On on(device);
  kernels::maxpool_forward_cuda(g, x, y, argmax, on.stream());
}

void maxpool_backward(int device, const PoolGeom& g, const int32_t* argmax, const float* dy,
                      float* dx) {
  On on(device);
  kernels::maxpool_backward_cuda(g, argmax, dy, dx, on.stream());
}

void dropout_forward(int device, const DropoutParams& d, int64_t count, const float* x, float* y) {
  On on(device);
  kernels::dropout_forward_cuda(d, count, x, y, on.stream());
}

void dropout_backward(int device, const DropoutParams& d, int64_t count, const float* dy,
                      float* dx) {
  On on(device);
  kernels::dropout_backward_cuda(d, count, dy, dx, on.stream());
}

void sgd_update(int device, int64_t count, double lr, double momentum, double decay, float* w,
                float* v, const float* grad) {
  On on(device);
  kernels::sgd_update_cuda(count, lr, momentum, decay, w, v, grad, on.stream());
}

void sgd_update_all(int device, double lr, double momentum,
                    const kernels::SgdSegment<float>* segments, int count, int64_t total) {
  if (count <= 0) return;
  On on(device);
  DeviceContext& c = on.ctx;
  const auto n = static_cast<size_t>(count);
  auto same = [](const kernels::SgdSegment<float>& a, const kernels::SgdSegment<float>& b) {
    return a.w == b.w && a.v == b.v && a.grad == b.grad && a.begin == b.begin &&
           a.decay == b.decay && a.lars_eta == b.lars_eta;
  };
  if (c.sgd_table.size() != n ||
      !std::equal(c.sgd_table.begin(), c.sgd_table.end(), segments, same)) {
    // A new table: only the first step of a net (or a new net) gets here. Waiting for the
    // device keeps the previous table alive until the updates queued with it are done.
    AX_CUDA_CHECK(cudaDeviceSynchronize());
    if (n > c.sgd_table_capacity) {
      for (void* p : {static_cast<void*>(c.sgd_table_device), static_cast<void*>(c.lars_norms),
                      static_cast<void*>(c.lars_scales)})
        gpu::device_free(p, device);
      c.sgd_table_device = nullptr;
      c.lars_norms = c.lars_scales = nullptr;
      c.sgd_table_capacity = 0;
      c.sgd_table_device = static_cast<kernels::SgdSegment<float>*>(gpu::device_malloc(
          n * sizeof(kernels::SgdSegment<float>), device, "the SGD segment table", "free the GPU"));
      c.lars_norms = static_cast<float*>(
          gpu::device_malloc(2 * n * sizeof(float), device, "the LARS norms", "free the GPU"));
      c.lars_scales = static_cast<float*>(
          gpu::device_malloc(n * sizeof(float), device, "the LARS scales", "free the GPU"));
      c.sgd_table_capacity = n;
    }
    AX_CUDA_CHECK(cudaMemcpy(c.sgd_table_device, segments, n * sizeof(kernels::SgdSegment<float>),
                             cudaMemcpyHostToDevice));
    c.sgd_table.assign(segments, segments + n);
  }
  const bool lars = std::any_of(segments, segments + n,
                                [](const kernels::SgdSegment<float>& s) { return s.lars_eta > 0; });
  if (lars) {
    // The norms straight into device memory, so the step never waits for the host.
    cublasHandle_t blas = on.h().cublas;
    AX_CUDA_CHECK(cublasSetPointerMode(blas, CUBLAS_POINTER_MODE_DEVICE));
    struct HostPointerModeAgain {  // every other cuBLAS call here passes host scalars
      cublasHandle_t blas;
      ~HostPointerModeAgain() { (void)cublasSetPointerMode(blas, CUBLAS_POINTER_MODE_HOST); }
    } restore{blas};
    for (size_t k = 0; k < n; ++k) {
      const kernels::SgdSegment<float>& s = segments[k];
      if (!(s.lars_eta > 0)) continue;
      const int64_t size = (k + 1 < n ? segments[k + 1].begin : total) - s.begin;
      AX_CUDA_CHECK(cublasSnrm2_64(blas, size, s.w, 1, c.lars_norms + 2 * k));
      AX_CUDA_CHECK(cublasSnrm2_64(blas, size, s.grad, 1, c.lars_norms + 2 * k + 1));
    }
    kernels::lars_scales_cuda(c.sgd_table_device, count, c.lars_norms, c.lars_scales, on.stream());
  }
  kernels::sgd_update_all_cuda(lr, momentum, c.sgd_table_device, count, total,
                               lars ? c.lars_scales : nullptr, on.stream());
}

// ---------------------------------------------------------------- softmax cross-entropy
XentResult softmax_xent(int device, int n, int k, const float* logits, const int32_t* labels,
                        float* dlogits, float* probs, int64_t mean_over) {
  // The CPU op's check and message (src/cpu/softmax_xent.cpp): the kernel cannot check labels,
  // an out-of-range one would only show as a NaN loss.
  for (int s = 0; s < n; ++s)
    if (labels[s] < 0 || labels[s] >= k)
      throw Error("softmax_xent: label " + std::to_string(labels[s]) + " of sample " +
                  std::to_string(s) + " is outside [0, " + std::to_string(k) + ")");
  XentResult r;
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
                             kernels::inverse_batch(n, mean_over), on.stream());
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

// ---------------------------------------------------------------- settings
void set_options(int device, size_t workspace_limit, bool benchmark, bool deterministic,
                 bool tf32) {
  On on(device);
  DeviceContext& c = on.ctx;
  const gpu::ConvAlgoOptions o{workspace_limit, benchmark, deterministic};
  if (o == c.options && tf32 == c.tf32) return;
  AX_CUDA_CHECK(cudaDeviceSynchronize());  // queued convolutions may still use the old plans
  c.options = o;
  c.tf32 = tf32;
  c.plans = gpu::ConvPlanCache(o);
  for (auto& h : c.queues) {
    h->allow_tf32 = tf32;
    AX_CUDA_CHECK(
        cublasSetMathMode(h->cublas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  }
}

// ---------------------------------------------------------------- queues
int set_queue(int device, int queue) noexcept {
  if (device < 0 || device >= kMaxDevices) return 0;
  const int previous = current_queue[device];
  current_queue[device] = queue;
  return previous;
}

void queue_wait(int device, int waiter, int producer) {
  On on(device);
  gpu::Handles& p = queue_handles(on.ctx, producer);
  gpu::Handles& w = queue_handles(on.ctx, waiter);
  cudaEvent_t e = on.ctx.done[static_cast<size_t>(producer)];
  AX_CUDA_CHECK(cudaEventRecord(e, p.stream));
  // The wait takes the event as recorded now; recording it again later does not move it.
  AX_CUDA_CHECK(cudaStreamWaitEvent(w.stream, e, 0));
}

void* queue_stream(int device, int queue) {
  On on(device);
  return queue_handles(on.ctx, queue).stream;
}

void synchronize(int device) {
  const gpu::CurrentDevice current(device);
  AX_CUDA_CHECK(cudaDeviceSynchronize());
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

// Dispatch from the Tensor-level ops to a backend: every tensor of a call must live on one
// device; CPU tensors run the CPU backend (float or double), tensors on a GPU run the CUDA
// backend (src/cuda/ops_cuda.h, float only).
#include "alexnet/ops.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "alexnet/error.h"
#include "kernels/sgd.cuh"
#include "src/cuda/ops_cuda.h"  // declarations only; defined in a CUDA build
#ifdef ALEXNET_HAVE_CUDA
#include "src/cuda/device_memory.h"
#endif

namespace alexnet::ops {
namespace {

#ifdef ALEXNET_HAVE_CUDA
constexpr bool kHaveCuda = true;
#else
constexpr bool kHaveCuda = false;
#endif

// The device every tensor of the call lives on (null entries are absent optional tensors).
// Mixing devices is a bug in the caller, not something a user configures: std::logic_error.
// So is a layout no backend implements yet (every op here is NCHW).
Device call_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (t == nullptr) continue;
    if (t->layout() != Layout::nchw)
      throw std::logic_error(std::string(op) + ": a " + layout_name(t->layout()) + " tensor " +
                             t->shape_str() + "; this op takes NCHW tensors only");
    if (first == nullptr) {
      first = t;
    } else if (!(t->device() == first->device())) {
      throw std::logic_error(std::string(op) + ": tensors on different devices (" +
                             first->device().str() + " and " + t->device().str() +
                             "); move them to one with Tensor::to");
    }
  }
  return first ? first->device() : Device{};
}

// Runs cpu_op(T{}) with T the element type of `t` on the CPU, or cuda_op(device index) on a GPU.
// cuda_op is a generic lambda: in a build without CUDA this template never calls it, so its
// body (which names the CUDA backend) is never instantiated and nothing undefined is linked.
template <class CpuOp, class CudaOp>
void dispatch(const char* op, Device device, DType dtype, CpuOp&& cpu_op, CudaOp&& cuda_op) {
  if (device.is_cpu()) {
    if (dtype == DType::f64)
      cpu_op(double{});
    else
      cpu_op(float{});
    return;
  }
  if (dtype != DType::f32)
    throw std::logic_error(std::string(op) + ": " + dtype_name(dtype) + " tensors on " +
                           device.str() + "; the CUDA backend is F32 only (F64 runs on the CPU)");
  if constexpr (kHaveCuda)
    cuda_op(device.index);
  else
    throw Error(std::string(op) + " on " + device.str() + ": not built with CUDA");
}

template <class T>
const T* ptr_or_null(const Tensor* t) {
  return t ? t->data<T>() : nullptr;
}
template <class T>
T* mut_ptr_or_null(Tensor* t) {
  return t ? t->data<T>() : nullptr;
}
const float* f32(const Tensor& t) {
  return t.data<float>();
}
float* f32(Tensor& t) {
  return t.data<float>();
}

}  // namespace

// ---------------------------------------------------------------- convolution
void conv_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor* bias,
                  Tensor& y, double beta) {
  const char* op = "conv_forward";
  dispatch(
      op, call_device(op, {&x, &w, bias, &y}), x.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::conv_forward<T>(g, x.data<T>(), w.data<T>(), ptr_or_null<T>(bias), y.data<T>(),
                             static_cast<T>(beta));
      },
      [&](auto dev) {
        gpu_ops::conv_forward(dev, g, f32(x), f32(w), ptr_or_null<float>(bias), f32(y),
                              static_cast<float>(beta));
      });
}

void conv_forward_activation(Activation a, const ConvGeom& g, const Tensor& x, const Tensor& w,
                             const Tensor* bias, Tensor& y, double beta) {
  const char* op = "conv_forward_activation";
  dispatch(
      op, call_device(op, {&x, &w, bias, &y}), x.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::conv_forward<T>(g, x.data<T>(), w.data<T>(), ptr_or_null<T>(bias), y.data<T>(),
                             static_cast<T>(beta));
        const int64_t count = static_cast<int64_t>(g.n) * g.k * g.out_h() * g.out_w();
        cpu::activation_forward<T>(a, count, y.data<T>(), y.data<T>());
      },
      [&](auto dev) {
        gpu_ops::conv_forward_activation(dev, a, g, f32(x), f32(w), ptr_or_null<float>(bias),
                                         f32(y), static_cast<float>(beta));
      });
}

void conv_backward_data(const ConvGeom& g, const Tensor& dy, const Tensor& w, Tensor& dx,
                        double beta) {
  const char* op = "conv_backward_data";
  dispatch(
      op, call_device(op, {&dy, &w, &dx}), dy.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::conv_backward_data<T>(g, dy.data<T>(), w.data<T>(), dx.data<T>(),
                                   static_cast<T>(beta));
      },
      [&](auto dev) {
        gpu_ops::conv_backward_data(dev, g, f32(dy), f32(w), f32(dx), static_cast<float>(beta));
      });
}

void conv_backward_filter(const ConvGeom& g, const Tensor& x, const Tensor& dy, Tensor& dw,
                          Tensor* dbias, double beta) {
  const char* op = "conv_backward_filter";
  dispatch(
      op, call_device(op, {&x, &dy, &dw, dbias}), x.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::conv_backward_filter<T>(g, x.data<T>(), dy.data<T>(), dw.data<T>(),
                                     mut_ptr_or_null<T>(dbias), static_cast<T>(beta));
      },
      [&](auto dev) {
        gpu_ops::conv_backward_filter(dev, g, f32(x), f32(dy), f32(dw),
                                      mut_ptr_or_null<float>(dbias), static_cast<float>(beta));
      });
}

// ---------------------------------------------------------------- fully connected
void fc_forward(int n, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                double beta) {
  const char* op = "fc_forward";
  const int out = static_cast<int>(w.dim(0)), in = static_cast<int>(w.dim(1));
  dispatch(
      op, call_device(op, {&x, &w, bias, &y}), x.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::fc_forward<T>(n, in, out, x.data<T>(), w.data<T>(), ptr_or_null<T>(bias), y.data<T>(),
                           static_cast<T>(beta));
      },
      [&](auto dev) {
        gpu_ops::fc_forward(dev, n, in, out, f32(x), f32(w), ptr_or_null<float>(bias), f32(y),
                            static_cast<float>(beta));
      });
}

void fc_backward_data(int n, const Tensor& dy, const Tensor& w, Tensor& dx, double beta) {
  const char* op = "fc_backward_data";
  const int out = static_cast<int>(w.dim(0)), in = static_cast<int>(w.dim(1));
  dispatch(
      op, call_device(op, {&dy, &w, &dx}), dy.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::fc_backward_data<T>(n, in, out, dy.data<T>(), w.data<T>(), dx.data<T>(),
                                 static_cast<T>(beta));
      },
      [&](auto dev) {
        gpu_ops::fc_backward_data(dev, n, in, out, f32(dy), f32(w), f32(dx),
                                  static_cast<float>(beta));
      });
}

void fc_backward_weights(int n, const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db,
                         double beta) {
  const char* op = "fc_backward_weights";
  const int out = static_cast<int>(dw.dim(0)), in = static_cast<int>(dw.dim(1));
  dispatch(
      op, call_device(op, {&x, &dy, &dw, db}), x.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::fc_backward_weights<T>(n, in, out, x.data<T>(), dy.data<T>(), dw.data<T>(),
                                    mut_ptr_or_null<T>(db), static_cast<T>(beta));
      },
      [&](auto dev) {
        gpu_ops::fc_backward_weights(dev, n, in, out, f32(x), f32(dy), f32(dw),
                                     mut_ptr_or_null<float>(db), static_cast<float>(beta));
      });
}

// ---------------------------------------------------------------- activations
void activation_forward(Activation a, int64_t count, Tensor& x) {
  const char* op = "activation_forward";
  dispatch(
      op, call_device(op, {&x}), x.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::activation_forward<T>(a, count, x.data<T>(), x.data<T>());
      },
      [&](auto dev) { gpu_ops::activation_forward(dev, a, count, f32(x), f32(x)); });
}

void activation_backward(Activation a, int64_t count, const Tensor& y, Tensor& dy) {
  const char* op = "activation_backward";
  dispatch(
      op, call_device(op, {&y, &dy}), y.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::activation_backward<T>(a, count, y.data<T>(), dy.data<T>(), dy.data<T>());
      },
      [&](auto dev) { gpu_ops::activation_backward(dev, a, count, f32(y), f32(dy), f32(dy)); });
}

// ---------------------------------------------------------------- LRN
void lrn_forward(const LrnParams& p, int n, int c, int h, int w, const Tensor& x, Tensor& y,
                 Tensor& scale) {
  const char* op = "lrn_forward";
  p.check();
  dispatch(
      op, call_device(op, {&x, &y, &scale}), x.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::lrn_forward<T>(p, n, c, h, w, x.data<T>(), y.data<T>(), scale.data<T>());
      },
      [&](auto dev) { gpu_ops::lrn_forward(dev, p, n, c, h, w, f32(x), f32(y), f32(scale)); });
}

void lrn_backward(const LrnParams& p, int n, int c, int h, int w, const Tensor& x, const Tensor& y,
                  const Tensor& scale, const Tensor& dy, Tensor& dx) {
  const char* op = "lrn_backward";
  p.check();
  dispatch(
      op, call_device(op, {&x, &y, &scale, &dy, &dx}), x.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::lrn_backward<T>(p, n, c, h, w, x.data<T>(), y.data<T>(), scale.data<T>(), dy.data<T>(),
                             dx.data<T>());
      },
      [&](auto dev) {
        gpu_ops::lrn_backward(dev, p, n, c, h, w, f32(x), f32(y), f32(scale), f32(dy), f32(dx));
      });
}

// ---------------------------------------------------------------- max pooling
void maxpool_forward(const PoolGeom& g, const Tensor& x, Tensor& y, Tensor* argmax) {
  const char* op = "maxpool_forward";
  int32_t* am = argmax ? argmax->data<int32_t>() : nullptr;
  dispatch(
      op, call_device(op, {&x, &y, argmax}), x.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::maxpool_forward<T>(g, x.data<T>(), y.data<T>(), am);
      },
      [&](auto dev) { gpu_ops::maxpool_forward(dev, g, f32(x), f32(y), am); });
}

void maxpool_backward(const PoolGeom& g, const Tensor& argmax, const Tensor& dy, Tensor& dx) {
  const char* op = "maxpool_backward";
  dispatch(
      op, call_device(op, {&argmax, &dy, &dx}), dy.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::maxpool_backward<T>(g, argmax.data<int32_t>(), dy.data<T>(), dx.data<T>());
      },
      [&](auto dev) {
        gpu_ops::maxpool_backward(dev, g, argmax.data<int32_t>(), f32(dy), f32(dx));
      });
}

// ---------------------------------------------------------------- dropout
void dropout_forward(const DropoutParams& d, int64_t count, const Tensor& x, Tensor& y) {
  const char* op = "dropout_forward";
  d.check(count);
  dispatch(
      op, call_device(op, {&x, &y}), x.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::dropout_forward<T>(d, count, x.data<T>(), y.data<T>());
      },
      [&](auto dev) { gpu_ops::dropout_forward(dev, d, count, f32(x), f32(y)); });
}

void dropout_backward(const DropoutParams& d, int64_t count, Tensor& dy) {
  const char* op = "dropout_backward";
  d.check(count);
  dispatch(
      op, call_device(op, {&dy}), dy.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::dropout_backward<T>(d, count, dy.data<T>(), dy.data<T>());
      },
      [&](auto dev) { gpu_ops::dropout_backward(dev, d, count, f32(dy), f32(dy)); });
}

// ---------------------------------------------------------------- softmax cross-entropy
XentResult softmax_xent(int n, const Tensor& logits, const int32_t* labels, Tensor* dlogits,
                        Tensor* probs, int64_t mean_over) {
  const char* op = "softmax_xent";
  XentResult r;
  const int k = static_cast<int>(logits.dim(1));
  dispatch(
      op, call_device(op, {&logits, dlogits, probs}), logits.dtype(),
      [&](auto t) {
        using T = decltype(t);
        r = cpu::softmax_xent<T>(n, k, logits.data<T>(), labels, mut_ptr_or_null<T>(dlogits),
                                 mut_ptr_or_null<T>(probs), mean_over);
      },
      [&](auto dev) {
        r = gpu_ops::softmax_xent(dev, n, k, f32(logits), labels, mut_ptr_or_null<float>(dlogits),
                                  mut_ptr_or_null<float>(probs), mean_over);
      });
  return r;
}

// ---------------------------------------------------------------- SGD
void sgd_update(double lr, double momentum, double decay, Tensor& w, Tensor& v,
                const Tensor& grad) {
  const char* op = "sgd_update";
  dispatch(
      op, call_device(op, {&w, &v, &grad}), w.dtype(),
      [&](auto t) {
        using T = decltype(t);
        cpu::sgd_update<T>(w.numel(), lr, momentum, decay, w.data<T>(), v.data<T>(),
                           grad.data<T>());
      },
      [&](auto dev) {
        gpu_ops::sgd_update(dev, w.numel(), lr, momentum, decay, f32(w), f32(v), f32(grad));
      });
}

void sgd_update_all(double lr, double momentum, const std::vector<SgdTensor>& tensors) {
  const char* op = "sgd_update_all";
  if (tensors.empty()) return;
  const Tensor& first = *tensors.front().w;
  for (const auto& t : tensors) {
    call_device(op, {&first, t.w, t.v, t.grad});
    if (t.w->dtype() != first.dtype() || t.v->numel() != t.w->numel() ||
        t.grad->numel() != t.w->numel())
      throw std::logic_error("sgd_update_all: tensors of different types or sizes");
  }
  // The segment table: where each tensor starts in the concatenation of all of them.
  auto segments = [&](auto t) {
    using T = decltype(t);
    std::vector<kernels::SgdSegment<T>> s;
    int64_t begin = 0;
    for (const auto& p : tensors) {
      s.push_back({p.w->template data<T>(), p.v->template data<T>(), p.grad->template data<T>(),
                   begin, static_cast<T>(p.decay), static_cast<T>(p.lars_eta)});
      begin += p.w->numel();
    }
    return std::pair{s, begin};
  };
  dispatch(
      op, first.device(), first.dtype(),
      [&](auto t) {
        using T = decltype(t);
        const auto [s, total] = segments(t);
        const int count = static_cast<int>(s.size());
        const bool lars = std::any_of(tensors.begin(), tensors.end(),
                                      [](const SgdTensor& p) { return p.lars_eta > 0; });
        std::vector<T> scales(lars ? s.size() : 0);
        if (lars) cpu::lars_scales(s.data(), count, total, scales.data());
        cpu::sgd_update_all(lr, momentum, s.data(), count, total, lars ? scales.data() : nullptr);
      },
      [&](auto dev) {
        const auto [s, total] = segments(float{});
        gpu_ops::sgd_update_all(dev, lr, momentum, s.data(), static_cast<int>(s.size()), total);
      });
}

// ---------------------------------------------------------------- column blocks and sums
// Byte copies, so any element type; dispatched on F32 only to keep one rule for CUDA tensors.
void copy_into_columns(int n, const Tensor& src, Tensor& dst, int64_t col0) {
  const char* op = "copy_into_columns";
  const int64_t cols = src.numel() / src.dim(0), dst_cols = dst.numel() / dst.dim(0);
  const size_t es = dtype_size(src.dtype());
  dispatch(
      op, call_device(op, {&src, &dst}), src.dtype(),
      [&](auto) {
        auto* d = static_cast<std::byte*>(dst.raw());
        const auto* s = static_cast<const std::byte*>(src.raw());
        for (int64_t i = 0; i < n; ++i)
          std::memcpy(d + (i * dst_cols + col0) * es, s + i * cols * es,
                      static_cast<size_t>(cols) * es);
      },
      [&](auto dev) {
        gpu_ops::copy_into_columns(dev, n, src.raw(), cols, dst.raw(), dst_cols, col0, es);
      });
}

void copy_from_columns(int n, const Tensor& src, int64_t col0, Tensor& dst) {
  const char* op = "copy_from_columns";
  const int64_t cols = dst.numel() / dst.dim(0), src_cols = src.numel() / src.dim(0);
  const size_t es = dtype_size(src.dtype());
  dispatch(
      op, call_device(op, {&src, &dst}), src.dtype(),
      [&](auto) {
        auto* d = static_cast<std::byte*>(dst.raw());
        const auto* s = static_cast<const std::byte*>(src.raw());
        for (int64_t i = 0; i < n; ++i)
          std::memcpy(d + i * cols * es, s + (i * src_cols + col0) * es,
                      static_cast<size_t>(cols) * es);
      },
      [&](auto dev) {
        gpu_ops::copy_from_columns(dev, n, src.raw(), src_cols, col0, dst.raw(), cols, es);
      });
}

void sum_into(int64_t count, const Tensor* const* inputs, int num_inputs, Tensor& out) {
  const char* op = "sum_into";
  const Device device = call_device(op, {&out});
  for (int k = 0; k < num_inputs; ++k) call_device(op, {&out, inputs[k]});
  dispatch(
      op, device, out.dtype(),
      [&](auto t) {
        using T = decltype(t);
        T* o = out.data<T>();
        const T* first = inputs[0]->data<T>();
        for (int64_t i = 0; i < count; ++i) o[i] = first[i];
        for (int k = 1; k < num_inputs; ++k) {
          const T* in = inputs[k]->data<T>();
          for (int64_t i = 0; i < count; ++i) o[i] += in[i];
        }
      },
      [&](auto dev) {
        std::vector<const float*> ptrs(static_cast<size_t>(num_inputs));
        for (int k = 0; k < num_inputs; ++k) ptrs[static_cast<size_t>(k)] = f32(*inputs[k]);
        gpu_ops::sum_into(dev, count, ptrs.data(), num_inputs, f32(out));
      });
}

// ---------------------------------------------------------------- GPU settings
std::string gpu_unavailable_reason(int index) {
#ifdef ALEXNET_HAVE_CUDA
  return gpu::unavailable_reason(index);
#else
  (void)index;
  return "this build has no CUDA support (configure with -DALEXNET_CUDA=ON)";
#endif
}

int gpu_count() {
#ifdef ALEXNET_HAVE_CUDA
  return gpu::device_count();
#else
  return 0;
#endif
}

std::string gpu_bus_id(int index) {
#ifdef ALEXNET_HAVE_CUDA
  return gpu::pci_bus_id(index);
#else
  (void)index;
  return "";
#endif
}

void set_gpu_options(Device device, const GpuOptions& o) {
  if (device.is_cpu()) return;
  if constexpr (kHaveCuda)
    gpu_ops::set_options(device.index, o.workspace_limit, o.benchmark, o.deterministic, o.tf32);
}

// ---------------------------------------------------------------- queues
QueueScope::QueueScope(Device device, int queue) : device_(device) {
  if (device_.is_cpu()) return;
  if constexpr (kHaveCuda) previous_ = gpu_ops::set_queue(device_.index, queue);
}

QueueScope::~QueueScope() {
  if (device_.is_cpu()) return;
  if constexpr (kHaveCuda) gpu_ops::set_queue(device_.index, previous_);
}

void queue_wait(Device device, int waiter, int producer) {
  if (device.is_cpu() || waiter == producer) return;
  if constexpr (kHaveCuda) gpu_ops::queue_wait(device.index, waiter, producer);
}

void synchronize(Device device) {
  if (device.is_cpu()) return;
  if constexpr (kHaveCuda) gpu_ops::synchronize(device.index);
}

}  // namespace alexnet::ops

// Dispatch from the Tensor-level ops to a backend. Today the CPU backend runs everything; the
// CUDA backend plugs in here by device.
#include "alexnet/ops.h"

#include <cstring>
#include <stdexcept>

namespace alexnet::ops {
namespace {

// Every tensor of one call lives on the same device with the same element type.
void check_cpu(const Tensor& t) {
  if (!t.device().is_cpu())
    throw std::logic_error("op on " + t.device().str() + ": no CUDA backend in this build yet");
}

template <class F>
void dispatch(const Tensor& t, F&& f) {
  check_cpu(t);
  if (t.dtype() == DType::f64)
    f(double{});
  else
    f(float{});
}

template <class T>
const T* ptr_or_null(const Tensor* t) {
  return t ? t->data<T>() : nullptr;
}
template <class T>
T* mut_ptr_or_null(Tensor* t) {
  return t ? t->data<T>() : nullptr;
}

}  // namespace

void conv_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor* bias,
                  Tensor& y, double beta) {
  dispatch(x, [&](auto t) {
    using T = decltype(t);
    cpu::conv_forward<T>(g, x.data<T>(), w.data<T>(), ptr_or_null<T>(bias), y.data<T>(),
                         static_cast<T>(beta));
  });
}

void conv_backward_data(const ConvGeom& g, const Tensor& dy, const Tensor& w, Tensor& dx,
                        double beta) {
  dispatch(dy, [&](auto t) {
    using T = decltype(t);
    cpu::conv_backward_data<T>(g, dy.data<T>(), w.data<T>(), dx.data<T>(), static_cast<T>(beta));
  });
}

void conv_backward_filter(const ConvGeom& g, const Tensor& x, const Tensor& dy, Tensor& dw,
                          Tensor* dbias, double beta) {
  dispatch(x, [&](auto t) {
    using T = decltype(t);
    cpu::conv_backward_filter<T>(g, x.data<T>(), dy.data<T>(), dw.data<T>(),
                                 mut_ptr_or_null<T>(dbias), static_cast<T>(beta));
  });
}

void fc_forward(int n, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                double beta) {
  const int out = static_cast<int>(w.dim(0)), in = static_cast<int>(w.dim(1));
  dispatch(x, [&](auto t) {
    using T = decltype(t);
    cpu::fc_forward<T>(n, in, out, x.data<T>(), w.data<T>(), ptr_or_null<T>(bias), y.data<T>(),
                       static_cast<T>(beta));
  });
}

void fc_backward_data(int n, const Tensor& dy, const Tensor& w, Tensor& dx, double beta) {
  const int out = static_cast<int>(w.dim(0)), in = static_cast<int>(w.dim(1));
  dispatch(dy, [&](auto t) {
    using T = decltype(t);
    cpu::fc_backward_data<T>(n, in, out, dy.data<T>(), w.data<T>(), dx.data<T>(),
                             static_cast<T>(beta));
  });
}

void fc_backward_weights(int n, const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db,
                         double beta) {
  const int out = static_cast<int>(dw.dim(0)), in = static_cast<int>(dw.dim(1));
  dispatch(x, [&](auto t) {
    using T = decltype(t);
    cpu::fc_backward_weights<T>(n, in, out, x.data<T>(), dy.data<T>(), dw.data<T>(),
                                mut_ptr_or_null<T>(db), static_cast<T>(beta));
  });
}

void activation_forward(Activation a, int64_t count, Tensor& x) {
  dispatch(x, [&](auto t) {
    using T = decltype(t);
    cpu::activation_forward<T>(a, count, x.data<T>(), x.data<T>());
  });
}

void activation_backward(Activation a, int64_t count, const Tensor& y, Tensor& dy) {
  dispatch(y, [&](auto t) {
    using T = decltype(t);
    cpu::activation_backward<T>(a, count, y.data<T>(), dy.data<T>(), dy.data<T>());
  });
}

void lrn_forward(const LrnParams& p, int n, int c, int h, int w, const Tensor& x, Tensor& y,
                 Tensor& scale) {
  dispatch(x, [&](auto t) {
    using T = decltype(t);
    cpu::lrn_forward<T>(p, n, c, h, w, x.data<T>(), y.data<T>(), scale.data<T>());
  });
}

void lrn_backward(const LrnParams& p, int n, int c, int h, int w, const Tensor& x, const Tensor& y,
                  const Tensor& scale, const Tensor& dy, Tensor& dx) {
  dispatch(x, [&](auto t) {
    using T = decltype(t);
    cpu::lrn_backward<T>(p, n, c, h, w, x.data<T>(), y.data<T>(), scale.data<T>(), dy.data<T>(),
                         dx.data<T>());
  });
}

void maxpool_forward(const PoolGeom& g, const Tensor& x, Tensor& y, Tensor* argmax) {
  dispatch(x, [&](auto t) {
    using T = decltype(t);
    cpu::maxpool_forward<T>(g, x.data<T>(), y.data<T>(),
                            argmax ? argmax->data<int32_t>() : nullptr);
  });
}

void maxpool_backward(const PoolGeom& g, const Tensor& argmax, const Tensor& dy, Tensor& dx) {
  dispatch(dy, [&](auto t) {
    using T = decltype(t);
    cpu::maxpool_backward<T>(g, argmax.data<int32_t>(), dy.data<T>(), dx.data<T>());
  });
}

void dropout_forward(const DropoutParams& d, int64_t count, const Tensor& x, Tensor& y) {
  dispatch(x, [&](auto t) {
    using T = decltype(t);
    cpu::dropout_forward<T>(d, count, x.data<T>(), y.data<T>());
  });
}

void dropout_backward(const DropoutParams& d, int64_t count, Tensor& dy) {
  dispatch(dy, [&](auto t) {
    using T = decltype(t);
    cpu::dropout_backward<T>(d, count, dy.data<T>(), dy.data<T>());
  });
}

XentResult softmax_xent(int n, const Tensor& logits, const int32_t* labels, Tensor* dlogits,
                        Tensor* probs) {
  XentResult r;
  const int k = static_cast<int>(logits.dim(1));
  dispatch(logits, [&](auto t) {
    using T = decltype(t);
    r = cpu::softmax_xent<T>(n, k, logits.data<T>(), labels, mut_ptr_or_null<T>(dlogits),
                             mut_ptr_or_null<T>(probs));
  });
  return r;
}

void sgd_update(double lr, double momentum, double decay, Tensor& w, Tensor& v,
                const Tensor& grad) {
  dispatch(w, [&](auto t) {
    using T = decltype(t);
    cpu::sgd_update<T>(w.numel(), lr, momentum, decay, w.data<T>(), v.data<T>(), grad.data<T>());
  });
}

void copy_into_columns(int n, const Tensor& src, Tensor& dst, int64_t col0) {
  check_cpu(src);
  const int64_t cols = src.numel() / src.dim(0), dst_cols = dst.numel() / dst.dim(0);
  const size_t es = dtype_size(src.dtype());
  auto* d = static_cast<std::byte*>(dst.raw());
  const auto* s = static_cast<const std::byte*>(src.raw());
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(d + (i * dst_cols + col0) * es, s + i * cols * es, static_cast<size_t>(cols) * es);
}

void copy_from_columns(int n, const Tensor& src, int64_t col0, Tensor& dst) {
  check_cpu(src);
  const int64_t cols = dst.numel() / dst.dim(0), src_cols = src.numel() / src.dim(0);
  const size_t es = dtype_size(src.dtype());
  auto* d = static_cast<std::byte*>(dst.raw());
  const auto* s = static_cast<const std::byte*>(src.raw());
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(d + i * cols * es, s + (i * src_cols + col0) * es, static_cast<size_t>(cols) * es);
}

void sum_into(int64_t count, const Tensor* const* inputs, int num_inputs, Tensor& out) {
  dispatch(out, [&](auto t) {
    using T = decltype(t);
    T* o = out.data<T>();
    const T* first = inputs[0]->data<T>();
    for (int64_t i = 0; i < count; ++i) o[i] = first[i];
    for (int k = 1; k < num_inputs; ++k) {
      const T* in = inputs[k]->data<T>();
      for (int64_t i = 0; i < count; ++i) o[i] += in[i];
    }
  });
}

}  // namespace alexnet::ops

// The custom CUDA kernels: each kernels/*.cuh functor instantiated with float and run by the
// one grid-stride launcher. Compiling this file is also what puts every .cuh through nvcc
// with warnings as errors.
#include <string>

#include "alexnet/error.h"
#include "kernels/activation.cuh"
#include "kernels/augment.cuh"
#include "kernels/dropout.cuh"
#include "kernels/kernels.h"
#include "kernels/launch.cuh"
#include "kernels/lrn.cuh"
#include "kernels/maxpool.cuh"
#include "kernels/sgd.cuh"
#include "kernels/softmax_xent.cuh"

namespace alexnet::kernels {

// ---------------------------------------------------------------- activations
void activation_forward_cuda(Activation a, int64_t count, const float* x, float* y,
                             cudaStream_t stream) {
  switch (a) {
    case Activation::relu:
      return launch_elementwise(count, ReluForward<float>{x, y}, stream);
    case Activation::tanh:
      return launch_elementwise(count, TanhForward<float>{x, y}, stream);
  }
  throw Error("activation_forward_cuda: unknown activation " + std::to_string(static_cast<int>(a)));
}

void activation_backward_cuda(Activation a, int64_t count, const float* y, const float* dy,
                              float* dx, cudaStream_t stream) {
  switch (a) {
    case Activation::relu:
      return launch_elementwise(count, ReluBackward<float>{y, dy, dx}, stream);
    case Activation::tanh:
      return launch_elementwise(count, TanhBackward<float>{y, dy, dx}, stream);
  }
  throw Error("activation_backward_cuda: unknown activation " +
              std::to_string(static_cast<int>(a)));
}

void bias_activation_cuda(Activation a, int n, int k, int64_t plane, const float* bias, float* y,
                          cudaStream_t stream) {
  launch_elementwise(static_cast<int64_t>(n) * k * plane,
                     BiasActivation<float>{a, plane, k, bias, y}, stream);
}

// ---------------------------------------------------------------- LRN
void lrn_forward_cuda(const LrnParams& p, int n, int c, int h, int w, const float* x, float* y,
                      float* scale, cudaStream_t stream) {
  const int64_t count = static_cast<int64_t>(n) * c * h * w;
  launch_elementwise(count, LrnForward<float>{lrn_coeffs<float>(p, c, h, w), x, y, scale}, stream);
}

void lrn_backward_cuda(const LrnParams& p, int n, int c, int h, int w, const float* x,
                       const float* y, const float* scale, const float* dy, float* dx,
                       cudaStream_t stream) {
  const int64_t count = static_cast<int64_t>(n) * c * h * w;
  launch_elementwise(count, LrnBackward<float>{lrn_coeffs<float>(p, c, h, w), x, y, scale, dy, dx},
                     stream);
}

// ---------------------------------------------------------------- max pooling
void maxpool_forward_cuda(const PoolGeom& g, const float* x, float* y, int32_t* argmax,
                          cudaStream_t stream) {
  const int64_t count = static_cast<int64_t>(g.n) * g.c * g.out_h() * g.out_w();
  launch_elementwise(count, MaxpoolForward<float>{pool_dims(g), x, y, argmax}, stream);
}

void maxpool_backward_cuda(const PoolGeom& g, const int32_t* argmax, const float* dy, float* dx,
                           cudaStream_t stream) {
  const int64_t count = static_cast<int64_t>(g.n) * g.c * g.h * g.w;
  launch_elementwise(count, MaxpoolBackward<float>{pool_dims(g), argmax, dy, dx}, stream);
}

// ---------------------------------------------------------------- dropout
void dropout_forward_cuda(const DropoutParams& d, int64_t count, const float* x, float* y,
                          cudaStream_t stream) {
  launch_elementwise(count, DropoutForward<float>{dropout_mask<float>(d), x, y}, stream);
}

void dropout_backward_cuda(const DropoutParams& d, int64_t count, const float* dy, float* dx,
                           cudaStream_t stream) {
  launch_elementwise(count, DropoutBackward<float>{dropout_mask<float>(d), dy, dx}, stream);
}

// ---------------------------------------------------------------- softmax cross-entropy
void softmax_xent_cuda(int n, int k, const float* logits, const int32_t* labels, float* dlogits,
                       float* probs, double* loss, int32_t* top1, int32_t* top5, double inv_n,
                       cudaStream_t stream) {
  const SoftmaxXent<float> f{k, inv_n, logits, labels, dlogits, probs, loss, top1, top5};
  launch_elementwise(n, f, stream);
}

// ---------------------------------------------------------------- SGD
void sgd_update_cuda(int64_t count, double lr, double momentum, double decay, float* w, float* v,
                     const float* grad, cudaStream_t stream) {
  const SgdUpdate<float> f{
      static_cast<float>(lr), static_cast<float>(momentum), static_cast<float>(decay), w, v, grad};
  launch_elementwise(count, f, stream);
}

void sgd_update_all_cuda(double lr, double momentum, const SgdSegment<float>* segments, int count,
                         int64_t total, const float* lr_scales, cudaStream_t stream) {
  const SgdUpdateAll<float> f{static_cast<float>(lr), static_cast<float>(momentum), segments, count,
                              lr_scales};
  launch_elementwise(total, f, stream);
}

void lars_scales_cuda(const SgdSegment<float>* segments, int count, const float* norms,
                      float* scales, cudaStream_t stream) {
  launch_elementwise(count, LarsScales<float>{segments, norms, scales}, stream);
}

// ---------------------------------------------------------------- augmentation
void augment_batch_cuda(const AugmentGeom& g, const uint8_t* images, const float* mean,
                        const AugmentSample* samples, float* out, cudaStream_t stream) {
  const AugmentFunctor<float> f{g.size,  g.crop, static_cast<float>(g.scale), images, mean,
                                samples, out};
  launch_elementwise(g.output_count(), f, stream);
}

}  // namespace alexnet::kernels

// The CPU backend: the reference every other backend is checked against.
//
// Pointer-level functions, templated on the element type and instantiated for float and
// double (double is what the finite-difference gradient checks run). Layouts:
//   activations NCHW, row-major; conv weights (K, C/groups, R, S) as in PyTorch;
//   fully-connected x (N, I), w (O, I), y (N, O) as in PyTorch's nn.Linear.
// `beta` follows cuDNN/cuBLAS: out = beta * out + result (0 overwrites, 1 accumulates;
// with beta == 0 the old contents are never read, so they may be garbage or NaN).
// The arithmetic of the custom ops lives in kernels/*.cuh and is shared with CUDA; the ops'
// parameter structs (ConvGeom, LrnParams, ...) in op_params.h, shared with every backend.
#pragma once

#include <cstdint>
#include <string>

#include "alexnet/op_params.h"

namespace alexnet::cpu {

// The BLAS behind the convolutions and fc layers, as one line: library, version, build options
// and the kernel it runs on this processor. sgemm's rounding depends on that kernel, so two runs
// are bit-identical only where this line is the same (README, "Reproducibility").
std::string blas_description();

// ---------------------------------------------------------------- convolution (im2col + gemm)
// y (N, K, P, Q) = beta*y + conv(x, w) + bias[k]     (bias may be null)
template <class T>
void conv_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y, T beta);
// dx (N, C, H, W) = beta*dx + conv_transpose(dy, w)
template <class T>
void conv_backward_data(const ConvGeom& g, const T* dy, const T* w, T* dx, T beta);
// dw (K, C/groups, R, S) = beta*dw + corr(x, dy);  dbias (K) = beta*dbias + sum dy  (may be null)
template <class T>
void conv_backward_filter(const ConvGeom& g, const T* x, const T* dy, T* dw, T* dbias, T beta);

// ---------------------------------------------------------------- fully connected (gemm)
// y (N, O) = beta*y + x w^T + b   (b may be null)
template <class T>
void fc_forward(int n, int in, int out, const T* x, const T* w, const T* b, T* y, T beta);
// dx (N, I) = beta*dx + dy w
template <class T>
void fc_backward_data(int n, int in, int out, const T* dy, const T* w, T* dx, T beta);
// dw (O, I) = beta*dw + dy^T x;  db (O) = beta*db + sum_n dy  (db may be null)
template <class T>
void fc_backward_weights(int n, int in, int out, const T* x, const T* dy, T* dw, T* db, T beta);

// ---------------------------------------------------------------- activations (in place allowed)
template <class T>
void activation_forward(Activation a, int64_t count, const T* x, T* y);
// Both derivatives are functions of the output y: relu' = (y > 0), tanh' = 1 - y^2.
template <class T>
void activation_backward(Activation a, int64_t count, const T* y, const T* dy, T* dx);

// ---------------------------------------------------------------- local response normalisation
// scale (N, C, H, W) receives k + alpha' * sum a_j^2 for the backward pass (may be null).
template <class T>
void lrn_forward(const LrnParams& p, int n, int c, int h, int w, const T* x, T* y, T* scale);
template <class T>
void lrn_backward(const LrnParams& p, int n, int c, int h, int w, const T* x, const T* y,
                  const T* scale, const T* dy, T* dx);

// ---------------------------------------------------------------- max pooling (overlapping)
// y (N, C, P, Q) the window maxima; argmax (N, C, P, Q) each window's first maximum (row-major
// within the window) as an offset within its input plane, for the backward pass (may be null).
template <class T>
void maxpool_forward(const PoolGeom& g, const T* x, T* y, int32_t* argmax);
// A gather: each dx element sums dy over the windows that recorded it as their argmax; no
// atomics, deterministic. dx is overwritten.
template <class T>
void maxpool_backward(const PoolGeom& g, const int32_t* argmax, const T* dy, T* dx);

// ---------------------------------------------------------------- dropout
template <class T>
void dropout_forward(const DropoutParams& d, int64_t count, const T* x, T* y);
template <class T>
void dropout_backward(const DropoutParams& d, int64_t count, const T* dy, T* dx);

// ---------------------------------------------------------------- softmax cross-entropy
// logits (N, K); dlogits (N, K) = (softmax - onehot) / N, i.e. the gradient of the batch mean
// (may be null); probs (N, K) the softmax (may be null).
template <class T>
XentResult softmax_xent(int n, int k, const T* logits, const int32_t* labels, T* dlogits, T* probs,
                        int64_t mean_over = 0);  // 0: n (alexnet/ops.h)

// ---------------------------------------------------------------- augmentation (one fused op)
// out (N, 3, crop, crop) from images (N, S, S, 3) uint8 RGB and mean (3, S, S):
//   x' = x0 + (flip ? crop - 1 - x : x),  y' = y0 + y
//   out[n, c, y, x] = (image[n, y', x', c] + rgb_shift[c] - mean[c, y', x']) * scale
template <class T>
void augment_batch(const AugmentGeom& g, const uint8_t* images, const float* mean,
                   const AugmentSample* samples, T* out);
// One image (S, S, 3) -> out (3, crop, crop) on the calling thread, unchecked (the caller checked
// the geometry and the sample): what a decode thread does right after decoding the image.
template <class T>
void augment_image(const AugmentGeom& g, const uint8_t* image, const float* mean,
                   const AugmentSample& sample, T* out);

// ---------------------------------------------------------------- momentum SGD (the paper's rule)
// v <- momentum*v - decay*lr*w - lr*grad;  w <- w + v
template <class T>
void sgd_update(int64_t count, double lr, double momentum, double decay, T* w, T* v, const T* grad);
// The same over many tensors: tensor k is segments[k] (kernels/sgd.cuh), `total` elements in
// all. Bit-identical to one sgd_update per tensor (on the GPU it is one launch of SgdUpdateAll).
// lr_scales (count), when given, multiply each tensor's lr (LARS).
template <class T>
void sgd_update_all(double lr, double momentum, const kernels::SgdSegment<T>* segments, int count,
                    int64_t total, const T* lr_scales = nullptr);
// LARS: scales[k] = segment k's trust ratio (kernels::LarsScales), or 1 where its lars_eta is 0.
// The norms are accumulated in double.
template <class T>
void lars_scales(const kernels::SgdSegment<T>* segments, int count, int64_t total, T* scales);

}  // namespace alexnet::cpu

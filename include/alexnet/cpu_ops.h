// The CPU backend: the reference every other backend is checked against.
//
// Pointer-level functions, templated on the element type and instantiated for float and
// double (double is what the finite-difference gradient checks run). Layouts:
//   activations NCHW, row-major; conv weights (K, C/groups, R, S) as in PyTorch;
//   fully-connected x (N, I), w (O, I), y (N, O) as in PyTorch's nn.Linear.
// `beta` follows cuDNN/cuBLAS: out = beta * out + result (0 overwrites, 1 accumulates;
// with beta == 0 the old contents are never read, so they may be garbage or NaN).
// The arithmetic of the custom ops lives in kernels/*.cuh and is shared with CUDA.
#pragma once

#include <cstdint>

namespace alexnet::kernels {
template <class T>
struct SgdSegment;  // kernels/sgd.cuh
}

namespace alexnet::cpu {

// ---------------------------------------------------------------- convolution (im2col + gemm)
struct ConvGeom {
  int n = 1, c = 1, h = 1, w = 1;  // input (N, C, H, W)
  int k = 1, r = 1, s = 1;         // K filters of R x S
  int stride = 1, pad = 0, groups = 1;
  int out_h() const { return (h + 2 * pad - r) / stride + 1; }
  int out_w() const { return (w + 2 * pad - s) / stride + 1; }
};

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
enum class Activation : uint8_t { relu, tanh };
template <class T>
void activation_forward(Activation a, int64_t count, const T* x, T* y);
// Both derivatives are functions of the output y: relu' = (y > 0), tanh' = 1 - y^2.
template <class T>
void activation_backward(Activation a, int64_t count, const T* y, const T* dy, T* dx);

// ---------------------------------------------------------------- local response normalisation
// The paper's formula: b_i = a_i / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a_j^2)^beta
// over the C channels given (one tower's maps). alpha_over_n divides alpha by n (Caffe/PyTorch).
struct LrnParams {
  int size = 5;
  double k = 2.0, alpha = 1e-4, beta = 0.75;
  bool alpha_over_n = false;
};
// scale (N, C, H, W) receives k + alpha' * sum a_j^2 for the backward pass (may be null).
template <class T>
void lrn_forward(const LrnParams& p, int n, int c, int h, int w, const T* x, T* y, T* scale);
template <class T>
void lrn_backward(const LrnParams& p, int n, int c, int h, int w, const T* x, const T* y,
                  const T* scale, const T* dy, T* dx);

// ---------------------------------------------------------------- max pooling (overlapping)
struct PoolGeom {
  int n = 1, c = 1, h = 1, w = 1;
  int size = 3, stride = 2;  // no padding
  int out_h() const { return (h - size) / stride + 1; }
  int out_w() const { return (w - size) / stride + 1; }
};
// y (N, C, P, Q) the window maxima; argmax (N, C, P, Q) each window's first maximum (row-major
// within the window) as an offset within its input plane, for the backward pass (may be null).
template <class T>
void maxpool_forward(const PoolGeom& g, const T* x, T* y, int32_t* argmax);
// A gather: each dx element sums dy over the windows that recorded it as their argmax; no
// atomics, deterministic. dx is overwritten.
template <class T>
void maxpool_backward(const PoolGeom& g, const int32_t* argmax, const T* dy, T* dx);

// ---------------------------------------------------------------- dropout
// Inverted dropout: kept units are scaled by 1/(1-p) at training, inference uses all units
// unscaled (the same expectation as the paper's x0.5 at test). The mask is a pure function of
// (seed, step, layer, element index) through Philox, so it is never stored and a resumed run
// draws the same masks.
struct DropoutParams {
  double p = 0.5;
  uint64_t seed = 0;
  uint64_t step = 0;
  uint32_t layer = 0;
};
template <class T>
void dropout_forward(const DropoutParams& d, int64_t count, const T* x, T* y);
template <class T>
void dropout_backward(const DropoutParams& d, int64_t count, const T* dy, T* dx);

// ---------------------------------------------------------------- softmax cross-entropy
struct XentResult {
  double loss_sum = 0;  // sum over the batch of -log softmax(logits)[label]
  int top1 = 0;         // samples whose label is the top-1 class
  int top5 = 0;         // ... among the top 5 (fewer than 5 classes strictly above it)
};
// logits (N, K); dlogits (N, K) = (softmax - onehot) / N, i.e. the gradient of the batch mean
// (may be null); probs (N, K) the softmax (may be null).
template <class T>
XentResult softmax_xent(int n, int k, const T* logits, const int32_t* labels, T* dlogits, T* probs);

// ---------------------------------------------------------------- augmentation (one fused op)
// What happens to one sample (DESIGN §2, paper §4.1): the crop's top-left corner in the
// stored S x S image, a horizontal mirror, and the PCA lighting shift sum_i alpha_i lambda_i p_i
// added to every pixel's RGB.
struct AugmentSample {
  int x0 = 0, y0 = 0;
  bool flip = false;
  float rgb_shift[3] = {0, 0, 0};
};
struct AugmentGeom {
  int n = 1;         // samples
  int size = 256;    // S: the stored images are (S, S, 3)
  int crop = 227;    // the output is (3, crop, crop)
  double scale = 1;  // input scale (data.scale)
};
// out (N, 3, crop, crop) from images (N, S, S, 3) uint8 RGB and mean (3, S, S):
//   x' = x0 + (flip ? crop - 1 - x : x),  y' = y0 + y
//   out[n, c, y, x] = (image[n, y', x', c] + rgb_shift[c] - mean[c, y', x']) * scale
template <class T>
void augment_batch(const AugmentGeom& g, const uint8_t* images, const float* mean,
                   const AugmentSample* samples, T* out);

// ---------------------------------------------------------------- momentum SGD (the paper's rule)
// v <- momentum*v - decay*lr*w - lr*grad;  w <- w + v
template <class T>
void sgd_update(int64_t count, double lr, double momentum, double decay, T* w, T* v, const T* grad);
// The same over many tensors: tensor k is segments[k] (kernels/sgd.cuh), `total` elements in
// all. Bit-identical to one sgd_update per tensor (on the GPU it is one launch of SgdUpdateAll).
template <class T>
void sgd_update_all(double lr, double momentum, const kernels::SgdSegment<T>* segments, int count,
                    int64_t total);

}  // namespace alexnet::cpu

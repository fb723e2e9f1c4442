// The parameters of the network's ops: plain structs that the CPU backend (cpu_ops.h), the
// CUDA backend (src/cuda), the shared arithmetic (kernels/*.cuh), the ops dispatch (ops.h) and
// the data code all speak, so that none of them includes another backend's header for them.
#pragma once

#include <cstdint>

namespace alexnet::kernels {
template <class T>
struct SgdSegment;  // one tensor of a fused SGD update: kernels/sgd.cuh
}

namespace alexnet {

// ---------------------------------------------------------------- output sides
// The side of what a window of `window` pixels, moved by `stride` over `in` pixels padded by
// `pad` on each side, produces: 0 when the window does not fit. The one formula for ConvGeom,
// PoolGeom, the config's check of model.input_size and Net (stage_sides in config.h).
constexpr int conv_out(int in, int window, int stride, int pad) {
  const int padded = in + 2 * pad;
  return padded < window ? 0 : (padded - window) / stride + 1;
}
constexpr int pool_out(int in, int window, int stride) {
  return conv_out(in, window, stride, 0);
}

// ---------------------------------------------------------------- convolution
struct ConvGeom {
  int n = 1, c = 1, h = 1, w = 1;  // input (N, C, H, W)
  int k = 1, r = 1, s = 1;         // K filters of R x S
  int stride = 1, pad = 0, groups = 1;
  int out_h() const { return conv_out(h, r, stride, pad); }
  int out_w() const { return conv_out(w, s, stride, pad); }
};

// ---------------------------------------------------------------- activations
enum class Activation : uint8_t { relu, tanh };

// ---------------------------------------------------------------- local response normalisation
// The paper's formula: b_i = a_i / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a_j^2)^beta
// over the C channels given (one tower's maps). alpha_over_n divides alpha by n (Caffe/PyTorch).
struct LrnParams {
  int size = 5;
  double k = 2.0, alpha = 1e-4, beta = 0.75;
  bool alpha_over_n = false;
  // Throws alexnet::Error unless size is odd and positive (the window is centred on its
  // channel). Every backend's LRN calls it before touching memory (src/ops/op_params.cpp).
  void check() const;
};

// ---------------------------------------------------------------- max pooling (overlapping)
struct PoolGeom {
  int n = 1, c = 1, h = 1, w = 1;
  int size = 3, stride = 2;  // no padding
  int out_h() const { return pool_out(h, size, stride); }
  int out_w() const { return pool_out(w, size, stride); }
};

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
  // The mask index of element 0: a rank's share of a larger batch (data-parallel training)
  // draws the masks the one-process run draws for those samples.
  int64_t first = 0;
  // Throws alexnet::Error unless p is in [0, 1] and elements [first, first + count) fit the
  // mask's 32-bit element counter. Every backend's dropout calls it before touching memory.
  void check(int64_t count) const;
};

// ---------------------------------------------------------------- softmax cross-entropy
struct XentResult {
  double loss_sum = 0;  // sum over the batch of -log softmax(logits)[label]
  int top1 = 0;         // samples whose label is the top-1 class
  int top5 = 0;         // ... among the top 5 (fewer than 5 classes strictly above it)
};

// ---------------------------------------------------------------- augmentation (one fused op)
// What happens to one sample (paper §4.1): the crop's top-left corner in the
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
  int64_t output_count() const { return int64_t{n} * 3 * crop * crop; }
  // Throw alexnet::Error when the batch size is negative or the crop does not fit the stored
  // size, and when a sample's crop would read outside its image (the kernel does not check):
  // every backend's augmentation calls them, on the host copy of the samples.
  void check() const;
  void check_samples(const AugmentSample* samples) const;
};

}  // namespace alexnet

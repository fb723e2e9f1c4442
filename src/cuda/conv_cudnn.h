// Convolutions through cuDNN 9's classic API (cudnnConvolutionForward and its two backward
// passes), with exactly the semantics of the CPU ops in alexnet/cpu_ops.h:
//   activations NCHW row-major, weights (K, C/groups, R, S) as in PyTorch, cross-correlation
//   (no kernel flip), symmetric zero padding, one stride for both axes, groups.
// Float only; every pointer is device memory; every call is queued on the Handles' stream and
// returns before the work is done.
// `beta` follows cuDNN/cuBLAS: out = beta * out + result (0 overwrites, 1 accumulates; with
// beta == 0 the old contents are never read, so they may be garbage or NaN).
//
// A ConvPlan holds the cuDNN descriptors of one geometry and the algorithm chosen for each of the
// three directions, made once and reused for every call with that geometry (the batch size is
// part of the geometry: a short last batch gets its own plan). Every cuDNN call of the project
// lives in this header's .cpp, so a move to cuDNN's graph API touches one place.
// For translation units built with the CUDA toolkit only.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "alexnet/op_params.h"
#include "src/cuda/handles.h"

namespace alexnet::gpu {

// How a plan picks its algorithms. (TF32 is the Handles' allow_tf32.)
struct ConvAlgoOptions {
  // The most device scratch one convolution call may use, in bytes. Algorithms needing more
  // are passed over; if none fits, making the plan fails saying how much the cheapest needs.
  size_t workspace_limit = size_t{256} << 20;
  // true: cudnnFind runs every algorithm once on the device (it allocates its own scratch for
  // that, ~10-100 ms per geometry) and the fastest that fits wins. false: cuDNN's heuristics
  // rank them without running anything. Either way the choice is made once per plan.
  bool benchmark = false;
  // Only algorithms that cuDNN reports as bit-reproducible run to run (no atomics).
  bool deterministic = false;
  bool operator==(const ConvAlgoOptions&) const = default;
};

// One direction's choice.
template <class Algo>
struct ConvAlgoChoice {
  Algo algo{};
  cudnnMathType_t math = CUDNN_FMA_MATH;  // set on the convolution descriptor before each call
  size_t workspace = 0;                   // bytes this algorithm needs
};

struct ConvPlan {
  // Validates g (as the CPU op does, and n >= 1), makes the descriptors, chooses the three
  // algorithms and reserves their scratch in h (so running out of memory shows here, not in
  // the middle of a step). Throws std::invalid_argument for a bad geometry and alexnet::Error
  // when no algorithm fits the workspace limit or the scratch cannot be allocated.
  ConvPlan(Handles& h, const ConvGeom& g, const ConvAlgoOptions& options = {});
  ~ConvPlan();
  ConvPlan(const ConvPlan&) = delete;
  ConvPlan& operator=(const ConvPlan&) = delete;

  // The most scratch any of the three directions needs, in bytes.
  size_t workspace_bytes() const;
  // One line for the log: the geometry, each direction's algorithm and scratch, and the math.
  std::string describe() const;

  ConvGeom geom;
  cudnnTensorDescriptor_t x_desc = nullptr;     // (N, C, H, W)
  cudnnTensorDescriptor_t y_desc = nullptr;     // (N, K, P, Q)
  cudnnTensorDescriptor_t bias_desc = nullptr;  // (1, K, 1, 1), broadcast over N, P, Q
  cudnnFilterDescriptor_t w_desc = nullptr;     // (K, C/groups, R, S)
  // Padding, stride, groups. Its math type is set per call to the chosen algorithm's, which
  // makes a plan usable from one host thread at a time (like the Handles it runs with).
  cudnnConvolutionDescriptor_t conv_desc = nullptr;
  ConvAlgoChoice<cudnnConvolutionFwdAlgo_t> fwd;
  ConvAlgoChoice<cudnnConvolutionBwdDataAlgo_t> bwd_data;
  ConvAlgoChoice<cudnnConvolutionBwdFilterAlgo_t> bwd_filter;

 private:
  void release() noexcept;
};

// y (N, K, P, Q) = beta*y + conv(x, w) + bias[k]     (bias may be null)
void conv_forward(Handles& h, const ConvPlan& p, const float* x, const float* w, const float* bias,
                  float* y, float beta);
// dx (N, C, H, W) = beta*dx + conv_transpose(dy, w)
void conv_backward_data(Handles& h, const ConvPlan& p, const float* dy, const float* w, float* dx,
                        float beta);
// dw (K, C/groups, R, S) = beta*dw + corr(x, dy);  dbias (K) = beta*dbias + sum dy  (may be null)
void conv_backward_filter(Handles& h, const ConvPlan& p, const float* x, const float* dy, float* dw,
                          float* dbias, float beta);

// The plans of one Handles by geometry: made on first use, then reused. A training run meets
// two batch sizes per layer (full and last), so this stays a handful of entries.
class ConvPlanCache {
 public:
  explicit ConvPlanCache(const ConvAlgoOptions& options = {}) : options_(options) {}
  const ConvPlan& get(Handles& h, const ConvGeom& g);
  size_t size() const { return plans_.size(); }

 private:
  ConvAlgoOptions options_;
  std::map<std::array<int, 10>, std::unique_ptr<ConvPlan>> plans_;
};

}  // namespace alexnet::gpu

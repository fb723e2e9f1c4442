// cuDNN convolutions: descriptors and algorithm choice once per geometry (ConvPlan), then one
// cuDNN call per direction. The bias is added by cudnnAddTensor after the convolution rather
// than by cudnnConvolutionBiasActivationForward: the fused call needs the IMPLICIT_PRECOMP_GEMM
// algorithm for an identity activation, and it would carry beta*y through its z input, whose
// behaviour with alpha2 == 0 over a NaN-filled y cuDNN does not document. The add costs one
// more pass over y.
#include "src/cuda/conv_cudnn.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>

#include "alexnet/cuda_check.h"
#include "alexnet/error.h"
#include "src/cuda/device_memory.h"

namespace alexnet::gpu {
namespace {

std::string geom_text(const ConvGeom& g) {
  return "n=" + std::to_string(g.n) + " c=" + std::to_string(g.c) + " h=" + std::to_string(g.h) +
         " w=" + std::to_string(g.w) + " k=" + std::to_string(g.k) + " r=" + std::to_string(g.r) +
         " s=" + std::to_string(g.s) + " stride=" + std::to_string(g.stride) +
         " pad=" + std::to_string(g.pad) + " groups=" + std::to_string(g.groups);
}

// The checks of the CPU op (src/cpu/conv.cpp), plus n >= 1: cuDNN descriptors need every
// dimension positive.
void check_geom(const ConvGeom& g) {
  if (g.n <= 0 || g.c <= 0 || g.h <= 0 || g.w <= 0 || g.k <= 0 || g.r <= 0 || g.s <= 0 ||
      g.stride <= 0 || g.pad < 0 || g.groups <= 0 || g.c % g.groups != 0 || g.k % g.groups != 0 ||
      g.h + 2 * g.pad < g.r || g.w + 2 * g.pad < g.s) {
    throw std::invalid_argument("cuDNN conv: bad geometry " + geom_text(g));
  }
}

// ---------------------------------------------------------------- the three directions
// What differs between forward, backward-data and backward-filter for the algorithm search:
// the perf struct, the query functions and their argument order. choose() is written once.
struct Forward {
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  using Algo = cudnnConvolutionFwdAlgo_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  static constexpr const char* kName = "forward";
  // cuDNN's documentation: every forward algorithm is deterministic.
  static bool documented_deterministic(Algo) { return true; }
  static cudnnStatus_t rank(cudnnHandle_t h, const ConvPlan& p, bool run, int* got, Perf* out) {
    return run ? cudnnFindConvolutionForwardAlgorithm(h, p.x_desc, p.w_desc, p.conv_desc, p.y_desc,
                                                      kCount, got, out)
               : cudnnGetConvolutionForwardAlgorithm_v7(h, p.x_desc, p.w_desc, p.conv_desc,
                                                        p.y_desc, kCount, got, out);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const ConvPlan& p, Algo a, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(h, p.x_desc, p.w_desc, p.conv_desc, p.y_desc, a,
                                                   bytes);
  }
};

struct BackwardData {
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  static constexpr const char* kName = "backward-data";
  // ALGO_0 sums with atomics; the documentation calls every other one deterministic.
  static bool documented_deterministic(Algo a) { return a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_0; }
  static cudnnStatus_t rank(cudnnHandle_t h, const ConvPlan& p, bool run, int* got, Perf* out) {
    return run ? cudnnFindConvolutionBackwardDataAlgorithm(h, p.w_desc, p.y_desc, p.conv_desc,
                                                           p.x_desc, kCount, got, out)
               : cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w_desc, p.y_desc, p.conv_desc,
                                                             p.x_desc, kCount, got, out);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const ConvPlan& p, Algo a, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w_desc, p.y_desc, p.conv_desc,
                                                        p.x_desc, a, bytes);
  }
};

struct BackwardFilter {
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  static constexpr const char* kName = "backward-filter";
  // ALGO_0 and ALGO_3 sum with atomics; the documentation calls the others deterministic.
  static bool documented_deterministic(Algo a) {
    return a != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 && a != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
  }
  static cudnnStatus_t rank(cudnnHandle_t h, const ConvPlan& p, bool run, int* got, Perf* out) {
    return run ? cudnnFindConvolutionBackwardFilterAlgorithm(h, p.x_desc, p.y_desc, p.conv_desc,
                                                             p.w_desc, kCount, got, out)
               : cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x_desc, p.y_desc, p.conv_desc,
                                                               p.w_desc, kCount, got, out);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const ConvPlan& p, Algo a, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x_desc, p.y_desc, p.conv_desc,
                                                          p.w_desc, a, bytes);
  }
};

// The first algorithm in cuDNN's ranking (by measured time with benchmark, else by its
// heuristics) that is supported, deterministic if asked, runs in the requested precision and fits
// the workspace limit. Its workspace is asked of cuDNN for exactly that algorithm and math type
// (what the calls will use) rather than read from the perf struct.
template <class Dir>
ConvAlgoChoice<typename Dir::Algo> choose(const Handles& h, const ConvPlan& p,
                                          const ConvAlgoOptions& options) {
  // Without TF32 the descriptor says FMA (plain fp32 FMAs, no tensor-core down-conversion), so
  // cuDNN ranks only such kernels; with it, DEFAULT lets cuDNN use TF32 tensor cores.
  const cudnnMathType_t requested = h.allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  AX_CUDA_CHECK(cudnnSetConvolutionMathType(p.conv_desc, requested));
  typename Dir::Perf perf[Dir::kCount] = {};
  int got = 0;
  AX_CUDA_CHECK(Dir::rank(h.cudnn, p, options.benchmark, &got, perf));

  size_t least = std::numeric_limits<size_t>::max();  // the cheapest usable one, for the message
  for (int i = 0; i < got; ++i) {
    const typename Dir::Perf& r = perf[i];
    if (r.status != CUDNN_STATUS_SUCCESS) continue;
    // Deterministic means on cuDNN's documented list, always; and when the algorithms were run
    // (Find), whose flag is measured, the flag too. The heuristics may leave the flag at its
    // zero value, which reads as non-deterministic and would rule out everything.
    if (options.deterministic && (!Dir::documented_deterministic(r.algo) ||
                                  (options.benchmark && r.determinism != CUDNN_DETERMINISTIC)))
      continue;
    // cuDNN asks that the call be made with the math type it reports for the algorithm. Without
    // TF32 it is forced to FMA whatever is reported; an algorithm that cannot run that way
    // fails the workspace query below and is passed over.
    const cudnnMathType_t math = h.allow_tf32 ? r.mathType : CUDNN_FMA_MATH;
    if (math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;  // fp16 conversion: never
    AX_CUDA_CHECK(cudnnSetConvolutionMathType(p.conv_desc, math));
    size_t bytes = 0;
    // Not checked: NOT_SUPPORTED here just means "not this one".
    if (Dir::workspace(h.cudnn, p, r.algo, &bytes) != CUDNN_STATUS_SUCCESS) continue;
    least = std::min(least, bytes);
    if (bytes > options.workspace_limit) continue;
    return {r.algo, math, bytes};
  }
  const std::string why = least == std::numeric_limits<size_t>::max()
                              ? "cuDNN offers none for this geometry"
                              : "the cheapest needs " + mib(least) + " of workspace; raise the " +
                                    "convolution workspace limit (now " +
                                    mib(options.workspace_limit) + ")";
  throw Error("no cuDNN " + std::string(Dir::kName) + " convolution algorithm for " +
              geom_text(p.geom) + (options.deterministic ? " (deterministic only)" : "") +
              (h.allow_tf32 ? "" : " (fp32, no TF32)") + ": " + why);
}

// ---------------------------------------------------------------- names for describe()
const char* fwd_name(cudnnConvolutionFwdAlgo_t a) {
  static const char* const names[] = {
      "IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING",
      "WINOGRAD",      "WINOGRAD_NONFUSED"};
  const int i = static_cast<int>(a);
  return i >= 0 && i < CUDNN_CONVOLUTION_FWD_ALGO_COUNT ? names[i] : "?";
}
const char* bwd_data_name(cudnnConvolutionBwdDataAlgo_t a) {
  static const char* const names[] = {"ALGO_0",     "ALGO_1",   "FFT",
                                      "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  const int i = static_cast<int>(a);
  return i >= 0 && i < CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT ? names[i] : "?";
}
const char* bwd_filter_name(cudnnConvolutionBwdFilterAlgo_t a) {
  static const char* const names[] = {
      "ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED", "FFT_TILING"};
  const int i = static_cast<int>(a);
  return i >= 0 && i < CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT ? names[i] : "?";
}
const char* math_name(cudnnMathType_t m) {
  switch (m) {
    case CUDNN_DEFAULT_MATH:
      return "default";
    case CUDNN_TENSOR_OP_MATH:
      return "tensor-op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION:
      return "tensor-op-conversion";
    case CUDNN_FMA_MATH:
      return "fma";
  }
  return "?";
}

}  // namespace

// ---------------------------------------------------------------- ConvPlan
ConvPlan::ConvPlan(Handles& h, const ConvGeom& g, const ConvAlgoOptions& options) : geom(g) {
  check_geom(g);
  try {
    AX_CUDA_CHECK(cudnnCreateTensorDescriptor(&x_desc));
    AX_CUDA_CHECK(cudnnCreateTensorDescriptor(&y_desc));
    AX_CUDA_CHECK(cudnnCreateTensorDescriptor(&bias_desc));
    AX_CUDA_CHECK(cudnnCreateFilterDescriptor(&w_desc));
    AX_CUDA_CHECK(cudnnCreateConvolutionDescriptor(&conv_desc));
    // Fully packed NCHW: cudnnSetTensor4dDescriptor derives the strides (CHW, HW, W, 1).
    AX_CUDA_CHECK(cudnnSetTensor4dDescriptor(x_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.n, g.c,
                                             g.h, g.w));
    AX_CUDA_CHECK(cudnnSetTensor4dDescriptor(y_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.n, g.k,
                                             g.out_h(), g.out_w()));
    AX_CUDA_CHECK(
        cudnnSetTensor4dDescriptor(bias_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, g.k, 1, 1));
    // KCRS with C = C/groups: each filter sees only its group's channels.
    AX_CUDA_CHECK(cudnnSetFilter4dDescriptor(w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g.k,
                                             g.c / g.groups, g.r, g.s));
    // Cross-correlation (what the CPU op and PyTorch compute), no dilation, fp32 accumulation.
    AX_CUDA_CHECK(cudnnSetConvolution2dDescriptor(conv_desc, g.pad, g.pad, g.stride, g.stride, 1, 1,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    AX_CUDA_CHECK(cudnnSetConvolutionGroupCount(conv_desc, g.groups));

    // The output shape cuDNN derives must be the one the CPU op and the callers use.
    int n = 0, k = 0, p = 0, q = 0;
    AX_CUDA_CHECK(cudnnGetConvolution2dForwardOutputDim(conv_desc, x_desc, w_desc, &n, &k, &p, &q));
    if (n != g.n || k != g.k || p != g.out_h() || q != g.out_w()) {
      throw Error("cuDNN conv: output (" + std::to_string(n) + ", " + std::to_string(k) + ", " +
                  std::to_string(p) + ", " + std::to_string(q) + ") differs from the expected (" +
                  std::to_string(g.n) + ", " + std::to_string(g.k) + ", " +
                  std::to_string(g.out_h()) + ", " + std::to_string(g.out_w()) + ") for " +
                  geom_text(g));
    }

    fwd = choose<Forward>(h, *this, options);
    bwd_data = choose<BackwardData>(h, *this, options);
    bwd_filter = choose<BackwardFilter>(h, *this, options);
    h.workspace(workspace_bytes());
  } catch (...) {
    release();
    throw;
  }
}

ConvPlan::~ConvPlan() {
  release();
}

void ConvPlan::release() noexcept {
  // Destroying a descriptor does not touch the device: queued calls that used it are unaffected.
  if (conv_desc != nullptr) cudnnDestroyConvolutionDescriptor(conv_desc);
  if (w_desc != nullptr) cudnnDestroyFilterDescriptor(w_desc);
  if (bias_desc != nullptr) cudnnDestroyTensorDescriptor(bias_desc);
  if (y_desc != nullptr) cudnnDestroyTensorDescriptor(y_desc);
  if (x_desc != nullptr) cudnnDestroyTensorDescriptor(x_desc);
  conv_desc = nullptr;
  w_desc = nullptr;
  bias_desc = y_desc = x_desc = nullptr;
}

size_t ConvPlan::workspace_bytes() const {
  return std::max({fwd.workspace, bwd_data.workspace, bwd_filter.workspace});
}

std::string ConvPlan::describe() const {
  return "conv " + geom_text(geom) + ": forward " + fwd_name(fwd.algo) + " (" + mib(fwd.workspace) +
         ", " + math_name(fwd.math) + "), backward-data " + bwd_data_name(bwd_data.algo) + " (" +
         mib(bwd_data.workspace) + ", " + math_name(bwd_data.math) + "), backward-filter " +
         bwd_filter_name(bwd_filter.algo) + " (" + mib(bwd_filter.workspace) + ", " +
         math_name(bwd_filter.math) + ")";
}

// ---------------------------------------------------------------- the three calls
// alpha and beta are host floats: cuDNN reads float scaling factors for float data.
void conv_forward(Handles& h, const ConvPlan& p, const float* x, const float* w, const float* bias,
                  float* y, float beta) {
  const float one = 1.0f;
  void* ws = h.workspace(p.fwd.workspace);
  AX_CUDA_CHECK(cudnnSetConvolutionMathType(p.conv_desc, p.fwd.math));
  AX_CUDA_CHECK(cudnnConvolutionForward(h.cudnn, &one, p.x_desc, x, p.w_desc, w, p.conv_desc,
                                        p.fwd.algo, ws, p.fwd.workspace, &beta, p.y_desc, y));
  if (bias != nullptr) {
    // y += bias (1, K, 1, 1) broadcast over N, P, Q.
    AX_CUDA_CHECK(cudnnAddTensor(h.cudnn, &one, p.bias_desc, bias, &one, p.y_desc, y));
  }
}

void conv_backward_data(Handles& h, const ConvPlan& p, const float* dy, const float* w, float* dx,
                        float beta) {
  const float one = 1.0f;
  void* ws = h.workspace(p.bwd_data.workspace);
  AX_CUDA_CHECK(cudnnSetConvolutionMathType(p.conv_desc, p.bwd_data.math));
  AX_CUDA_CHECK(cudnnConvolutionBackwardData(h.cudnn, &one, p.w_desc, w, p.y_desc, dy, p.conv_desc,
                                             p.bwd_data.algo, ws, p.bwd_data.workspace, &beta,
                                             p.x_desc, dx));
}

void conv_backward_filter(Handles& h, const ConvPlan& p, const float* x, const float* dy, float* dw,
                          float* dbias, float beta) {
  const float one = 1.0f;
  void* ws = h.workspace(p.bwd_filter.workspace);
  AX_CUDA_CHECK(cudnnSetConvolutionMathType(p.conv_desc, p.bwd_filter.math));
  AX_CUDA_CHECK(cudnnConvolutionBackwardFilter(h.cudnn, &one, p.x_desc, x, p.y_desc, dy,
                                               p.conv_desc, p.bwd_filter.algo, ws,
                                               p.bwd_filter.workspace, &beta, p.w_desc, dw));
  if (dbias != nullptr) {
    // dbias (1, K, 1, 1) = beta*dbias + dy summed over N, P, Q.
    AX_CUDA_CHECK(
        cudnnConvolutionBackwardBias(h.cudnn, &one, p.y_desc, dy, &beta, p.bias_desc, dbias));
  }
}

// ---------------------------------------------------------------- ConvPlanCache
const ConvPlan& ConvPlanCache::get(Handles& h, const ConvGeom& g) {
  const std::array<int, 10> key = {g.n, g.c, g.h, g.w, g.k, g.r, g.s, g.stride, g.pad, g.groups};
  auto it = plans_.find(key);
  if (it == plans_.end())
    it = plans_.emplace(key, std::make_unique<ConvPlan>(h, g, options_)).first;
  // The plan was made with one queue's handles and reserved its scratch there; another queue
  // using it reserves its own here, so running out of memory shows now, not mid-call (a no-op
  // once the scratch is large enough).
  h.workspace(it->second->workspace_bytes());
  return *it->second;
}

}  // namespace alexnet::gpu

// Softmax cross-entropy, one functor call per sample (a row of K logits).
// Numerically stable: the row maximum is subtracted before exp, and the loss is computed in
// double whatever T is, so logits of +-1000 neither overflow nor lose the loss to rounding.
// Per-sample results go to arrays (loss, top1, top5) that the caller sums, so the functor
// needs no reduction and runs unchanged on the GPU.
// A label outside [0, K) gives loss NaN, no hits and a zero gradient row; the CPU wrapper
// rejects such labels before running it.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/hd.cuh"

namespace alexnet::kernels {

// The gradient's 1 / batch: of n samples, or of the larger batch they are a share of.
inline double inverse_batch(int64_t n, int64_t mean_over) {
  const int64_t m = mean_over > 0 ? mean_over : n;
  return m > 0 ? 1.0 / static_cast<double>(m) : 1.0;
}

template <class T>
struct SoftmaxXent {
  int k = 1;              // classes
  double inv_n = 1;       // 1 / batch: the gradient is that of the batch mean (inverse_batch)
  const T* logits;        // (N, K)
  const int32_t* labels;  // (N)
  T* dlogits;             // (N, K) = (softmax - onehot) / N; may be null
  T* probs;               // (N, K) softmax; may be null
  double* loss;           // (N) -log softmax[label]
  int32_t* top1;          // (N) 1 where no class scores strictly above the label
  int32_t* top5;          // (N) 1 where fewer than 5 classes score strictly above it
  AX_HD void operator()(int64_t s) const {
    const T* row = logits + s * k;
    const int32_t label = labels[s];
    if (label < 0 || label >= k) {
      loss[s] = static_cast<double>(NAN);
      top1[s] = top5[s] = 0;
      for (int j = 0; j < k; ++j) {
        if (dlogits != nullptr) dlogits[s * k + j] = T(0);
        if (probs != nullptr) probs[s * k + j] = T(0);
      }
      return;
    }
    const T target = row[label];
    double mx = static_cast<double>(row[0]);
    int above = 0;
    for (int j = 0; j < k; ++j) {
      const double v = static_cast<double>(row[j]);
      mx = v > mx ? v : mx;
      above += row[j] > target ? 1 : 0;
    }
    double sum = 0;
    for (int j = 0; j < k; ++j) sum += std::exp(static_cast<double>(row[j]) - mx);
    loss[s] = std::log(sum) - (static_cast<double>(target) - mx);
    top1[s] = above < 1 ? 1 : 0;
    top5[s] = above < 5 ? 1 : 0;
    if (dlogits == nullptr && probs == nullptr) return;
    const double inv_sum = 1.0 / sum;
    for (int j = 0; j < k; ++j) {
      const double p = std::exp(static_cast<double>(row[j]) - mx) * inv_sum;
      if (probs != nullptr) probs[s * k + j] = static_cast<T>(p);
      if (dlogits != nullptr)
        dlogits[s * k + j] = static_cast<T>((p - (j == label ? 1.0 : 0.0)) * inv_n);
    }
  }
};

}  // namespace alexnet::kernels

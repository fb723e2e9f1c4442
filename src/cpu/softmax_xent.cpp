// CPU softmax cross-entropy: the kernels/softmax_xent.cuh functor per sample, then the sums.
#include <string>
#include <vector>

#include "alexnet/cpu_ops.h"
#include "alexnet/error.h"
#include "kernels/for_each.h"
#include "kernels/softmax_xent.cuh"

namespace alexnet::cpu {

template <class T>
XentResult softmax_xent(int n, int k, const T* logits, const int32_t* labels, T* dlogits, T* probs,
                        int64_t mean_over) {
  for (int s = 0; s < n; ++s)
    if (labels[s] < 0 || labels[s] >= k)
      throw Error("softmax_xent: label " + std::to_string(labels[s]) + " of sample " +
                  std::to_string(s) + " is outside [0, " + std::to_string(k) + ")");
  const auto count = static_cast<size_t>(n > 0 ? n : 0);
  std::vector<double> loss(count);
  std::vector<int32_t> top1(count), top5(count);
  const kernels::SoftmaxXent<T> f{.k = k,
                                  .inv_n = kernels::inverse_batch(n, mean_over),
                                  .logits = logits,
                                  .labels = labels,
                                  .dlogits = dlogits,
                                  .probs = probs,
                                  .loss = loss.data(),
                                  .top1 = top1.data(),
                                  .top5 = top5.data()};
  kernels::for_each_index(n, f);
  XentResult r;
  for (size_t s = 0; s < count; ++s) {
    r.loss_sum += loss[s];
    r.top1 += top1[s];
    r.top5 += top5[s];
  }
  return r;
}

template XentResult softmax_xent<float>(int, int, const float*, const int32_t*, float*, float*,
                                        int64_t);
template XentResult softmax_xent<double>(int, int, const double*, const int32_t*, double*, double*,
                                         int64_t);

}  // namespace alexnet::cpu

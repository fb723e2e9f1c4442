// Where the towers talk (DESIGN §2, "The towers and the exchange"): a layer that reads "both"
// halves needs every tower's activations (forward all-gather), and its input gradients are
// computed by every tower and summed on the owner (backward reduce-scatter).
// NCCL implements this across GPUs; towers that share a device (or the CPU) use the local one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "alexnet/tensor.h"

namespace alexnet {

class Exchange {
 public:
  virtual ~Exchange() = default;
  // own[r] is tower r's tensor; returns, for each tower t, its view of every tower's tensor
  // (result[t][r]). `count` elements of each are valid.
  virtual std::vector<std::vector<Tensor>> all_gather(const char* layer,
                                                      const std::vector<Tensor>& own,
                                                      int64_t count) = 0;
  // partial[t][r] is tower t's contribution to the gradient of tower r's tensor;
  // out[r] = sum over t of partial[t][r] (first `count` elements), summed in tower order.
  virtual void reduce_scatter(const char* layer, const std::vector<std::vector<Tensor>>& partial,
                              std::vector<Tensor>& out, int64_t count) = 0;
};

// Towers that share memory: the gather hands out the owners' tensors (no copy) and the
// scatter is a sum in tower order.
std::unique_ptr<Exchange> make_local_exchange();

}  // namespace alexnet

// Where the towers talk (README, "The network and the math"): a layer that reads "both"
// halves needs every tower's activations (forward all-gather), and its input gradients are
// computed by every tower and summed on the owner (backward reduce-scatter). The batch goes from
// tower 0's device to every tower, and the loss gradient back (broadcast).
// NCCL implements this across GPUs; towers that share a device use the local one, and towers on
// separate CPU devices (cpu:0, cpu:1) a copying one with the same sums in the same order.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "alexnet/tensor.h"

namespace alexnet {

// Time one exchange point took on tower 0's GPU, and how much of it ran while that tower computed
// (the work queued between the exchange and the wait for it), summed over `calls`.
struct ExchangeTiming {
  std::string op, layer;  // "reduce-scatter", "fc7"
  int calls = 0;
  double ms = 0, overlap_ms = 0;
};

class Exchange {
 public:
  virtual ~Exchange() = default;
  // own[r] is tower r's tensor (on tower r's device); returns, for each tower t, its view of
  // every tower's tensor (result[t][r], on tower t's device). `count` elements of each are
  // valid. The views stay valid until the next call with the same `layer`.
  virtual std::vector<std::vector<Tensor>> all_gather(const char* layer,
                                                      const std::vector<Tensor>& own,
                                                      int64_t count) = 0;
  // partial[t][r] is tower t's contribution (on tower t's device) to the gradient of tower r's
  // tensor; out[r] (on tower r's device) = sum over t of partial[t][r] (first `count`
  // elements), summed in tower order.
  virtual void reduce_scatter(const char* layer, const std::vector<std::vector<Tensor>>& partial,
                              std::vector<Tensor>& out, int64_t count) = 0;
  // `source` is on tower 0's device; returns each tower's view of it (result[t] on tower t's
  // device), `count` elements valid, until the next call with the same `layer`.
  virtual std::vector<Tensor> broadcast(const char* layer, const Tensor& source, int64_t count) = 0;
  // Work queued after this on the towers' queues waits for the last exchange of `layer`. Its
  // results may be used only after this call, and its inputs must stay unchanged until then;
  // in between, the towers may queue work that does not touch either (the weight gradients
  // while the input gradients are exchanged). Nothing for the exchanges that finish at once.
  virtual void wait(const char* layer) { (void)layer; }
  // Throws alexnet::Error when the exchange has failed (NCCL: an error or a timeout ended it),
  // so that a step never goes on with what an aborted collective left behind.
  virtual void check() {}
  // Timing (NCCL only; alexnet-bench): from set_timing(true) on, every collective is timed with
  // CUDA events; timings() waits for them and returns the sums per exchange point.
  virtual void set_timing(bool on) { (void)on; }
  virtual std::vector<ExchangeTiming> timings() { return {}; }
};

// Every tower on one device (or the one CPU): the gather and the broadcast hand out the
// tensors themselves (no copy) and the scatter is a sum in tower order.
std::unique_ptr<Exchange> make_local_exchange(int towers);

// Towers on separate CPU devices (cpu:0, cpu:1): see make_exchange.
std::unique_ptr<Exchange> make_copying_exchange(const std::vector<Device>& devices);

// Towers on the given devices (one per tower): the local exchange when they are all one device;
// a copying exchange when they are separate CPU devices (cpu:0, cpu:1): copies into buffers of
// the receiving device, then the same sums in the same order, so the results are bit-identical
// to one device; the NCCL exchange (src/comm/nccl_exchange.h) for different GPUs, which ends the
// run when a collective fails or takes longer than `timeout_s`. Mixing CPU and GPU towers is
// refused (alexnet::Error).
std::unique_ptr<Exchange> make_exchange(const std::vector<Device>& devices, double timeout_s = 300);

}  // namespace alexnet

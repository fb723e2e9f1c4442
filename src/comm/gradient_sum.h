// The sum of the gradients over the ranks of a data-parallel run (alexnet/dist.h). Backward hands
// it each layer as soon as that layer's weight gradients are computed (fc8 first), so that on
// GPUs the sums of the later layers run while backward computes the earlier ones.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace alexnet {

class Net;

// The gradient sum of one step, in milliseconds: all of it, and the part after backward had
// ended (what the step waited for; on the CPU, where the sum follows backward, all of it).
struct GradientSumTiming {
  double ms = 0, exposed_ms = 0;
};

class GradientSum {
 public:
  virtual ~GradientSum() = default;
  // The gradients of `layer`'s parameters (every tower's: "conv3" for conv3.weight and
  // conv3.bias) are computed, or queued to be on a GPU.
  virtual void layer_ready(const std::string& layer) = 0;
  // After backward: every Param::grad is the sum over the ranks (on a GPU, for the work queued
  // after this call). Throws alexnet::Error when a sum failed.
  virtual void finish() = 0;
  // The last finished step's timing that is known: on a GPU the step before the last, so that
  // reading it never waits.
  virtual GradientSumTiming last_timing() const = 0;
  // The bytes each rank's gradients hold (what one step's sum reduces).
  virtual int64_t bytes() const = 0;
};

// With many ranks, before the process's first NCCL call (before the Net and its exchange are
// made): NCCL's settings for sums across ranks, unless the user set them.
void prepare_gradient_sum();

// The gradient sum for `net` over the ranks of dist::world(), or null with one rank. CPU nets
// sum over MPI after backward, in rank order (dist::allreduce_sum); GPU nets over NCCL, one
// communicator per GPU of the replica across every rank, issued layer by layer on a stream of
// its own, followed by the watchdog: a sum not done after `timeout_s` (dist.timeout_s) ends the
// run with a line naming it. Collective: every rank calls it.
std::unique_ptr<GradientSum> make_gradient_sum(Net& net, double timeout_s);

}  // namespace alexnet

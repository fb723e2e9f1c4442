// The backend-neutral ops the model calls. Each takes Tensors (which carry element type and
// device) and dispatches to the CPU backend (include/alexnet/cpu_ops.h) or, for tensors on a
// GPU, to the CUDA backend. The geometry structs say how much of each tensor is used, so a
// tensor allocated for a batch of 128 can run a final batch of 37.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "alexnet/op_params.h"
#include "alexnet/tensor.h"

namespace alexnet::ops {

void conv_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor* bias,
                  Tensor& y, double beta);
// y = act(beta*y + conv(x, w) + bias), the convolution with its epilogue. On a GPU the bias and
// the activation are one pass over y; on the CPU it is conv_forward, then activation_forward.
void conv_forward_activation(Activation a, const ConvGeom& g, const Tensor& x, const Tensor& w,
                             const Tensor* bias, Tensor& y, double beta);
void conv_backward_data(const ConvGeom& g, const Tensor& dy, const Tensor& w, Tensor& dx,
                        double beta);
void conv_backward_filter(const ConvGeom& g, const Tensor& x, const Tensor& dy, Tensor& dw,
                          Tensor* dbias, double beta);

// x (n, in), w (out, in), y (n, out)
void fc_forward(int n, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                double beta);
void fc_backward_data(int n, const Tensor& dy, const Tensor& w, Tensor& dx, double beta);
void fc_backward_weights(int n, const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db,
                         double beta);

void activation_forward(Activation a, int64_t count, Tensor& x);                     // in place
void activation_backward(Activation a, int64_t count, const Tensor& y, Tensor& dy);  // in place

void lrn_forward(const LrnParams& p, int n, int c, int h, int w, const Tensor& x, Tensor& y,
                 Tensor& scale);
void lrn_backward(const LrnParams& p, int n, int c, int h, int w, const Tensor& x, const Tensor& y,
                  const Tensor& scale, const Tensor& dy, Tensor& dx);

// argmax: an I32 tensor shaped like y, or null at inference
void maxpool_forward(const PoolGeom& g, const Tensor& x, Tensor& y, Tensor* argmax);
void maxpool_backward(const PoolGeom& g, const Tensor& argmax, const Tensor& dy, Tensor& dx);

void dropout_forward(const DropoutParams& d, int64_t count, const Tensor& x, Tensor& y);
void dropout_backward(const DropoutParams& d, int64_t count, Tensor& dy);  // in place

// logits (n, k); dlogits and probs may be null
// mean_over: dlogits is the gradient of the loss summed over the n samples divided by mean_over
// (0: by n, the batch mean); a rank's share of a larger batch divides by the larger batch.
XentResult softmax_xent(int n, const Tensor& logits, const int32_t* labels, Tensor* dlogits,
                        Tensor* probs, int64_t mean_over = 0);

void sgd_update(double lr, double momentum, double decay, Tensor& w, Tensor& v, const Tensor& grad);
// One update of many tensors, all on one device (one kernel launch on a GPU), each with its own
// weight decay; the same bits as one sgd_update per tensor. A tensor with lars_eta > 0 steps
// with lr times its LARS trust ratio (kernels/sgd.cuh), from the norms of its value and grad.
struct SgdTensor {
  Tensor* w;
  Tensor* v;
  const Tensor* grad;
  double decay;
  double lars_eta = 0;
};
void sgd_update_all(double lr, double momentum, const std::vector<SgdTensor>& tensors);

// Column blocks of row-major matrices: dst[:, col0 : col0+cols] = src (n, cols), and back.
// The logits of the towers meet here before the softmax.
void copy_into_columns(int n, const Tensor& src, Tensor& dst, int64_t col0);
void copy_from_columns(int n, const Tensor& src, int64_t col0, Tensor& dst);

// out = sum of the inputs, elementwise over `count` elements, in the order given.
void sum_into(int64_t count, const Tensor* const* inputs, int num_inputs, Tensor& out);

// ---------------------------------------------------------------- GPU settings
// How the CUDA backend picks convolution algorithms and its math (the config's cuda section).
// Applies to the ops on `device` from the next call on; the algorithms chosen so far are
// dropped when anything changes. Does nothing for the CPU.
struct GpuOptions {
  size_t workspace_limit = size_t{256} << 20;  // bytes one convolution may use as scratch
  bool benchmark = false;                      // time the algorithms (cudnnFind) instead of ranking
  bool deterministic = true;                   // bit-reproducible algorithms only
  bool tf32 = false;                           // TF32 tensor cores for conv and fc
  bool operator==(const GpuOptions&) const = default;
};
void set_gpu_options(Device device, const GpuOptions& options);
// Empty when GPU `index` is usable (a CUDA build and cuda:index present), else why not, in a
// few words for a user: "this build has no CUDA support", "no CUDA-capable device is detected".
std::string gpu_unavailable_reason(int index);
// How many GPUs this process sees (0 without CUDA, a driver or a GPU).
int gpu_count();
// GPU `index`'s PCI bus id ("0000:3b:00.0"), the same in every process of its host.
std::string gpu_bus_id(int index);

// ---------------------------------------------------------------- queues
// On a GPU each tower's work goes to a queue of its own (a CUDA stream), so that the two towers
// of one GPU run at the same time. Queue 0 is the device's main queue (the legacy default
// stream, where Tensor copies and the input augmentation also run): an op queued there waits
// for everything queued before it on every queue of the device, and anything queued after it
// waits for it. Tower queues (1, 2, ...) do not wait for each other: a tower that reads another
// tower's output must say so with queue_wait. On the CPU ops run at once, in call order, and
// these do nothing.

// Until the scope ends, ops from this thread on tensors of `device` go to `queue`.
class QueueScope {
 public:
  QueueScope(Device device, int queue);
  ~QueueScope();
  QueueScope(const QueueScope&) = delete;
  QueueScope& operator=(const QueueScope&) = delete;

 private:
  Device device_;
  int previous_ = 0;
};
// Work queued on `waiter` from now on waits for all work queued so far on `producer`.
void queue_wait(Device device, int waiter, int producer);
// Returns when every op queued on `device` has finished.
void synchronize(Device device);

}  // namespace alexnet::ops

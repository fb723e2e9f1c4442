// The two-tower AlexNet of the paper (README, "The network and the math"), on the backend of its
// tensors.
//
//   conv1 → act → LRN → pool      (each tower sees the whole image)
//   conv2 → act → LRN → pool      (own half)
//   conv3 → act                   (both halves: all-gather before, reduce-scatter after)
//   conv4 → act                   (own)
//   conv5 → act → pool            (own)
//   fc6 → act → dropout           (both)
//   fc7 → act → dropout           (both)
//   fc8 → logits, gathered        (both) → softmax cross-entropy over all classes
//
// Weights are stored per tower as slices of the whole PyTorch-layout tensors of a checkpoint
// (README, "Checkpoints"); a
// layer reading both halves holds one slice per input tower and accumulates over them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "alexnet/config.h"
#include "alexnet/ops.h"
#include "alexnet/tensor.h"

namespace alexnet {

class Exchange;  // src/comm/exchange.h

// One tower's slice of a whole parameter tensor. The whole tensor is viewed as a matrix
// (whole_shape[0] rows, the rest flattened) and the slice is the block
// [row0, row0 + rows) x [col0, col0 + cols) of it, laid out row-major in `value`.
struct Param {
  std::string name;  // checkpoint name of the whole tensor: "conv3.weight"
  std::vector<int64_t> whole_shape;
  int tower = 0;
  int64_t row0 = 0, rows = 0, col0 = 0, cols = 0;
  bool is_bias = false;
  Tensor value, grad, momentum;
};

// What alexnet-train prints at start and alexnet-bench measures.
struct LayerInfo {
  std::string name;
  std::string output;        // "96x55x55" (whole net)
  int64_t params = 0;        // whole net
  double forward_flops = 0;  // per image, whole net (multiply-add = 2)
};

// What one training step of a full batch sends between the towers at one exchange point: the
// bytes the towers receive from each other (what NCCL moves between two GPUs; nothing moves when
// the towers share a device).
struct ExchangePoint {
  std::string name;     // "images", "conv3", "fc6", "fc7", "fc8", "logits"
  std::string forward;  // what the forward pass sends: "all-gather of pool2's output", ...
  int64_t forward_bytes = 0;
  std::string backward;  // and the backward pass
  int64_t backward_bytes = 0;
};

// Seconds spent per layer (conv1, lrn1, pool1, ..., fc8, loss) in the order first timed,
// filled when Net::profile is set.
struct LayerTime {
  std::string layer;
  double forward = 0, backward = 0;
};
struct Profile {
  std::vector<LayerTime> layers;
  LayerTime& operator[](const std::string& layer);
};

// A rank's share of a global batch in data-parallel training: its n samples are positions
// [first, first + n) of a batch of `global` samples. Their dropout masks are the ones a single
// process draws for those positions, and the loss gradient is that of the global batch's mean,
// so the ranks' gradients sum to the single process's. The default is a whole batch.
struct BatchSlice {
  int64_t first = 0;
  int64_t global = 0;  // 0: the batch is whole
};

class Net {
 public:
  // Every tensor of the net (parameters, gradients, momentum, activations, logits) lives on
  // `device`, both towers there. F64 exists on the CPU only. Throws alexnet::Error naming the
  // config key when the shapes cannot work, and when the device cannot hold the net.
  // A GPU's settings (config section cuda) belong to the device, not the net: configure_devices.
  Net(const Config& config, int batch_capacity, DType dtype = DType::f32, Device device = {});
  // Tower t on devices[t] (one per tower: model.towers of them); the loss, logits and probs on
  // devices[0]. Towers on different devices see each other only through `exchange`, made for
  // these devices by the caller (make_exchange, src/comm/exchange.h): on the CPU, cpu:0 and
  // cpu:1 hold separate memory and no op mixes them.
  Net(const Config& config, int batch_capacity, DType dtype, std::vector<Device> devices,
      std::unique_ptr<Exchange> exchange);
  ~Net();
  Net(const Net&) = delete;
  Net& operator=(const Net&) = delete;

  // Paper initialisation (or He's), from the seed alone: the same on any placement.
  void init(uint64_t seed);

  // images (n, 3, S, S) ready for the network (mean subtracted, scaled), n <= capacity, on any
  // device: a batch elsewhere is copied to tower 0's device first, and the exchange gives it
  // to the other towers. labels (n) are host memory.
  // Training applies dropout (keyed by seed and step) and keeps what backward needs,
  // including a handle to `images` when they are on the net's device: leave them unchanged
  // until backward().
  // `slice`: the batch is a share of a larger one (data-parallel training, one share per rank).
  XentResult forward(const Tensor& images, const int32_t* labels, int n, bool train, uint64_t seed,
                     uint64_t step, BatchSlice slice = {});
  // The gradients of the batch-mean loss of the last training forward into every Param::grad.
  void backward();

  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  // Names and shapes of the whole tensors, in checkpoint order.
  std::vector<std::pair<std::string, std::vector<int64_t>>> whole_tensors() const;
  // Assemble / distribute a whole tensor from / to the towers' slices (f32 or f64 data as
  // the net's dtype) in host memory, copying from / to the net's device.
  // `momentum` picks Param::momentum instead of Param::value.
  std::vector<std::byte> gather_whole(const std::string& name, bool momentum) const;
  void scatter_whole(const std::string& name, bool momentum, const void* data);

  // On the net's device (copy with .to(Device{}) to read them on the host).
  const Tensor& logits() const { return logits_; }  // (capacity, classes) of the last forward
  const Tensor& probs() const { return probs_; }    // its softmax, after an inference forward
  std::vector<LayerInfo> layer_table() const;
  std::vector<ExchangePoint> exchange_table() const;
  Exchange& exchange() { return *exchange_; }
  int towers() const { return towers_; }
  int batch_capacity() const { return capacity_; }
  int num_classes() const { return classes_; }
  int input_size() const { return input_size_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }  // tower 0's: where the batch and the loss are
  const std::vector<Device>& devices() const { return devices_; }  // one per tower

  Profile* profile = nullptr;
  // Called by backward() with a layer's name ("fc8", then "fc7", ...) once its weight gradients
  // are computed (on a GPU: queued): data-parallel training starts summing them over the ranks
  // there (src/comm/gradient_sum.h) while backward goes on.
  std::function<void(const std::string& layer)> on_weight_gradients;

 private:
  struct Pass;   // what one forward or backward pass of the stages shares
  struct Stage;  // one layer as every tower runs it: conv1, lrn1, ..., fc8
  void build(const Config& c);
  void wait_for_other_towers();
  // Every tower's view of every tower's `own` tensor, exchanged at `point`.
  std::vector<std::vector<Tensor>> gather(const char* point, const std::vector<Tensor>& own,
                                          int64_t count);
  // op(t) for each tower t on its queue, timed as the stage's pass.
  void run_towers(const Stage& s, bool backward, const std::function<void(int)>& op);
  Device tower_device(int t) const { return devices_[static_cast<size_t>(t)]; }
  Param& add_param(const std::string& name, std::vector<int64_t> whole_shape,
                   std::vector<int64_t> slice_shape, int tower, int64_t row0, int64_t col0,
                   bool is_bias);

  Config config_;
  int towers_ = 2, capacity_ = 0, classes_ = 0, input_size_ = 0;
  DType dtype_;
  std::vector<Device> devices_;  // per tower
  Device device_;                // tower 0's
  bool single_device_ = true;    // every tower on device_
  Activation activation_ = Activation::relu;
  std::vector<Param> params_;
  std::vector<Stage> stages_;  // in forward order
  std::unique_ptr<Exchange> exchange_;
  Tensor logits_, dlogits_, probs_;
  int last_n_ = 0;
  uint64_t last_seed_ = 0, last_step_ = 0;
  BatchSlice last_slice_;
  bool have_training_forward_ = false;
};

}  // namespace alexnet

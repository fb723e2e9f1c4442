// The exchanges of towers that share an address space: on one device (handles, no copies), and
// on separate CPU devices (copies into the receiver's buffers).
#include <string>
#include <vector>

#include "alexnet/error.h"
#include "alexnet/ops.h"
#include "src/comm/exchange.h"
#include "src/comm/receive_buffers.h"

namespace alexnet {
namespace {

// out[r] = inputs[r][0] + inputs[r][1] + ... (tower order); every input on out[r]'s device.
void sum_in_tower_order(std::vector<Tensor>& out, int64_t count,
                        const std::vector<std::vector<const Tensor*>>& inputs) {
  for (size_t r = 0; r < out.size(); ++r)
    ops::sum_into(count, inputs[r].data(), static_cast<int>(inputs[r].size()), out[r]);
}

class LocalExchange final : public Exchange {
 public:
  explicit LocalExchange(int towers) : towers_(static_cast<size_t>(towers)) {}

  std::vector<std::vector<Tensor>> all_gather(const char*, const std::vector<Tensor>& own,
                                              int64_t) override {
    return std::vector<std::vector<Tensor>>(own.size(), own);
  }

  void reduce_scatter(const char*, const std::vector<std::vector<Tensor>>& partial,
                      std::vector<Tensor>& out, int64_t count) override {
    std::vector<std::vector<const Tensor*>> inputs(out.size());
    for (size_t r = 0; r < out.size(); ++r)
      for (size_t t = 0; t < partial.size(); ++t) inputs[r].push_back(&partial[t][r]);
    sum_in_tower_order(out, count, inputs);
  }

  std::vector<Tensor> broadcast(const char*, const Tensor& source, int64_t) override {
    return std::vector<Tensor>(towers_, source);
  }

 private:
  size_t towers_;
};

// Towers on separate CPU devices: what a tower receives is copied into a buffer on its own
// device, so no op ever sees two devices, exactly as with GPUs; the sums are the local ones.
class CopyingExchange final : public Exchange {
 public:
  explicit CopyingExchange(std::vector<Device> devices) : devices_(std::move(devices)) {}

  std::vector<std::vector<Tensor>> all_gather(const char* layer, const std::vector<Tensor>& own,
                                              int64_t count) override {
    const size_t towers = own.size();
    std::vector<std::vector<Tensor>> out(towers, std::vector<Tensor>(towers));
    for (size_t t = 0; t < towers; ++t)
      for (size_t r = 0; r < towers; ++r)
        out[t][r] = received("gather", layer, t, r, own[r], count);
    return out;
  }

  void reduce_scatter(const char* layer, const std::vector<std::vector<Tensor>>& partial,
                      std::vector<Tensor>& out, int64_t count) override {
    std::vector<std::vector<Tensor>> moved(out.size());
    std::vector<std::vector<const Tensor*>> inputs(out.size());
    for (size_t r = 0; r < out.size(); ++r) {
      for (size_t t = 0; t < partial.size(); ++t)
        moved[r].push_back(received("scatter", layer, r, t, partial[t][r], count));
      for (const Tensor& m : moved[r]) inputs[r].push_back(&m);
    }
    sum_in_tower_order(out, count, inputs);
  }

  std::vector<Tensor> broadcast(const char* layer, const Tensor& source, int64_t count) override {
    std::vector<Tensor> out;
    for (size_t t = 0; t < devices_.size(); ++t)
      out.push_back(received("broadcast", layer, t, 0, source, count));
    return out;
  }

 private:
  // `tensor` as tower `to` sees it: itself when it is on that tower's device already, else the
  // first `count` elements copied into this exchange's buffer for (what, layer, to, from).
  Tensor received(const char* what, const char* layer, size_t to, size_t from, const Tensor& tensor,
                  int64_t count) {
    const Device device = devices_[to];
    if (tensor.device() == device) return tensor;
    Tensor& buffer = buffers_.get(what, layer, to, from, tensor, device);
    buffer.copy_from(tensor, count);
    return buffer;
  }

  std::vector<Device> devices_;
  ReceiveBuffers buffers_;
};

}  // namespace

std::unique_ptr<Exchange> make_local_exchange(int towers) {
  return std::make_unique<LocalExchange>(towers);
}

std::unique_ptr<Exchange> make_copying_exchange(const std::vector<Device>& devices) {
  return std::make_unique<CopyingExchange>(devices);
}

}  // namespace alexnet

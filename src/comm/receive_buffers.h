// What an exchange keeps for towers on other devices: one receive buffer per (operation, layer,
// receiving tower, sending tower), made on first use on the receiver's device and shaped like
// what it receives. Shared by the copying exchange and the NCCL one.
#pragma once

#include <map>
#include <string>
#include <tuple>

#include "alexnet/tensor.h"

namespace alexnet {

class ReceiveBuffers {
 public:
  Tensor& get(const char* op, const char* layer, size_t to, size_t from, const Tensor& like,
              Device device) {
    Tensor& b = buffers_[{op, layer, to, from}];
    if (!b.defined() || b.shape() != like.shape() || b.dtype() != like.dtype())
      b = Tensor(like.shape(), like.dtype(), device, like.layout());
    return b;
  }

 private:
  std::map<std::tuple<std::string, std::string, size_t, size_t>, Tensor> buffers_;
};

}  // namespace alexnet

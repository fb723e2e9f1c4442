// The exchange of towers on different GPUs of one process (README, "Two GPUs"): NCCL collectives,
// one communicator per GPU made together (ncclCommInitAll), every collective issued for all ranks
// inside one ncclGroupStart/End.
// Plain C++ (no CUDA header), so src/model can make one; defined only in a CUDA build.
#pragma once

#include <memory>
#include <vector>

#include "src/comm/exchange.h"

namespace alexnet::gpu {

// devices: one per tower, all GPUs, all different (NCCL refuses two ranks on one GPU).
// A collective that reports an error, or is not done `timeout_s` seconds after it was queued,
// aborts the communicators; the message names the collective, the layer and the devices, goes
// to stderr at once, and every later exchange call throws it (alexnet::Error).
std::unique_ptr<Exchange> make_nccl_exchange(const std::vector<Device>& devices, double timeout_s);

}  // namespace alexnet::gpu

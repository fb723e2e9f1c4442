// make_exchange: the exchange for a placement of the towers (src/comm/exchange.h). The trainer and
// the benchmark call it and hand the result to Net, so the model never sees NCCL.
#include <string>
#include <vector>

#include "alexnet/error.h"
#include "src/comm/exchange.h"
#ifdef ALEXNET_HAVE_CUDA
#include "src/comm/nccl_exchange.h"
#endif

namespace alexnet {

std::unique_ptr<Exchange> make_exchange(const std::vector<Device>& devices, double timeout_s) {
  bool one_device = true, all_cpu = true, all_gpu = true;
  for (const Device& d : devices) {
    one_device = one_device && d == devices.front();
    all_cpu = all_cpu && d.is_cpu();
    all_gpu = all_gpu && !d.is_cpu();
  }
  if (one_device) return make_local_exchange(static_cast<int>(devices.size()));
  if (all_cpu) return make_copying_exchange(devices);
  std::string list;
  for (const Device& d : devices) list += (list.empty() ? "" : ", ") + d.str();
#ifdef ALEXNET_HAVE_CUDA
  if (all_gpu) return gpu::make_nccl_exchange(devices, timeout_s);
#else
  (void)timeout_s;
#endif
  throw Error("towers on [" + list + "]: " +
              (all_gpu ? std::string("towers on different GPUs need a build with CUDA and NCCL")
                       : std::string("a tower on the CPU cannot talk to one on a GPU")) +
              "; put both towers on one device");
}

}  // namespace alexnet

// Which device a run uses: --device and model.devices resolved against what this build and
// this machine have (src/cuda/device_memory.h asks the CUDA runtime).
#include <set>
#include <string>

#include "alexnet/error.h"
#include "alexnet/train.h"
#ifdef ALEXNET_HAVE_CUDA
#include "src/cuda/device_memory.h"
#endif

namespace alexnet {

std::string cuda_unavailable_reason(int index) {
#ifdef ALEXNET_HAVE_CUDA
  return gpu::unavailable_reason(index);
#else
  (void)index;
  return "this build has no CUDA support (configure with -DALEXNET_CUDA=ON)";
#endif
}

Device resolve_device(const std::string& device, const std::string& option) {
  if (device == "auto")
    return cuda_unavailable_reason(0).empty() ? Device{Device::Kind::cuda, 0} : Device{};
  Device d;
  try {
    d = Device::parse(device);
  } catch (const Error& e) {
    throw Error(option + " = '" + device + "': " + e.what());
  }
  if (d.is_cpu()) return Device{};  // one CPU: cpu:N only names it
  if (const std::string why = cuda_unavailable_reason(d.index); !why.empty())
    throw Error(option + " = '" + device + "': no usable CUDA device: " + why);
  return d;
}

Device select_device(const std::string& device_option, const Config& config) {
  if (device_option != "auto" || config.model.devices.empty())
    return resolve_device(device_option, "--device");  // the command line wins
  std::set<std::string> named;                         // the distinct devices the list names
  Device device;
  for (const auto& d : config.model.devices) {
    device = resolve_device(d, "model.devices");
    named.insert(device.str());
  }
  if (named.size() > 1) {
    std::string list;
    for (const auto& d : config.model.devices) list += (list.empty() ? "" : ", ") + d;
    throw Error("model.devices = [" + list +
                "]: towers on different GPUs are not supported yet; name one device for both "
                "towers (or use --device)");
  }
  return device;
}

void check_device(const std::string& device, const std::string& option) {
  (void)resolve_device(device, option);
}

}  // namespace alexnet

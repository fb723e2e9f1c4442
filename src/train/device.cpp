// Which device a run uses: --device and model.devices resolved against what this build and
// this machine have. The one place outside src/cuda that asks the CUDA runtime anything.
#include <set>
#include <string>

#include "alexnet/error.h"
#include "alexnet/train.h"
#ifdef ALEXNET_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace alexnet {

std::string cuda_unavailable_reason(int index) {
#ifdef ALEXNET_HAVE_CUDA
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();  // not sticky, but leave no error behind for the next check
    if (status == cudaErrorInsufficientDriver)  // also what a machine without a driver says
      return std::string("no NVIDIA driver, or one older than this build's CUDA runtime (") +
             cudaGetErrorString(status) + ")";
    return cudaGetErrorString(status);
  }
  if (count == 0) return "no CUDA device present";
  if (index < 0 || index >= count)
    return "this machine has " + std::to_string(count) + " CUDA device" + (count == 1 ? "" : "s") +
           " (cuda:0" + (count > 1 ? " to cuda:" + std::to_string(count - 1) : std::string()) + ")";
  return "";
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

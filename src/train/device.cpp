// Which device a run uses: --device and model.devices resolved against what this build and
// this machine have (ops::gpu_unavailable_reason asks the CUDA runtime), and the settings a GPU
// takes from the config.
#include <set>
#include <string>

#include <algorithm>

#include <fmt/format.h>

#include "alexnet/error.h"
#include "alexnet/ops.h"
#include "alexnet/train.h"

namespace alexnet {

std::string cuda_unavailable_reason(int index) {
  return ops::gpu_unavailable_reason(index);
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

std::vector<Device> select_placement(const std::string& device_option, const Config& config) {
  const auto towers = static_cast<size_t>(config.model.towers);
  const auto& list = config.model.devices;
  if (device_option != "auto" || list.empty())  // the command line wins
    return std::vector<Device>(towers, resolve_device(device_option, "--device"));
  // auto: two GPUs for two towers when two are usable (the paper's placement), else one device.
  if (list.size() == 1 && list[0] == "auto" && towers == 2 && cuda_unavailable_reason(0).empty() &&
      cuda_unavailable_reason(1).empty())
    return {Device{Device::Kind::cuda, 0}, Device{Device::Kind::cuda, 1}};
  if (list.size() == 1)
    return std::vector<Device>(towers, resolve_device(list[0], "model.devices"));
  if (list.size() != towers) {
    std::string names;
    for (const auto& d : list) names += (names.empty() ? "" : ", ") + d;
    throw Error("model.devices = [" + names + "]: " + std::to_string(list.size()) +
                " devices for " + std::to_string(towers) +
                " towers (model.towers); name one device for all towers, or one per tower");
  }
  std::vector<Device> placement;
  for (const auto& d : list) {
    const Device resolved = resolve_device(d, "model.devices");  // checks the spelling and GPU
    // cpu:N stays itself here: two CPU devices are two separate memories.
    placement.push_back(resolved.is_cpu() && d != "auto" ? Device::parse(d) : resolved);
  }
  return placement;
}

std::vector<Device> place_on_host_share(std::vector<Device> placement, bool automatic,
                                        const HostShare& share) {
  if (share.ranks == 1 || placement.front().is_cpu()) return placement;
  std::vector<int> gpus;  // the replica's, in tower order
  for (const Device& d : placement)
    if (std::find(gpus.begin(), gpus.end(), d.index) == gpus.end()) gpus.push_back(d.index);
  if (automatic && gpus.size() == 2 && share.gpus < 2 * share.ranks) {
    placement.assign(placement.size(), Device{Device::Kind::cuda, 0});  // one GPU per replica
    gpus = {0};
  }
  const auto k = static_cast<int>(gpus.size());
  for (Device& d : placement) {
    d.index += share.rank * k;
    if (d.index >= share.gpus)
      throw Error(fmt::format(
          "more ranks than GPUs on {}: {} ranks there with {} GPU{} each need {} GPUs, and it "
          "has {} (start fewer ranks per node, or put both towers on one GPU: --device cuda:0)",
          share.host, share.ranks, k, k == 1 ? "" : "s", share.ranks * k, share.gpus));
  }
  return placement;
}

void check_device(const std::string& device, const std::string& option) {
  (void)resolve_device(device, option);
}

void configure_devices(const std::vector<Device>& devices, const Config& config) {
  const auto& cu = config.cuda;
  const ops::GpuOptions options{static_cast<size_t>(cu.workspace_mb) << 20, cu.benchmark,
                                cu.deterministic, cu.tf32};
  for (const Device& d : devices) ops::set_gpu_options(d, options);  // the CPU has none
}

}  // namespace alexnet

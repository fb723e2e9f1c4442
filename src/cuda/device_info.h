// What alexnet-bench reports about a GPU, and how it times steps there.
// Plain C++ (no CUDA header), so the binaries can include it; defined only in a CUDA build.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace alexnet::gpu {

struct DeviceInfo {
  std::string name;  // "NVIDIA H200"
  int sm_major = 0, sm_minor = 0, multiprocessors = 0;
  double clock_ghz = 0;          // peak SM clock
  double fp32_peak_tflops = 0;   // multiprocessors x fp32 lanes x 2 (FMA) x clock; 0 if unknown
  size_t memory_bytes = 0;       // total
  std::string library_versions;  // "CUDA runtime 13.0, driver 13.0, cuDNN 9.19.0, ..."
};
DeviceInfo device_info(int device);

// Device memory in use on `device` (cudaMemGetInfo: total - free), by every process and library.
size_t memory_in_use(int device);

// CUDA events on the legacy default stream (the ops' queue 0, which waits for every queue): the
// time between two marks is the device time from the end of the work before the first to the end
// of the work before the second, gaps included (a training step waits once for its loss, so the
// gap while the host queues the backward pass counts, as it does in training). Marking adds no
// synchronisation of its own.
class StepTimer {
 public:
  explicit StepTimer(int device);
  ~StepTimer();
  StepTimer(const StepTimer&) = delete;
  StepTimer& operator=(const StepTimer&) = delete;

  void mark();  // records an event after everything queued so far
  // Milliseconds between consecutive marks (waits for the last one).
  std::vector<double> intervals_ms();

 private:
  int device_;
  std::vector<void*> events_;  // cudaEvent_t
};

}  // namespace alexnet::gpu

#include "src/cuda/device_info.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <nccl.h>

#include <string>

#include "alexnet/cuda_check.h"
#include "src/cuda/device_memory.h"

namespace alexnet::gpu {
namespace {

// FP32 lanes per multiprocessor, from the CUDA programming guide's arithmetic throughput table.
int fp32_lanes(int major, int minor) {
  if (major == 6 && minor == 0) return 64;
  if (major == 7 || (major == 8 && minor == 0)) return 64;  // Volta, Turing, A100
  if (major >= 5) return 128;  // Maxwell, Pascal (not GP100), GA10x, Ada, Hopper, Blackwell
  return 0;
}

std::string version3(int v, int major_div, int minor_div) {  // e.g. 13000 -> "13.0"
  return std::to_string(v / major_div) + "." + std::to_string(v % major_div / minor_div);
}

}  // namespace

DeviceInfo device_info(int device) {
  const CurrentDevice current(device);
  DeviceInfo info;
  cudaDeviceProp prop{};
  AX_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  info.name = prop.name;
  info.sm_major = prop.major;
  info.sm_minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.memory_bytes = prop.totalGlobalMem;
  int clock_khz = 0;
  AX_CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device));
  info.clock_ghz = clock_khz / 1e6;
  info.fp32_peak_tflops =
      info.multiprocessors * fp32_lanes(prop.major, prop.minor) * 2.0 * info.clock_ghz / 1e3;

  int runtime = 0, driver = 0, nccl = 0;
  AX_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  AX_CUDA_CHECK(cudaDriverGetVersion(&driver));
  AX_CUDA_CHECK(ncclGetVersion(&nccl));
  const size_t cudnn = cudnnGetVersion();  // 91900 for 9.19.0
  int cublas_major = 0, cublas_minor = 0, cublas_patch = 0;
  AX_CUDA_CHECK(cublasGetProperty(MAJOR_VERSION, &cublas_major));
  AX_CUDA_CHECK(cublasGetProperty(MINOR_VERSION, &cublas_minor));
  AX_CUDA_CHECK(cublasGetProperty(PATCH_LEVEL, &cublas_patch));
  info.library_versions = "CUDA runtime " + version3(runtime, 1000, 10) + ", driver " +
                          version3(driver, 1000, 10) + ", cuDNN " + std::to_string(cudnn / 10000) +
                          "." + std::to_string(cudnn / 100 % 100) + "." +
                          std::to_string(cudnn % 100) + ", cuBLAS " + std::to_string(cublas_major) +
                          "." + std::to_string(cublas_minor) + "." + std::to_string(cublas_patch) +
                          ", NCCL " + std::to_string(nccl / 10000) + "." +
                          std::to_string(nccl / 100 % 100) + "." + std::to_string(nccl % 100);
  return info;
}

size_t memory_in_use(int device) {
  const CurrentDevice current(device);
  size_t free_bytes = 0, total_bytes = 0;
  AX_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return total_bytes - free_bytes;
}

StepTimer::StepTimer(int device) : device_(device) {}

StepTimer::~StepTimer() {
  for (void* e : events_) (void)cudaEventDestroy(static_cast<cudaEvent_t>(e));
}

void StepTimer::mark() {
  const CurrentDevice current(device_);
  cudaEvent_t e = nullptr;
  AX_CUDA_CHECK(cudaEventCreate(&e));
  events_.push_back(e);
  AX_CUDA_CHECK(cudaEventRecord(e, nullptr));
}

std::vector<double> StepTimer::intervals_ms() {
  std::vector<double> out;
  if (events_.empty()) return out;
  const CurrentDevice current(device_);
  AX_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(events_.back())));
  for (size_t i = 1; i < events_.size(); ++i) {
    float ms = 0;
    AX_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(events_[i - 1]),
                                       static_cast<cudaEvent_t>(events_[i])));
    out.push_back(ms);
  }
  return out;
}

}  // namespace alexnet::gpu

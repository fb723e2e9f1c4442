#include "src/cuda/device_memory.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "alexnet/cuda_check.h"
#include "alexnet/error.h"

namespace alexnet::gpu {
namespace {

// device_malloc's bookkeeping: the size of every live allocation, and the totals per device.
struct Ledger {
  std::mutex mutex;
  std::unordered_map<void*, std::pair<int, size_t>> sizes;  // pointer -> (device, bytes)
  std::map<int, MemoryUse> use;
};
Ledger& ledger() {
  static auto* l = new Ledger;  // never destroyed: frees may run during static destruction
  return *l;
}

// Without a driver (or with an older one) cudaMalloc fails with a message about driver versions
// that does not tell a user their machine has no GPU; ask first and say so plainly.
void require_device(int device, const std::string& what) {
  if (const std::string why = unavailable_reason(device); !why.empty())
    throw Error(what + " on cuda:" + std::to_string(device) + ": no usable CUDA device (" + why +
                "); run on a machine with a GPU or use device cpu");
}

}  // namespace

CurrentDevice::CurrentDevice(int d) : device(d) {
  AX_CUDA_CHECK(cudaGetDevice(&previous));
  if (previous != device) AX_CUDA_CHECK(cudaSetDevice(device));
}

CurrentDevice::~CurrentDevice() {
  if (previous != device) (void)cudaSetDevice(previous);
}

QuietCurrentDevice::QuietCurrentDevice(int device) noexcept {
  if (cudaGetDevice(&previous) != cudaSuccess) previous = -1;
  (void)cudaSetDevice(device);
}

QuietCurrentDevice::~QuietCurrentDevice() {
  if (previous >= 0) (void)cudaSetDevice(previous);
}

std::string mib(size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

std::string unavailable_reason(int device) {
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
  if (device < 0 || device >= count)
    return "this machine has " + std::to_string(count) + " CUDA device" + (count == 1 ? "" : "s") +
           " (cuda:0" + (count > 1 ? " to cuda:" + std::to_string(count - 1) : std::string()) + ")";
  return "";
}

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

std::string pci_bus_id(int device) {
  char id[32] = {};
  AX_CUDA_CHECK(cudaDeviceGetPCIBusId(id, sizeof id, device));
  return id;
}

void* device_malloc(size_t bytes, int device, const std::string& what, const std::string& advice) {
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear it, or the next checked call would report it again
    size_t free_bytes = 0, total_bytes = 0;
    AX_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    throw Error("out of GPU memory on cuda:" + std::to_string(device) + " for " + what +
                ": asked for " + mib(bytes) + ", " + mib(free_bytes) + " free of " +
                mib(total_bytes) + "; " + advice);
  }
  AX_CUDA_CHECK(status);
  Ledger& l = ledger();
  const std::lock_guard lock(l.mutex);
  l.sizes[p] = {device, bytes};
  MemoryUse& u = l.use[device];
  u.current += bytes;
  u.peak = std::max(u.peak, u.current);
  return p;
}

MemoryUse memory_use(int device) {
  Ledger& l = ledger();
  const std::lock_guard lock(l.mutex);
  return l.use[device];
}

void reset_peak(int device) {
  Ledger& l = ledger();
  const std::lock_guard lock(l.mutex);
  MemoryUse& u = l.use[device];
  u.peak = u.current;
}

void* device_alloc_zeroed(size_t bytes, int device, const std::string& what) {
  require_device(device, what);
  const CurrentDevice current(device);
  void* p = device_malloc(bytes, device, what, "lower data.batch_size, or free the GPU");
  try {
    AX_CUDA_CHECK(cudaMemset(p, 0, bytes));
  } catch (...) {
    device_free(p, device);
    throw;
  }
  return p;
}

void device_free(void* p, int device) noexcept {
  if (p == nullptr) return;
  {
    Ledger& l = ledger();
    const std::lock_guard lock(l.mutex);
    if (const auto it = l.sizes.find(p); it != l.sizes.end()) {
      l.use[it->second.first].current -= it->second.second;
      l.sizes.erase(it);
    }
  }
  const QuietCurrentDevice current(device);
  (void)cudaFree(p);
}

void device_zero(void* p, size_t bytes, int device) {
  const CurrentDevice current(device);
  AX_CUDA_CHECK(cudaMemset(p, 0, bytes));
}

void copy_bytes(void* dst, const void* src, size_t bytes, int device) {
  const CurrentDevice current(device);
  // cudaMemcpyDefault: unified addressing tells host from device pointers (every 64-bit
  // platform CUDA supports has it), so one call serves every direction.
  AX_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
}

}  // namespace alexnet::gpu

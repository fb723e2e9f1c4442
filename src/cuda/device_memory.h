// Device memory for Tensor storage: allocation, zeroing, copies, and which device is current.
// Plain C++ (no CUDA header), so src/ops can call it; defined only in a CUDA build
// (ALEXNET_HAVE_CUDA), so callers outside src/cuda guard their calls with that macro.
// Every call here is ordered on the device's legacy default stream, so it runs after the
// ops already queued there (the ops use that stream for now).
#pragma once

#include <cstddef>
#include <string>

namespace alexnet::gpu {

// Makes `device` current for the scope and restores the previous one: the library keeps no
// device state of its own, so a caller's choice survives our calls.
struct CurrentDevice {
  explicit CurrentDevice(int device);
  ~CurrentDevice();
  CurrentDevice(const CurrentDevice&) = delete;
  CurrentDevice& operator=(const CurrentDevice&) = delete;
  int device = -1;
  int previous = -1;
};

// The same for destructors and other code that must not throw: errors are ignored (a sticky
// fault from earlier work is reported by the next checked call anyway).
struct QuietCurrentDevice {
  explicit QuietCurrentDevice(int device) noexcept;
  ~QuietCurrentDevice();
  QuietCurrentDevice(const QuietCurrentDevice&) = delete;
  QuietCurrentDevice& operator=(const QuietCurrentDevice&) = delete;
  int previous = -1;
};

// "12.3 MiB", for messages about memory.
std::string mib(size_t bytes);

// Empty when GPU `device` is usable, else why not, in words for a user (no driver, no device,
// no such index). The one place that asks the CUDA runtime whether there is a GPU.
std::string unavailable_reason(int device);
// How many GPUs this process sees (0 when none, or no driver).
int device_count();
// GPU `device`'s PCI bus id ("0000:3b:00.0"): the same GPU has the same one in every process on
// its host, whatever CUDA_VISIBLE_DEVICES each was given.
std::string pci_bus_id(int device);

// cudaMalloc of `bytes` on the current device (`device` names it in the message). Running out
// of memory is an alexnet::Error saying how much `what` asked for, how much is free of the
// total, and `advice` (what to lower).
void* device_malloc(size_t bytes, int device, const std::string& what, const std::string& advice);

// `bytes` of zeroed memory on `device` (bytes > 0). Throws alexnet::Error when there is no
// usable GPU with that index, and when the device is out of memory (saying how much `what`
// asked for, how much is free of the total, and what to lower).
void* device_alloc_zeroed(size_t bytes, int device, const std::string& what);
// Frees what device_malloc or device_alloc_zeroed returned (null: nothing). Errors are ignored:
// this runs in destructors, and a sticky fault from earlier work is reported by the next checked
// call anyway.
void device_free(void* p, int device) noexcept;

// What device_malloc holds on `device` now and at most so far, in bytes (this process; the
// libraries' own allocations, such as cuBLAS's workspace, are not counted). For alexnet-bench.
struct MemoryUse {
  size_t current = 0, peak = 0;
};
MemoryUse memory_use(int device);
// Starts a new peak from what is held now (alexnet-bench, before each measured net).
void reset_peak(int device);
void device_zero(void* p, size_t bytes, int device);
// Any direction (host<->device, device<->device, across devices); `device` is the CUDA side
// that issues it, on its legacy default stream. A copy to or from host memory has finished when
// this returns; a device-to-device copy is only queued (in stream order, like the ops).
void copy_bytes(void* dst, const void* src, size_t bytes, int device);

}  // namespace alexnet::gpu

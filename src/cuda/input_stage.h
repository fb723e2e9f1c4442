// The loader's staging on a GPU: the decoded uint8 batch sits in pinned host memory, is copied to
// the device on a stream of its own as soon as it is decoded (while the step before it still
// runs on the compute stream), and the fused augmentation kernel (kernels/augment.cuh) then makes
// the float input on the device's compute stream, the legacy default stream the ops use.
// Two loaders, each with its own stage, take turns (src/train/prefetch.h): double buffering.
//
// Ordering, all with events and no device-wide synchronisation:
//   host writes staged images  <- waits for the last upload from them to finish (wait_host_free)
//   upload (upload stream)     <- waits for the last augmentation that read the device copy
//   augmentation (compute)     <- waits for the upload
// Plain C++ (no CUDA header), so src/data can hold one; defined only in a CUDA build.
#pragma once

#include <cstddef>
#include <cstdint>

#include "alexnet/op_params.h"

namespace alexnet::gpu {

class InputStage {
 public:
  // Room for `capacity` images of `image_bytes` each (S*S*3), the per-pixel mean (3, S, S) copied
  // to the device once, on GPU `device`. Out of memory (host or device): alexnet::Error.
  InputStage(int device, int capacity, size_t image_bytes, const float* mean, size_t mean_count);
  ~InputStage();
  InputStage(const InputStage&) = delete;
  InputStage& operator=(const InputStage&) = delete;

  // The staged images, pinned host memory: (capacity, S, S, 3).
  uint8_t* host_images() { return host_images_; }
  // Returns when the last upload has finished reading host_images(), so they may be rewritten.
  void wait_host_free();
  // Queues the copy of images [0, n) to the device on the upload stream. Any host thread.
  void upload(int n);
  // On the compute stream: waits for the last upload, copies `samples` (n of them, host memory)
  // and runs the augmentation into `out` (device memory, (n, 3, crop, crop)). Returns at once.
  void augment(const AugmentGeom& g, const AugmentSample* samples, float* out);
  int device() const { return device_; }

 private:
  void release() noexcept;

  int device_ = 0, capacity_ = 0;
  size_t image_bytes_ = 0;
  uint8_t* host_images_ = nullptr;         // pinned
  AugmentSample* host_samples_ = nullptr;  // pinned, (capacity)
  uint8_t* device_images_ = nullptr;
  AugmentSample* device_samples_ = nullptr;
  float* device_mean_ = nullptr;
  // CUDA handles, kept opaque so this header needs no CUDA include.
  void* upload_stream_ = nullptr;   // cudaStream_t, non-blocking
  void* uploaded_ = nullptr;        // cudaEvent_t: recorded after each upload
  void* augmented_ = nullptr;       // cudaEvent_t: recorded after each augmentation
  void* samples_copied_ = nullptr;  // cudaEvent_t: host_samples_ may be rewritten after it
};

}  // namespace alexnet::gpu

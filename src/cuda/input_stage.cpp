#include "src/cuda/input_stage.h"

#include <cuda_runtime_api.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "alexnet/cuda_check.h"
#include "alexnet/error.h"
#include "kernels/augment.cuh"
#include "kernels/kernels.h"
#include "src/cuda/device_memory.h"

namespace alexnet::gpu {
namespace {

cudaStream_t stream_of(void* s) {
  return static_cast<cudaStream_t>(s);
}
cudaEvent_t event_of(void* e) {
  return static_cast<cudaEvent_t>(e);
}

void* pinned(size_t bytes, const std::string& what) {
  void* p = nullptr;
  const cudaError_t status = cudaHostAlloc(&p, bytes, cudaHostAllocDefault);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    throw Error("cannot pin " + std::to_string(bytes >> 20) + " MiB of host memory for " + what +
                "; lower data.batch_size");
  }
  AX_CUDA_CHECK(status);
  return p;
}

void* new_event() {
  cudaEvent_t e = nullptr;
  AX_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}

}  // namespace

InputStage::InputStage(int device, int capacity, size_t image_bytes, const float* mean,
                       size_t mean_count)
    : device_(device), capacity_(capacity), image_bytes_(image_bytes) {
  const CurrentDevice current(device);
  const size_t images = static_cast<size_t>(capacity) * image_bytes;
  const size_t samples = static_cast<size_t>(capacity) * sizeof(AugmentSample);
  try {
    host_images_ = static_cast<uint8_t*>(pinned(images, "the staged batch"));
    host_samples_ = static_cast<AugmentSample*>(pinned(samples, "the augmentation draws"));
    const std::string advice = "lower data.batch_size, or free the GPU";
    device_images_ =
        static_cast<uint8_t*>(device_malloc(images, device, "the uploaded batch", advice));
    device_samples_ = static_cast<AugmentSample*>(
        device_malloc(samples, device, "the augmentation draws", advice));
    device_mean_ = static_cast<float*>(
        device_malloc(mean_count * sizeof(float), device, "the mean image", advice));
    AX_CUDA_CHECK(
        cudaMemcpy(device_mean_, mean, mean_count * sizeof(float), cudaMemcpyHostToDevice));
    cudaStream_t s = nullptr;
    // Non-blocking: a copy on a blocking stream would wait for the legacy default stream, where
    // the step runs, and so never overlap it.
    AX_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    upload_stream_ = s;
    uploaded_ = new_event();
    augmented_ = new_event();
    samples_copied_ = new_event();
  } catch (...) {
    release();
    throw;
  }
}

InputStage::~InputStage() {
  release();
}

void InputStage::release() noexcept {
  const QuietCurrentDevice current(device_);
  // Work still queued reads these buffers: let it finish first (errors are reported elsewhere).
  if (upload_stream_ != nullptr) (void)cudaStreamSynchronize(stream_of(upload_stream_));
  for (void* e : {uploaded_, augmented_, samples_copied_})
    if (e != nullptr) {
      (void)cudaEventSynchronize(event_of(e));
      (void)cudaEventDestroy(event_of(e));
    }
  if (upload_stream_ != nullptr) (void)cudaStreamDestroy(stream_of(upload_stream_));
  device_free(device_images_, device_);
  device_free(device_samples_, device_);
  device_free(device_mean_, device_);
  (void)cudaFreeHost(host_images_);
  (void)cudaFreeHost(host_samples_);
  upload_stream_ = uploaded_ = augmented_ = samples_copied_ = nullptr;
  device_images_ = nullptr;
  device_samples_ = nullptr;
  device_mean_ = nullptr;
  host_images_ = nullptr;
  host_samples_ = nullptr;
}

void InputStage::wait_host_free() {
  const CurrentDevice current(device_);
  AX_CUDA_CHECK(cudaEventSynchronize(event_of(uploaded_)));
}

void InputStage::upload(int n) {
  if (n < 0 || n > capacity_) throw std::logic_error("upload of more images than staged");
  const CurrentDevice current(device_);
  cudaStream_t s = stream_of(upload_stream_);
  // The device copy may still be read by the last augmentation.
  AX_CUDA_CHECK(cudaStreamWaitEvent(s, event_of(augmented_), 0));
  AX_CUDA_CHECK(cudaMemcpyAsync(device_images_, host_images_, static_cast<size_t>(n) * image_bytes_,
                                cudaMemcpyHostToDevice, s));
  AX_CUDA_CHECK(cudaEventRecord(event_of(uploaded_), s));
}

void InputStage::augment(const AugmentGeom& g, const AugmentSample* samples, float* out) {
  if (g.n > capacity_) throw std::logic_error("augmentation of more images than staged");
  // The device cannot refuse a crop outside its image; the host copy of the draws can.
  g.check();
  g.check_samples(samples);
  const CurrentDevice current(device_);
  cudaStream_t compute = nullptr;  // the legacy default stream, where the ops run
  AX_CUDA_CHECK(cudaEventSynchronize(event_of(samples_copied_)));  // host_samples_ is free
  std::memcpy(host_samples_, samples, static_cast<size_t>(g.n) * sizeof(AugmentSample));
  AX_CUDA_CHECK(cudaStreamWaitEvent(compute, event_of(uploaded_), 0));
  AX_CUDA_CHECK(cudaMemcpyAsync(device_samples_, host_samples_,
                                static_cast<size_t>(g.n) * sizeof(AugmentSample),
                                cudaMemcpyHostToDevice, compute));
  AX_CUDA_CHECK(cudaEventRecord(event_of(samples_copied_), compute));
  kernels::augment_batch_cuda(g, device_images_, device_mean_, device_samples_, out, compute);
  AX_CUDA_CHECK(cudaEventRecord(event_of(augmented_), compute));
}

}  // namespace alexnet::gpu

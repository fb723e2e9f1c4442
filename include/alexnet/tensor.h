// A dense tensor: element type, device, shape and a shared buffer.
// Copies are cheap handles onto the same storage (like torch.Tensor); clone() copies data.
// On `cuda:N` the buffer is device memory of GPU N (cudaMalloc); raw() and data<T>() then return
// device pointers, which only CUDA code may dereference. Creating one without a usable GPU, or
// in a build without CUDA, throws alexnet::Error. Work on device tensors (zero, clone, to, the
// ops) is queued in order on the device's default stream; a copy to the CPU waits for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace alexnet {

// f64 exists on the CPU only, so gradient checks can run the real network in double; i32
// holds indices (max-pool argmax).
enum class DType : uint8_t { f32, f64, i32 };

// How the elements of a 4-D tensor lie in memory. The shape is always (N, C, H, W); nchw stores
// it row-major in that order (and any other rank row-major in shape order), nhwc stores the
// channels innermost. Every op takes nchw today and refuses anything else by name, so channels-
// last kernels can come op by op without changing a signature.
enum class Layout : uint8_t { nchw, nhwc };
const char* layout_name(Layout l);  // "NCHW", "NHWC"

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // safetensors spelling: "F32", "F64"

struct Device {
  enum class Kind : uint8_t { cpu, cuda };
  Kind kind = Kind::cpu;
  int index = 0;

  bool is_cpu() const { return kind == Kind::cpu; }
  std::string str() const;                    // "cpu", "cpu:1", "cuda:0"
  static Device parse(const std::string& s);  // throws alexnet::Error on a bad spelling
  bool operator==(const Device&) const = default;
};

class Tensor {
 public:
  Tensor() = default;
  // Zeroed. Out of device memory: alexnet::Error with the sizes asked and free.
  Tensor(std::vector<int64_t> shape, DType dtype = DType::f32, Device device = {},
         Layout layout = Layout::nchw);

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(static_cast<size_t>(i)); }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  Layout layout() const { return layout_; }
  bool defined() const { return buffer_ != nullptr; }
  std::string shape_str() const;  // "[96, 3, 11, 11]"

  void* raw() { return buffer_.get(); }  // device memory for a CUDA tensor
  const void* raw() const { return buffer_.get(); }
  template <class T>
  T* data();
  template <class T>
  const T* data() const;

  void zero();
  Tensor clone() const;  // on the same device, same layout
  // The same tensor on `device`: a copy of the data (host<->device, or between devices), or
  // this very handle when it is already there.
  Tensor to(Device device) const;
  // Copies the first `count` elements of `src` (all when count < 0) into this tensor's storage,
  // from any device; same element type. A copy to or from host memory has finished when this
  // returns; one between GPU memories is queued on the legacy default stream, after the work
  // already there.
  void copy_from(const Tensor& src, int64_t count = -1);

 private:
  Tensor to_copy(Device device) const;

  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::f32;
  Device device_;
  Layout layout_ = Layout::nchw;
  std::shared_ptr<std::byte[]> buffer_;
};

}  // namespace alexnet

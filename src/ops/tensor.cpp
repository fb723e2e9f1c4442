#include "alexnet/tensor.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "alexnet/error.h"
#ifdef ALEXNET_HAVE_CUDA
#include "src/cuda/device_memory.h"
#endif

namespace alexnet {

const char* layout_name(Layout l) {
  return l == Layout::nhwc ? "NHWC" : "NCHW";
}

size_t dtype_size(DType t) {
  return t == DType::f64 ? 8 : 4;
}
const char* dtype_name(DType t) {
  switch (t) {
    case DType::f64:
      return "F64";
    case DType::i32:
      return "I32";
    default:
      return "F32";
  }
}

std::string Device::str() const {
  if (kind == Kind::cpu) return index == 0 ? "cpu" : "cpu:" + std::to_string(index);
  return "cuda:" + std::to_string(index);
}

Device Device::parse(const std::string& s) {
  auto parse_index = [&](const std::string& rest) {
    if (rest.empty()) return 0;
    if (rest[0] != ':' || rest.size() < 2 || rest.size() > 4 ||
        rest.find_first_not_of("0123456789", 1) != std::string::npos)
      throw Error("bad device '" + s + "' (expected cpu, cpu:N, cuda or cuda:N)");
    return std::stoi(rest.substr(1));
  };
  if (s.rfind("cpu", 0) == 0) return {Kind::cpu, parse_index(s.substr(3))};
  if (s.rfind("cuda", 0) == 0) return {Kind::cuda, parse_index(s.substr(4))};
  throw Error("bad device '" + s + "' (expected cpu, cpu:N, cuda or cuda:N)");
}

// ---------------------------------------------------------------- storage
// The one place that knows where a tensor's bytes live; everything below goes through these.
namespace {

std::shared_ptr<std::byte[]> allocate(size_t bytes, Device device, const std::string& what) {
  if (device.is_cpu()) {
    // 64-byte alignment so gemm and vector loads never straddle cache lines.
    auto* p = static_cast<std::byte*>(::operator new[](bytes, std::align_val_t{64}));
    std::memset(p, 0, bytes);
    return {p, [](std::byte* q) { ::operator delete[](q, std::align_val_t{64}); }};
  }
#ifdef ALEXNET_HAVE_CUDA
  const int index = device.index;
  auto* p = static_cast<std::byte*>(gpu::device_alloc_zeroed(bytes, index, what));
  return {p, [index](std::byte* q) { gpu::device_free(q, index); }};
#else
  throw Error(what + " on " + device.str() +
              ": not built with CUDA (configure with -DALEXNET_CUDA=ON), use device cpu");
#endif
}

void zero_bytes(void* p, size_t bytes, Device device) {
  if (device.is_cpu()) {
    std::memset(p, 0, bytes);
    return;
  }
#ifdef ALEXNET_HAVE_CUDA
  gpu::device_zero(p, bytes, device.index);
#endif  // (no CUDA tensor exists without CUDA)
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef ALEXNET_HAVE_CUDA
  gpu::copy_bytes(dst, src, bytes, dst_device.is_cpu() ? src_device.index : dst_device.index);
#endif
}

}  // namespace

Tensor::Tensor(std::vector<int64_t> shape, DType dtype, Device device, Layout layout)
    : shape_(std::move(shape)), dtype_(dtype), device_(device), layout_(layout) {
  numel_ = 1;
  for (int64_t d : shape_) {
    if (d < 0) throw Error("negative tensor dimension in " + shape_str());
    numel_ *= d;
  }
  // At least one byte, so an empty tensor is still defined() and has a pointer.
  buffer_ = allocate(std::max<size_t>(nbytes(), 1), device_,
                     std::string("a tensor ") + shape_str() + " " + dtype_name(dtype_));
}

std::string Tensor::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape_.size(); ++i) s += (i ? ", " : "") + std::to_string(shape_[i]);
  return s + "]";
}

template <class T>
static constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, int32_t>) return DType::i32;
  return sizeof(T) == 8 ? DType::f64 : DType::f32;
}

template <class T>
T* Tensor::data() {
  if (dtype_of<T>() != dtype_) throw std::logic_error("tensor element type mismatch");
  return reinterpret_cast<T*>(buffer_.get());
}
template <class T>
const T* Tensor::data() const {
  if (dtype_of<T>() != dtype_) throw std::logic_error("tensor element type mismatch");
  return reinterpret_cast<const T*>(buffer_.get());
}
template float* Tensor::data<float>();
template double* Tensor::data<double>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template int32_t* Tensor::data<int32_t>();
template const int32_t* Tensor::data<int32_t>() const;

void Tensor::zero() {
  if (buffer_) zero_bytes(buffer_.get(), nbytes(), device_);
}

Tensor Tensor::clone() const {
  return to_copy(device_);
}

Tensor Tensor::to(Device device) const {
  if (device == device_ || !buffer_) return *this;
  return to_copy(device);
}

void Tensor::copy_from(const Tensor& src, int64_t count) {
  if (count < 0) count = src.numel();
  if (src.dtype() != dtype_ || count > numel_ || count > src.numel())
    throw std::logic_error("copy_from: " + std::to_string(count) + " elements of a " +
                           dtype_name(src.dtype()) + " tensor " + src.shape_str() + " into a " +
                           dtype_name(dtype_) + " tensor " + shape_str());
  if (count > 0)
    copy_bytes(raw(), device_, src.raw(), src.device(),
               static_cast<size_t>(count) * dtype_size(dtype_));
}

Tensor Tensor::to_copy(Device device) const {
  Tensor t(shape_, dtype_, device, layout_);
  if (buffer_) copy_bytes(t.raw(), device, raw(), device_, nbytes());
  return t;
}

}  // namespace alexnet

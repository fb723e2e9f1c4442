// The safetensors file format (https://github.com/huggingface/safetensors): 8-byte
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, ...,
// "__metadata__": {string: string}}, then the raw little-endian tensor bytes.
// Written atomically (temp file, fsync, rename, fsync of the directory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace alexnet {

// A tensor to write: the bytes are borrowed, not copied.
struct SafetensorsView {
  std::string name;
  std::string dtype;  // "F32", "F64", "I32", "I64", "U8", ...
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;  // must equal product(shape) * size of dtype
};

// Writes `path` atomically; an existing file is replaced only once the new one is complete.
// Throws alexnet::Error naming the path on any I/O failure (the old file is then untouched).
void write_safetensors(const std::string& path, const std::vector<SafetensorsView>& tensors,
                       const std::map<std::string, std::string>& metadata);

struct SafetensorsTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::map<std::string, SafetensorsTensor> tensors;

  // nullptr when absent
  const SafetensorsTensor* find(const std::string& name) const;
};

// Reads and validates: a file that does not parse, has a foreign or truncated header, an
// unknown dtype, offsets that overlap, leave holes or run past the end, or sizes that do not
// match shape x dtype is refused with alexnet::Error naming the file and the problem.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace alexnet

#include "alexnet/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <utility>

#include "alexnet/error.h"
#include "alexnet/file_io.h"
#include "alexnet/json.h"

namespace alexnet {

namespace {

// The safetensors package refuses larger headers; a foreign file's first 8 bytes usually
// decode to something far bigger, which is how we avoid a huge allocation for it.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

struct DtypeSize {
  std::string_view name;
  size_t size;
};

constexpr DtypeSize kDtypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                                 {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U64", 8},  {"U32", 4},
                                 {"U16", 2}, {"U8", 1},  {"BOOL", 1}};

// 0 for a dtype we do not know.
size_t dtype_size(std::string_view dtype) {
  for (const auto& d : kDtypes) {
    if (d.name == dtype) return d.size;
  }
  return 0;
}

std::string known_dtypes() {
  std::string s;
  for (const auto& d : kDtypes) {
    if (!s.empty()) s += ' ';
    s += d.name;
  }
  return s;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string prefix(const std::string& path) {
  return "checkpoint '" + path + "': ";
}

// product(shape) * element_size, or false on overflow or a negative dimension.
bool checked_nbytes(const std::vector<int64_t>& shape, size_t element_size, uint64_t* out) {
  uint64_t n = element_size;
  for (const int64_t d : shape) {
    if (d < 0) return false;
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  *out = n;
  return true;
}

// Closes on scope exit so that every error path releases the descriptor.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  // Returns close()'s errno (0 on success): on some filesystems a write error surfaces only here.
  int close() {
    const int r = ::close(fd);
    fd = -1;
    return r == 0 ? 0 : errno;
  }
};

// The header exactly as the safetensors package writes it (serde_json, compact, metadata
// first), padded with spaces so that the data starts 8-byte aligned in the file.
std::string build_header(const std::vector<SafetensorsView>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json& m = header[kMetadataKey] = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) m[key] = value;
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", nlohmann::ordered_json::array({offset, offset + t.nbytes})}};
    offset += t.nbytes;
  }
  std::string h = header.dump();  // compact, as serde_json writes it
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
}

void validate_views(const std::string& path, const std::vector<SafetensorsView>& tensors,
                    const std::map<std::string, std::string>& metadata) {
  const std::string p = prefix(path);
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    const std::string what = p + "tensor '" + t.name + "': ";
    if (t.name == kMetadataKey) throw Error(what + "the name is reserved for the metadata");
    if (!is_valid_utf8(t.name)) throw Error(what + "the name is not valid UTF-8");
    if (!names.insert(t.name).second) throw Error(what + "the name occurs twice");
    const size_t element_size = dtype_size(t.dtype);
    if (element_size == 0) {
      throw Error(what + "unknown dtype '" + t.dtype + "' (expected one of " + known_dtypes() +
                  ")");
    }
    uint64_t expected = 0;
    if (!checked_nbytes(t.shape, element_size, &expected)) {
      throw Error(what + "invalid shape " + shape_string(t.shape) +
                  " (negative or overflowing size)");
    }
    if (expected != t.nbytes) {
      throw Error(what + "has " + std::to_string(t.nbytes) + " bytes but shape " +
                  shape_string(t.shape) + " of " + t.dtype + " needs " + std::to_string(expected));
    }
    if (t.nbytes > 0 && t.data == nullptr) throw Error(what + "no data");
  }
  for (const auto& [key, value] : metadata) {
    if (!is_valid_utf8(key) || !is_valid_utf8(value)) {
      throw Error(p + "metadata '" + key + "' is not valid UTF-8");
    }
  }
}

// The header's entry for one tensor, checked; offsets are relative to the data section.
struct Entry {
  std::string name;
  SafetensorsTensor tensor;
  uint64_t begin = 0;
  uint64_t end = 0;
};

uint64_t non_negative(const JsonValue& v, const std::string& what) {
  if (v.kind != JsonValue::Kind::kInteger || v.integer < 0) {
    throw Error(what + " must be a non-negative integer");
  }
  return static_cast<uint64_t>(v.integer);
}

Entry parse_entry(const std::string& p, const std::string& name, const JsonValue& v) {
  const std::string what = p + "tensor '" + name + "': ";
  if (v.kind != JsonValue::Kind::kObject) {
    throw Error(what + "expected an object {dtype, shape, data_offsets}, found " +
                json_kind_name(v.kind));
  }
  const JsonValue* dtype = nullptr;
  const JsonValue* shape = nullptr;
  const JsonValue* offsets = nullptr;
  for (const auto& [key, value] : v.object) {
    if (key == "dtype") {
      dtype = &value;
    } else if (key == "shape") {
      shape = &value;
    } else if (key == "data_offsets") {
      offsets = &value;
    } else {
      throw Error(what + "unexpected key " + json_quote(key));
    }
  }
  if (!dtype || !shape || !offsets) {
    throw Error(what + "missing key \"" +
                (!dtype   ? "dtype"
                 : !shape ? "shape"
                          : "data_offsets") +
                "\"");
  }

  Entry e;
  e.name = name;
  if (dtype->kind != JsonValue::Kind::kString) throw Error(what + "dtype must be a string");
  e.tensor.dtype = dtype->string;
  const size_t element_size = dtype_size(e.tensor.dtype);
  if (element_size == 0) {
    throw Error(what + "unknown dtype " + json_quote(e.tensor.dtype) + " (expected one of " +
                known_dtypes() + ")");
  }

  if (shape->kind != JsonValue::Kind::kArray) throw Error(what + "shape must be an array");
  for (const auto& d : shape->array) {
    e.tensor.shape.push_back(static_cast<int64_t>(non_negative(d, what + "each shape dimension")));
  }
  uint64_t nbytes = 0;
  if (!checked_nbytes(e.tensor.shape, element_size, &nbytes)) {
    throw Error(what + "shape " + shape_string(e.tensor.shape) + " overflows");
  }

  if (offsets->kind != JsonValue::Kind::kArray || offsets->array.size() != 2) {
    throw Error(what + "data_offsets must be an array [begin, end]");
  }
  e.begin = non_negative(offsets->array[0], what + "data_offsets[0]");
  e.end = non_negative(offsets->array[1], what + "data_offsets[1]");
  if (e.end < e.begin) {
    throw Error(what + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                "] end before they begin");
  }
  if (e.end - e.begin != nbytes) {
    throw Error(what + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                "] span " + std::to_string(e.end - e.begin) + " bytes but shape " +
                shape_string(e.tensor.shape) + " of " + e.tensor.dtype + " needs " +
                std::to_string(nbytes));
  }
  return e;
}

}  // namespace

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
  const auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  validate_views(path, tensors, metadata);
  const std::string p = prefix(path);

  const std::string header = build_header(tensors, metadata);
  std::string head(8, '\0');
  uint64_t n = header.size();
  for (size_t i = 0; i < 8; ++i, n >>= 8) head[i] = static_cast<char>(n & 0xFF);
  head += header;

  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.fd < 0) {
    throw Error(p + "cannot create '" + tmp + "': " + errno_string(errno));
  }
  // Whatever fails from here on, the half-written temp file must not stay behind.
  const auto fail = [&](const std::string& step, int err) {
    if (fd.fd >= 0) fd.close();
    ::unlink(tmp.c_str());
    throw Error(p + step + ": " + errno_string(err));
  };

  if (const int err = write_all(fd.fd, head.data(), head.size())) fail("cannot write", err);
  for (const auto& t : tensors) {
    if (t.nbytes == 0) continue;
    if (const int err = write_all(fd.fd, t.data, t.nbytes)) fail("cannot write", err);
  }
  if (::fsync(fd.fd) != 0) fail("cannot fsync '" + tmp + "'", errno);
  if (const int err = fd.close()) fail("cannot close '" + tmp + "'", err);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    fail("cannot rename '" + tmp + "' over it", errno);
  }

  // Without this the rename itself may be lost in a crash, leaving the old checkpoint.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.fd < 0) {
    throw Error(p + "written, but cannot open its directory to fsync it: " + errno_string(errno));
  }
  // EINVAL: the filesystem cannot sync directories; nothing more we can do there.
  if (::fsync(dfd.fd) != 0 && errno != EINVAL) {
    throw Error(p + "written, but fsync of its directory failed: " + errno_string(errno));
  }
}

SafetensorsFile read_safetensors(const std::string& path) {
  const std::string p = prefix(path);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) throw Error(p + "cannot open: " + errno_string(errno));
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) throw Error(p + "cannot stat: " + errno_string(errno));
  if (S_ISDIR(st.st_mode)) throw Error(p + "is a directory, not a safetensors file");
  if (!S_ISREG(st.st_mode)) throw Error(p + "is not a regular file");
  const auto file_size = static_cast<uint64_t>(st.st_size);

  if (file_size < 8) {
    throw Error(p + "file is only " + std::to_string(file_size) +
                " bytes, shorter than the 8-byte header length (truncated or not a safetensors "
                "file)");
  }
  unsigned char len_bytes[8];
  if (const int err = pread_all(fd.fd, len_bytes, 8, 0)) {
    throw Error(p + "cannot read: " + (err < 0 ? "unexpected end of file" : errno_string(err)));
  }
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | len_bytes[i];
  const bool zip = std::memcmp(len_bytes, "PK\x03\x04", 4) == 0;
  const std::string foreign = zip ? " (truncated, or not a safetensors file: it looks like a zip "
                                    "archive, e.g. a PyTorch .pt file)"
                                  : " (truncated or not a safetensors file)";
  if (header_size > file_size - 8) {
    throw Error(p + "header length " + std::to_string(header_size) +
                " is larger than the rest of the file (" + std::to_string(file_size - 8) +
                " bytes)" + foreign);
  }
  if (header_size > kMaxHeaderBytes) {
    throw Error(p + "header length " + std::to_string(header_size) + " exceeds the limit of " +
                std::to_string(kMaxHeaderBytes) + " bytes" + foreign);
  }

  std::string header(header_size, '\0');
  if (const int err = pread_all(fd.fd, header.data(), header.size(), 8)) {
    throw Error(
        p + "cannot read the header: " + (err < 0 ? "unexpected end of file" : errno_string(err)));
  }
  if (header.empty() || header[0] != '{') {
    throw Error(p + "header does not start with '{'" + foreign);
  }
  JsonValue root;
  try {
    root = parse_json(header);
  } catch (const Error& e) {
    throw Error(p + "header is not valid JSON, " + e.what());
  }
  if (root.kind != JsonValue::Kind::kObject) throw Error(p + "header is not a JSON object");

  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [key, value] : root.object) {
    if (key == kMetadataKey) {
      if (value.kind != JsonValue::Kind::kObject) {
        throw Error(p + "__metadata__ must be an object, found " + json_kind_name(value.kind));
      }
      for (const auto& [mkey, mvalue] : value.object) {
        if (mvalue.kind != JsonValue::Kind::kString) {
          throw Error(p + "__metadata__ value for '" + mkey + "' must be a string, found " +
                      json_kind_name(mvalue.kind));
        }
        file.metadata[mkey] = mvalue.string;
      }
    } else {
      entries.push_back(parse_entry(p, key, value));
    }
  }

  const uint64_t data_size = file_size - 8 - header_size;
  uint64_t promised = 0;
  for (const auto& e : entries) promised = std::max(promised, e.end);
  if (promised > data_size) {
    throw Error(p + "file is truncated: header promises " + std::to_string(promised) +
                " bytes of data, file has " + std::to_string(data_size));
  }

  // The package requires the tensors to tile the data section exactly, in some order.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::pair(a.begin, a.end) < std::pair(b.begin, b.end);
  });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const auto& e : entries) {
    if (e.begin > covered) {
      throw Error(p + "hole in the data: bytes [" + std::to_string(covered) + ", " +
                  std::to_string(e.begin) + ") belong to no tensor (before tensor '" + e.name +
                  "')");
    }
    if (e.begin < covered) {
      throw Error(p + "tensor '" + e.name + "' (bytes [" + std::to_string(e.begin) + ", " +
                  std::to_string(e.end) + ")) overlaps tensor '" + previous->name + "' (bytes [" +
                  std::to_string(previous->begin) + ", " + std::to_string(previous->end) + "))");
    }
    covered = e.end;
    previous = &e;
  }
  if (covered != data_size) {
    throw Error(p + "the tensors cover " + std::to_string(covered) +
                " bytes of data but the file has " + std::to_string(data_size) +
                " (unaccounted bytes at the end)");
  }

  const uint64_t data_start = 8 + header_size;
  for (auto& e : entries) {
    e.tensor.data.resize(e.end - e.begin);
    if (const int err =
            pread_all(fd.fd, e.tensor.data.data(), e.tensor.data.size(), data_start + e.begin)) {
      throw Error(p + "cannot read tensor '" + e.name +
                  "': " + (err < 0 ? "unexpected end of file" : errno_string(err)));
    }
    file.tensors.emplace(e.name, std::move(e.tensor));
  }
  return file;
}

}  // namespace alexnet

// Packed datasets: alexnet-prep's writer (pack_source) and the training-time reader
// (make_packed_source). See alexnet/packed.h for the layout.
//
// Format decisions:
//  * shard-NNNNN.safetensors holds I64 `sample` (source index), I64 `offset`, I64 `size` and
//    I32 `label` for the good samples of the shard, and in its metadata the shard's range of
//    positions in the pack's order (`first`, `count`), the .bin's length (`bytes`), the bad
//    samples (`bad`: "index TAB path TAB reason" lines, by source index), a hash of the source's
//    sample names (`source`) and `options`: everything that changes the bytes (encoding,
//    quality, image size, images per shard, source size, a hash of the classes, the order). A shard
//    is reused only when all of these match and its .bin has the recorded length; otherwise it is
//    packed again (rewritten, not refused), so a resume with other options silently redoes the
//    shards that differ and the result never mixes options.
//  * A .bin is written under shard-NNNNN.bin.tmp, fsynced and renamed before its index is
//    written, so an index always describes a complete .bin. index.safetensors is deleted when a
//    pack starts and written last: a directory with an index is complete.
//  * index.safetensors also holds I64 `sample` (each packed sample's index in the source) and
//    metadata `count`, `shards`, `images_per_shard`, `source_size` and `bad`; readers need only
//    the tensors and keys that packed.h lists.
//  * A shuffled pack writes the source's samples in the order of a permutation drawn from a
//    fixed seed (rng::kPackOrder): shard s holds the samples at positions [s * per_shard, ...) of
//    that order, so that packing stays resumable shard by shard. Index metadata `order` is
//    "shuffled" or "source"; a pack without it (written before packs were shuffled) is "source".
//  * Original file paths are not stored (ImageNet's would approach the 100 MB header limit);
//    describe() names the shard and the packed index.
#include "alexnet/packed.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <numeric>
#include <optional>
#include <stdexcept>

#include "alexnet/error.h"
#include "alexnet/file_io.h"
#include "alexnet/image.h"
#include "alexnet/rng_streams.h"
#include "alexnet/safetensors.h"
#include "alexnet/thread_pool.h"

namespace fs = std::filesystem;

namespace alexnet {
namespace {

constexpr const char* kIndexFormat = "alexnet-packed/1";
constexpr const char* kShardFormat = "alexnet-packed-shard/1";
constexpr const char* kIndexName = "index.safetensors";

std::string shard_stem(int64_t shard) {
  char name[32];
  std::snprintf(name, sizeof name, "shard-%05lld", static_cast<long long>(shard));
  return name;
}

std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) s += '\n';
    s += lines[i];
  }
  return s;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

// FNV-1a: a cheap fingerprint of names, to notice a source that changed between runs.
struct Fnv {
  uint64_t h = 14695981039346656037ull;
  void add(const std::string& s) {
    for (const char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull;  // separator, so {"ab","c"} != {"a","bc"}
  }
  std::string hex() const {
    char s[17];
    std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(h));
    return s;
  }
};

// Safetensors metadata must be UTF-8, and the bad list is TAB/newline separated: a path with
// odd bytes is stored with '?' for them (it is only a message).
std::string printable(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      out += (c == '\t' || c == '\n' || c == '\r') ? ' ' : static_cast<char>(c);
      ++i;
      continue;
    }
    const size_t len = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<uint8_t>(s[i + k]) & 0xC0) == 0x80;
    if (ok && len == 3) {  // no overlongs or surrogates
      const auto c1 = static_cast<uint8_t>(s[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    } else if (ok && len == 4) {
      const auto c1 = static_cast<uint8_t>(s[i + 1]);
      ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

std::string bad_lines(const std::vector<BadSample>& bad) {
  std::string s;
  for (const auto& b : bad) {
    if (!s.empty()) s += '\n';
    s += std::to_string(b.index) + '\t' + printable(b.path) + '\t' + printable(b.reason);
  }
  return s;
}

std::optional<int64_t> parse_int(const std::string& s) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<std::vector<BadSample>> parse_bad_lines(const std::string& text) {
  std::vector<BadSample> bad;
  if (text.empty()) return bad;
  for (const auto& line : split(text, '\n')) {
    const auto fields = split(line, '\t');
    if (fields.size() != 3) return std::nullopt;
    const auto index = parse_int(fields[0]);
    if (!index) return std::nullopt;
    bad.push_back({*index, fields[1], fields[2]});
  }
  return bad;
}

// read_safetensors/write_safetensors name the file as a "checkpoint"; here the path is named
// by the caller's own prefix instead.
std::string reason_of(const Error& e, const std::string& path) {
  const std::string what = e.what(), prefix = "checkpoint '" + path + "': ";
  return what.starts_with(prefix) ? what.substr(prefix.size()) : what;
}

template <class T>
std::vector<T> values_of(const SafetensorsTensor& t) {
  std::vector<T> v(t.data.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), t.data.data(), v.size() * sizeof(T));
  return v;
}

// The tensor `name` as a vector when it is a 1-d `dtype` tensor of n (or, n < 0, any) elements.
template <class T>
std::optional<std::vector<T>> vector_tensor(const SafetensorsFile& f, const std::string& name,
                                            const std::string& dtype, int64_t n) {
  const SafetensorsTensor* t = f.find(name);
  if (!t || t->dtype != dtype || t->shape.size() != 1 || (n >= 0 && t->shape[0] != n))
    return std::nullopt;
  return values_of<T>(*t);
}

std::string meta(const SafetensorsFile& f, const std::string& key) {
  const auto it = f.metadata.find(key);
  return it == f.metadata.end() ? std::string() : it->second;
}

// ---------------------------------------------------------------------------------------------
// Writer

struct ShardIndex {
  std::vector<int64_t> sample, offset, size;
  std::vector<int32_t> label;
  std::vector<BadSample> bad;
  int64_t bytes = 0;
};

struct ShardPlan {
  int64_t shard = 0, first = 0, count = 0;
  std::string source_hash;
};

class Packer {
 public:
  Packer(const DataSource& source, const PackOptions& options)
      : source_(source), options_(options), dir_(options.out_dir) {
    if (options.out_dir.empty()) throw Error("pack: no output directory given");
    if (options.images_per_shard < 1)
      throw Error("pack: images per shard must be at least 1, not " +
                  std::to_string(options.images_per_shard));
    if (!options.raw && (options.quality < 1 || options.quality > 100))
      throw Error("pack: JPEG quality must be 1..100, not " + std::to_string(options.quality));
    Fnv classes;
    for (const auto& c : source.classes()) classes.add(c);
    if (options.shuffle) {
      order_ = random_permutation(0, 0, rng::kPackOrder, source.size());
    } else {
      order_.resize(static_cast<size_t>(source.size()));
      std::iota(order_.begin(), order_.end(), int64_t{0});
    }
    options_key_ = std::string("encoding=") + (options.raw ? "raw" : "jpeg") +
                   " quality=" + std::to_string(quality()) +
                   " image_size=" + std::to_string(source.image_size()) +
                   " images_per_shard=" + std::to_string(options.images_per_shard) +
                   " source_size=" + std::to_string(source.size()) + " classes=" + classes.hex() +
                   " order=" + order_name();
  }

  const char* order_name() const { return options_.shuffle ? "shuffled" : "source"; }

  int quality() const { return options_.raw ? 0 : options_.quality; }

  PackReport run(const std::function<void(int64_t, int64_t)>& progress) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec || !fs::is_directory(dir_))
      throw Error("cannot create the packed directory '" + dir_.string() +
                  "': " + (ec ? ec.message() : "not a directory"));
    // Until the new index is written the directory is incomplete; an old index must not
    // describe shards that are about to change.
    remove_file(dir_ / kIndexName);

    const int64_t n = source_.size(), per = options_.images_per_shard;
    const int64_t shards = (n + per - 1) / per;
    PackReport report;
    std::vector<ShardIndex> indexes(static_cast<size_t>(shards));
    int64_t done = 0;
    for (int64_t s = 0; s < shards; ++s) {
      ShardPlan plan{s, s * per, std::min(per, n - s * per), {}};
      Fnv names;
      for (int64_t p = plan.first; p < plan.first + plan.count; ++p)
        names.add(source_.describe(at(p)));
      plan.source_hash = names.hex();
      ShardIndex& index = indexes[static_cast<size_t>(s)];
      if (auto kept = reusable(plan)) {
        index = std::move(*kept);
        report.reused += static_cast<int64_t>(index.sample.size());
        done += plan.count;
        if (progress) progress(done, n);
      } else {
        index = pack_shard(plan, done, progress);
      }
    }
    remove_stale(shards);
    write_index(indexes, report);
    if (progress) progress(n, n);
    return report;
  }

 private:
  // The source index packed at position p.
  int64_t at(int64_t p) const { return order_[static_cast<size_t>(p)]; }

  fs::path shard_path(int64_t shard, const char* ext) const {
    return dir_ / (shard_stem(shard) + ext);
  }

  static void remove_file(const fs::path& path) {
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) throw Error("cannot remove '" + path.string() + "': " + ec.message());
  }

  // The shard's index from an earlier run, when it describes exactly what this run would write.
  std::optional<ShardIndex> reusable(const ShardPlan& plan) const {
    const fs::path path = shard_path(plan.shard, ".safetensors");
    std::error_code ec;
    if (!fs::exists(path, ec)) return std::nullopt;
    SafetensorsFile f;
    try {
      f = read_safetensors(path.string());
    } catch (const Error&) {
      return std::nullopt;  // damaged (e.g. by a crash): packed again
    }
    if (meta(f, "format") != kShardFormat || meta(f, "options") != options_key_ ||
        meta(f, "source") != plan.source_hash || parse_int(meta(f, "first")) != plan.first ||
        parse_int(meta(f, "count")) != plan.count)
      return std::nullopt;
    const auto bytes = parse_int(meta(f, "bytes"));
    auto bad = parse_bad_lines(meta(f, "bad"));
    auto sample = vector_tensor<int64_t>(f, "sample", "I64", -1);
    if (!bytes || !bad || !sample) return std::nullopt;
    const auto m = static_cast<int64_t>(sample->size());
    auto offset = vector_tensor<int64_t>(f, "offset", "I64", m);
    auto size = vector_tensor<int64_t>(f, "size", "I64", m);
    auto label = vector_tensor<int32_t>(f, "label", "I32", m);
    if (!offset || !size || !label || m + static_cast<int64_t>(bad->size()) != plan.count)
      return std::nullopt;
    int64_t end = 0;
    for (int64_t k = 0; k < m; ++k) {
      const auto j = static_cast<size_t>(k);
      if ((*offset)[j] != end || (*size)[j] <= 0) return std::nullopt;
      end += (*size)[j];
    }
    if (end != *bytes) return std::nullopt;
    // The good and the bad samples, merged, are exactly the shard's planned samples in order.
    size_t good = 0, skipped = 0;
    for (int64_t p = plan.first; p < plan.first + plan.count; ++p) {
      if (good < sample->size() && (*sample)[good] == at(p))
        ++good;
      else if (skipped < bad->size() && (*bad)[skipped].index == at(p))
        ++skipped;
      else
        return std::nullopt;
    }
    const auto bin_size = fs::file_size(shard_path(plan.shard, ".bin"), ec);
    if (ec || bin_size != static_cast<uintmax_t>(*bytes)) return std::nullopt;
    for (auto& b : *bad) b.path = source_.describe(b.index);  // as a fresh pack would report it
    return ShardIndex{std::move(*sample), std::move(*offset), std::move(*size),
                      std::move(*label),  std::move(*bad),    *bytes};
  }

  struct Slot {
    std::vector<uint8_t> bytes;
    int32_t label = 0;
    bool bad = false;
    std::string reason;
    std::exception_ptr error;
  };

  void encode(int64_t index, Slot& slot) const {
    const int s = source_.image_size();
    Image image{s, s, std::vector<uint8_t>(static_cast<size_t>(s) * static_cast<size_t>(s) * 3)};
    try {
      slot.label = source_.load(index, image.rgb.data());
    } catch (const BadImage& e) {
      slot.bad = true;
      slot.reason = e.what();
      return;
    }
    const auto classes = static_cast<int64_t>(source_.classes().size());
    if (slot.label < 0 || slot.label >= classes)
      throw Error("'" + source_.describe(index) + "' has label " + std::to_string(slot.label) +
                  ", outside the " + std::to_string(classes) + " classes");
    slot.bytes = options_.raw ? std::move(image.rgb) : encode_jpeg(image, options_.quality);
  }

  ShardIndex pack_shard(const ShardPlan& plan, int64_t& done,
                        const std::function<void(int64_t, int64_t)>& progress) const {
    const fs::path bin = shard_path(plan.shard, ".bin"), tmp = shard_path(plan.shard, ".bin.tmp"),
                   index_path = shard_path(plan.shard, ".safetensors");
    // An index left from other options must not outlive the .bin it described.
    remove_file(index_path);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error("cannot write '" + tmp.string() + "': " + errno_string(errno));
    struct Closer {
      int fd;
      ~Closer() {
        if (fd >= 0) ::close(fd);
      }
    } closer{fd};

    ShardIndex index;
    const int workers = std::max(options_.workers, 1);
    // Chunks bound the memory (a shard of raw 256 x 256 images is about a gigabyte).
    const int64_t chunk = std::max<int64_t>(64, int64_t{workers} * 16);
    std::vector<Slot> slots;
    std::vector<uint8_t> buffer;
    for (int64_t start = 0; start < plan.count; start += chunk) {
      const int64_t m = std::min(chunk, plan.count - start);
      slots.assign(static_cast<size_t>(m), Slot{});
      parallel_for(m, workers, [&](int64_t k) {
        Slot& slot = slots[static_cast<size_t>(k)];
        try {
          encode(at(plan.first + start + k), slot);
        } catch (...) {  // a throw would end a worker thread, and the program with it
          slot.error = std::current_exception();
        }
      });
      buffer.clear();
      for (int64_t k = 0; k < m; ++k) {
        Slot& slot = slots[static_cast<size_t>(k)];
        const int64_t i = at(plan.first + start + k);
        if (slot.error) std::rethrow_exception(slot.error);
        if (slot.bad) {
          index.bad.push_back({i, source_.describe(i), slot.reason});
          continue;
        }
        index.sample.push_back(i);
        index.offset.push_back(index.bytes);
        index.size.push_back(static_cast<int64_t>(slot.bytes.size()));
        index.label.push_back(slot.label);
        index.bytes += static_cast<int64_t>(slot.bytes.size());
        buffer.insert(buffer.end(), slot.bytes.begin(), slot.bytes.end());
      }
      if (const int err = write_all(fd, buffer.data(), buffer.size()))
        throw Error("cannot write '" + tmp.string() + "': " + errno_string(err));
      done += m;
      if (progress) progress(done, source_.size());
    }
    // The index below vouches for the .bin: its bytes must be on disk before it is renamed.
    if (::fsync(fd) != 0)
      throw Error("cannot write '" + tmp.string() + "': fsync: " + errno_string(errno));
    closer.fd = -1;
    if (::close(fd) != 0)
      throw Error("cannot write '" + tmp.string() + "': close: " + errno_string(errno));
    std::error_code ec;
    fs::rename(tmp, bin, ec);
    if (ec)
      throw Error("cannot rename '" + tmp.string() + "' to '" + bin.string() +
                  "': " + ec.message());

    const auto m = static_cast<int64_t>(index.sample.size());
    const std::map<std::string, std::string> metadata = {{"format", kShardFormat},
                                                         {"options", options_key_},
                                                         {"source", plan.source_hash},
                                                         {"first", std::to_string(plan.first)},
                                                         {"count", std::to_string(plan.count)},
                                                         {"bytes", std::to_string(index.bytes)},
                                                         {"bad", bad_lines(index.bad)}};
    write_index_file(index_path,
                     {{"sample", "I64", {m}, index.sample.data(), index.sample.size() * 8},
                      {"offset", "I64", {m}, index.offset.data(), index.offset.size() * 8},
                      {"size", "I64", {m}, index.size.data(), index.size.size() * 8},
                      {"label", "I32", {m}, index.label.data(), index.label.size() * 4}},
                     metadata);
    return index;
  }

  static void write_index_file(const fs::path& path, const std::vector<SafetensorsView>& tensors,
                               const std::map<std::string, std::string>& metadata) {
    try {
      write_safetensors(path.string(), tensors, metadata);
    } catch (const Error& e) {
      throw Error("cannot write '" + path.string() + "': " + reason_of(e, path.string()));
    }
  }

  // Shards beyond the end (a source that shrank) and temporaries of an interrupted run.
  void remove_stale(int64_t shards) const {
    std::error_code ec;
    std::vector<fs::path> stale;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      const std::string name = e.path().filename().string();
      if (!name.starts_with("shard-")) continue;
      const size_t dot = name.find('.');
      if (dot == std::string::npos) continue;
      const auto number = parse_int(name.substr(6, dot - 6));
      if (!number) continue;
      const std::string ext = name.substr(dot);
      if (ext == ".bin.tmp" || (*number >= shards && (ext == ".bin" || ext == ".safetensors") &&
                                name == shard_stem(*number) + ext))
        stale.push_back(e.path());
    }
    if (ec) throw Error("cannot list '" + dir_.string() + "': " + ec.message());
    for (const auto& p : stale) remove_file(p);
  }

  void write_index(const std::vector<ShardIndex>& indexes, PackReport& report) const {
    std::vector<int64_t> sample, offset, size;
    std::vector<int32_t> shard, label;
    for (size_t s = 0; s < indexes.size(); ++s) {
      const ShardIndex& index = indexes[s];
      sample.insert(sample.end(), index.sample.begin(), index.sample.end());
      offset.insert(offset.end(), index.offset.begin(), index.offset.end());
      size.insert(size.end(), index.size.begin(), index.size.end());
      label.insert(label.end(), index.label.begin(), index.label.end());
      shard.insert(shard.end(), index.sample.size(), static_cast<int32_t>(s));
      report.bad.insert(report.bad.end(), index.bad.begin(), index.bad.end());
    }
    // By source index, in the report and in the index alike (a shuffled pack meets them out of
    // order).
    std::sort(report.bad.begin(), report.bad.end(),
              [](const BadSample& a, const BadSample& b) { return a.index < b.index; });
    const auto m = static_cast<int64_t>(sample.size());
    report.written = m;
    const std::map<std::string, std::string> metadata = {
        {"format", kIndexFormat},
        {"classes", join(source_.classes())},
        {"class_names", join(source_.class_names())},
        {"image_size", std::to_string(source_.image_size())},
        {"encoding", options_.raw ? "raw" : "jpeg"},
        {"order", order_name()},
        {"quality", std::to_string(quality())},
        {"skipped", std::to_string(report.bad.size())},
        {"bad", bad_lines(report.bad)},
        {"count", std::to_string(m)},
        {"shards", std::to_string(indexes.size())},
        {"images_per_shard", std::to_string(options_.images_per_shard)},
        {"source_size", std::to_string(source_.size())}};
    write_index_file(dir_ / kIndexName,
                     {{"offset", "I64", {m}, offset.data(), offset.size() * 8},
                      {"size", "I64", {m}, size.data(), size.size() * 8},
                      {"shard", "I32", {m}, shard.data(), shard.size() * 4},
                      {"label", "I32", {m}, label.data(), label.size() * 4},
                      {"sample", "I64", {m}, sample.data(), sample.size() * 8}},
                     metadata);
  }

  const DataSource& source_;
  const PackOptions& options_;
  fs::path dir_;
  std::vector<int64_t> order_;  // position in the pack -> source index
  std::string options_key_;
};

// ---------------------------------------------------------------------------------------------
// Reader

class PackedSource final : public PackedDataSource {
 public:
  PackedSource(const std::string& dir, const std::vector<std::string>* expected) : dir_(dir) {
    const std::string path = (fs::path(dir) / kIndexName).string();
    const std::string again = "; run alexnet-prep pack to make one";
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      if (!fs::is_directory(dir, ec)) throw fail("no such directory" + again);
      throw fail("no " + std::string(kIndexName) + " (not packed, or packing did not finish)" +
                 again);
    }
    SafetensorsFile f;
    try {
      f = read_safetensors(path);
    } catch (const Error& e) {
      throw fail(std::string(kIndexName) + " is not a packed index (" + reason_of(e, path) + ")" +
                 again);
    }
    if (meta(f, "format") != kIndexFormat)
      throw fail(std::string(kIndexName) + " is not an " + kIndexFormat + " index (format '" +
                 meta(f, "format") + "')" + again);

    const auto side = parse_int(meta(f, "image_size"));
    if (!side || *side < 1 || *side > 65536)
      throw fail("bad image_size '" + meta(f, "image_size") + "' in " + kIndexName);
    size_ = static_cast<int>(*side);
    const std::string encoding = meta(f, "encoding");
    if (encoding != "jpeg" && encoding != "raw")
      throw fail("unknown encoding '" + encoding + "' in " + kIndexName);
    raw_ = encoding == "raw";
    const std::string order = meta(f, "order");
    if (order != "" && order != "shuffled" && order != "source")
      throw fail("unknown order '" + order + "' in " + kIndexName);
    shuffled_ = order == "shuffled";
    if (meta(f, "classes").empty()) throw fail(std::string(kIndexName) + " lists no classes");
    classes_ = split(meta(f, "classes"), '\n');
    names_ = split(meta(f, "class_names"), '\n');
    if (names_.size() != classes_.size()) names_ = classes_;

    const SafetensorsTensor* o = f.find("offset");
    if (!o || o->dtype != "I64" || o->shape.size() != 1)
      throw fail(std::string(kIndexName) + ": expected an I64 [M] tensor 'offset'");
    const int64_t m = o->shape[0];
    auto offset = vector_tensor<int64_t>(f, "offset", "I64", m);
    auto sizes = vector_tensor<int64_t>(f, "size", "I64", m);
    auto shard = vector_tensor<int32_t>(f, "shard", "I32", m);
    auto label = vector_tensor<int32_t>(f, "label", "I32", m);
    const std::string shape = " [" + std::to_string(m) + "] tensor '";
    if (!sizes) throw fail(std::string(kIndexName) + ": expected an I64" + shape + "size'");
    if (!shard) throw fail(std::string(kIndexName) + ": expected an I32" + shape + "shard'");
    if (!label) throw fail(std::string(kIndexName) + ": expected an I32" + shape + "label'");
    if (m == 0) throw fail("holds no images");
    auto sample = vector_tensor<int64_t>(f, "sample", "I64", m);
    if (sample) {
      source_index_ = std::move(*sample);
    } else if (shuffled_) {
      throw fail(std::string(kIndexName) + ": expected an I64" + shape + "sample'");
    }

    int32_t shards = 0;
    for (int64_t i = 0; i < m; ++i) {
      const auto j = static_cast<size_t>(i);
      const std::string what = "sample " + std::to_string(i) + " ";
      if ((*label)[j] < 0 || static_cast<size_t>((*label)[j]) >= classes_.size())
        throw fail(what + "has label " + std::to_string((*label)[j]) + ", outside the " +
                   std::to_string(classes_.size()) + " classes");
      if ((*shard)[j] < 0) throw fail(what + "has a negative shard");
      if ((*offset)[j] < 0 || (*sizes)[j] <= 0)
        throw fail(what + "has offset " + std::to_string((*offset)[j]) + " and size " +
                   std::to_string((*sizes)[j]));
      if (raw_ && (*sizes)[j] != int64_t{size_} * size_ * 3)
        throw fail(what + "has " + std::to_string((*sizes)[j]) + " bytes, not the " +
                   std::to_string(int64_t{size_} * size_ * 3) + " of a raw image");
      shards = std::max(shards, (*shard)[j] + 1);
    }
    // Shards that hold no sample (all of theirs were bad) are not opened.
    std::vector<int64_t> file_size(static_cast<size_t>(shards), -1);
    fds_.assign(static_cast<size_t>(shards), -1);
    for (int64_t i = 0; i < m; ++i) {
      const auto j = static_cast<size_t>(i);
      const auto s = static_cast<size_t>((*shard)[j]);
      if (fds_[s] < 0) {
        const std::string bin = shard_file((*shard)[j]);
        fds_[s] = ::open(bin.c_str(), O_RDONLY | O_CLOEXEC);
        if (fds_[s] < 0) throw fail("cannot open '" + bin + "': " + errno_string(errno));
        struct stat st {};
        if (::fstat(fds_[s], &st) != 0)
          throw fail("cannot stat '" + bin + "': " + errno_string(errno));
        file_size[s] = static_cast<int64_t>(st.st_size);
      }
      if ((*offset)[j] > file_size[s] || (*sizes)[j] > file_size[s] - (*offset)[j])
        throw fail(shard_stem((*shard)[j]) + ".bin is " + std::to_string(file_size[s]) +
                   " bytes, but sample " + std::to_string(i) + " needs bytes [" +
                   std::to_string((*offset)[j]) + ", " +
                   std::to_string((*offset)[j] + (*sizes)[j]) +
                   ") (truncated? run alexnet-prep pack again)");
    }
    offset_ = std::move(*offset);
    size_bytes_ = std::move(*sizes);
    shard_ = std::move(*shard);
    label_ = std::move(*label);

    if (expected && *expected != classes_) {
      std::string diff;
      const size_t common = std::min(expected->size(), classes_.size());
      for (size_t i = 0; i < common && diff.empty(); ++i)
        if ((*expected)[i] != classes_[i])
          diff = "class " + std::to_string(i) + " is '" + classes_[i] + "' here but '" +
                 (*expected)[i] + "' in the expected classes";
      if (diff.empty())
        diff = "it has " + std::to_string(classes_.size()) + " classes, the expected set " +
               std::to_string(expected->size()) + " (first extra: '" +
               (classes_.size() > common ? classes_[common] : (*expected)[common]) + "')";
      throw fail("its classes differ from the expected ones (a checkpoint's?): " + diff);
    }
  }

  int64_t size() const override { return static_cast<int64_t>(offset_.size()); }
  int image_size() const override { return size_; }
  const std::vector<std::string>& classes() const override { return classes_; }
  const std::vector<std::string>& class_names() const override { return names_; }
  std::string describe(int64_t index) const override {
    return shard_file(shard_[static_cast<size_t>(index)]) + "#" + std::to_string(index);
  }

  bool raw() const override { return raw_; }
  bool shuffled() const override { return shuffled_; }
  int64_t source_index(int64_t index) const override {
    if (index < 0 || index >= size()) throw std::out_of_range("packed sample index");
    return source_index_.empty() ? index : source_index_[static_cast<size_t>(index)];
  }

  void will_load(int64_t first, int64_t count) const override {
    const int64_t end = std::min(size(), first + count);
    // Consecutive samples of one shard are consecutive bytes: one advice per shard touched.
    for (int64_t i = std::max<int64_t>(first, 0); i < end;) {
      const int32_t shard = shard_[static_cast<size_t>(i)];
      int64_t last = i;
      while (last + 1 < end && shard_[static_cast<size_t>(last + 1)] == shard) ++last;
      const int64_t from = offset_[static_cast<size_t>(i)],
                    to =
                        offset_[static_cast<size_t>(last)] + size_bytes_[static_cast<size_t>(last)];
      // Only advice: a failure costs speed, never a result, and the read itself reports errors.
      (void)::posix_fadvise(fds_[static_cast<size_t>(shard)], from, to - from, POSIX_FADV_WILLNEED);
      i = last + 1;
    }
  }

  std::vector<uint8_t> stored_bytes(int64_t index) const override {
    if (index < 0 || index >= size()) throw std::out_of_range("packed sample index");
    std::vector<uint8_t> bytes(static_cast<size_t>(size_bytes_[static_cast<size_t>(index)]));
    read_stored(index, bytes.data());
    return bytes;
  }

  int32_t load(int64_t index, uint8_t* image) const override {
    const auto j = static_cast<size_t>(index);
    if (raw_) {
      read_stored(index, image);
    } else {
      // Straight into the loader's batch buffer: no intermediate image, no copy.
      const std::vector<uint8_t> bytes = stored_bytes(index);
      decode_image_into(bytes.data(), bytes.size(), size_, size_, image);
    }
    return label_[j];
  }

 private:
  // Reads sample `index`'s size_bytes_[index] stored bytes into p.
  void read_stored(int64_t index, uint8_t* p) const {
    const auto j = static_cast<size_t>(index);
    const int fd = fds_[static_cast<size_t>(shard_[j])];
    if (const int err = pread_all(fd, p, static_cast<size_t>(size_bytes_[j]), offset_[j]))
      throw BadImage(err < 0 ? "shard file ends early" : "cannot read: " + errno_string(err));
  }

  Error fail(const std::string& what) const {
    return Error("packed dataset '" + dir_ + "': " + what);
  }
  std::string shard_file(int64_t shard) const {
    return (fs::path(dir_) / (shard_stem(shard) + ".bin")).string();
  }

  std::string dir_;
  int size_ = 0;
  bool raw_ = false;
  bool shuffled_ = false;
  std::vector<std::string> classes_, names_;
  std::vector<int64_t> source_index_;  // empty: the same as the packed index
  std::vector<int64_t> offset_, size_bytes_;
  std::vector<int32_t> shard_, label_;
  // Closes on destruction, also when the constructor throws halfway through opening them.
  struct Fds : std::vector<int> {
    Fds() = default;
    Fds(const Fds&) = delete;
    Fds& operator=(const Fds&) = delete;
    ~Fds() {
      for (const int fd : *this)
        if (fd >= 0) ::close(fd);
    }
  } fds_;
};

}  // namespace

PackReport pack_source(const DataSource& source, const PackOptions& options,
                       const std::function<void(int64_t, int64_t)>& progress) {
  return Packer(source, options).run(progress);
}

std::unique_ptr<PackedDataSource> make_packed_source(const std::string& dir,
                                                     const std::vector<std::string>* classes) {
  return std::make_unique<PackedSource>(dir, classes);
}

}  // namespace alexnet

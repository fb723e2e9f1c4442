// alexnet-bench --input (src/apps/bench_input.h).
#include "src/apps/bench_input.h"

#include <fmt/format.h>
#include <turbojpeg.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>

#include "alexnet/config.h"
#include "alexnet/data.h"
#include "alexnet/error.h"
#include "alexnet/image.h"
#include "alexnet/packed.h"
#include "alexnet/tensor.h"

namespace alexnet {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kRepeats = 3;  // each rate is the best of these, after one untimed run

double best_rate(int64_t images, const std::function<void()>& run) {
  run();  // page cache, first use of every buffer
  double best = 0;
  for (int r = 0; r < kRepeats; ++r) {
    const auto start = Clock::now();
    run();
    best = std::max(best, static_cast<double>(images) /
                              std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

// Statistics that change no timing: the augmentation reads them, whatever they hold.
DataStats neutral_stats(int size) {
  DataStats s;
  s.size = size;
  s.mean.assign(static_cast<size_t>(3) * size * size, 128.0f);
  s.eigval = {1.0f, 0.1f, 0.01f};
  s.eigvec = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  return s;
}

// What a training step waits on, batch by batch: decode into the loader's staging buffer on
// data.workers threads, then augment into the float batch. Bad files are replaced, as in training.
double pipeline_rate(const DataSource& source, Config config, int threads,
                     const std::vector<int64_t>& indices) {
  config.data.workers = threads;
  const int batch = config.data.batch_size;
  const DataStats stats = neutral_stats(source.image_size());
  BatchLoader loader(source, stats, config, batch);
  Tensor out({batch, 3, config.crop(), config.crop()}, DType::f32);
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  return best_rate(static_cast<int64_t>(indices.size()), [&] {
    for (size_t start = 0; start < indices.size(); start += static_cast<size_t>(batch)) {
      const int n =
          static_cast<int>(std::min<size_t>(static_cast<size_t>(batch), indices.size() - start));
      loader.decode(indices.data() + start, n, labels.data());
      loader.augment_train(n, 0, out);
    }
  });
}

// TurboJPEG alone on the same bytes, already in memory, at full size: split into `threads`
// contiguous parts, one std::thread each. Files it cannot decode are left out of the count.
double raw_decode_rate(const std::vector<std::vector<uint8_t>>& jpegs, int threads) {
  auto part = [&](size_t begin, size_t end) {
    tjhandle tj = tjInitDecompress();
    std::vector<uint8_t> rgb;
    for (size_t i = begin; i < end; ++i) {
      auto* src = const_cast<uint8_t*>(jpegs[i].data());  // read only
      const auto size = static_cast<unsigned long>(jpegs[i].size());
      int w = 0, h = 0, sub = 0, cs = 0;
      if (tjDecompressHeader3(tj, src, size, &w, &h, &sub, &cs) != 0 || w <= 0 || h <= 0) continue;
      const bool cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
      rgb.resize(static_cast<size_t>(w) * h * (cmyk ? 4 : 3));
      tjDecompress2(tj, src, size, rgb.data(), w, 0, h, cmyk ? TJPF_CMYK : TJPF_RGB, 0);
    }
    tjDestroy(tj);
  };
  return best_rate(static_cast<int64_t>(jpegs.size()), [&] {
    if (threads == 1) return part(0, jpegs.size());
    std::vector<std::jthread> workers;
    const size_t n = jpegs.size(), t = static_cast<size_t>(threads);
    for (size_t w = 0; w < t; ++w) workers.emplace_back(part, n * w / t, n * (w + 1) / t);
  });
}

}  // namespace

void bench_input(const std::string& path, const std::vector<int>& threads, int64_t images,
                 const std::vector<std::string>& sets) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(path))
    throw Error("--input '" + path + "' is not a directory (a JPEG tree or a packed set)");
  const bool packed = fs::exists(fs::path(path) / "index.safetensors");
  std::vector<std::string> with_source = sets;
  with_source.push_back("data.source=" + std::string(packed ? "packed" : "folder"));
  with_source.push_back("data.train=" + path);
  const Config config = load_config("", with_source);
  std::unique_ptr<DataSource> source = make_source(config, Split::train);
  const PackedDataSource* packed_source =
      packed ? dynamic_cast<const PackedDataSource*>(source.get()) : nullptr;
  std::unique_ptr<DataSource> full_decode;  // a tree without DCT scaling, to compare
  if (!packed && config.data.dct_scaling) {
    Config off = config;
    off.data.dct_scaling = false;
    full_decode = make_source(off, Split::train);
  }

  // Samples spread evenly over the set (a tree is sorted by class), read into memory for the
  // raw decode.
  const int64_t count = std::min(images, source->size());
  std::vector<int64_t> indices(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) indices[static_cast<size_t>(i)] = i * source->size() / count;
  std::vector<std::vector<uint8_t>> jpegs;
  double bytes = 0;
  for (const int64_t i : indices) {
    jpegs.push_back(packed_source ? packed_source->stored_bytes(i)
                                  : read_file(source->describe(i)));
    bytes += static_cast<double>(jpegs.back().size());
  }
  std::printf(
      "\n### input pipeline: %s (%s), %lld images per run (%.1f KB each on average), to %dx%d, "
      "crop %d, batch %d; best of %d\n\n",
      path.c_str(), packed ? "packed" : "JPEG tree", static_cast<long long>(count),
      bytes / 1e3 / static_cast<double>(count), config.data.image_size, config.data.image_size,
      config.crop(), config.data.batch_size, kRepeats);
  std::printf(
      "| threads | pipeline images/s |%s raw tjDecompress images/s | pipeline / raw | "
      "scaling vs 1 thread |\n",
      full_decode ? " without DCT scaling | DCT gain |" : "");
  std::printf("|---:|---:|%s---:|---:|---:|\n", full_decode ? "---:|---:|" : "");
  double one = 0;
  for (const int t : threads) {
    const double pipeline = pipeline_rate(*source, config, t, indices);
    const double raw = raw_decode_rate(jpegs, t);
    if (one == 0) one = pipeline / t;
    std::string unscaled;
    if (full_decode) {
      const double off = pipeline_rate(*full_decode, config, t, indices);
      unscaled = fmt::format(" {:.0f} | {:.2f} |", off, pipeline / off);
    }
    std::printf("| %d | %.0f |%s %.0f | %.2f | %.2f |\n", t, pipeline, unscaled.c_str(), raw,
                pipeline / raw, pipeline / (one * t));
  }
  std::printf(
      "\npipeline: BatchLoader::decode (read, decode%s, resize to %d, into the batch buffer) and "
      "augment_train (crop, flip, PCA lighting, mean, to F32) on the CPU, batch by batch, on "
      "data.workers threads. raw: tjDecompress2 of the same bytes, already in memory, to RGB at "
      "full size, on as many threads. Scaling: images/s per thread against one thread's.\n",
      full_decode ? " at the DCT scale" : "", config.data.image_size);
}

}  // namespace alexnet

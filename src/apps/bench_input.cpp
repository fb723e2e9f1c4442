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
#include "src/train/prefetch.h"

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

// What training does for its first `batches` batches: the prefetcher's pool of data.workers
// threads decodes data.prefetch batches ahead while this thread augments each batch into the
// float input, as the trainer does before its step. Bad files are replaced, as in training.
double pipeline_rate(const DataSource& source, Config config, int threads, int64_t batches) {
  config.data.workers = threads;
  const int batch = config.data.batch_size;
  const DataStats stats = neutral_stats(source.image_size());
  Tensor out({batch, 3, config.crop(), config.crop()}, DType::f32);
  return best_rate(batches * batch, [&] {
    Prefetcher prefetcher(source, stats, config, batch, source.size() / batch, Device{});
    for (int64_t b = 0; b < batches; ++b)
      prefetcher.get(0, b, b + 1 < batches).loader.augment_train(batch, 0, out);
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

  // The first batches of epoch 0, as training takes them; their files read into memory for the
  // raw decode.
  const int B = config.data.batch_size;
  const int64_t batches = std::min(images, source->size()) / B;
  if (batches < 1)
    throw Error("--input: fewer images than one batch of data.batch_size = " + std::to_string(B));
  const int64_t count = batches * B;
  std::vector<int64_t> indices = epoch_order(config.seed, 0, source->size());
  indices.resize(static_cast<size_t>(count));
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
    const double pipeline = pipeline_rate(*source, config, t, batches);
    const double raw = raw_decode_rate(jpegs, t);
    if (one == 0) one = pipeline / t;
    std::string unscaled;
    if (full_decode) {
      const double off = pipeline_rate(*full_decode, config, t, batches);
      unscaled = fmt::format(" {:.0f} | {:.2f} |", off, pipeline / off);
    }
    std::printf("| %d | %.0f |%s %.0f | %.2f | %.2f |\n", t, pipeline, unscaled.c_str(), raw,
                pipeline / raw, pipeline / (one * t));
  }
  std::printf(
      "\npipeline: the first batches of epoch 0 as training takes them: the prefetcher's "
      "data.workers threads read, decode%s and resize to %d into the staging buffers, "
      "data.prefetch batches ahead, while augment_train (crop, flip, PCA lighting, mean, to F32) "
      "runs on the CPU. raw: tjDecompress2 of the same files' bytes, already in memory, to RGB at "
      "full size, on as many threads. Scaling: images/s per thread against one thread's.\n",
      full_decode ? " at the DCT scale" : "", config.data.image_size);
}

}  // namespace alexnet

// alexnet-bench --input (src/apps/bench_input.h).
#include "src/apps/bench_input.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "alexnet/config.h"
#include "alexnet/data.h"
#include "alexnet/error.h"
#include "alexnet/image.h"
#include "alexnet/packed.h"
#include "src/train/prefetch.h"

namespace alexnet {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kRepeats = 3;  // each rate is the best of these, after one untimed run

// `before`, if given, runs before each run, untimed (--cold: empty the page cache).
double best_rate(int64_t images, const std::function<void()>& run,
                 const std::function<void()>& before = {}) {
  if (before) before();
  run();  // page cache, first use of every buffer
  double best = 0;
  for (int r = 0; r < kRepeats; ++r) {
    if (before) before();
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
// threads reads and decodes each image into its batch's staging buffer (a GPU run's threads stop
// there: the augmentation runs on the GPU), or with `augment` also crops, flips, lights and
// subtracts the mean into the batch's float input (a CPU run), data.prefetch batches ahead,
// while this thread takes the batches as the trainer does. One prefetcher for all the runs, as
// one serves a whole training run. Bad files are replaced, as in training.
double pipeline_rate(const DataSource& source, Config config, int threads, int64_t batches,
                     bool augment, const std::function<void()>& before) {
  config.data.workers = threads;
  const int batch = config.data.batch_size;
  const DataStats stats = neutral_stats(source.image_size());
  std::optional<Prefetcher> prefetcher;
  auto make = [&] {
    prefetcher.emplace(source, stats, config, batch, source.size() / batch, Device{}, augment);
  };
  make();
  return best_rate(
      batches * batch,
      [&] {
        for (int64_t b = 0; b < batches; ++b) prefetcher->get(0, b, b + 1 < batches);
      },
      // --cold: a fresh prefetcher, so that no thread of the last one still reads (read-ahead
      // runs up to a window past the last batch) while the files leave the page cache.
      before ? std::function<void()>([&] {
        prefetcher.reset();
        before();
        make();
      })
             : std::function<void()>());
}

// The files a run reads: a packed set's shards, or every file of a tree.
std::vector<std::string> data_files(const std::string& path, bool packed) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(path))
    if (e.is_regular_file() && (!packed || e.path().extension() == ".bin"))
      files.push_back(e.path().string());
  return files;
}

// Drops the files from the page cache (posix_fadvise DONTNEED drops the clean pages of files
// nobody maps; no privileges needed), so that the next run reads them from the disk, as a run
// over data larger than RAM does.
void evict(const std::vector<std::string>& files) {
  for (const auto& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
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
                 const std::vector<std::string>& sets, bool cold) {
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
  check_training_order(config, *source);
  std::vector<int64_t> indices = training_order(config, 0, source->size());
  indices.resize(static_cast<size_t>(count));
  std::vector<std::vector<uint8_t>> jpegs;
  double bytes = 0;
  for (const int64_t i : indices) {
    jpegs.push_back(packed_source ? packed_source->stored_bytes(i)
                                  : read_file(source->describe(i)));
    bytes += static_cast<double>(jpegs.back().size());
  }
  const std::vector<std::string> files =
      cold ? data_files(path, packed) : std::vector<std::string>();
  const std::function<void()> before =
      cold ? std::function<void()>([&] { evict(files); }) : std::function<void()>();
  std::printf(
      "\n### input pipeline: %s (%s), %lld images per run (%.1f KB each on average), to %dx%d, "
      "crop %d, batch %d, %s order%s; best of %d\n\n",
      path.c_str(), packed ? "packed" : "JPEG tree", static_cast<long long>(count),
      bytes / 1e3 / static_cast<double>(count), config.data.image_size, config.data.image_size,
      config.crop(), config.data.batch_size, config.data.order.c_str(),
      cold ? ", the files dropped from the page cache before every run" : "", kRepeats);
  std::printf(
      "| threads | to the batch (GPU run) images/s |%s raw tjDecompress images/s | GPU run / "
      "raw | scaling vs 1 thread | + augmentation (CPU run) images/s | scaling vs 1 thread |\n",
      full_decode ? " without DCT scaling | DCT gain |" : "");
  std::printf("|---:|---:|%s---:|---:|---:|---:|---:|\n", full_decode ? "---:|---:|" : "");
  double one = 0, one_cpu = 0;
  for (const int t : threads) {
    const double decode = pipeline_rate(*source, config, t, batches, false, before);
    const double raw = raw_decode_rate(jpegs, t);
    const double cpu_run = pipeline_rate(*source, config, t, batches, true, before);
    if (one == 0) one = decode / t, one_cpu = cpu_run / t;
    std::string unscaled;
    if (full_decode) {
      const double off = pipeline_rate(*full_decode, config, t, batches, false, before);
      unscaled = fmt::format(" {:.0f} | {:.2f} |", off, decode / off);
    }
    std::printf("| %d | %.0f |%s %.0f | %.2f | %.2f | %.0f | %.2f |\n", t, decode, unscaled.c_str(),
                raw, decode / raw, decode / (one * t), cpu_run, cpu_run / (one_cpu * t));
  }
  std::printf(
      "\nto the batch: the first batches of epoch 0 as training takes them: the prefetcher's "
      "data.workers threads read, decode%s and resize to %d each image into its batch's staging "
      "buffer, data.prefetch batches ahead; in a GPU run the augmentation then runs on the GPU. "
      "+ augmentation: a CPU run's threads also crop, flip, light and subtract the mean (to "
      "F32) for each image. raw: tjDecompress2 of the same files' bytes, already in memory, to RGB "
      "at "
      "full size, on as many threads. Scaling: images/s per thread against one thread's.\n",
      full_decode ? " at the DCT scale" : "", config.data.image_size);
}

}  // namespace alexnet

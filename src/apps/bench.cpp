// alexnet-bench: throughput of the full training step (forward, backward, SGD update) with
// per-layer time and the GFLOP/s each layer reaches, beside the machine's sgemm GFLOP/s; and
// (--loader) the input pipeline's JPEG decoding beside a plain OpenCV imdecode loop.
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <numeric>
#include <thread>

#include "alexnet/config.h"
#include "alexnet/data.h"
#include "alexnet/image.h"
#include "alexnet/net.h"
#include "alexnet/packed.h"
#include "alexnet/sgd.h"
#include "alexnet/train.h"
#include "src/apps/common.h"
#include "src/apps/opencv_imdecode.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The best of a few 1024^3 sgemm runs: what this machine's BLAS can do at best.
double sgemm_gflops() {
  const int n = 1024;
  std::vector<float> a(static_cast<size_t>(n) * n, 0.5f), b(a), c(a.size());
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t = Clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
    best = std::max(best, 2.0 * n * n * n / seconds_since(t) / 1e9);
  }
  return best;
}

void bench_config(const std::string& label, const alexnet::Config& config, int steps,
                  double sgemm) {
  using namespace alexnet;
  const int B = config.data.batch_size;
  Net net(config, B);
  net.init(config.seed);
  const auto data = make_source(config, Split::train);
  const auto stats = compute_stats(*data, std::min<int64_t>(64, data->size()), 2);
  Tensor images({B, 3, net.input_size(), net.input_size()});
  std::vector<int32_t> labels(static_cast<size_t>(B));
  std::vector<int64_t> idx(static_cast<size_t>(B));
  std::iota(idx.begin(), idx.end(), 0);
  BatchLoader loader(*data, stats, config, B);
  loader.decode(idx.data(), B, labels.data());
  loader.augment_train(B, 0, images);

  auto step = [&](uint64_t s) {
    net.forward(images, labels.data(), B, true, config.seed, s);
    net.backward();
    sgd_step(net, config.optim, config.optim.lr);
  };
  step(0);  // warm-up: first-touch of every buffer
  Profile profile;
  net.profile = &profile;
  std::vector<double> times;
  for (int s = 1; s <= steps; ++s) {
    const auto t = Clock::now();
    step(static_cast<uint64_t>(s));
    times.push_back(seconds_since(t));
  }
  net.profile = nullptr;
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];

  std::printf("\n### %s: batch %d, input %dx%d, %d towers, %d timed steps\n\n", label.c_str(), B,
              net.input_size(), net.input_size(), net.towers(), steps);
  std::printf("| layer | fwd ms | bwd ms | fwd GFLOP/s | bwd GFLOP/s | %% of sgemm |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  double layer_total = 0;
  const auto table = net.layer_table();
  for (const auto& t : profile.layers) {
    const double fwd = t.forward / steps, bwd = t.backward / steps;
    layer_total += fwd + bwd;
    const auto l = std::find_if(table.begin(), table.end(),
                                [&](const LayerInfo& i) { return i.name == t.layer; });
    if (l == table.end()) {  // LRN, pooling, loss: memory-bound, no GEMM to compare with
      std::printf("| %s | %.1f | %.1f | | | |\n", t.layer.c_str(), fwd * 1e3, bwd * 1e3);
      continue;
    }
    // Backward computes the weight gradient and the input gradient (conv1: no input gradient).
    const double fwd_flops = l->forward_flops * B;
    const double bwd_flops = fwd_flops * (l->name == "conv1" ? 1 : 2);
    std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %.0f%% |\n", t.layer.c_str(), fwd * 1e3,
                bwd * 1e3, fwd_flops / fwd / 1e9, bwd_flops / bwd / 1e9,
                100.0 * (fwd_flops + bwd_flops) / (fwd + bwd) / 1e9 / sgemm);
  }
  std::printf(
      "\nstep (median): %.1f ms = %.1f images/s; layers %.1f ms, the rest (exchange, SGD "
      "update) %.1f ms\n",
      median * 1e3, B / median, layer_total * 1e3, (median - layer_total) * 1e3);
}

// ---------------------------------------------------------------------------- the loader

constexpr int kLoaderRepeats = 3;  // each rate is the best of these (the machine may be busy)
constexpr int kLoaderThreads[] = {1, 2};

// Samples 0, 1, ... of the packed set, `count` of them, from the start again if it holds fewer.
std::vector<int64_t> loader_indices(int64_t count, int64_t size) {
  std::vector<int64_t> indices(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) indices[static_cast<size_t>(i)] = i % size;
  return indices;
}

// The stored JPEG bytes of those samples, read into memory once, for OpenCV.
std::vector<std::vector<uint8_t>> read_jpegs(const alexnet::PackedDataSource& source,
                                             const std::vector<int64_t>& indices) {
  std::vector<std::vector<uint8_t>> jpegs;
  jpegs.reserve(indices.size());
  for (const int64_t i : indices) {
    try {
      jpegs.push_back(source.stored_bytes(i));
    } catch (const alexnet::BadImage& e) {
      throw alexnet::Error(source.describe(i) + ": " + e.what());
    }
  }
  return jpegs;
}

// What training does: BatchLoader::decode batch by batch, on the loader's data.workers threads
// (pread from the shard file, TurboJPEG to RGB straight into the batch buffer). A bad sample would
// be replaced by another, decoding something else than OpenCV does, so it stops the benchmark.
void decode_with_loader(alexnet::BatchLoader& loader, const std::vector<int64_t>& indices,
                        int batch) {
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  for (size_t start = 0; start < indices.size(); start += static_cast<size_t>(batch)) {
    const int n =
        static_cast<int>(std::min<size_t>(static_cast<size_t>(batch), indices.size() - start));
    const auto bad = loader.decode(indices.data() + start, n, labels.data());
    if (!bad.empty())
      throw alexnet::Error(bad.front().path + ": " + bad.front().reason +
                           " (the loader benchmark needs a packed set that decodes completely)");
  }
}

// The plain OpenCV loop: cv::imdecode(IMREAD_COLOR) of every image, on the calling thread, or
// split into `threads` contiguous parts on as many std::threads. Checks every result's shape.
void decode_with_opencv(alexnet::ImdecodeFn imdecode,
                        const std::vector<std::vector<uint8_t>>& jpegs, int threads, int size) {
  const int flag = alexnet::imread_color_flag();
  std::atomic<int64_t> wrong{0};
  auto part = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const cv::Mat m = imdecode(cv::_InputArray(jpegs[i]), flag);
      if (m.rows != size || m.cols != size || m.type() != CV_8UC3) ++wrong;
    }
  };
  if (threads == 1) {
    part(0, jpegs.size());
  } else {
    std::vector<std::jthread> workers;
    const size_t n = jpegs.size(), t = static_cast<size_t>(threads);
    for (size_t w = 0; w < t; ++w) workers.emplace_back(part, n * w / t, n * (w + 1) / t);
  }
  if (wrong > 0)
    throw alexnet::Error("OpenCV's imdecode did not give " + std::to_string(size) + "x" +
                         std::to_string(size) + " BGR images for " + std::to_string(wrong.load()) +
                         " of the packed JPEGs");
}

// Largest |difference| between the loader's and OpenCV's pixels of sample 0: both sides should
// do the same work (libjpeg-turbo's default IDCT and upsampling), so this should be 0 or 1.
int pixel_difference(alexnet::ImdecodeFn imdecode, const alexnet::DataSource& source,
                     const std::vector<uint8_t>& jpeg) {
  const int s = source.image_size();
  std::vector<uint8_t> ours(static_cast<size_t>(3) * s * s);
  source.load(0, ours.data());
  const cv::Mat bgr = imdecode(cv::_InputArray(jpeg), alexnet::imread_color_flag());
  int worst = 0;
  for (int y = 0; y < s; ++y)
    for (int x = 0; x < s; ++x)
      for (int c = 0; c < 3; ++c)
        worst = std::max(worst, std::abs(int{ours[(static_cast<size_t>(y) * s + x) * 3 + c]} -
                                         int{bgr.at<cv::Vec3b>(y, x)[2 - c]}));
  return worst;
}

// Images/s: the best of kLoaderRepeats timed runs of each side, taken in turn so that a busy
// spell on the machine hits both alike, after one untimed run of each (page cache, first use).
std::pair<double, double> best_rates(int64_t images, const std::function<void()>& ours,
                                     const std::function<void()>& opencv) {
  ours();
  if (opencv) opencv();
  double best_ours = 0, best_opencv = 0;
  for (int rep = 0; rep < kLoaderRepeats; ++rep) {
    auto t = Clock::now();
    ours();
    best_ours = std::max(best_ours, static_cast<double>(images) / seconds_since(t));
    if (!opencv) continue;
    t = Clock::now();
    opencv();
    best_opencv = std::max(best_opencv, static_cast<double>(images) / seconds_since(t));
  }
  return {best_ours, best_opencv};
}

// The packed JPEG set --loader names; refused before anything is printed or measured.
std::unique_ptr<alexnet::PackedDataSource> open_packed_jpegs(const std::string& dir) {
  auto source = alexnet::make_packed_source(dir, nullptr);
  if (source->raw())
    throw alexnet::Error(
        "packed dataset '" + dir +
        "' stores raw pixels, not JPEG: there is nothing to decode (pack it without --raw)");
  return source;
}

void bench_loader(const alexnet::PackedDataSource& source, const std::string& dir, int64_t images) {
  using namespace alexnet;
  const int size = source.image_size();
  const auto indices = loader_indices(images, source.size());
  const auto jpegs = read_jpegs(source, indices);
  double bytes = 0;
  for (const auto& j : jpegs) bytes += static_cast<double>(j.size());
  const OpenCvImdecode opencv = load_opencv_imdecode();

  DataStats stats;  // decode() reads no statistics; the loader only checks their image size
  stats.size = size;
  Config config;
  config.data.crop = size;  // no crop happens here; any crop <= S would do
  const int batch = config.data.batch_size;

  std::printf(
      "\n### loader: %s, %lld images of %dx%d per run (JPEG, %.1f KB each on average), "
      "best of %d\n\n",
      dir.c_str(), static_cast<long long>(images), size, size,
      bytes / 1024 / static_cast<double>(images), kLoaderRepeats);
  if (!opencv.imdecode) std::printf("OpenCV comparison skipped: %s\n\n", opencv.error.c_str());
  std::printf(
      "| decode threads | alexnet loader images/s | OpenCV imdecode images/s | "
      "alexnet / OpenCV |\n");
  std::printf("|---:|---:|---:|---:|\n");
  for (const int threads : kLoaderThreads) {
    config.data.workers = threads;
    BatchLoader loader(source, stats, config, batch);
    const auto [ours, theirs] = best_rates(
        images, [&] { decode_with_loader(loader, indices, batch); },
        opencv.imdecode ? std::function<void()>(
                              [&] { decode_with_opencv(opencv.imdecode, jpegs, threads, size); })
                        : std::function<void()>());
    if (opencv.imdecode)
      std::printf("| %d | %.0f | %.0f | %.2f |\n", threads, ours, theirs, ours / theirs);
    else
      std::printf("| %d | %.0f | n/a | n/a |\n", threads, ours);
  }
  std::printf(
      "\nalexnet: BatchLoader::decode in batches of %d on data.workers threads (pread from the "
      "page-cached shard file, TurboJPEG to RGB straight into the batch buffer).\n",
      batch);
  if (opencv.imdecode)
    std::printf(
        "OpenCV: %s, cv::imdecode(IMREAD_COLOR) to BGR from the same JPEG bytes already in "
        "memory, a plain loop (2 threads: one std::thread per half). Largest pixel difference "
        "between the two decodes of image 0: %d.\n",
        opencv.library.c_str(), pixel_difference(opencv.imdecode, source, jpegs.front()));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Measure AlexNet training throughput (and, with --loader, JPEG decoding).",
               "alexnet-bench"};
  std::vector<std::string> configs;
  std::vector<std::string> sets;
  std::string device = "auto";
  int batch = 8, steps = 3;
  app.add_option("--config", configs,
                 "config(s) to measure (default: the paper network, and configs/small.yaml when "
                 "it exists)");
  app.add_option("--set", sets, "override a config key (repeatable)");
  app.add_option("--device", device, "cpu or auto")->capture_default_str();
  app.add_option("--batch", batch, "batch size for the paper network")->capture_default_str();
  app.add_option("--steps", steps, "timed steps per config")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  std::string loader_dir;
  int64_t loader_images = 2000;
  auto* loader = app.add_option(
      "--loader", loader_dir,
      "measure the input pipeline instead: decode this packed directory (alexnet-prep pack) with "
      "1 and 2 threads, beside OpenCV's imdecode on the same bytes (opened at run time; "
      "$ALEXNET_OPENCV_IMGCODECS picks the library file); the training step is measured too "
      "only when --config is also given");
  app.add_option("--loader-images", loader_images, "images decoded per timed run (best of 3)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{100'000'000}))
      ->needs(loader);
  return alexnet::run_app(app, argc, argv, [&] {
    using namespace alexnet;
    // The step is timed with host clocks around each layer, which is right only for the CPU;
    // the CUDA benchmark (CUDA events) is still to come, so auto means the CPU here.
    if (device != "auto" && !resolve_device(device, "--device").is_cpu())
      throw Error("--device = '" + device +
                  "': alexnet-bench measures the CPU backend only so far; use cpu or auto");
    const auto packed = loader->count() > 0 ? open_packed_jpegs(loader_dir) : nullptr;
    std::printf("## alexnet-bench --device cpu (%u hardware threads)\n",
                std::thread::hardware_concurrency());
    if (packed) {
      bench_loader(*packed, loader_dir, loader_images);
      if (configs.empty()) return 0;  // --loader alone: the input pipeline only
    }
    const double sgemm = sgemm_gflops();
    std::printf("\nOpenBLAS sgemm 1024x1024x1024: %.1f GFLOP/s (best of 5)\n", sgemm);
    if (configs.empty()) {
      auto paper_sets = sets;
      paper_sets.push_back("data.batch_size=" + std::to_string(batch));
      bench_config("paper network (defaults)", load_config("", paper_sets), steps, sgemm);
      if (std::filesystem::exists("configs/small.yaml"))
        bench_config("configs/small.yaml", load_config("configs/small.yaml", sets), steps, sgemm);
    }
    for (const auto& c : configs) bench_config(c, load_config(c, sets), steps, sgemm);
    return 0;
  });
}

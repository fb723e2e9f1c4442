// alexnet-bench: throughput of the full training step (forward, backward, SGD update) with
// per-layer time and the FLOP rate each layer reaches, beside the CPU's sgemm or the GPU's fp32
// peak; and (--loader) the input pipeline's JPEG decoding beside a plain OpenCV imdecode loop,
// and on a GPU the end-to-end training rate on those JPEGs.
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
#include "alexnet/cpu_ops.h"
#include "alexnet/data.h"
#include "alexnet/dist.h"
#include "alexnet/image.h"
#include "alexnet/net.h"
#include "alexnet/packed.h"
#include "alexnet/sgd.h"
#include "alexnet/trace.h"
#include "alexnet/train.h"
#include "src/apps/bench_input.h"
#include "src/apps/common.h"
#include "src/apps/opencv_imdecode.h"
#include "src/comm/exchange.h"
#include "src/comm/gradient_sum.h"
#include "src/train/prefetch.h"
#ifdef ALEXNET_HAVE_CUDA
#include "src/cuda/device_info.h"
#include "src/cuda/device_memory.h"
#endif

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

// The devices of `placement` set up from the config's section cuda, and the exchange between them.
std::unique_ptr<alexnet::Exchange> configured_exchange(
    const alexnet::Config& c, const std::vector<alexnet::Device>& placement) {
  alexnet::configure_devices(placement, c);
  return alexnet::make_exchange(placement, c.cuda.exchange_timeout_s);
}

// The net, one batch of synthetic images augmented once on the net's device (so the step
// measures the network alone), and the training step: forward, backward, SGD update. Under
// mpirun each rank takes its share of the batch and the gradients are summed over the ranks
// before the update, as alexnet-train does.
struct Workload {
  const alexnet::Config& config;
  int B;  // this rank's share of the batch (all of it with one rank)
  alexnet::BatchSlice slice;
  alexnet::GradientSumTiming allreduce;  // summed over the steps
  alexnet::Net net;
  std::unique_ptr<alexnet::GradientSum> gradient_sum;  // null with one rank
  std::unique_ptr<alexnet::DataSource> data;
  alexnet::DataStats stats;
  alexnet::Tensor images;
  std::vector<int32_t> labels;

  Workload(const alexnet::Config& c, alexnet::Device device)
      : Workload(c, std::vector<alexnet::Device>(static_cast<size_t>(c.model.towers), device)) {}
  // Tower t on placement[t]; the batch on tower 0's device.
  Workload(const alexnet::Config& c, const std::vector<alexnet::Device>& placement)
      : config(c),
        B(c.data.batch_size / alexnet::dist::world().size),
        slice(alexnet::rank_share(c.data.batch_size)),
        net(c, B, alexnet::DType::f32, placement, configured_exchange(c, placement)),
        data(alexnet::make_source(c, alexnet::Split::train)),
        stats(alexnet::compute_stats(*data, std::min<int64_t>(64, data->size()), 2)),
        images({B, 3, net.input_size(), net.input_size()}, alexnet::DType::f32, net.device()),
        labels(static_cast<size_t>(B)) {
    using namespace alexnet;
    net.init(c.seed);
    gradient_sum = make_gradient_sum(net, c.dist.timeout_s);
    if (gradient_sum)
      net.on_weight_gradients = [this](const std::string& layer) {
        gradient_sum->layer_ready(layer);
      };
    std::vector<int64_t> idx(static_cast<size_t>(B));
    std::iota(idx.begin(), idx.end(), 0);
    BatchLoader loader(*data, stats, c, B, net.device());
    loader.decode(idx.data(), B, labels.data());
    loader.augment_train(B, 0, images);
  }
  void step(uint64_t s) {
    const alexnet::TraceRange trace("step " + std::to_string(s));
    net.forward(images, labels.data(), B, true, config.seed, s, slice);
    net.backward();
    if (gradient_sum) {
      gradient_sum->finish();
      allreduce.ms += gradient_sum->last_timing().ms;
      allreduce.exposed_ms += gradient_sum->last_timing().exposed_ms;
    }
    alexnet::sgd_step(net, config.optim, config.optim.lr);
  }
};

// Per layer: time per step and the FLOP rate against a reference (the CPU's sgemm, or the GPU's
// fp32 peak). Returns the summed layer time per step, in seconds.
double print_layer_table(const alexnet::Profile& profile, const alexnet::Net& net, int steps, int B,
                         double reference_flops, const char* reference, bool tera) {
  using alexnet::LayerInfo;
  const double unit = tera ? 1e12 : 1e9;
  const char* rate = tera ? "TFLOP/s" : "GFLOP/s";
  std::printf("| layer | fwd ms | bwd ms | fwd %s | bwd %s | %% of %s |\n", rate, rate, reference);
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  double layer_total = 0;
  const auto table = net.layer_table();
  for (const auto& t : profile.layers) {
    const double fwd = t.forward / steps, bwd = t.backward / steps;
    layer_total += fwd + bwd;
    const auto l = std::find_if(table.begin(), table.end(),
                                [&](const LayerInfo& i) { return i.name == t.layer; });
    if (l == table.end()) {  // LRN, pooling, loss: memory-bound, no GEMM to compare with
      std::printf("| %s | %.2f | %.2f | | | |\n", t.layer.c_str(), fwd * 1e3, bwd * 1e3);
      continue;
    }
    const double fwd_flops = l->forward_flops * B;
    const double bwd_flops = fwd_flops * (l->name == "conv1" ? 1 : 2);
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f | %.0f%% |\n", t.layer.c_str(), fwd * 1e3,
                bwd * 1e3, fwd_flops / fwd / unit, bwd_flops / bwd / unit,
                100.0 * (fwd_flops + bwd_flops) / (fwd + bwd) / reference_flops);
  }
  return layer_total;
}

// Bytes between the towers per step at each exchange point (what two GPUs would move).
void print_exchange_table(const alexnet::Net& net) {
  std::printf(
      "\nexchange per step (batch %d): bytes the towers receive from each other, what NCCL moves "
      "between two GPUs%s\n\n",
      net.batch_capacity(),
      net.devices().size() > 1 && net.devices()[0] == net.devices()[1]
          ? " (here both towers share a device: nothing is copied)"
          : "");
  std::printf("| point | forward | bytes | backward | bytes |\n|---|---|---:|---|---:|\n");
  int64_t total = 0;
  for (const auto& e : net.exchange_table()) {
    std::printf("| %s | %s | %lld | %s | %lld |\n", e.name.c_str(), e.forward.c_str(),
                static_cast<long long>(e.forward_bytes), e.backward.c_str(),
                static_cast<long long>(e.backward_bytes));
    total += e.forward_bytes + e.backward_bytes;
  }
  std::printf("| all | | | | %.1f MB |\n", static_cast<double>(total) / 1e6);
}

// Multiply-adds of one training step per image: forward, and backward's weight and input
// gradients (conv1 has no input gradient).
double step_flops_per_image(const alexnet::Net& net) {
  double flops = 0;
  for (const auto& l : net.layer_table()) flops += l.forward_flops * (l.name == "conv1" ? 2 : 3);
  return flops;
}

void bench_config_cpu(const std::string& label, const alexnet::Config& config, int steps,
                      double sgemm) {
  using namespace alexnet;
  Workload w(config, Device{});
  const int B = w.B;
  w.step(0);  // warm-up: first-touch of every buffer
  w.allreduce = {};
  Profile profile;
  w.net.profile = &profile;
  std::vector<double> times;
  for (int s = 1; s <= steps; ++s) {
    const auto t = Clock::now();
    w.step(static_cast<uint64_t>(s));
    times.push_back(seconds_since(t));
  }
  w.net.profile = nullptr;
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];

  std::printf("\n### %s: batch %d, input %dx%d, %d towers, %d timed steps\n\n", label.c_str(), B,
              w.net.input_size(), w.net.input_size(), w.net.towers(), steps);
  const double layer_total =
      print_layer_table(profile, w.net, steps, B, sgemm * 1e9, "sgemm", false);
  std::printf(
      "\nstep (median): %.1f ms = %.1f images/s; layers %.1f ms, the rest (exchange, SGD "
      "update) %.1f ms\n",
      median * 1e3, B / median, layer_total * 1e3, (median - layer_total) * 1e3);
  const double gflops = step_flops_per_image(w.net) * B / median / 1e9;
  std::printf("achieved: %.1f GFLOP/s over the whole step (%.0f%% of sgemm)\n", gflops,
              100.0 * gflops / sgemm);
  const dist::World& world = dist::world();
  if (world.size > 1) {
    // The ordered sum sends each rank's gradients once in the all-to-all and once in the
    // all-gather, less the rank's own chunk.
    const double bytes = static_cast<double>(w.gradient_sum->bytes());
    const double per_step = w.allreduce.ms / 1e3 / steps;
    const double exposed = w.allreduce.exposed_ms / 1e3 / steps;
    std::printf(
        "\n%d ranks: global batch %d, %.1f images/s in all; all-reduce of the gradients %.1f ms "
        "per step, %.1f ms of it after backward (%.0f%% of the step; overlap with backward "
        "%.0f%%), %.2f MB summed, %.2f MB sent per rank\n",
        world.size, B * world.size, B * world.size / median, per_step * 1e3, exposed * 1e3,
        100 * exposed / median, per_step > 0 ? 100 * (1 - exposed / per_step) : 0.0, bytes / 1e6,
        2.0 * bytes * (world.size - 1) / world.size / 1e6);
  }
  if (w.net.towers() > 1) print_exchange_table(w.net);
}

#ifdef ALEXNET_HAVE_CUDA
constexpr int kGpuWarmupSteps = 5;    // cuDNN plans, cuBLAS heuristics, first touch
constexpr int kGpuProfileSteps = 10;  // the per-layer pass (serialised by its synchronisation)

void bench_config_cuda(const std::string& label, const alexnet::Config& config, int steps,
                       alexnet::Device device, const alexnet::gpu::DeviceInfo& info) {
  using namespace alexnet;
  const size_t in_use_before = gpu::memory_in_use(device.index);
  gpu::reset_peak(device.index);  // an earlier, larger net's peak is not this one's
  const size_t ours_before = gpu::memory_use(device.index).current;
  Workload w(config, device);
  const int B = w.B;
  for (int s = 0; s < kGpuWarmupSteps; ++s) w.step(static_cast<uint64_t>(s));

  // Whole steps, as training runs them: events between steps, no synchronisation added.
  gpu::StepTimer timer(device.index);
  timer.mark();
  for (int s = 1; s <= steps; ++s) {
    w.step(static_cast<uint64_t>(kGpuWarmupSteps + s));
    timer.mark();
  }
  std::vector<double> ms = timer.intervals_ms();
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2] / 1e3;
  const size_t in_use_after = gpu::memory_in_use(device.index);
  const gpu::MemoryUse ours = gpu::memory_use(device.index);

  // Per layer: a separate pass, each layer between two device synchronisations.
  Profile profile;
  w.net.profile = &profile;
  for (int s = 0; s < kGpuProfileSteps; ++s) w.step(static_cast<uint64_t>(s));
  w.net.profile = nullptr;

  std::printf(
      "\n### %s: batch %d, input %dx%d, %d towers (one queue each), %s, cuDNN %s%s, %d timed "
      "steps\n\n",
      label.c_str(), B, w.net.input_size(), w.net.input_size(), w.net.towers(),
      config.cuda.tf32 ? "TF32 tensor cores (cuda.tf32)" : "fp32 (TF32 off)",
      config.cuda.benchmark ? "algorithms timed" : "heuristics",
      config.cuda.deterministic ? ", deterministic algorithms only" : "", steps);
  const double layer_total = print_layer_table(profile, w.net, kGpuProfileSteps, B,
                                               info.fp32_peak_tflops * 1e12, "fp32 peak", true);
  const double tflops = step_flops_per_image(w.net) * B / median / 1e12;
  std::printf(
      "\nper-layer times: %d steps with the device synchronised around every layer (towers one "
      "after the other), %.2f ms per step in all\n",
      kGpuProfileSteps, layer_total * 1e3);
  std::printf(
      "step (median): %.2f ms = %.1f images/s (CUDA events between steps; fastest %.2f ms, "
      "slowest %.2f ms)\n",
      median * 1e3, B / median, ms.front(), ms.back());
  std::printf("achieved: %.2f TFLOP/s = %.0f%% of the fp32 (non-tensor-core) peak (%.1f TFLOP/s)\n",
              tflops, info.fp32_peak_tflops > 0 ? 100.0 * tflops / info.fp32_peak_tflops : 0.0,
              info.fp32_peak_tflops);
  std::printf(
      "device memory: peak %s in our allocations (tensors, scratch, staging); %s more in use "
      "on the device than before the net (cudaMemGetInfo, with cuDNN's and cuBLAS's own)\n",
      gpu::mib(ours.peak - ours_before).c_str(), gpu::mib(in_use_after - in_use_before).c_str());
  if (w.net.towers() > 1) print_exchange_table(w.net);
}

// The paper's placement, tower t on GPU t through NCCL, beside both towers on one GPU: images/s
// by wall clock over the same number of steps, each run ending with every GPU synchronised.
void bench_two_gpus(const alexnet::Config& config, int steps) {
  using namespace alexnet;
  const Device gpu0{Device::Kind::cuda, 0}, gpu1{Device::Kind::cuda, 1};
  auto rate = [&](const std::vector<Device>& placement) {
    Workload w(config, placement);
    for (int s = 0; s < kGpuWarmupSteps; ++s) w.step(static_cast<uint64_t>(s));
    for (const Device& d : placement) ops::synchronize(d);
    const auto start = Clock::now();
    for (int s = 0; s < steps; ++s) w.step(static_cast<uint64_t>(kGpuWarmupSteps + s));
    for (const Device& d : placement) ops::synchronize(d);
    return steps * w.B / seconds_since(start);
  };
  const double one = rate({gpu0, gpu0}), two = rate({gpu0, gpu1});
  std::printf(
      "\n### two GPUs: batch %d, %d steps, wall clock\n\none GPU (both towers on cuda:0): %.1f "
      "images/s\ntwo GPUs (cuda:0, cuda:1, NCCL): %.1f images/s (x%.2f)\n",
      config.data.batch_size, steps, one, two, two / one);

  // The exchange points, timed with CUDA events on cuda:0 over a few more steps.
  Workload w(config, std::vector<Device>{gpu0, gpu1});
  for (int s = 0; s < kGpuWarmupSteps; ++s) w.step(static_cast<uint64_t>(s));
  constexpr int kTimedSteps = 10;
  w.net.exchange().set_timing(true);
  for (int s = 0; s < kTimedSteps; ++s) w.step(static_cast<uint64_t>(kGpuWarmupSteps + s));
  const auto times = w.net.exchange().timings();
  std::printf(
      "\n| exchange | ms per step | of it overlapped with tower 0's compute |\n|---|---:|---:|\n");
  for (const auto& t : times)
    std::printf("| %s of %s | %.3f | %.3f |\n", t.op.c_str(), t.layer.c_str(), t.ms / kTimedSteps,
                t.overlap_ms / kTimedSteps);
  print_exchange_table(w.net);
}

// The real input pipeline: packed JPEGs decoded on data.workers threads, each batch uploaded
// while the previous step runs and augmented on the GPU, then the training step; wall clock.
void bench_end_to_end(const std::string& dir, const alexnet::Config& base, int steps,
                      alexnet::Device device) {
  using namespace alexnet;
  Config config = base;
  config.data.source = "packed";
  config.data.train = dir;
  const auto source = make_source(config, Split::train);
  const int B = config.data.batch_size;
  if (source->size() < B)
    throw Error("packed dataset '" + dir + "' has " + std::to_string(source->size()) +
                " images, fewer than one batch of " + std::to_string(B));
  if (static_cast<int>(source->classes().size()) > config.fc8())
    throw Error("packed dataset '" + dir + "' has more classes than the network's " +
                std::to_string(config.fc8()));
  const DataStats stats =
      compute_stats(*source, std::min<int64_t>(256, source->size()), config.data.workers);
  configure_devices({device}, config);
  Net net(config, B, DType::f32, device);
  net.init(config.seed);
  const int64_t per_epoch = source->size() / B;
  Prefetcher batches(*source, stats, config, B, per_epoch, device);
  int epoch = 0;
  int64_t in_epoch = 0;
  auto step = [&](uint64_t s) {
    const auto batch = batches.get(epoch, in_epoch, true);
    net.forward(batch.images, batch.labels, B, true, config.seed, s);
    net.backward();
    sgd_step(net, config.optim, config.optim.lr);
    if (++in_epoch == per_epoch) in_epoch = 0, ++epoch;
  };
  for (int s = 0; s < kGpuWarmupSteps; ++s) step(static_cast<uint64_t>(s));
  ops::synchronize(device);
  const auto start = Clock::now();
  for (int s = 0; s < steps; ++s) step(static_cast<uint64_t>(kGpuWarmupSteps + s));
  ops::synchronize(device);
  const double seconds = seconds_since(start);
  std::printf(
      "\n### end to end: %s, batch %d, %d decode threads\n\nend to end: %.1f images/s over %d "
      "steps (wall clock: JPEG decoding on the CPU, pinned upload, augmentation on the GPU, "
      "training step)\n",
      dir.c_str(), B, config.data.workers, steps * B / seconds, steps);
}
#endif

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
  CLI::App app{
      "Measure AlexNet training throughput on the CPU or a GPU (and, with --loader, JPEG "
      "decoding and the end-to-end rate).",
      "alexnet-bench"};
  std::vector<std::string> configs;
  std::vector<std::string> sets;
  std::string device = "auto";
  int batch = 0, steps = 0;  // 0: the device's default
  app.add_option("--config", configs,
                 "config(s) to measure (default: the paper network, and configs/small.yaml when "
                 "it exists)");
  app.add_option("--set", sets, "override a config key (repeatable)");
  app.add_option("--device", device, "cpu, cuda, cuda:N, or auto (the first GPU, else the CPU)")
      ->capture_default_str();
  app.add_option("--batch", batch,
                 "batch size for the paper network (default: 8 on the CPU, 128 on a GPU)")
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--steps", steps, "timed steps per config (default: 3 on the CPU, 50 on a GPU)")
      ->check(CLI::Range(1, 1'000'000));
  std::string loader_dir;
  int64_t loader_images = 2000;
  auto* loader = app.add_option(
      "--loader", loader_dir,
      "measure the input pipeline instead: decode this packed directory (alexnet-prep pack) with "
      "1 and 2 threads, beside OpenCV's imdecode on the same bytes (opened at run time; "
      "$ALEXNET_OPENCV_IMGCODECS picks the library file), and on a GPU train the paper network "
      "on it end to end; the training step alone is measured too only when --config is also "
      "given");
  app.add_option("--loader-images", loader_images, "images decoded per timed run (best of 3)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{100'000'000}))
      ->needs(loader);
  std::string input_path;
  std::vector<int> input_threads = {1, 2};
  auto* input = app.add_option(
      "--input", input_path,
      "measure the whole input path a step waits on instead: read, decode and resize into the "
      "batch (a GPU run's threads), and also crop, flip, lighting and mean (a CPU run's), from "
      "this JPEG tree or packed set, per thread count, beside raw tjDecompress of the same bytes "
      "(and, for a JPEG tree, without DCT scaling)");
  app.add_option("--threads", input_threads, "thread counts for --input, e.g. 1,2,4")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096))
      ->capture_default_str()
      ->needs(input);
  app.add_option("--input-images", loader_images, "images per timed run of --input (best of 3)")
      ->check(CLI::Range(int64_t{1}, int64_t{100'000'000}))
      ->needs(input);
  bool cold = false;
  app.add_flag("--cold", cold,
               "for --input: drop the data's files from the page cache before every run, so "
               "they are read from the disk (as data larger than RAM is); compare "
               "--set data.order=quasi_random on a packed set")
      ->needs(input);
  return alexnet::run_app(app, argc, argv, [&] {
    using namespace alexnet;
    // Under mpirun: every rank measures its share of each step, rank 0 prints.
    const dist::World& world = dist::init_world();
    if (world.size > 1 && (input->count() > 0 || loader->count() > 0))
      throw Error("under mpirun alexnet-bench times the CPU training step alone (--device cpu)");
    if (world.rank != 0 && std::freopen("/dev/null", "w", stdout) == nullptr)
      throw Error("rank " + std::to_string(world.rank) + ": cannot silence its output");
    const int status = [&] {
      if (input->count() > 0) {
        std::printf("## alexnet-bench --input (%u hardware threads)\n",
                    std::thread::hardware_concurrency());
        bench_input(input_path, input_threads, loader_images, sets, cold);
        return 0;
      }
      const Device dev = resolve_device(device, "--device");
      if (world.size > 1 && !dev.is_cpu())
        throw Error("under mpirun alexnet-bench times the CPU training step alone (--device cpu)");
      if (batch == 0) batch = dev.is_cpu() ? 8 * world.size : 128;
      if (steps == 0) steps = dev.is_cpu() ? 3 : 50;
      const auto packed = loader->count() > 0 ? open_packed_jpegs(loader_dir) : nullptr;
      auto paper_config = [&] {
        auto paper_sets = sets;
        paper_sets.push_back("data.batch_size=" + std::to_string(batch));
        return load_config("", paper_sets);
      };
      std::vector<std::pair<std::string, Config>> measured;  // label, config
      if (configs.empty() && !packed) {
        measured.emplace_back("paper network (defaults)", paper_config());
        if (std::filesystem::exists("configs/small.yaml"))
          measured.emplace_back("configs/small.yaml", load_config("configs/small.yaml", sets));
      }
      for (const auto& c : configs) measured.emplace_back(c, load_config(c, sets));

      if (dev.is_cpu()) {
        std::printf("## alexnet-bench --device cpu (%u hardware threads)\n",
                    std::thread::hardware_concurrency());
        if (packed) bench_loader(*packed, loader_dir, loader_images);
        if (measured.empty()) return 0;  // --loader alone: the input pipeline only
        const double sgemm = sgemm_gflops();
        std::printf("\nBLAS: %s\nOpenBLAS sgemm 1024x1024x1024: %.1f GFLOP/s (best of 5)\n",
                    cpu::blas_description().c_str(), sgemm);
        for (const auto& [label, config] : measured) bench_config_cpu(label, config, steps, sgemm);
        return 0;
      }
#ifdef ALEXNET_HAVE_CUDA
      const gpu::DeviceInfo info = gpu::device_info(dev.index);
      std::printf(
          "## alexnet-bench --device %s: %s (sm_%d%d, %d SMs at %.2f GHz, fp32 peak %.1f TFLOP/s, "
          "%.0f GiB), %u CPU threads\n%s\n",
          dev.str().c_str(), info.name.c_str(), info.sm_major, info.sm_minor, info.multiprocessors,
          info.clock_ghz, info.fp32_peak_tflops,
          static_cast<double>(info.memory_bytes) / (1024.0 * 1024.0 * 1024.0),
          std::thread::hardware_concurrency(), info.library_versions.c_str());
      if (packed) {
        bench_loader(*packed, loader_dir, loader_images);
        Config e2e = paper_config();
        e2e.data.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        e2e.data.image_size = packed->image_size();
        bench_end_to_end(loader_dir, e2e, steps, dev);
      }
      for (const auto& [label, config] : measured)
        bench_config_cuda(label, config, steps, dev, info);
      // Two GPUs, where there are two, for the paper network.
      if (configs.empty() && !packed && cuda_unavailable_reason(1).empty())
        bench_two_gpus(paper_config(), steps);
#endif
      return 0;
    }();
    dist::finalize_world();
    return status;
  });
}

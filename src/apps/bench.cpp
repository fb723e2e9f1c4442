// alexnet-bench: throughput of the full training step (forward, backward, SGD update) with
// per-layer time and the GFLOP/s each layer reaches, beside the machine's sgemm GFLOP/s.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <thread>

#include "alexnet/config.h"
#include "alexnet/data.h"
#include "alexnet/net.h"
#include "alexnet/sgd.h"
#include "alexnet/train.h"
#include "src/apps/common.h"

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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Measure AlexNet training throughput.", "alexnet-bench"};
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
      ->check(CLI::PositiveNumber);
  return alexnet::run_app(app, argc, argv, [&] {
    using namespace alexnet;
    check_device(device, "--device");
    std::printf("## alexnet-bench --device cpu (%u hardware threads)\n\n",
                std::thread::hardware_concurrency());
    const double sgemm = sgemm_gflops();
    std::printf("OpenBLAS sgemm 1024x1024x1024: %.1f GFLOP/s (best of 5)\n", sgemm);
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

// What each rank of a data-parallel run does beyond one process's work (alexnet/train.h): it
// takes its share of every batch, and sums the gradients with the other ranks.
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "alexnet/dist.h"
#include "alexnet/error.h"
#include "alexnet/ops.h"
#include "alexnet/train.h"
#include "src/comm/gradient_sum.h"
#ifdef ALEXNET_HAVE_CUDA
#include "src/comm/nccl_gradient_sum.h"
#endif

namespace alexnet {

BatchSlice rank_share(int batch) {
  const dist::World& world = dist::world();
  if (batch % world.size != 0)
    throw Error(
        fmt::format("data.batch_size = {} does not divide over {} ranks: make it a "
                    "multiple of {} (each rank takes an equal share of every batch)",
                    batch, world.size, world.size));
  if (world.size == 1) return {};
  return {int64_t{world.rank} * (batch / world.size), batch};
}

double sum_gradients_over_ranks(Net& net, std::vector<float>& flat) {
  if (dist::world().size == 1) return 0;
  const auto start = std::chrono::steady_clock::now();
  auto& params = net.params();
  size_t total = 0;
  for (const auto& p : params) total += static_cast<size_t>(p.grad.numel());
  flat.resize(total);
  size_t at = 0;
  for (auto p = params.rbegin(); p != params.rend(); ++p) {
    std::copy_n(p->grad.data<float>(), p->grad.numel(), flat.data() + at);
    at += static_cast<size_t>(p->grad.numel());
  }
  dist::allreduce_sum(flat.data(), static_cast<int64_t>(total), "the all-reduce of the gradients");
  at = 0;
  for (auto p = params.rbegin(); p != params.rend(); ++p) {
    std::copy_n(flat.data() + at, p->grad.numel(), p->grad.data<float>());
    at += static_cast<size_t>(p->grad.numel());
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

namespace {

// The distinct GPUs of a replica's placement, in tower order.
std::vector<int> replica_gpus(const std::vector<Device>& placement) {
  std::vector<int> gpus;
  for (const Device& d : placement)
    if (!d.is_cpu() && std::find(gpus.begin(), gpus.end(), d.index) == gpus.end())
      gpus.push_back(d.index);
  return gpus;
}

// CPU ranks: the whole sum after backward (sum_gradients_over_ranks).
class MpiGradientSum final : public GradientSum {
 public:
  explicit MpiGradientSum(Net& net) : net_(net) {
    for (const auto& p : net.params()) bytes_ += static_cast<int64_t>(p.grad.nbytes());
  }
  void layer_ready(const std::string&) override {}
  void finish() override {
    const double ms = 1000 * sum_gradients_over_ranks(net_, buffer_);
    timing_ = {ms, ms};
  }
  GradientSumTiming last_timing() const override { return timing_; }
  int64_t bytes() const override { return bytes_; }

 private:
  Net& net_;
  std::vector<float> buffer_;
  GradientSumTiming timing_;
  int64_t bytes_ = 0;
};

}  // namespace

void prepare_gradient_sum() {
  if (dist::world().size == 1) return;
  // Connections made while communicators are set up (where a deadline watches), not lazily in
  // the first all-reduce, where a missing rank would hang this one with no limit.
  ::setenv("NCCL_RUNTIME_CONNECT", "0", 0);
  // Where a replica's two GPUs also run the towers' exchange: NCCL's kernels of both launched
  // in the order they were issued, the same on every rank, so that they never wait for each
  // other crosswise.
  ::setenv("NCCL_LAUNCH_ORDER_IMPLICIT", "1", 0);
}

std::unique_ptr<GradientSum> make_gradient_sum(Net& net, double timeout_s) {
  const dist::World& world = dist::world();
  if (world.size == 1) return nullptr;
  if (net.device().is_cpu()) return std::make_unique<MpiGradientSum>(net);
#ifdef ALEXNET_HAVE_CUDA
  const auto gpus = static_cast<int>(replica_gpus(net.devices()).size());
  // Rank 0 makes the ids; should that fail, every rank is told so instead of waiting for them.
  std::string made;
  if (world.rank == 0) try {
      made = "ids:" + gpu::nccl_unique_ids(gpus);
    } catch (const Error& e) {
      made = std::string("error:") + e.what();
    }
  std::string ids = dist::broadcast(made, "the hand-out of NCCL's ids");
  if (ids.starts_with("error:")) throw dist::AgreedError(ids.substr(6), world.rank == 0);
  ids.erase(0, 4);
  return gpu::make_nccl_gradient_sum(
      net, world.size, world.rank, ids, timeout_s,
      fmt::format("rank {} of {} (host {})", world.rank, world.size, world.host));
#else
  (void)timeout_s;
  throw Error("ranks on GPUs need a build with CUDA and NCCL");
#endif
}

namespace {

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// What kind of replica a placement makes: the ranks must agree on it.
std::string replica_kind(const std::vector<Device>& placement) {
  if (placement.front().is_cpu()) return "the-CPU";
  const size_t gpus = replica_gpus(placement).size();
  return fmt::format("{}-GPU{}", gpus, gpus == 1 ? "" : "s");
}

}  // namespace

std::vector<Device> agreed_rank_placement(std::vector<Device> placement,
                                          const std::string& device_option, const Config& config) {
  const dist::World& world = dist::world();
  if (world.size == 1) return placement;
  std::vector<std::string> visible;  // the bus ids of every GPU this rank sees
  dist::run_agreed([&] {
    if (!placement.front().is_cpu())
      for (int i = 0; i < ops::gpu_count(); ++i) visible.push_back(ops::gpu_bus_id(i));
  });

  // The ranks of this host, and whether the launcher gave them separate GPUs.
  const std::vector<std::string> seen = dist::allgather(
      fmt::format("{} {}", world.host, fmt::join(visible, " ")), "the start-up check of the GPUs");
  bool separate = true;
  std::vector<std::string> taken;
  for (const std::string& line : seen) {
    const std::vector<std::string> w = words(line);
    if (w.empty() || w[0] != world.host) continue;
    for (size_t i = 1; i < w.size(); ++i) {
      if (std::find(taken.begin(), taken.end(), w[i]) != taken.end()) separate = false;
      taken.push_back(w[i]);
    }
  }
  const bool automatic = device_option == "auto" && config.model.devices.size() == 1 &&
                         config.model.devices[0] == "auto";
  dist::run_agreed([&] {
    const auto gpus = static_cast<int>(visible.size());
    placement = place_on_host_share(
        std::move(placement), automatic,
        separate ? HostShare{0, 1, gpus, world.host}
                 : HostShare{world.local_rank, world.local_size, gpus, world.host});
  });

  // What every rank chose: its kind of replica, and the bus ids of its GPUs.
  std::vector<std::string> mine = {world.host, replica_kind(placement)};
  for (const Device& d : placement)
    if (!d.is_cpu() && std::find(mine.begin() + 2, mine.end(),
                                 visible[static_cast<size_t>(d.index)]) == mine.end())
      mine.push_back(visible[static_cast<size_t>(d.index)]);
  const std::vector<std::string> all =
      dist::allgather(fmt::format("{}", fmt::join(mine, " ")), "the start-up check of the GPUs");
  const std::vector<std::string> first = words(all[0]);
  for (size_t r = 0; r < all.size(); ++r) {
    const std::vector<std::string> b = words(all[r]);
    if (b[1] != first[1])
      throw dist::AgreedError(
          fmt::format("rank {} ({}) would train on {} but rank 0 ({}) on {}: every rank must "
                      "place its replica alike (give every rank the same --device, and "
                      "hosts alike)",
                      r, b[0], b[1], first[0], first[1]),
          world.rank == 0);
    for (size_t q = 0; q < r; ++q) {
      const std::vector<std::string> a = words(all[q]);
      if (a[0] != b[0]) continue;  // other hosts
      for (size_t i = 2; i < b.size(); ++i)
        if (std::find(a.begin() + 2, a.end(), b[i]) != a.end())
          throw dist::AgreedError(
              fmt::format("more ranks than GPUs on {}: ranks {} and {} would share the GPU at "
                          "PCI {} (start fewer ranks per node, or give each its own GPUs)",
                          a[0], q, r, b[i]),
              world.rank == 0);
    }
  }
  return placement;
}

uint64_t weights_fingerprint(const Net& net) {
  uint64_t hash = 14695981039346656037ull;  // FNV-1a, 64 bits
  for (const auto& p : net.params()) {
    const Tensor host = p.value.to(Device{});
    const auto* bytes = static_cast<const std::byte*>(host.raw());
    for (size_t i = 0; i < host.nbytes(); ++i)
      hash = (hash ^ static_cast<uint64_t>(bytes[i])) * 1099511628211ull;
  }
  return hash;
}

void check_replicas_agree(const Net& net, int64_t step) {
  if (dist::world().size == 1) return;
  const std::vector<std::string> all = dist::allgather(
      fmt::format("{:016x}", weights_fingerprint(net)), "the comparison of the replicas' weights");
  std::string differ;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) differ += fmt::format("{}{} ({})", differ.empty() ? "" : ", ", r, all[r]);
  if (differ.empty()) return;
  throw dist::AgreedError(
      fmt::format("the replicas' weights drifted apart after step {}: rank(s) {} differ from rank "
                  "0's ({}); the ranks no longer train one network (a fault in a rank's "
                  "hardware or a bug: please report it)",
                  step, differ, all[0]),
      dist::world().rank == 0);
}

}  // namespace alexnet

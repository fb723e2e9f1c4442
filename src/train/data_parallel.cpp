// What each rank of a data-parallel run does beyond one process's work (alexnet/train.h): it
// takes its share of every batch, and sums the gradients with the other ranks.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "alexnet/dist.h"
#include "alexnet/error.h"
#include "alexnet/train.h"

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

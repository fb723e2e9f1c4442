// What each rank of a data-parallel run does beyond one process's work (alexnet/train.h): it
// takes its share of every batch, and sums the gradients with the other ranks.
#include <algorithm>
#include <chrono>
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

}  // namespace alexnet

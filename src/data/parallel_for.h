// A tiny fork-join loop for the data code: f(i) for i in [0, count) on `workers` threads,
// each i done by exactly one thread, so results never depend on the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace alexnet {

template <class F>
void parallel_for(int64_t count, int workers, F&& f) {
  workers = static_cast<int>(std::clamp<int64_t>(workers, 1, std::max<int64_t>(count, 1)));
  if (workers == 1) {
    for (int64_t i = 0; i < count; ++i) f(i);
    return;
  }
  std::vector<std::jthread> threads;
  for (int w = 0; w < workers; ++w)
    threads.emplace_back([&f, w, workers, count] {
      for (int64_t i = w; i < count; i += workers) f(i);
    });
}

}  // namespace alexnet

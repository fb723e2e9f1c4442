// oneTBB behind alexnet/thread_pool.h. Chosen over OpenMP because its one global pool is shared
// by the training thread and the loader's prefetch thread without a team per calling thread,
// nested calls compose, and an exception in a task reaches the caller instead of terminating.
#include "alexnet/thread_pool.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>

namespace alexnet {

int64_t core_count() {
  static const int64_t cores = std::max(1, tbb::info::default_concurrency());
  return cores;
}

void parallel_chunks(int64_t n, int64_t chunks, const std::function<void(int64_t, int64_t)>& body) {
  chunks = std::clamp<int64_t>(chunks, 1, std::max<int64_t>(n, 1));
  if (chunks == 1) {
    body(0, n);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, chunks, 1),
      [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t k = r.begin(); k < r.end(); ++k) body(n * k / chunks, n * (k + 1) / chunks);
      },
      tbb::static_partitioner());
}

void parallel_for(int64_t n, int threads, const std::function<void(int64_t)>& f) {
  // Never more than the cores this process may use (an MPI rank bound to one core has one):
  // oneTBB would refuse the extra slots with a warning on stderr.
  threads = static_cast<int>(
      std::clamp<int64_t>(threads, 1, std::min(std::max<int64_t>(n, 1), core_count())));
  if (threads == 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  // An arena of `threads` slots caps this loop's concurrency (data.workers) inside the pool.
  tbb::task_arena arena(threads);
  arena.execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<int64_t>(0, n, 1),
        [&](const tbb::blocked_range<int64_t>& r) {
          for (int64_t i = r.begin(); i < r.end(); ++i) f(i);
        },
        tbb::simple_partitioner());
  });
}

}  // namespace alexnet

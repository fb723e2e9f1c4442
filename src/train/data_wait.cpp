// The data-wait share: how much of its step time the trainer spent waiting for a batch, and what
// to say when that makes the run input-bound.
#include <fmt/format.h>

#include "alexnet/train.h"

namespace alexnet {

std::string input_bound_warning(double data_wait_share, const Config& config,
                                unsigned hardware_threads) {
  if (!(data_wait_share > kInputBoundShare)) return "";
  std::string advice;
  const int workers = config.data.workers;
  if (hardware_threads == 0 || static_cast<unsigned>(workers) < hardware_threads)
    advice =
        fmt::format("raise data.workers (now {}, {} hardware threads)", workers, hardware_threads);
  else
    advice = fmt::format(
        "data.workers ({}) already uses every hardware thread: a host with more "
        "cores, or a lighter input (smaller data.image_size)",
        workers);
  if (config.data.source == "folder")
    advice += ", or pack the data with alexnet-prep pack (decoded once, read in large blocks)";
  // A packed set larger than the page cache is read image by image from the disk in random order.
  if (config.data.source == "packed" && config.data.order == "random")
    advice +=
        "; if the packed set is larger than RAM, data.order = quasi_random reads it in large "
        "blocks";
  return fmt::format("input-bound: {:.0f}% of step time waiting for data; {}",
                     100 * data_wait_share, advice);
}

}  // namespace alexnet

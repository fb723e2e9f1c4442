// Decoding ahead of the model: while one batch trains, the next one decodes on other threads
// and, for a GPU, is copied to the device as soon as it is decoded. Two loaders (two staging
// buffers, pinned for a GPU) take turns. What a batch holds depends only on (seed,
// epoch, position in the epoch), never on the timing, so prefetching changes no result.
#pragma once

#include <array>
#include <future>
#include <map>
#include <memory>
#include <vector>

#include "alexnet/config.h"
#include "alexnet/data.h"

namespace alexnet {

class Prefetcher {
 public:
  // `device`: where the batches are augmented (the net's device).
  Prefetcher(const DataSource& data, const DataStats& stats, const Config& config, int batch,
             int64_t batches_per_epoch, Device device);

  struct Batch {
    const BatchLoader& loader;  // holds the decoded batch: call augment_train on it
    const int32_t* labels;
    std::vector<BadSample> bad;  // files skipped in this batch
  };
  // Batch `batch` of `epoch` (waiting for it if it is still decoding); with `more`, starts
  // decoding the batch after it.
  Batch get(int epoch, int64_t batch, bool more);

 private:
  const std::vector<int64_t>& order(int epoch);
  void start(int epoch, int64_t batch, int slot);

  const DataSource& data_;
  const Config& config_;
  int batch_;
  int64_t batches_per_epoch_;
  std::array<std::unique_ptr<BatchLoader>, 2> loaders_;
  std::array<std::vector<int32_t>, 2> labels_;
  std::map<int, std::vector<int64_t>> orders_;  // node-based: other epochs' orders stay put
  std::future<std::vector<BadSample>> pending_;
  int pending_epoch_ = -1, pending_slot_ = 0;
  int64_t pending_batch_ = -1;
};

}  // namespace alexnet

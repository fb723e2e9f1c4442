// Decoding ahead of the model: while one batch trains, the next data.prefetch batches decode on a
// pool of data.workers threads that lives as long as the run and takes images one at a time, in
// order, across batch boundaries (a slow image holds up one thread, not a whole batch); on a GPU
// each batch is copied to the device as soon as its last image is decoded. Memory is bounded:
// data.prefetch + 1 staging buffers (pinned, for a GPU), reused in turn. What a batch holds
// depends only on (seed, epoch, position in the epoch), never on the timing or the number of
// threads, so prefetching changes no result.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "alexnet/config.h"
#include "alexnet/data.h"

namespace alexnet {

class Prefetcher {
 public:
  // `device`: where the batches are augmented (the net's device).
  Prefetcher(const DataSource& data, const DataStats& stats, const Config& config, int batch,
             int64_t batches_per_epoch, Device device);
  ~Prefetcher();  // stops the threads (an image being decoded is finished first)
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  struct Batch {
    const BatchLoader& loader;  // holds the decoded batch: call augment_train on it
    const int32_t* labels;
    std::vector<BadSample> bad;  // files skipped in this batch, by index
  };
  // Batch `batch` of `epoch` (waiting for it if it is still decoding); with `more`, the batches
  // after it go on decoding. The batch stays valid until the next call.
  Batch get(int epoch, int64_t batch, bool more);

 private:
  struct Slot {
    std::unique_ptr<BatchLoader> loader;
    std::vector<int32_t> labels;
    int epoch = -1;
    int64_t batch = -1;
    int pending = 0;     // images not decoded yet
    int in_flight = 0;   // images a thread is decoding now
    bool ready = false;  // every image decoded (and, on a GPU, the upload started)
    std::vector<BadSample> bad;
    std::exception_ptr error;
  };
  struct Job {
    size_t slot;
    int position;
    int64_t index;
  };
  const std::vector<int64_t>& order(int epoch);
  // With mutex_ held: a slot neither queued nor held; queue a batch's images into it.
  size_t free_slot() const;
  void queue_batch(int epoch, int64_t batch);
  void work();

  const DataSource& data_;
  const Config& config_;
  int batch_;
  int64_t batches_per_epoch_;
  std::vector<Slot> slots_;
  std::map<int, std::vector<int64_t>> orders_;  // node-based: other epochs' orders stay put
  std::deque<size_t> queued_;                   // slots decoding or decoded, in batch order
  size_t held_ = SIZE_MAX;                      // the slot the last get() returned
  std::deque<Job> jobs_;
  std::mutex mutex_;
  std::condition_variable job_ready_, batch_ready_;
  bool stopping_ = false;
  std::vector<std::jthread> threads_;  // last: joined first, before the slots go
};

}  // namespace alexnet

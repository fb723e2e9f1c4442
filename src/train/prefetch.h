// Decoding ahead of the model: while one batch trains, the next data.prefetch batches decode on a
// pool of data.workers threads that lives as long as the run and takes images one at a time, in
// order, across batch boundaries (a slow image holds up one thread, not a whole batch). For a
// CPU run the thread that decodes an image also augments it (crop, flip, lighting, mean) into
// the batch's input, so the whole per-image path runs on the pool; on a GPU each batch is copied
// to the device as soon as its last image is decoded, and get() queues the fused augmentation
// kernel there. Memory is bounded:
// data.prefetch + 1 staging buffers (pinned, for a GPU), reused in turn. What a batch holds
// depends only on (seed, epoch, position in the epoch), never on the timing or the number of
// threads, so prefetching changes no result.
//
// In data.order: quasi_random the threads also have the packed source read ahead, chunk by chunk
// (DataSource::will_load), every chunk the next window of images will touch, so that the data
// comes off the disk in blocks of data.quasi_random.chunk images rather than image by image.
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
#include "alexnet/net.h"

namespace alexnet {

// data.order: quasi_random reads a packed set in shuffled order; anything else is refused with a
// line saying what to do. (The Prefetcher checks it too; the trainer asks first, before it
// touches the run directory.)
void check_training_order(const Config& config, const DataSource& data);

class Prefetcher {
 public:
  // `device`: where the batches are augmented (the net's device). augment = false: the batches
  // stay uint8 in the staging buffers and Batch::images is empty (alexnet-bench times the
  // decoding alone: what a GPU run's threads do). `slice`: each batch is this rank's `batch`
  // images, positions [slice.first, slice.first + batch) of a global batch of slice.global
  // (data-parallel training); the default is whole batches.
  Prefetcher(const DataSource& data, const DataStats& stats, const Config& config, int batch,
             int64_t batches_per_epoch, Device device, bool augment = true, BatchSlice slice = {});
  ~Prefetcher();  // stops the threads (an image being decoded is finished first)
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  struct Batch {
    const Tensor& images;       // (batch, 3, crop, crop) F32 on the device, augmented for training
    const BatchLoader& loader;  // holds the decoded uint8 batch (for other crops)
    const int32_t* labels;
    std::vector<BadSample> bad;  // files skipped in this batch, by index
  };
  // Batch `batch` of `epoch` (waiting for it if it is still decoding); with `more`, the batches
  // after it go on decoding. The batch stays valid until the next call.
  Batch get(int epoch, int64_t batch, bool more);

 private:
  struct Slot {
    std::unique_ptr<BatchLoader> loader;
    Tensor images;  // a CPU run: the batch augmented, image by image, by the decode threads
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
    size_t slot;  // kReadAhead: not an image but read-ahead advice for [index, index + count)
    int position;
    int64_t index;
    int64_t count = 0;
  };
  static constexpr size_t kReadAhead = SIZE_MAX;
  const std::vector<int64_t>& order(int epoch);
  // With mutex_ held: a slot neither queued nor held; queue a batch's images into it.
  size_t free_slot() const;
  void queue_batch(int epoch, int64_t batch);
  // quasi_random: queues read-ahead advice for the chunks of the images up to one window past
  // `batch`, in order, each chunk once per epoch.
  void read_ahead(int epoch, int64_t batch);
  void work();

  const DataSource& data_;
  const Config& config_;
  int batch_;       // images per batch (this rank's share)
  int64_t stride_;  // images per global batch: batch b starts at position b * stride_
  int64_t first_;   // of which this rank's share starts at this one
  int64_t batches_per_epoch_;
  std::vector<Slot> slots_;
  Tensor device_images_;                        // a GPU run: the batch get() last augmented there
  std::map<int, std::vector<int64_t>> orders_;  // node-based: other epochs' orders stay put
  std::deque<size_t> queued_;                   // slots decoding or decoded, in batch order
  size_t held_ = SIZE_MAX;                      // the slot the last get() returned
  std::deque<Job> jobs_;
  int ahead_epoch_ = 0;             // read-ahead advice is queued for the images before
  int64_t ahead_position_ = 0;      // this position of that epoch's order,
  std::vector<char> ahead_chunks_;  // and these chunks of that epoch have had it
  std::mutex mutex_;
  std::condition_variable job_ready_, batch_ready_;
  bool stopping_ = false;
  std::vector<std::jthread> threads_;  // last: joined first, before the slots go
};

}  // namespace alexnet

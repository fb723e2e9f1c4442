#include "src/train/prefetch.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include "alexnet/error.h"
#include "alexnet/packed.h"

namespace alexnet {

void check_training_order(const Config& config, const DataSource& data) {
  if (config.data.order != "quasi_random") return;
  const auto* packed = dynamic_cast<const PackedDataSource*>(&data);
  if (!packed)
    throw Error("data.order = quasi_random reads a packed set block by block; data.train '" +
                config.data.train +
                "' is not one (use data.source = packed, or data.order = random)");
  // Consecutive images of a set packed class by class share their class: a window of chunks
  // would fill every batch from a few classes.
  if (!packed->shuffled())
    throw Error("data.order = quasi_random needs a packed set in shuffled order, but '" +
                config.data.train +
                "' holds its images in the source's order (class by class); pack it again "
                "(alexnet-prep pack shuffles by default), or use data.order = random");
}

Prefetcher::Prefetcher(const DataSource& data, const DataStats& stats, const Config& config,
                       int batch, int64_t batches_per_epoch, Device device, bool augment,
                       BatchSlice slice)
    : data_(data),
      config_(config),
      batch_(batch),
      stride_(slice.global > 0 ? slice.global : batch),
      first_(slice.first),
      batches_per_epoch_(batches_per_epoch) {
  if (first_ < 0 || first_ + batch_ > stride_)
    throw std::logic_error("Prefetcher: the rank's share lies outside the global batch");
  check_training_order(config, data);
  // One batch with the model, data.prefetch decoding ahead.
  slots_.resize(static_cast<size_t>(config.data.prefetch) + 1);
  for (Slot& s : slots_) {
    s.loader = std::make_unique<BatchLoader>(data, stats, config, batch, device);
    s.labels.resize(static_cast<size_t>(batch));
  }
  const int crop = slots_.front().loader->crop();
  if (augment && device.is_cpu()) {
    for (Slot& s : slots_) s.images = Tensor({batch, 3, crop, crop}, DType::f32);
  } else if (augment) {
    device_images_ = Tensor({batch, 3, crop, crop}, DType::f32, device);
  }
  for (int t = 0; t < config.data.workers; ++t) threads_.emplace_back([this] { work(); });
}

Prefetcher::~Prefetcher() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
    jobs_.clear();
  }
  job_ready_.notify_all();
  threads_.clear();  // joins
}

const std::vector<int64_t>& Prefetcher::order(int epoch) {
  auto it = orders_.find(epoch);
  if (it == orders_.end())
    it = orders_.emplace(epoch, training_order(config_, epoch, data_.size())).first;
  return it->second;
}

size_t Prefetcher::free_slot() const {
  for (size_t i = 0; i < slots_.size(); ++i)
    if (i != held_ && std::find(queued_.begin(), queued_.end(), i) == queued_.end()) return i;
  throw std::logic_error("Prefetcher: no free staging buffer");
}

void Prefetcher::queue_batch(int epoch, int64_t batch) {
  const size_t slot = free_slot();
  Slot& s = slots_[slot];
  s.loader->begin_batch(batch_);
  s.epoch = epoch;
  s.batch = batch;
  s.pending = batch_;
  s.ready = false;
  s.bad.clear();
  s.error = nullptr;
  if (config_.data.order == "quasi_random") read_ahead(epoch, batch);
  const int64_t* indices = order(epoch).data() + batch * stride_ + first_;
  for (int i = 0; i < batch_; ++i) jobs_.push_back({slot, i, indices[i]});
  queued_.push_back(slot);
  job_ready_.notify_all();
}

void Prefetcher::read_ahead(int epoch, int64_t batch) {
  // Whole chunks, for the whole global batch: the images of a chunk are shuffled over every rank.
  const int64_t per_epoch = batches_per_epoch_ * stride_, size = data_.size();
  const int64_t chunk = config_.data.quasi_random.chunk;
  // One window past this batch; at most into the next epoch (a set smaller than a window).
  int until_epoch = epoch;
  int64_t until = (batch + 1) * stride_ + chunk * config_.data.quasi_random.window;
  if (until > per_epoch) {
    until_epoch = epoch + 1;
    until = std::min(until - per_epoch, per_epoch);
  }
  while (std::pair(ahead_epoch_, ahead_position_) < std::pair(until_epoch, until)) {
    if (ahead_position_ == per_epoch) {
      ++ahead_epoch_;
      ahead_position_ = 0;
      std::fill(ahead_chunks_.begin(), ahead_chunks_.end(), 0);
      continue;
    }
    const int64_t first = order(ahead_epoch_)[static_cast<size_t>(ahead_position_++)] / chunk;
    char& advised = ahead_chunks_[static_cast<size_t>(first)];
    if (advised) continue;
    advised = 1;
    jobs_.push_back({kReadAhead, 0, first * chunk, std::min(chunk, size - first * chunk)});
  }
}

void Prefetcher::work() {
  // Decoding runs ahead of the model, so it can yield: one nice level down, it takes the cores
  // the training step leaves idle instead of preempting one of the step's threads (whose share
  // of a statically partitioned op then holds up the others). When it falls behind, the step
  // waits for it and its threads have the cores anyway. (Linux: a thread's own nice value.)
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), getpriority(PRIO_PROCESS, 0) + 1);
  std::unique_lock lock(mutex_);
  for (;;) {
    job_ready_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
    if (stopping_) return;
    const Job job = jobs_.front();
    jobs_.pop_front();
    if (job.slot == kReadAhead) {
      lock.unlock();
      data_.will_load(job.index, job.count);
      lock.lock();
      continue;
    }
    Slot& s = slots_[job.slot];
    ++s.in_flight;
    lock.unlock();
    std::vector<BadSample> bad;
    std::exception_ptr error;
    try {
      s.loader->decode_one(job.position, job.index, &s.labels[static_cast<size_t>(job.position)],
                           bad);
      if (s.images.numel() > 0) s.loader->augment_train_one(job.position, s.epoch, s.images);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    s.bad.insert(s.bad.end(), bad.begin(), bad.end());
    if (error && !s.error) s.error = error;
    if (--s.pending == 0) {
      // The batch's last image: the batch is complete. A GPU loader's copy starts now,
      // overlapping the step still running.
      lock.unlock();
      error = nullptr;
      try {
        s.loader->end_batch(batch_);
        if (!s.error) s.loader->upload();
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      if (error && !s.error) s.error = error;
      s.ready = true;
    }
    if (--s.in_flight == 0) batch_ready_.notify_all();
  }
}

Prefetcher::Batch Prefetcher::get(int epoch, int64_t batch, bool more) {
  std::unique_lock lock(mutex_);
  held_ = SIZE_MAX;  // the caller is done with the batch it held
  // Another batch than the one decoding first (the first call, a resumed run): what was queued is
  // dropped, once the images being decoded for it are done (they write into its buffers).
  if (!queued_.empty() &&
      (slots_[queued_.front()].epoch != epoch || slots_[queued_.front()].batch != batch)) {
    jobs_.clear();
    batch_ready_.wait(lock, [&] {
      return std::all_of(slots_.begin(), slots_.end(),
                         [](const Slot& s) { return s.in_flight == 0; });
    });
    queued_.clear();
  }
  if (queued_.empty()) {
    // The first batch, or a jump to another (a resumed run): reading ahead starts from it.
    ahead_epoch_ = epoch;
    ahead_position_ = batch * stride_;
    const int64_t chunk = config_.data.quasi_random.chunk;
    ahead_chunks_.assign(static_cast<size_t>((data_.size() + chunk - 1) / chunk), 0);
    queue_batch(epoch, batch);
  }
  const size_t slot = queued_.front();
  Slot& s = slots_[slot];
  batch_ready_.wait(lock, [&] { return s.ready && s.in_flight == 0; });
  queued_.pop_front();
  held_ = slot;
  if (s.error) std::rethrow_exception(s.error);
  // The orders of finished epochs are no longer needed (queued images carry their index).
  orders_.erase(orders_.begin(), orders_.lower_bound(epoch));
  if (more) {
    int e = queued_.empty() ? epoch : slots_[queued_.back()].epoch;
    int64_t b = queued_.empty() ? batch : slots_[queued_.back()].batch;
    while (queued_.size() < slots_.size() - 1) {
      if (++b == batches_per_epoch_) b = 0, ++e;
      queue_batch(e, b);
    }
  }
  std::vector<BadSample> bad = s.bad;
  std::sort(bad.begin(), bad.end(),
            [](const BadSample& x, const BadSample& y) { return x.index < y.index; });
  // Augmented by the decode threads (a CPU run), or not at all (augment = false).
  if (device_images_.numel() == 0) return {s.images, *s.loader, s.labels.data(), std::move(bad)};
  lock.unlock();
  s.loader->augment_train(batch_, epoch, device_images_);  // queued behind the batch's upload
  return {device_images_, *s.loader, s.labels.data(), std::move(bad)};
}

}  // namespace alexnet

#include "src/train/prefetch.h"

namespace alexnet {

Prefetcher::Prefetcher(const DataSource& data, const DataStats& stats, const Config& config,
                       int batch, int64_t batches_per_epoch, Device device)
    : data_(data), config_(config), batch_(batch), batches_per_epoch_(batches_per_epoch) {
  for (int s = 0; s < 2; ++s) {
    loaders_[static_cast<size_t>(s)] =
        std::make_unique<BatchLoader>(data, stats, config, batch, device);
    labels_[static_cast<size_t>(s)].resize(static_cast<size_t>(batch));
  }
}

const std::vector<int64_t>& Prefetcher::order(int epoch) {
  auto it = orders_.find(epoch);
  if (it == orders_.end())
    it = orders_.emplace(epoch, epoch_order(config_.seed, epoch, data_.size())).first;
  return it->second;
}

void Prefetcher::start(int epoch, int64_t batch, int slot) {
  const int64_t* indices = order(epoch).data() + batch * batch_;
  BatchLoader* loader = loaders_[static_cast<size_t>(slot)].get();
  int32_t* labels = labels_[static_cast<size_t>(slot)].data();
  const int n = batch_;
  pending_ = std::async(std::launch::async, [loader, indices, labels, n] {
    auto bad = loader->decode(indices, n, labels);
    loader->upload();  // a GPU loader's copy overlaps the step still running
    return bad;
  });
  pending_epoch_ = epoch;
  pending_batch_ = batch;
  pending_slot_ = slot;
}

Prefetcher::Batch Prefetcher::get(int epoch, int64_t batch, bool more) {
  if (!(pending_.valid() && pending_epoch_ == epoch && pending_batch_ == batch))
    start(epoch, batch, pending_.valid() ? 1 - pending_slot_ : 0);  // (a resumed or first batch)
  const int slot = pending_slot_;
  std::vector<BadSample> bad = pending_.get();  // rethrows what the decode threw
  // Orders of finished epochs are no longer needed.
  orders_.erase(orders_.begin(), orders_.lower_bound(epoch));
  if (more) {
    if (batch + 1 < batches_per_epoch_)
      start(epoch, batch + 1, 1 - slot);
    else
      start(epoch + 1, 0, 1 - slot);
  }
  return {*loaders_[static_cast<size_t>(slot)], labels_[static_cast<size_t>(slot)].data(),
          std::move(bad)};
}

}  // namespace alexnet

// The prefetcher's pool of decode threads, which takes images one at a time across batches:
// every batch is the same for 1, 2 and 3 threads and for 1 or 3 batches decoded ahead, across
// epoch boundaries, after a jump to another batch (a resumed run), and with bad files in the
// set, which are reported in the batch where they were met. On the CPU the threads augment each
// image as they decode it, which must give what augmenting the whole batch gives. In
// quasi-random order they also have the source read ahead every chunk a window of images will
// touch, once per epoch, before its images are loaded.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "alexnet/data.h"
#include "alexnet/error.h"
#include "alexnet/packed.h"
#include "image_fixtures.h"
#include "run_binary.h"
#include "src/train/prefetch.h"

namespace alexnet {
namespace {

namespace fs = std::filesystem;

// Two classes of 7 JPEGs of different sizes (the resize costs differ, so threads finish out of
// order), and two bad files.
struct BadTree {
  std::string root = test::temp_dir("prefetch");
  BadTree() {
    uint32_t seed = 1;
    for (const std::string wnid : {"n01440764", "n02119789"}) {
      fs::create_directories(root + "/" + wnid);
      for (int i = 0; i < 7; ++i)
        test::write_jpeg(root + "/" + wnid + "/" + std::to_string(i) + ".JPEG",
                         test::test_pattern(40 + 13 * i, 44 + 7 * i, seed++));
    }
    std::ofstream(root + "/n01440764/3.JPEG", std::ios::trunc) << "not an image";
    test::write_truncated_copy(root + "/n02119789/0.JPEG", root + "/n02119789/5.JPEG", 200);
  }
};

struct Taken {
  std::vector<int32_t> labels;
  std::vector<float> images;
  std::vector<std::string> bad;
  bool operator==(const Taken&) const = default;
};

Config config_of(const BadTree& tree, int workers, int prefetch) {
  Config c;
  c.data.source = "folder";
  c.data.train = tree.root;
  c.data.image_size = 36;
  c.data.workers = workers;
  c.data.prefetch = prefetch;
  c.model.input_size = 32;
  c.model.num_classes = 2;
  return c;
}

DataStats stats_of() {
  DataStats stats;
  stats.size = 36;
  stats.mean.assign(3 * 36 * 36, 100.0f);
  stats.eigval = {1, 0.5f, 0.25f};
  stats.eigvec = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  return stats;
}

constexpr int kBatch = 3;  // 14 images: 4 batches an epoch, 2 images left out
constexpr int kEpochs = 3;

Taken taken_from(const BatchLoader& loader, const int32_t* labels, int epoch) {
  Tensor out({kBatch, 3, 32, 32});
  loader.augment_train(kBatch, epoch, out);
  return {{labels, labels + kBatch}, {out.data<float>(), out.data<float>() + out.numel()}, {}};
}

// Every batch of kEpochs epochs through the prefetcher, in order, from batch `first` of epoch 0.
std::vector<Taken> take_all(const BadTree& tree, int workers, int prefetch, int64_t first = 0) {
  const Config c = config_of(tree, workers, prefetch);
  const auto source = make_source(c, Split::train);
  const DataStats stats = stats_of();
  const int64_t per_epoch = source->size() / kBatch;
  Prefetcher batches(*source, stats, c, kBatch, per_epoch, Device{});
  std::vector<Taken> taken;
  for (int epoch = 0; epoch < kEpochs; ++epoch)
    for (int64_t b = epoch == 0 ? first : 0; b < per_epoch; ++b) {
      const auto batch = batches.get(epoch, b, epoch + 1 < kEpochs || b + 1 < per_epoch);
      // The decode threads augmented each image as they decoded it.
      const float* images = batch.images.data<float>();
      Taken t{{batch.labels, batch.labels + kBatch}, {images, images + batch.images.numel()}, {}};
      for (const auto& bad : batch.bad) t.bad.push_back(fs::path(bad.path).filename().string());
      taken.push_back(std::move(t));
    }
  return taken;
}

// The same batches without the prefetcher: each epoch's order, decoded batch by batch and
// augmented as a batch.
std::vector<Taken> take_directly(const BadTree& tree) {
  const Config c = config_of(tree, 1, 1);
  const auto source = make_source(c, Split::train);
  const DataStats stats = stats_of();
  BatchLoader loader(*source, stats, c, kBatch);
  std::vector<int32_t> labels(kBatch);
  std::vector<Taken> taken;
  for (int epoch = 0; epoch < kEpochs; ++epoch) {
    const auto order = epoch_order(c.seed, epoch, source->size());
    for (int64_t b = 0; b < source->size() / kBatch; ++b) {
      loader.decode(order.data() + b * kBatch, kBatch, labels.data());
      taken.push_back(taken_from(loader, labels.data(), epoch));
    }
  }
  return taken;
}

TEST(Prefetcher, BatchesDoNotDependOnThreadsOrDepth) {
  const BadTree tree;
  const auto reference = take_directly(tree);
  ASSERT_EQ(reference.size(), 12u);
  for (const auto& [workers, prefetch] :
       {std::pair{1, 1}, {2, 1}, {3, 1}, {1, 3}, {2, 3}, {3, 3}}) {
    SCOPED_TRACE(std::to_string(workers) + " threads, " + std::to_string(prefetch) + " ahead");
    const auto taken = take_all(tree, workers, prefetch);
    ASSERT_EQ(taken.size(), reference.size());
    // Both bad files are met in the first epoch and reported with the batch that met them.
    std::vector<std::string> bad;
    for (size_t i = 0; i < 4; ++i) bad.insert(bad.end(), taken[i].bad.begin(), taken[i].bad.end());
    std::sort(bad.begin(), bad.end());
    EXPECT_EQ(bad, (std::vector<std::string>{"3.JPEG", "5.JPEG"}));
    for (size_t i = 0; i < taken.size(); ++i) {
      EXPECT_EQ(taken[i].labels, reference[i].labels) << "batch " << i;
      EXPECT_EQ(taken[i].images, reference[i].images) << "batch " << i;
    }
  }
}

TEST(Prefetcher, AJumpToAnotherBatchGivesThatBatch) {
  // Starting at batch 2 of epoch 0, as a resumed run does: the same batches from there on.
  const BadTree tree;
  const auto all = take_directly(tree);
  const auto from_two = take_all(tree, 2, 2, 2);
  ASSERT_EQ(from_two.size(), all.size() - 2);
  for (size_t i = 0; i < from_two.size(); ++i) {
    EXPECT_EQ(from_two[i].labels, all[i + 2].labels) << "batch " << i;
    EXPECT_EQ(from_two[i].images, all[i + 2].images) << "batch " << i;
  }
}

// A packed set in memory that records what it is asked: read-ahead advice and loads, in order.
class RecordingPackedSource final : public PackedDataSource {
 public:
  RecordingPackedSource(int64_t size, bool shuffled) : size_(size), shuffled_(shuffled) {}
  int64_t size() const override { return size_; }
  int image_size() const override { return 36; }
  const std::vector<std::string>& classes() const override { return classes_; }
  bool raw() const override { return true; }
  bool shuffled() const override { return shuffled_; }
  int64_t source_index(int64_t index) const override { return index; }
  std::vector<uint8_t> stored_bytes(int64_t index) const override {
    std::vector<uint8_t> image(36 * 36 * 3);
    load(index, image.data());
    return image;
  }
  int32_t load(int64_t index, uint8_t* image) const override {
    for (int i = 0; i < 36 * 36 * 3; ++i) image[i] = static_cast<uint8_t>(index * 7 + i % 251);
    const std::lock_guard lock(mutex_);
    events_.push_back({false, index, 1});
    return static_cast<int32_t>(index % 2);
  }
  void will_load(int64_t first, int64_t count) const override {
    const std::lock_guard lock(mutex_);
    events_.push_back({true, first, count});
  }
  struct Event {
    bool advice;
    int64_t first, count;
  };
  std::vector<Event> events() const {
    const std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  int64_t size_;
  bool shuffled_;
  std::vector<std::string> classes_ = {"even", "odd"};
  mutable std::mutex mutex_;
  mutable std::vector<Event> events_;
};

Config quasi_random_config(int workers, int prefetch) {
  Config c;
  c.data.source = "packed";
  c.data.image_size = 36;
  c.data.workers = workers;
  c.data.prefetch = prefetch;
  c.data.order = "quasi_random";
  c.data.quasi_random.chunk = 5;
  c.data.quasi_random.window = 3;
  c.model.input_size = 32;
  c.model.num_classes = 2;
  return c;
}

TEST(Prefetcher, QuasiRandomReadsEachChunkAheadOncePerEpoch) {
  constexpr int64_t kSize = 53;   // 11 chunks of 5 (the last of 3), windows of 15 images
  constexpr int kQuasiBatch = 4;  // 13 batches an epoch, one image left out
  const DataStats stats = stats_of();
  std::vector<std::vector<float>> reference;
  for (const auto& [workers, prefetch] : {std::pair{1, 1}, {3, 1}, {1, 3}, {3, 3}}) {
    SCOPED_TRACE(std::to_string(workers) + " threads, " + std::to_string(prefetch) + " ahead");
    const Config c = quasi_random_config(workers, prefetch);
    const RecordingPackedSource source(kSize, true);
    std::vector<std::vector<float>> taken;
    {
      Prefetcher batches(source, stats, c, kQuasiBatch, kSize / kQuasiBatch, Device{});
      for (int epoch = 0; epoch < 2; ++epoch)
        for (int64_t b = 0; b < kSize / kQuasiBatch; ++b) {
          const auto batch = batches.get(epoch, b, epoch == 0 || b + 1 < kSize / kQuasiBatch);
          Tensor out({kQuasiBatch, 3, 32, 32});
          batch.loader.augment_fixed(kQuasiBatch, center_crop(36, 32), out);
          taken.emplace_back(out.data<float>(), out.data<float>() + out.numel());
          // The batch holds the quasi-random order's images: the centre crop's first value is
          // byte (2 * 36 + 2) * 3 of the image, less the mean (100).
          const auto order = quasi_random_order(c.seed, epoch, kSize, 5, 3);
          for (int i = 0; i < kQuasiBatch; ++i) {
            const int64_t index = order[static_cast<size_t>(b * kQuasiBatch + i)];
            EXPECT_EQ(batch.labels[i], index % 2);
            EXPECT_EQ(out.data<float>()[i * 3 * 32 * 32],
                      static_cast<float>(static_cast<uint8_t>(index * 7 + 222)) - 100.0f);
          }
        }
    }
    if (reference.empty()) reference = taken;
    EXPECT_EQ(taken, reference);

    // The advice, in order: whole chunks; epoch 0's 52 images touch all 11 chunks (each at
    // least 3 images, one left out), so its first 11 pieces of advice are the 11 chunks, once
    // each, then epoch 1's 11, then some of epoch 2's (read ahead past the last batch), each
    // once. With one thread every image's chunk was advised before the image was loaded.
    std::vector<std::multiset<int64_t>> advised(3);
    std::set<int64_t> advised_so_far;
    size_t advice = 0;
    for (const auto& e : source.events()) {
      if (e.advice) {
        EXPECT_EQ(e.first % 5, 0);
        EXPECT_EQ(e.count, std::min<int64_t>(5, kSize - e.first));
        advised[std::min<size_t>(advice++ / 11, 2)].insert(e.first / 5);
        advised_so_far.insert(e.first / 5);
      } else if (workers == 1) {
        EXPECT_TRUE(advised_so_far.count(e.first / 5)) << "image " << e.first << " unadvised";
      }
    }
    std::multiset<int64_t> all;
    for (int64_t k = 0; k < 11; ++k) all.insert(k);
    EXPECT_EQ(advised[0], all);
    EXPECT_EQ(advised[1], all);
    for (const int64_t k : advised[2]) EXPECT_EQ(advised[2].count(k), 1u) << "chunk " << k;
  }
}

TEST(Prefetcher, QuasiRandomNeedsAShuffledPackedSet) {
  const DataStats stats = stats_of();
  const Config c = quasi_random_config(1, 1);
  const RecordingPackedSource in_class_order(20, false);
  std::string e =
      test::error_of([&] { Prefetcher batches(in_class_order, stats, c, 4, 5, Device{}); });
  EXPECT_NE(e.find("needs a packed set in shuffled order"), std::string::npos) << e;
  EXPECT_NE(e.find("pack it again"), std::string::npos) << e;
  const BadTree tree;
  const auto folder = make_source(config_of(tree, 1, 1), Split::train);
  e = test::error_of([&] { Prefetcher batches(*folder, stats, c, 3, 4, Device{}); });
  EXPECT_NE(e.find("reads a packed set block by block"), std::string::npos) << e;
}

}  // namespace
}  // namespace alexnet

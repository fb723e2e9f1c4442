// The training order of an epoch: a permutation fixed by (seed, epoch). Random order is uniform;
// quasi-random order keeps each window's images within its own chunks of consecutive indices,
// so that a packed set is read chunk by chunk, and still visits every index once.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "alexnet/config.h"
#include "alexnet/data.h"

namespace alexnet {
namespace {

bool is_permutation_of_iota(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] != static_cast<int64_t>(i)) return false;
  return true;
}

TEST(EpochOrder, IsAPermutationFixedBySeedAndEpoch) {
  const auto a = epoch_order(1, 0, 1000);
  EXPECT_TRUE(is_permutation_of_iota(a));
  EXPECT_EQ(a, epoch_order(1, 0, 1000));
  EXPECT_NE(a, epoch_order(1, 1, 1000));
  EXPECT_NE(a, epoch_order(2, 0, 1000));
  // Pinned: every run since the first has drawn this order, so a checkpoint of an older run
  // resumes onto the same samples. A change here breaks mid-epoch resume of existing runs.
  EXPECT_EQ(epoch_order(1, 0, 10), (std::vector<int64_t>{3, 6, 5, 0, 4, 8, 9, 1, 7, 2}));
  EXPECT_TRUE(epoch_order(1, 0, 0).empty());
  EXPECT_EQ(epoch_order(1, 0, 1), std::vector<int64_t>{0});
}

TEST(EpochOrder, EachIndexComesFirstAboutEquallyOften) {
  // 5 indices over 2000 epochs: 400 each expected, sd 18; the bounds are 5.5 sd wide.
  std::map<int64_t, int> first;
  for (int epoch = 0; epoch < 2000; ++epoch) ++first[epoch_order(3, epoch, 5)[0]];
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_GT(first[i], 300) << i;
    EXPECT_LT(first[i], 500) << i;
  }
}

// Checks quasi_random_order(seed, epoch, size, chunk, window) against its definition: a
// permutation, whose windows (runs of `window` chunks' worth of images) each hold whole chunks,
// at most `window` of them, every chunk in exactly one window.
void expect_quasi_random(int64_t size, int64_t chunk, int64_t window) {
  SCOPED_TRACE("size " + std::to_string(size) + ", chunk " + std::to_string(chunk) + ", window " +
               std::to_string(window));
  const auto order = quasi_random_order(5, 2, size, chunk, window);
  ASSERT_EQ(static_cast<int64_t>(order.size()), size);
  EXPECT_TRUE(is_permutation_of_iota(order));
  EXPECT_EQ(order, quasi_random_order(5, 2, size, chunk, window));
  const auto chunk_size = [&](int64_t c) { return std::min(chunk, size - c * chunk); };
  std::set<int64_t> seen_chunks;
  size_t p = 0;
  while (p < order.size()) {
    // The window starting at p ends at the first q where the distinct chunks met so far number
    // `window` (or the order ends) and the positions [p, q] are exactly those chunks' images.
    std::set<int64_t> chunks;
    int64_t length = 0;
    size_t q = p;
    for (; q < order.size(); ++q) {
      const int64_t c = order[q] / chunk;
      if (chunks.insert(c).second) length += chunk_size(c);
      if (static_cast<int64_t>(q - p + 1) == length &&
          (static_cast<int64_t>(chunks.size()) == window || q + 1 == order.size()))
        break;
    }
    if (q == order.size()) --q;
    ASSERT_LE(static_cast<int64_t>(chunks.size()), window);
    ASSERT_EQ(static_cast<int64_t>(q - p + 1), length) << "a window's chunks are not whole";
    for (const int64_t c : chunks) EXPECT_TRUE(seen_chunks.insert(c).second) << "chunk " << c;
    p = q + 1;
  }
  EXPECT_EQ(static_cast<int64_t>(seen_chunks.size()), (size + chunk - 1) / chunk);
}

TEST(QuasiRandomOrder, EveryIndexOnceWindowsOfWholeChunks) {
  expect_quasi_random(1000, 16, 4);
  expect_quasi_random(1003, 16, 4);   // a short last chunk
  expect_quasi_random(1003, 16, 7);   // a short last window
  expect_quasi_random(50, 64, 4);     // one chunk
  expect_quasi_random(100, 10, 100);  // one window: a plain shuffle
  expect_quasi_random(37, 1, 5);      // chunks of one image
  expect_quasi_random(0, 8, 2);
}

TEST(QuasiRandomOrder, FixedBySeedAndEpochAndShuffledWithinWindows) {
  const auto a = quasi_random_order(1, 0, 4096, 64, 8);
  EXPECT_NE(a, quasi_random_order(1, 1, 4096, 64, 8));
  EXPECT_NE(a, quasi_random_order(2, 0, 4096, 64, 8));
  // Within a window images of its chunks interleave: no run of one chunk is nearly a chunk long.
  int longest = 0, run = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    run = i > 0 && a[i - 1] / 64 == a[i] / 64 ? run + 1 : 1;
    longest = std::max(longest, run);
  }
  EXPECT_LT(longest, 16);
  // The chunks' order differs from epoch to epoch: the first window's chunks do.
  std::set<int64_t> first0, first1;
  const auto b = quasi_random_order(1, 1, 4096, 64, 8);
  for (size_t i = 0; i < 512; ++i) first0.insert(a[i] / 64), first1.insert(b[i] / 64);
  EXPECT_EQ(first0.size(), 8u);
  EXPECT_NE(first0, first1);
}

TEST(QuasiRandomOrder, EachChunkLeadsAboutEquallyOften) {
  // 4 chunks of 8, windows of 1 chunk, 800 epochs: each chunk comes first 200 times expected,
  // sd 12; the bounds are 5 sd wide.
  std::map<int64_t, int> first;
  for (int epoch = 0; epoch < 800; ++epoch) ++first[quasi_random_order(9, epoch, 32, 8, 1)[0] / 8];
  for (int64_t c = 0; c < 4; ++c) {
    EXPECT_GT(first[c], 140) << c;
    EXPECT_LT(first[c], 260) << c;
  }
}

TEST(TrainingOrder, FollowsDataOrder) {
  Config c;
  c.seed = 4;
  EXPECT_EQ(training_order(c, 3, 500), epoch_order(4, 3, 500));
  c.data.order = "quasi_random";
  c.data.quasi_random.chunk = 20;
  c.data.quasi_random.window = 3;
  EXPECT_EQ(training_order(c, 3, 500), quasi_random_order(4, 3, 500, 20, 3));
}

}  // namespace
}  // namespace alexnet

// The warning at the end of an input-bound epoch: when it is said, and what it advises.
#include <gtest/gtest.h>

#include <string>

#include "alexnet/config.h"
#include "alexnet/train.h"

namespace alexnet {
namespace {

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(DataWait, NothingToSayAtOrBelowTheThreshold) {
  const Config c;
  EXPECT_EQ(input_bound_warning(0.0, c, 16), "");
  EXPECT_EQ(input_bound_warning(0.05, c, 16), "");
  EXPECT_EQ(input_bound_warning(kInputBoundShare, c, 16), "");
}

TEST(DataWait, AnInputBoundFolderRunIsToldToAddWorkersOrPack) {
  Config c;
  c.data.source = "folder";
  c.data.workers = 4;
  const std::string w = input_bound_warning(0.37, c, 16);
  EXPECT_TRUE(has(w, "input-bound: 37% of step time waiting for data")) << w;
  EXPECT_TRUE(has(w, "raise data.workers (now 4, 16 hardware threads)")) << w;
  EXPECT_TRUE(has(w, "alexnet-prep pack")) << w;
}

TEST(DataWait, APackedRunWithEveryThreadBusyIsToldOfQuasiRandomOrderOnly) {
  Config c;
  c.data.source = "packed";
  c.data.workers = 16;
  const std::string w = input_bound_warning(0.5, c, 16);
  EXPECT_TRUE(has(w, "input-bound: 50% of step time")) << w;
  EXPECT_FALSE(has(w, "raise data.workers")) << w;
  EXPECT_TRUE(has(w, "already uses every hardware thread")) << w;
  EXPECT_FALSE(has(w, "alexnet-prep pack")) << w;
  // In random order it may be the disk: quasi-random order reads a packed set in blocks.
  EXPECT_TRUE(has(w, "larger than RAM, data.order = quasi_random")) << w;
  c.data.order = "quasi_random";
  EXPECT_FALSE(has(input_bound_warning(0.5, c, 16), "quasi_random")) << w;
}

}  // namespace
}  // namespace alexnet

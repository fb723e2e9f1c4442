// The configs shipped in configs/ load, and the paper's config is the paper.
#include <gtest/gtest.h>

#include <filesystem>

#include "alexnet/config.h"
#include "alexnet/net.h"
#include "run_binary.h"

namespace alexnet {
namespace {

TEST(Configs, EveryShippedConfigLoadsAndBuildsItsNetwork) {
  int count = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::source_path("configs"))) {
    if (e.path().extension() != ".yaml") continue;
    SCOPED_TRACE(e.path().string());
    const Config c = load_config(e.path().string(), {});
    EXPECT_EQ(c.name, e.path().stem().string());
    EXPECT_NO_THROW(Net(c, 1));
    ++count;
  }
  EXPECT_GE(count, 2);
}

TEST(Configs, Ilsvrc2012IsThePaperAndTheDefaults) {
  Config paper = load_config(test::source_path("configs/ilsvrc2012.yaml"), {});
  const Config defaults = load_config("", {});
  // Everything but where the data lives equals the built-in defaults.
  EXPECT_EQ(paper.model, defaults.model);
  EXPECT_EQ(paper.optim, defaults.optim);
  EXPECT_EQ(paper.augment, defaults.augment);
  EXPECT_EQ(paper.train, defaults.train);
  EXPECT_EQ(paper.data.batch_size, 128);
  EXPECT_EQ(paper.model.lrn.alpha, 1e-4);
  EXPECT_FALSE(paper.model.lrn.alpha_over_n);
}

}  // namespace
}  // namespace alexnet

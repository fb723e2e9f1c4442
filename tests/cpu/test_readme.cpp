// The README's config table is generated from the code's key table; this keeps them in step.
#include <gtest/gtest.h>

#include "alexnet/config.h"
#include "run_binary.h"

namespace alexnet {
namespace {

TEST(Readme, ConfigReferenceMatchesTheCode) {
  const std::string readme = test::read_file(test::source_path("README.md"));
  const std::string begin = "<!-- config-reference:begin -->\n",
                    end = "<!-- config-reference:end -->";
  const auto b = readme.find(begin), e = readme.find(end);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(e, std::string::npos);
  EXPECT_EQ(readme.substr(b + begin.size(), e - b - begin.size()), config_reference_markdown())
      << "regenerate it: ./build/alexnet-train --config-reference";
}

}  // namespace
}  // namespace alexnet

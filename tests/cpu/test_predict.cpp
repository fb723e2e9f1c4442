// alexnet-predict on files, as a user runs it: top-k with class names, ten crops, JSON, and a
// bad file reported without stopping the others.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "image_fixtures.h"
#include "run_binary.h"

namespace alexnet {
namespace {

namespace fs = std::filesystem;

TEST(Predict, TopKWithNamesForEveryFileAndErrorsForBadOnes) {
  const std::string dir = test::temp_dir("predict");
  for (const std::string w : {"n01440764", "n02119789"}) {
    fs::create_directories(dir + "/train/" + w);
    fs::create_directories(dir + "/val/" + w);
    for (uint32_t i = 0; i < 4; ++i)
      test::write_jpeg(dir + "/train/" + w + "/" + std::to_string(i) + ".JPEG",
                       test::test_pattern(40, 40, i + (w[2] == '1' ? 0u : 10u)));
    test::write_jpeg(dir + "/val/" + w + "/v.JPEG", test::test_pattern(40, 40, 99));
  }
  std::ofstream(dir + "/names.txt") << "n01440764 tench, Tinca tinca\nn02119789 kit fox\n";
  auto r = test::run(
      {"alexnet-train", "--config", test::source_path("configs/small.yaml"), "--out", dir + "/run",
       "--set", "data.source=folder", "--set", "data.train=" + dir + "/train", "--set",
       "data.val=" + dir + "/val", "--set", "data.class_names=" + dir + "/names.txt", "--set",
       "model.num_classes=2", "--set", "data.batch_size=4", "--set", "train.max_steps=2"},
      dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string ckpt = dir + "/run/checkpoints/last.safetensors";
  test::write_png(dir + "/a.JPEG", test::test_pattern(50, 30, 5));  // a PNG named .JPEG
  std::ofstream(dir + "/broken.JPEG") << "not an image";

  r = test::run({"alexnet-predict", "--checkpoint", ckpt, "--topk", "2", dir + "/a.JPEG",
                 dir + "/broken.JPEG", dir + "/train/n01440764/0.JPEG"},
                dir);
  EXPECT_EQ(r.exit_code, 1) << "a file failed: the exit status says so";
  EXPECT_NE(r.err.find("broken.JPEG"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("a.JPEG"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tench, Tinca tinca"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kit fox"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("broken.JPEG"), std::string::npos) << r.out;

  r = test::run({"alexnet-predict", "--checkpoint", ckpt, "--crops", "10", "--json",
                 dir + "/a.JPEG", dir + "/train/n02119789/1.JPEG"},
                dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.front(), '[');
  // two images, each with two classes whose probabilities sum to 1
  size_t at = 0;
  int images = 0;
  while ((at = r.out.find("\"image\"", at)) != std::string::npos) ++images, ++at;
  EXPECT_EQ(images, 2) << r.out;
  double sum = 0;
  at = 0;
  while ((at = r.out.find("\"probability\": ", at)) != std::string::npos) {
    at += 15;
    sum += std::stod(r.out.substr(at));
  }
  EXPECT_NEAR(sum, 2.0, 1e-4) << r.out;
}

}  // namespace
}  // namespace alexnet

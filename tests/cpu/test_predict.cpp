// alexnet-predict on files, as a user runs it: top-k with class names, ten crops, JSON, and a
// bad file reported without stopping the others.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "alexnet/checkpoint.h"
#include "alexnet/data.h"
#include "alexnet/image.h"
#include "alexnet/net.h"
#include "alexnet/no_files_source.h"
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

// The probabilities alexnet-predict --json prints read back to exactly the numbers it computed:
// the same image through the same steps (decode, resize, centre crop, forward) in this process.
TEST(Predict, JsonProbabilitiesReadBackBitExactly) {
  const std::string dir = test::temp_dir("predict-json");
  auto r = test::run({"alexnet-train", "--config", test::source_path("configs/small.yaml"), "--out",
                      dir + "/run", "--set", "train.max_steps=3"},
                     dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string ckpt_path = dir + "/run/checkpoints/last.safetensors";
  const std::string image = dir + "/x.JPEG";
  test::write_jpeg(image, test::test_pattern(48, 40, 7));
  r = test::run({"alexnet-predict", "--checkpoint", ckpt_path, "--device", "cpu", "--topk", "10",
                 "--json", image},
                dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto printed = nlohmann::json::parse(r.out);
  ASSERT_EQ(printed.size(), 1u) << r.out;

  const Checkpoint ckpt = read_checkpoint(ckpt_path, {});
  const int S = ckpt.stats.size;
  Net net(ckpt.config, 1);
  load_weights(ckpt, net, false);
  const NoFiles source(S, ckpt.classes);
  BatchLoader loader(source, ckpt.stats, ckpt.config, 1);
  const auto bytes = read_file(image);
  const Image img = resize_shorter_and_center_crop(decode_image(bytes.data(), bytes.size()), S);
  loader.stage(0, img.rgb.data());
  Tensor input({1, 3, net.input_size(), net.input_size()});
  loader.augment_fixed(1, center_crop(S, loader.crop()), input);
  const int32_t label = 0;
  net.forward(input, &label, 1, false, 0, 0);
  const float* probs = net.probs().data<float>();

  const auto& top = printed[0]["top"];
  ASSERT_EQ(top.size(), ckpt.classes.size()) << r.out;
  int smallest = 0;
  for (const auto& entry : top) {
    const auto c = static_cast<size_t>(
        std::find(ckpt.classes.begin(), ckpt.classes.end(), entry["class"].get<std::string>()) -
        ckpt.classes.begin());
    ASSERT_LT(c, ckpt.classes.size()) << entry;
    const double read_back = entry["probability"].get<double>();
    EXPECT_EQ(read_back, double{probs[c]}) << entry << " vs " << probs[c];
    EXPECT_EQ(static_cast<float>(read_back), probs[c]);
    smallest += probs[c] < 0.01f;
  }
  std::printf("%d of %zu probabilities below 0.01 (six decimals would have lost them)\n", smallest,
              top.size());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace alexnet

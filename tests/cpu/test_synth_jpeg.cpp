// alexnet-prep synth-jpeg's tree: the same bytes for any number of workers, every file a JPEG
// of ImageNet's sizes that the loader decodes, and a tree that grows without rewriting.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "alexnet/error.h"
#include "alexnet/image.h"
#include "alexnet/synth_jpeg.h"
#include "tests/cpu/run_binary.h"

namespace alexnet {
namespace {

namespace fs = std::filesystem;

std::map<std::string, std::string> files_under(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file())
      files[fs::relative(e.path(), root).string()] = test::read_file(e.path().string());
  return files;
}

TEST(SynthJpeg, TheSameTreeForAnyWorkerCountAndImageNetSizes) {
  const std::string dir = test::temp_dir("synth-jpeg");
  SynthJpegOptions o{dir + "/one", 2, 8, 7, 1};
  const SynthJpegSummary one = write_synthetic_jpeg_tree(o);
  o.out = dir + "/two";
  o.workers = 2;
  const SynthJpegSummary two = write_synthetic_jpeg_tree(o);
  EXPECT_EQ(one.images, 16);
  EXPECT_EQ(one.bytes, two.bytes);
  const auto a = files_under(dir + "/one"), b = files_under(dir + "/two");
  ASSERT_EQ(a.size(), 16u);
  EXPECT_TRUE(a == b) << "the trees differ";
  EXPECT_TRUE(a.count("class001/img00007.JPEG"));
  for (const auto& [name, bytes] : a) {
    SCOPED_TRACE(name);
    const Image img = decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    const int shorter = std::min(img.width, img.height);
    EXPECT_TRUE((shorter >= 333 && shorter <= 500) || (shorter >= 1000 && shorter <= 2000))
        << img.width << " x " << img.height;
    EXPECT_GE(std::max(img.width, img.height), shorter);
    EXPECT_EQ(bytes, synthetic_jpeg(7, name[7] - '0', std::stoi(name.substr(12, 5))));
  }
  // Photo-sized files: ImageNet's mean is about 110 KB.
  EXPECT_GT(one.bytes / one.images, 40'000);
  // Another seed, other images.
  EXPECT_NE(synthetic_jpeg(8, 0, 0), synthetic_jpeg(7, 0, 0));

  // Growing the tree writes only the new files.
  const auto before = fs::last_write_time(dir + "/one/class000/img00000.JPEG");
  o = {dir + "/one", 3, 8, 7, 2};
  const SynthJpegSummary grown = write_synthetic_jpeg_tree(o);
  EXPECT_EQ(grown.images, 24);
  EXPECT_EQ(fs::last_write_time(dir + "/one/class000/img00000.JPEG"), before);
  EXPECT_EQ(files_under(dir + "/one").size(), 24u);
}

TEST(SynthJpeg, AnUnwritableRootIsOneClearError) {
  const std::string dir = test::temp_dir("synth-jpeg-bad");
  std::ofstream(dir + "/file") << "x";
  try {
    write_synthetic_jpeg_tree({dir + "/file/tree", 1, 1, 1, 1});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/file/tree"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace alexnet

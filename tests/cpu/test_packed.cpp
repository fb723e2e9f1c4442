// Packed datasets on a small JPEG tree made at test time: what a pack writes reads back as the
// folder source's images (within JPEG loss, or exactly when raw), bad files are left out and
// reported, the bytes do not depend on the number of workers, an interrupted pack resumes to the
// same bytes, and a missing, foreign or mismatched packed set is refused with a useful error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>

#include "alexnet/data.h"
#include "alexnet/error.h"
#include "alexnet/packed.h"
#include "alexnet/safetensors.h"
#include "image_fixtures.h"
#include "run_binary.h"

namespace alexnet {
namespace {

namespace fs = std::filesystem;
using test::error_of;

constexpr int kSize = 36;

// train/<wnid>/<wnid>_<i>.JPEG, five per class, plus a truncated file in the first class and an
// empty one in the second: 17 samples, of which 5 and 11 (the last of their folders) are bad.
struct Tree {
  std::string root;
  std::vector<std::string> wnids = {"n02119789", "n01440764", "n03000134"};

  explicit Tree(const std::string& name) : root(test::temp_dir(name)) {
    uint32_t seed = 1;
    for (const auto& w : wnids) {
      fs::create_directories(root + "/train/" + w);
      for (int i = 0; i < 5; ++i)
        test::write_jpeg(root + "/train/" + w + "/" + w + "_" + std::to_string(i) + ".JPEG",
                         test::test_pattern(48, 40, seed++));
    }
    test::write_truncated_copy(root + "/train/n01440764/n01440764_0.JPEG",
                               root + "/train/n01440764/x_truncated.JPEG", 300);
    test::write_bytes(root + "/train/n02119789/y_empty.JPEG", {});
  }

  Config config() const {
    Config c;
    c.data.source = "folder";
    c.data.train = root + "/train";
    c.data.image_size = kSize;
    return c;
  }
};

const std::vector<int64_t> kBad = {5, 11};

PackOptions options(const std::string& dir, int workers = 2) {
  PackOptions o;
  o.out_dir = dir;
  o.quality = 95;
  o.images_per_shard = 4;
  o.workers = workers;
  return o;
}

PackReport pack(const DataSource& source, const PackOptions& o) {
  return pack_source(source, o, nullptr);
}

// Every file of a directory by name.
std::map<std::string, std::string> files_of(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    files[e.path().filename().string()] = test::read_file(e.path().string());
  return files;
}

std::vector<std::string> names_of(const std::map<std::string, std::string>& files) {
  std::vector<std::string> names;
  for (const auto& [name, bytes] : files) names.push_back(name);
  return names;
}

Image load(const DataSource& source, int64_t i, int32_t* label) {
  Image image{kSize, kSize, std::vector<uint8_t>(kSize * kSize * 3)};
  *label = source.load(i, image.rgb.data());
  return image;
}

// The packed set against the folder source it came from: same classes, every good sample once
// (in the source's order unless shuffled) with its label, images equal within `tolerance` (mean
// absolute difference).
void expect_matches(const DataSource& folder, const PackedDataSource& packed, double tolerance) {
  EXPECT_EQ(packed.classes(), folder.classes());
  EXPECT_EQ(packed.class_names(), folder.class_names());
  EXPECT_EQ(packed.image_size(), kSize);
  ASSERT_EQ(packed.size(), folder.size() - static_cast<int64_t>(kBad.size()));
  std::vector<int64_t> sources;
  for (int64_t k = 0; k < packed.size(); ++k) {
    const int64_t i = packed.source_index(k);
    sources.push_back(i);
    ASSERT_TRUE(i >= 0 && i < folder.size()) << i;
    int32_t want_label = -1, got_label = -1;
    const Image want = load(folder, i, &want_label), got = load(packed, k, &got_label);
    EXPECT_EQ(got_label, want_label) << packed.describe(k);
    if (tolerance == 0) {
      EXPECT_EQ(got.rgb, want.rgb) << packed.describe(k);
    } else {
      EXPECT_LT(test::mean_abs_diff(got, want), tolerance) << packed.describe(k);
    }
  }
  if (!packed.shuffled()) {
    EXPECT_TRUE(std::is_sorted(sources.begin(), sources.end()));
  }
  std::sort(sources.begin(), sources.end());
  std::vector<int64_t> good;
  for (int64_t i = 0; i < folder.size(); ++i)
    if (std::find(kBad.begin(), kBad.end(), i) == kBad.end()) good.push_back(i);
  EXPECT_EQ(sources, good);
}

TEST(Pack, ReadsBackAsTheFolderSourceWithBadFilesLeftOut) {
  const Tree tree("pack-basic");
  const auto folder = make_folder_source(tree.config(), Split::train, nullptr);
  ASSERT_EQ(folder->size(), 17);
  const std::string dir = tree.root + "/packed";
  std::vector<std::pair<int64_t, int64_t>> calls;
  const PackReport report = pack_source(
      *folder, options(dir), [&](int64_t done, int64_t total) { calls.emplace_back(done, total); });
  EXPECT_EQ(report.written, 15);
  EXPECT_EQ(report.reused, 0);
  ASSERT_EQ(report.bad.size(), 2u);
  EXPECT_EQ(report.bad[0].index, 5);
  EXPECT_NE(report.bad[0].path.find("x_truncated.JPEG"), std::string::npos);
  EXPECT_EQ(report.bad[1].index, 11);
  EXPECT_NE(report.bad[1].path.find("y_empty.JPEG"), std::string::npos);
  for (const auto& b : report.bad) EXPECT_FALSE(b.reason.empty()) << b.path;
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), std::make_pair(int64_t{17}, int64_t{17}));
  for (size_t i = 1; i < calls.size(); ++i) EXPECT_LE(calls[i - 1].first, calls[i].first);

  // 17 samples, 4 a shard: 5 shards, each with its index, and the whole index.
  EXPECT_EQ(names_of(files_of(dir)),
            (std::vector<std::string>{
                "index.safetensors", "shard-00000.bin", "shard-00000.safetensors",
                "shard-00001.bin", "shard-00001.safetensors", "shard-00002.bin",
                "shard-00002.safetensors", "shard-00003.bin", "shard-00003.safetensors",
                "shard-00004.bin", "shard-00004.safetensors"}));
  const SafetensorsFile index = read_safetensors(dir + "/index.safetensors");
  EXPECT_EQ(index.metadata.at("format"), "alexnet-packed/1");
  EXPECT_EQ(index.metadata.at("classes"), "n01440764\nn02119789\nn03000134");
  EXPECT_EQ(index.metadata.at("encoding"), "jpeg");
  EXPECT_EQ(index.metadata.at("quality"), "95");
  EXPECT_EQ(index.metadata.at("image_size"), "36");
  EXPECT_EQ(index.metadata.at("skipped"), "2");
  EXPECT_EQ(index.metadata.at("order"), "shuffled");
  EXPECT_EQ(index.find("shard")->shape, (std::vector<int64_t>{15}));
  EXPECT_EQ(index.find("offset")->dtype, "I64");

  const auto packed = make_packed_source(dir, &folder->classes());
  EXPECT_TRUE(packed->shuffled());
  expect_matches(*folder, *packed, 3.0);
  int32_t shard4 = -1;
  std::memcpy(&shard4, index.find("shard")->data.data() + 4 * sizeof shard4, sizeof shard4);
  EXPECT_EQ(packed->describe(4), dir + "/shard-0000" + std::to_string(shard4) + ".bin#4");
}

// The default order is a fixed permutation of the source, so that any run of consecutive packed
// images is a random sample (quasi-random reading needs that); --order source keeps the source's
// class-by-class order, and so does a pack written before packs were shuffled.
TEST(Pack, ShuffledByDefaultInAFixedOrder) {
  const Tree tree("pack-order");
  const auto folder = make_folder_source(tree.config(), Split::train, nullptr);
  pack(*folder, options(tree.root + "/a"));
  pack(*folder, options(tree.root + "/b", 3));
  const auto a = make_packed_source(tree.root + "/a", nullptr);
  std::vector<int64_t> order;
  for (int64_t k = 0; k < a->size(); ++k) order.push_back(a->source_index(k));
  EXPECT_FALSE(std::is_sorted(order.begin(), order.end()));
  // Labels 0,0,0,0,0,1,...: a shuffled pack mixes them (5 runs of one label at most 5 long).
  int longest = 0, run = 0;
  for (int64_t k = 0; k < a->size(); ++k) {
    run = k > 0 && a->source_index(k - 1) / 6 == a->source_index(k) / 6 ? run + 1 : 1;
    longest = std::max(longest, run);
  }
  EXPECT_LT(longest, 4);
  EXPECT_TRUE(files_of(tree.root + "/a") == files_of(tree.root + "/b"));

  PackOptions in_order = options(tree.root + "/source");
  in_order.shuffle = false;
  pack(*folder, in_order);
  const auto source = make_packed_source(in_order.out_dir, nullptr);
  EXPECT_FALSE(source->shuffled());
  expect_matches(*folder, *source, 3.0);
  const SafetensorsFile index = read_safetensors(in_order.out_dir + "/index.safetensors");
  EXPECT_EQ(index.metadata.at("order"), "source");
  // An index without the key reads as the source's order.
  std::map<std::string, std::string> metadata = index.metadata;
  metadata.erase("order");
  std::vector<SafetensorsView> views;
  for (const auto& [name, t] : index.tensors)
    views.push_back({name, t.dtype, t.shape, t.data.data(), t.data.size()});
  write_safetensors(in_order.out_dir + "/index.safetensors", views, metadata);
  EXPECT_FALSE(make_packed_source(in_order.out_dir, nullptr)->shuffled());
  metadata["order"] = "sideways";
  write_safetensors(in_order.out_dir + "/index.safetensors", views, metadata);
  const std::string e = error_of([&] { make_packed_source(in_order.out_dir, nullptr); });
  EXPECT_NE(e.find("unknown order 'sideways'"), std::string::npos) << e;
}

TEST(Pack, RawPixelsAreExact) {
  const Tree tree("pack-raw");
  const auto folder = make_folder_source(tree.config(), Split::train, nullptr);
  PackOptions o = options(tree.root + "/packed");
  o.raw = true;
  EXPECT_EQ(pack(*folder, o).written, 15);
  const auto packed = make_packed_source(o.out_dir, nullptr);
  expect_matches(*folder, *packed, 0);
  EXPECT_EQ(read_safetensors(o.out_dir + "/index.safetensors").metadata.at("encoding"), "raw");
}

// stored_bytes() hands out what load() decodes (alexnet-bench times OpenCV on them).
TEST(PackedSource, StoredBytesAreWhatLoadDecodes) {
  const Tree tree("pack-stored");
  const auto folder = make_folder_source(tree.config(), Split::train, nullptr);
  PackOptions o = options(tree.root + "/jpeg");
  pack(*folder, o);
  const auto jpeg = make_packed_source(o.out_dir, nullptr);
  EXPECT_FALSE(jpeg->raw());
  o.raw = true;
  o.out_dir = tree.root + "/raw";
  pack(*folder, o);
  const auto raw = make_packed_source(o.out_dir, nullptr);
  EXPECT_TRUE(raw->raw());
  for (int64_t i = 0; i < jpeg->size(); ++i) {
    int32_t label = -1;
    const std::vector<uint8_t> bytes = jpeg->stored_bytes(i);
    EXPECT_EQ(decode_image(bytes.data(), bytes.size()).rgb, load(*jpeg, i, &label).rgb) << i;
    EXPECT_EQ(raw->stored_bytes(i), load(*raw, i, &label).rgb) << i;
  }
  EXPECT_THROW(jpeg->stored_bytes(jpeg->size()), std::out_of_range);
  EXPECT_THROW(jpeg->stored_bytes(-1), std::out_of_range);
}

TEST(Pack, BytesDoNotDependOnTheWorkerCount) {
  const Tree tree("pack-workers");
  const auto folder = make_folder_source(tree.config(), Split::train, nullptr);
  pack(*folder, options(tree.root + "/one", 1));
  pack(*folder, options(tree.root + "/three", 3));
  const auto one = files_of(tree.root + "/one"), three = files_of(tree.root + "/three");
  EXPECT_EQ(one.size(), 11u);
  EXPECT_TRUE(one == three);
}

TEST(Pack, AnInterruptedPackResumesToTheSameBytes) {
  const Tree tree("pack-resume");
  const auto folder = make_folder_source(tree.config(), Split::train, nullptr);
  const std::string dir = tree.root + "/packed";
  pack(*folder, options(dir));
  const auto fresh = files_of(dir);

  // As if killed while writing the last shard: its files and the index are missing, a
  // temporary is left over.
  const int64_t in_last =
      read_safetensors(dir + "/shard-00004.safetensors").find("sample")->shape[0];
  fs::remove(dir + "/shard-00004.bin");
  fs::remove(dir + "/shard-00004.safetensors");
  fs::remove(dir + "/index.safetensors");
  test::write_bytes(dir + "/shard-00004.bin.tmp", {1, 2, 3});
  PackReport report = pack(*folder, options(dir, 3));
  EXPECT_EQ(report.reused, 15 - in_last);  // the good samples of shards 0-3
  EXPECT_EQ(report.written, 15);
  ASSERT_EQ(report.bad.size(), 2u);  // also those of reused shards
  EXPECT_EQ(report.bad[1].index, 11);
  EXPECT_NE(report.bad[1].path.find("y_empty.JPEG"), std::string::npos);
  EXPECT_TRUE(files_of(dir) == fresh);

  // A complete pack is all reused.
  EXPECT_EQ(pack(*folder, options(dir)).reused, 15);
  EXPECT_TRUE(files_of(dir) == fresh);

  // Other options: nothing is reused, and the result is what a fresh pack with them writes.
  PackOptions other = options(dir);
  other.quality = 80;
  report = pack(*folder, other);
  EXPECT_EQ(report.reused, 0);
  other.out_dir = tree.root + "/fresh80";
  pack(*folder, other);
  EXPECT_TRUE(files_of(dir) == files_of(other.out_dir));

  // Fewer images per shard, then more: no shard file of the old layout is left behind.
  other.images_per_shard = 20;
  other.out_dir = dir;
  pack(*folder, other);
  EXPECT_EQ(names_of(files_of(dir)),
            (std::vector<std::string>{"index.safetensors", "shard-00000.bin",
                                      "shard-00000.safetensors"}));
  expect_matches(*folder, *make_packed_source(dir, nullptr), 8.0);  // quality 80, 4:2:0
}

TEST(PackedSource, AMissingOrForeignIndexSaysToRunPack) {
  const Tree tree("pack-missing");
  const std::string dir = tree.root + "/packed";
  std::string e = error_of([&] { make_packed_source(dir, nullptr); });
  EXPECT_NE(e.find("packed dataset '" + dir + "'"), std::string::npos) << e;
  EXPECT_NE(e.find("alexnet-prep pack"), std::string::npos) << e;

  fs::create_directories(dir);
  e = error_of([&] { make_packed_source(dir, nullptr); });
  EXPECT_NE(e.find("packed dataset '" + dir + "'"), std::string::npos) << e;
  EXPECT_NE(e.find("index.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("alexnet-prep pack"), std::string::npos) << e;

  test::write_bytes(dir + "/index.safetensors", {'n', 'o', 't', ' ', 'o', 'n', 'e'});
  e = error_of([&] { make_packed_source(dir, nullptr); });
  EXPECT_NE(e.find("packed dataset '" + dir + "'"), std::string::npos) << e;
  EXPECT_NE(e.find("alexnet-prep pack"), std::string::npos) << e;

  // A valid safetensors file, but a checkpoint's, not a packed index.
  const float w = 1.0f;
  write_safetensors(dir + "/index.safetensors", {{"conv1.w", "F32", {1}, &w, 4}},
                    {{"format", "pt"}});
  e = error_of([&] { make_packed_source(dir, nullptr); });
  EXPECT_NE(e.find("alexnet-packed/1"), std::string::npos) << e;
  EXPECT_NE(e.find("alexnet-prep pack"), std::string::npos) << e;
}

TEST(PackedSource, ATruncatedShardIsRefusedWhenOpened) {
  const Tree tree("pack-truncated");
  const auto folder = make_folder_source(tree.config(), Split::train, nullptr);
  const std::string dir = tree.root + "/packed";
  pack(*folder, options(dir));
  fs::resize_file(dir + "/shard-00002.bin", fs::file_size(dir + "/shard-00002.bin") - 1);
  const std::string e = error_of([&] { make_packed_source(dir, nullptr); });
  EXPECT_NE(e.find("shard-00002.bin"), std::string::npos) << e;
}

TEST(PackedSource, ClassesMustMatchTheExpectedOnes) {
  const Tree tree("pack-classes");
  const auto folder = make_folder_source(tree.config(), Split::train, nullptr);
  const std::string dir = tree.root + "/packed";
  pack(*folder, options(dir));
  const std::vector<std::string> other = {"n01440764", "n02119789", "n09999999"};
  std::string e = error_of([&] { make_packed_source(dir, &other); });
  EXPECT_NE(e.find("packed dataset '" + dir + "'"), std::string::npos) << e;
  EXPECT_NE(e.find("class 2"), std::string::npos) << e;
  EXPECT_NE(e.find("n09999999"), std::string::npos) << e;
  const std::vector<std::string> fewer = {"n01440764", "n02119789"};
  e = error_of([&] { make_packed_source(dir, &fewer); });
  EXPECT_NE(e.find("n03000134"), std::string::npos) << e;
}

TEST(Pack, AnUnwritableOutputDirectoryIsAnErrorNamingIt) {
  const Tree tree("pack-unwritable");
  const auto folder = make_folder_source(tree.config(), Split::train, nullptr);
  test::write_bytes(tree.root + "/a_file", {1});
  const std::string dir = tree.root + "/a_file/packed";
  const std::string e = error_of([&] { pack(*folder, options(dir)); });
  EXPECT_NE(e.find(dir), std::string::npos) << e;
}

}  // namespace
}  // namespace alexnet

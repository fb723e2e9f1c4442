// ImageNet's layouts and faults on small JPEG trees made at test time: class folders, flat val
// sets with either labels file, class names, bad files skipped and counted, and batches that do
// not depend on the number of decode threads.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "alexnet/data.h"
#include "alexnet/error.h"
#include "alexnet/safetensors.h"
#include "image_fixtures.h"
#include "run_binary.h"

namespace alexnet {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::JpegKind;

// train/<wnid>/<wnid>_<i>.JPEG for three classes, plus val either per class or flat.
struct Tree {
  std::string root;
  std::vector<std::string> wnids = {"n02119789", "n01440764", "n03000134"};  // unsorted on purpose

  explicit Tree(const std::string& name) : root(test::temp_dir(name)) {
    uint32_t seed = 1;
    for (const auto& w : wnids) {
      fs::create_directories(root + "/train/" + w);
      fs::create_directories(root + "/val/" + w);
      for (int i = 0; i < 4; ++i)
        test::write_jpeg(root + "/train/" + w + "/" + w + "_" + std::to_string(i) + ".JPEG",
                         test::test_pattern(48, 40, seed++));
      test::write_jpeg(root + "/val/" + w + "/ILSVRC2012_val_" + w + ".JPEG",
                       test::test_pattern(40, 48, seed++));
    }
    fs::create_directories(root + "/flat");
    for (int i = 1; i <= 3; ++i)
      test::write_jpeg(root + "/flat/ILSVRC2012_val_0000000" + std::to_string(i) + ".JPEG",
                       test::test_pattern(50, 50, seed++));
  }

  Config config() const {
    Config c;
    c.data.source = "folder";
    c.data.train = root + "/train";
    c.data.val = root + "/val";
    c.data.image_size = 36;
    c.model.input_size = 32;
    c.model.num_classes = 3;
    c.data.workers = 2;
    return c;
  }
};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(FolderSource, ClassesAreTheSortedTrainFoldersAndLabelsFollowThem) {
  const Tree tree("folders");
  const Config c = tree.config();
  const auto train = make_source(c, Split::train);
  EXPECT_EQ(train->classes(), (std::vector<std::string>{"n01440764", "n02119789", "n03000134"}));
  ASSERT_EQ(train->size(), 12);
  std::vector<uint8_t> image(36 * 36 * 3);
  for (int64_t i = 0; i < train->size(); ++i) {
    const int32_t label = train->load(i, image.data());
    // the file's own name says its class
    EXPECT_NE(train->describe(i).find("/" + train->classes()[static_cast<size_t>(label)] + "_"),
              std::string::npos)
        << train->describe(i);
  }
  const auto val = make_source(c, Split::val, &train->classes());
  ASSERT_EQ(val->size(), 3);
  for (int64_t i = 0; i < 3; ++i)
    EXPECT_NE(
        val->describe(i).find(val->classes()[static_cast<size_t>(val->load(i, image.data()))]),
        std::string::npos);
}

TEST(FolderSource, FlatValWithKaggleCsvOrTwoColumnLabels) {
  const Tree tree("flat");
  Config c = tree.config();
  c.data.val = tree.root + "/flat";
  std::vector<uint8_t> image(36 * 36 * 3);
  // Kaggle: the label is the first wnid of the prediction string.
  write_text(tree.root + "/LOC_val_solution.csv",
             "ImageId,PredictionString\n"
             "ILSVRC2012_val_00000002,n03000134 1 2 30 40 n01440764 3 4 5 6\n"
             "ILSVRC2012_val_00000001,n02119789 10 10 20 20\n"
             "ILSVRC2012_val_00000003,n01440764 0 0 9 9\n");
  c.data.val_labels = tree.root + "/LOC_val_solution.csv";
  auto val = make_source(c, Split::val);
  ASSERT_EQ(val->size(), 3);
  EXPECT_EQ(val->load(0, image.data()), 1);  // _00000001: n02119789
  EXPECT_EQ(val->load(1, image.data()), 2);  // _00000002: n03000134
  EXPECT_EQ(val->load(2, image.data()), 0);  // _00000003: n01440764

  write_text(tree.root + "/val.txt",
             "ILSVRC2012_val_00000001.JPEG n01440764\nILSVRC2012_val_00000002.JPEG "
             "n01440764\nILSVRC2012_val_00000003.JPEG n03000134\n");
  c.data.val_labels = tree.root + "/val.txt";
  val = make_source(c, Split::val);
  EXPECT_EQ(val->load(0, image.data()), 0);
  EXPECT_EQ(val->load(2, image.data()), 2);
}

TEST(FolderSource, AMissingOrForeignValLabelIsAnErrorNamingTheFile) {
  const Tree tree("badlabels");
  Config c = tree.config();
  c.data.val = tree.root + "/flat";
  write_text(tree.root + "/val.txt",
             "ILSVRC2012_val_00000001.JPEG n01440764\nILSVRC2012_val_00000002.JPEG n01440764\n");
  c.data.val_labels = tree.root + "/val.txt";
  std::string e = error_of([&] { make_source(c, Split::val); });
  EXPECT_NE(e.find("ILSVRC2012_val_00000003.JPEG"), std::string::npos) << e;
  EXPECT_NE(e.find("no label"), std::string::npos) << e;

  write_text(tree.root + "/val.txt",
             "ILSVRC2012_val_00000001.JPEG n01440764\nILSVRC2012_val_00000002.JPEG n09999999\n"
             "ILSVRC2012_val_00000003.JPEG n01440764\n");
  e = error_of([&] { make_source(c, Split::val); });
  EXPECT_NE(e.find("ILSVRC2012_val_00000002.JPEG"), std::string::npos) << e;
  EXPECT_NE(e.find("n09999999"), std::string::npos) << e;

  // A class folder in val that training never saw.
  fs::create_directories(tree.root + "/val/n09999999");
  test::write_jpeg(tree.root + "/val/n09999999/x.JPEG", test::test_pattern(40, 40, 99));
  c = tree.config();
  e = error_of([&] { make_source(c, Split::val); });
  EXPECT_NE(e.find("n09999999"), std::string::npos) << e;

  // A flat val folder without a labels file says which key to set.
  c.data.val = tree.root + "/flat";
  e = error_of([&] { make_source(c, Split::val); });
  EXPECT_NE(e.find("data.val_labels"), std::string::npos) << e;
}

TEST(FolderSource, ClassNamesFromSynsetMappingOrWordsTxt) {
  const Tree tree("names");
  Config c = tree.config();
  write_text(tree.root + "/LOC_synset_mapping.txt",
             "n01440764 tench, Tinca tinca\nn02119789 kit fox, Vulpes macrotis\n");
  c.data.class_names = tree.root + "/LOC_synset_mapping.txt";
  auto train = make_source(c, Split::train);
  EXPECT_EQ(train->class_names(),
            (std::vector<std::string>{"tench, Tinca tinca", "kit fox, Vulpes macrotis",
                                      "n03000134"}));  // unnamed: its wnid
  write_text(tree.root + "/words.txt", "n03000134\tchainlink fence\n");
  c.data.class_names = tree.root + "/words.txt";
  train = make_source(c, Split::train);
  EXPECT_EQ(train->class_names()[2], "chainlink fence");
}

// ImageNet's awkward files: CMYK, grayscale, progressive and a PNG named .JPEG decode; empty,
// truncated and non-image files are skipped, reported with their path, and replaced by the next
// good sample in dataset order.
TEST(BatchLoader, DecodesOddFilesAndSkipsBadOnes) {
  const std::string root = test::temp_dir("badfiles");
  const std::string dir = root + "/train/n01440764";
  fs::create_directories(dir);
  const Image img = test::test_pattern(60, 44, 7);
  test::write_jpeg(dir + "/a_rgb.JPEG", img);
  test::write_jpeg(dir + "/b_cmyk.JPEG", img, 95, JpegKind::kCmyk);
  test::write_jpeg(dir + "/c_gray.JPEG", img, 95, JpegKind::kGrayscale);
  test::write_jpeg(dir + "/d_progressive.JPEG", img, 95, JpegKind::kProgressive);
  test::write_png(dir + "/e_png_named.JPEG", img);
  test::write_truncated_copy(dir + "/a_rgb.JPEG", dir + "/f_truncated.JPEG", 300);
  write_text(dir + "/g_empty.JPEG", "");
  write_text(dir + "/h_text.JPEG", "this is not an image\n");
  fs::create_directories(root + "/train/n02119789");
  test::write_jpeg(root + "/train/n02119789/z.JPEG", test::test_pattern(44, 60, 8));

  Config c;
  c.data.source = "folder";
  c.data.train = root + "/train";
  c.data.image_size = 36;
  c.model.input_size = 32;
  c.model.num_classes = 2;
  c.augment.lighting = 0;
  const auto source = make_source(c, Split::train);
  ASSERT_EQ(source->size(), 9);
  DataStats stats;
  stats.size = 36;
  stats.mean.assign(3 * 36 * 36, 0.0f);
  stats.eigval = {1, 1, 1};
  stats.eigvec = {1, 0, 0, 0, 1, 0, 0, 0, 1};

  std::vector<int64_t> all(9);
  for (int i = 0; i < 9; ++i) all[static_cast<size_t>(i)] = i;
  std::vector<std::vector<float>> outputs;
  for (int workers : {1, 2, 3}) {
    c.data.workers = workers;
    BatchLoader loader(*source, stats, c, 9);
    std::vector<int32_t> labels(9);
    const auto bad = loader.decode(all.data(), 9, labels.data());
    ASSERT_EQ(bad.size(), 3u);
    EXPECT_NE(bad[0].path.find("f_truncated.JPEG"), std::string::npos);
    EXPECT_NE(bad[1].path.find("g_empty.JPEG"), std::string::npos);
    EXPECT_NE(bad[2].path.find("h_text.JPEG"), std::string::npos);
    for (const auto& b : bad) EXPECT_FALSE(b.reason.empty());
    // the three bad slots took the next good sample in dataset order: z.JPEG (class 1)
    EXPECT_EQ(labels, (std::vector<int32_t>{0, 0, 0, 0, 0, 1, 1, 1, 1}));
    Tensor out({9, 3, 32, 32});
    loader.augment_train(9, 0, out);
    outputs.emplace_back(out.data<float>(), out.data<float>() + out.numel());
    // A known bad file is not read again.
    EXPECT_TRUE(loader.decode(all.data(), 9, labels.data()).empty());
  }
  EXPECT_EQ(outputs[0], outputs[1]) << "the batch depends on the number of threads";
  EXPECT_EQ(outputs[0], outputs[2]);

  // The odd-but-valid files decode to (nearly) the same picture as the plain JPEG.
  std::vector<uint8_t> plain(36 * 36 * 3), other(36 * 36 * 3);
  source->load(0, plain.data());
  for (int64_t i = 1; i <= 4; ++i) {
    source->load(i, other.data());
    double diff = 0;
    for (size_t j = 0; j < plain.size(); ++j) diff += std::abs(plain[j] - other[j]);
    diff /= static_cast<double>(plain.size());
    // grayscale keeps only luma; the others are the same colours within JPEG error
    EXPECT_LT(diff, i == 2 ? 40.0 : 4.0) << source->describe(i);
  }
}

TEST(BatchLoader, CropLargerThanTheStoredImagesIsRefused) {
  Config c;
  c.data.image_size = 30;
  c.model.input_size = 32;
  c.data.synthetic.train_images = 4;
  const auto source = make_source(c, Split::train);
  DataStats stats;
  stats.size = 30;
  const std::string e = error_of([&] { BatchLoader(*source, stats, c, 2); });
  EXPECT_NE(e.find("data.image_size"), std::string::npos) << e;
}

// Training on a JPEG tree, stopped mid-epoch and resumed, sees exactly the samples (and
// augmentations) of a run that never stopped: the weights come out bit for bit the same.
TEST(FolderTraining, ResumeMidEpochIsBitIdentical) {
  const Tree tree("resume");
  const std::string dir = tree.root;
  auto args = [&](const std::string& out, int steps) {
    std::vector<std::string> a = {"alexnet-train", "--config",
                                  test::source_path("configs/small.yaml"), "--out",
                                  dir + "/" + out};
    for (const std::string& s : std::vector<std::string>{
             "data.source=folder", "data.train=" + dir + "/train", "data.val=" + dir + "/val",
             "model.num_classes=3", "model.towers=1", "data.batch_size=4", "augment.flip=true",
             "train.max_steps=" + std::to_string(steps), "train.log_every=1"}) {
      a.push_back("--set");
      a.push_back(s);
    }
    return a;
  };
  auto r = test::run(args("straight", 5), dir);  // 3 steps an epoch: stops in epoch 2
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = test::run(args("split", 2), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto resume = args("split", 5);
  resume.push_back("--resume");
  resume.push_back("auto");
  r = test::run(resume, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto straight = read_safetensors(dir + "/straight/checkpoints/last.safetensors");
  const auto split = read_safetensors(dir + "/split/checkpoints/last.safetensors");
  EXPECT_EQ(straight.metadata.at("step"), "5");
  ASSERT_EQ(straight.tensors.size(), split.tensors.size());
  for (const auto& [name, t] : straight.tensors) {
    const auto* u = split.find(name);
    ASSERT_NE(u, nullptr) << name;
    EXPECT_TRUE(t.data == u->data) << name << " differs";
  }
}

}  // namespace
}  // namespace alexnet

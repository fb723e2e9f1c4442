// The run's pictures: metrics.csv parsing, the curves and filter pictures (sizes, the filter
// grid's documented layout and normalisation, checked pixel by pixel against the weights), the
// PNG writer (read back with the loader's decoder), and the binaries that write them:
// alexnet-train (every epoch), alexnet-prep plot, alexnet-predict --sheet.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "alexnet/error.h"
#include "alexnet/image.h"
#include "alexnet/plots.h"
#include "alexnet/safetensors.h"
#include "run_binary.h"

namespace alexnet {
namespace {

namespace fs = std::filesystem;

Image read_png(const std::string& path) {
  const std::string bytes = test::read_file(path);
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

std::array<uint8_t, 3> pixel(const Image& img, int x, int y) {
  const size_t at = (static_cast<size_t>(y) * img.width + x) * 3;
  return {img.rgb[at], img.rgb[at + 1], img.rgb[at + 2]};
}

// The documented normalisation of one kernel's weights (plots.h).
uint8_t normalised(const float* kernel, size_t count, float w) {
  float lo = kernel[0], hi = kernel[0];
  for (size_t i = 0; i < count; ++i) lo = std::min(lo, kernel[i]), hi = std::max(hi, kernel[i]);
  if (hi == lo) return 128;
  return static_cast<uint8_t>(std::lround(255.0 * (double{w} - lo) / (double{hi} - lo)));
}

class Plots : public test::TempDirTest {};

TEST_F(Plots, ReadsMetricsAndNamesABadLine) {
  const std::string path = (dir_ / "metrics.csv").string();
  std::ofstream(path) << "epoch,step,loss,train_top1_err,train_top5_err,val_top1_err,"
                         "val_top5_err,lr,images_per_s,data_wait\n"
                         "1,100,2.5,0.8,0.5,0.75,0.45,0.01,1234.5\n"  // before data_wait
                         "2,200,1.5,0.6,0.3,0.55,0.25,0.001,1300,0.125\n";
  const auto rows = read_metrics(path);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].epoch, 2);
  EXPECT_EQ(rows[1].step, 200);
  EXPECT_EQ(rows[0].val_top5, 0.45);
  EXPECT_EQ(rows[1].lr, 0.001);
  EXPECT_EQ(rows[0].images_per_s, 1234.5);
  EXPECT_EQ(rows[0].data_wait, 0.0);
  EXPECT_EQ(rows[1].data_wait, 0.125);
  for (const char* bad : {"3,300,oops", "3,300,1,1,1,1,1,1,1,0.5,7", "3,300,1,1,1,1,1,1,1;0.5"}) {
    SCOPED_TRACE(bad);
    const std::string copy = (dir_ / "bad.csv").string();
    std::ofstream(copy) << test::read_file(path) << bad << "\n";
    const std::string e = test::error_of([&] { read_metrics(copy); });
    EXPECT_NE(e.find("line 4"), std::string::npos) << e;
    EXPECT_NE(e.find(copy), std::string::npos) << e;
  }
}

TEST_F(Plots, CurvesHaveTheDocumentedSizeAndDrawInBothPanels) {
  std::vector<EpochMetrics> rows;
  for (int e = 1; e <= 6; ++e)
    rows.push_back(
        {e, e * 100, 3.0 / e, 0.9 / e, 0.5 / e, 0.8 / e, 0.4 / e, e < 4 ? 0.01 : 0.001, 1000});
  const cv::Mat img = draw_curves(rows, "test");
  EXPECT_EQ(img.cols, kCurvesWidth);
  EXPECT_EQ(img.rows, kCurvesHeight);
  // Something coloured inside the loss panel (y 60-290) and inside the error panel (350-650).
  auto coloured = [&](int y0, int y1) {
    int n = 0;
    for (int y = y0; y < y1; ++y)
      for (int x = 75; x < 885; ++x) {
        const auto& p = img.at<cv::Vec3b>(y, x);
        n += !(p[0] == p[1] && p[1] == p[2]);  // not white, black or grey: a curve
      }
    return n;
  };
  EXPECT_GT(coloured(62, 288), 200);
  EXPECT_GT(coloured(352, 648), 800);
}

TEST(FilterGrid, PaperLayout) {
  const FilterGrid g = filter_grid(96, 11, 2);
  EXPECT_EQ(g.per_tower, 48);
  EXPECT_EQ(g.columns, 16);
  EXPECT_EQ(g.rows_per_tower, 3);
  EXPECT_EQ(g.scale, 4);
  EXPECT_EQ(g.side, 44);
  EXPECT_EQ(g.width, 2 + 16 * 46);
  EXPECT_EQ(g.height, 2 + 6 * 46 + 10);
  EXPECT_EQ(g.tile(0, 0), cv::Point(2, 2));
  // Tower 1's kernel 17: row 1, column 1 of the bottom block.
  EXPECT_EQ(g.tile(1, 17), cv::Point(2 + 46, 2 + (3 * 46 + 10) + 46));
}

// Kernel i of tower t sits at its documented tile, and each of its pixels is its weight after
// the documented per-kernel normalisation (a constant kernel is grey).
TEST(FilterGrid, TilesShowTheirKernelsNormalised) {
  const int K = 8, S = 3, per = 3 * S * S;
  std::vector<float> w(static_cast<size_t>(K) * per);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.7f * static_cast<float>(i)) * 0.01f;
  std::fill(w.begin() + 5 * per, w.begin() + 6 * per, 0.25f);  // kernel 5: constant
  const cv::Mat img = draw_filters(w, K, S, 2);
  const FilterGrid g = filter_grid(K, S, 2);
  ASSERT_EQ(img.cols, g.width);
  ASSERT_EQ(img.rows, g.height);
  for (int k = 0; k < K; ++k) {
    const int t = k / 4, i = k % 4;
    const cv::Point at = g.tile(t, i);
    const float* kernel = w.data() + static_cast<size_t>(k) * per;
    for (const auto& [y, x] : {std::pair{0, 0}, std::pair{S - 1, 1}, std::pair{1, S - 1}})
      for (int c = 0; c < 3; ++c) {
        const float v = kernel[(c * S + y) * S + x];
        // the middle of the weight's scale x scale block
        const auto& p =
            img.at<cv::Vec3b>(at.y + y * g.scale + g.scale / 2, at.x + x * g.scale + g.scale / 2);
        EXPECT_EQ(p[c], normalised(kernel, per, v))
            << "kernel " << k << " (" << y << ", " << x << ") channel " << c;
      }
  }
  EXPECT_EQ(img.at<cv::Vec3b>(g.tile(1, 1).y, g.tile(1, 1).x), cv::Vec3b(128, 128, 128));
  // Between the tiles: white.
  EXPECT_EQ(img.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));
}

TEST_F(Plots, PngRoundTripsThroughTheLoadersDecoder) {
  cv::Mat img(7, 5, CV_8UC3);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 5; ++x)
      img.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<uint8_t>(y * 30), static_cast<uint8_t>(x * 50), 7);
  const std::string path = (dir_ / "x.png").string();
  write_png(path, img);
  const Image back = read_png(path);
  ASSERT_EQ(back.width, 5);
  ASSERT_EQ(back.height, 7);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 5; ++x)
      EXPECT_EQ(pixel(back, x, y), (std::array<uint8_t, 3>{static_cast<uint8_t>(y * 30),
                                                           static_cast<uint8_t>(x * 50), 7}));
  const std::string e =
      test::error_of([&] { write_png((dir_ / "no/such/dir.png").string(), img); });
  EXPECT_NE(e.find("no/such/dir.png"), std::string::npos) << e;
}

// The binaries: a run draws both pictures every epoch; alexnet-prep plot redraws them; the
// filter picture's tiles are the checkpoint's conv1 weights; predict draws a sheet.
TEST_F(Plots, TrainPrepAndPredictWriteThePictures) {
  const std::string run = (dir_ / "run").string();
  const auto t =
      test::run({"alexnet-train", "--config", test::source_path("configs/small.yaml"), "--out", run,
                 "--set", "train.epochs=1", "--set", "data.synthetic.train_images=320", "--set",
                 "data.synthetic.val_images=64"},
                dir_.string());
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const Image curves = read_png(run + "/curves.png");
  EXPECT_EQ(curves.width, kCurvesWidth);
  EXPECT_EQ(curves.height, kCurvesHeight);
  // small.yaml: conv1 16 kernels of 5x5, 8 per tower: one row of 8 tiles of 40 per tower.
  const Image filters = read_png(run + "/filters.png");
  const FilterGrid g = filter_grid(16, 5, 2);
  ASSERT_EQ(filters.width, g.width);
  ASSERT_EQ(filters.height, g.height);
  const auto ckpt = read_safetensors(run + "/checkpoints/last.safetensors");
  const auto* w = ckpt.find("conv1.weight");
  ASSERT_NE(w, nullptr);
  std::vector<float> conv1(w->data.size() / 4);
  std::memcpy(conv1.data(), w->data.data(), w->data.size());
  for (const int k : {0, 7, 8, 15}) {
    const float* kernel = conv1.data() + k * 75;
    const cv::Point at = g.tile(k / 8, k % 8);
    for (int c = 0; c < 3; ++c)
      EXPECT_EQ(
          pixel(filters, at.x + 2 * g.scale + 1, at.y + 3 * g.scale + 1)[static_cast<size_t>(c)],
          normalised(kernel, 75, kernel[(c * 5 + 3) * 5 + 2]))
          << "kernel " << k << " channel " << c;
  }

  const std::string again = (dir_ / "again").string();
  const auto p = test::run({"alexnet-prep", "plot", run, "--out", again}, dir_.string());
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(test::read_file(again + "/filters.png"), test::read_file(run + "/filters.png"));
  EXPECT_EQ(read_png(again + "/curves.png").width, kCurvesWidth);
  const auto none = test::run({"alexnet-prep", "plot", (dir_ / "missing").string()}, dir_.string());
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("is not a directory"), std::string::npos) << none.err;

  // Three images (two rows of two cells) as predict draws them.
  std::vector<std::string> args = {"alexnet-predict", "--checkpoint",
                                   run + "/checkpoints/last.safetensors", "--sheet",
                                   (dir_ / "sheet.png").string()};
  for (int i = 0; i < 3; ++i) {
    cv::Mat img(40, 50, CV_8UC3, cv::Scalar(40 * i, 100, 200));
    const std::string path = (dir_ / ("img" + std::to_string(i) + ".png")).string();
    write_png(path, img);
    args.push_back(path);
  }
  const auto s = test::run(args, dir_.string());
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const Image sheet = read_png((dir_ / "sheet.png").string());
  EXPECT_EQ(sheet.width, 2 * 520 + 12);
  EXPECT_EQ(sheet.height, 2 * 176 + 12);
}

}  // namespace
}  // namespace alexnet

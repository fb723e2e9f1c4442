// alexnet-bench --loader on a tiny packed set made at test time: the table has a row per thread
// count with positive rates for the loader and OpenCV (or says why OpenCV was left out), the
// comparison is skipped with one line when OpenCV's imgcodecs cannot be opened, and a directory
// that is not a packed JPEG set is refused with one line and status 2. No timing is checked.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "alexnet/data.h"
#include "alexnet/packed.h"
#include "alexnet/synth_jpeg.h"
#include "image_fixtures.h"
#include "run_binary.h"

namespace alexnet {
namespace {

namespace fs = std::filesystem;

// Two classes of four JPEGs, packed at 64x64 (the bench takes any image size; 256 is slow here).
std::string make_packed(const std::string& root, bool raw) {
  uint32_t seed = 1;
  for (const std::string wnid : {"n01440764", "n02119789"}) {
    fs::create_directories(root + "/train/" + wnid);
    for (int i = 0; i < 4; ++i)
      test::write_jpeg(root + "/train/" + wnid + "/" + std::to_string(i) + ".JPEG",
                       test::test_pattern(80, 72, seed++));
  }
  Config config;
  config.data.source = "folder";
  config.data.train = root + "/train";
  config.data.image_size = 64;
  const auto folder = make_folder_source(config, Split::train, nullptr);
  PackOptions options;
  options.out_dir = root + (raw ? "/raw" : "/packed");
  options.raw = raw;
  options.workers = 1;
  pack_source(*folder, options, nullptr);
  return options.out_dir;
}

// The cells of the table row that starts with "| <threads> |"; empty if there is none.
std::vector<std::string> row(const std::string& out, int threads) {
  std::istringstream lines(out);
  const std::string start = "| " + std::to_string(threads) + " |";
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with(start)) continue;
    std::vector<std::string> cells;
    std::istringstream fields(line.substr(1));
    for (std::string cell; std::getline(fields, cell, '|');) {
      cell.erase(0, cell.find_first_not_of(' '));
      cell.erase(cell.find_last_not_of(' ') + 1);
      cells.push_back(cell);
    }
    return cells;
  }
  return {};
}

// A finite number above zero, as the table prints a rate or a ratio.
bool positive(const std::string& cell) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(cell, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == cell.size() && std::isfinite(v) && v > 0;
}

class BenchLoader : public test::TempDirTest {
 protected:
  test::RunResult bench(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"alexnet-bench", "--loader-images", "20"};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run(args, dir_.string());
  }
};

TEST_F(BenchLoader, TableHasARowPerThreadCountWithPositiveRates) {
  const std::string packed = make_packed(dir_.string(), false);
  const auto r = bench({"--loader", packed});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("| decode threads | alexnet loader images/s | OpenCV imdecode images/s | "
                       "alexnet / OpenCV |"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("20 images of 64x64"), std::string::npos) << r.out;
  const bool skipped = r.out.find("OpenCV comparison skipped: ") != std::string::npos;
  for (const int threads : {1, 2}) {
    const auto cells = row(r.out, threads);
    ASSERT_EQ(cells.size(), 4u) << "no row for " << threads << " threads:\n" << r.out;
    EXPECT_TRUE(positive(cells[1])) << cells[1];
    for (int c = 2; c < 4; ++c)
      EXPECT_TRUE(skipped ? cells[c] == "n/a" : positive(cells[c])) << cells[c] << "\n" << r.out;
  }
  // --loader alone measures the input pipeline only.
  EXPECT_EQ(r.out.find("sgemm"), std::string::npos) << r.out;
}

TEST_F(BenchLoader, WithoutOpenCvTheLoaderIsStillMeasured) {
  const std::string packed = make_packed(dir_.string(), false);
  ::setenv("ALEXNET_OPENCV_IMGCODECS", (dir_ / "no-such-library.so").c_str(), 1);
  const auto r = bench({"--loader", packed});
  ::unsetenv("ALEXNET_OPENCV_IMGCODECS");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("OpenCV comparison skipped: cannot load OpenCV's imgcodecs"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("no-such-library.so"), std::string::npos) << r.out;
  for (const int threads : {1, 2}) {
    const auto cells = row(r.out, threads);
    ASSERT_EQ(cells.size(), 4u) << r.out;
    EXPECT_TRUE(positive(cells[1])) << cells[1];
    EXPECT_EQ(cells[2], "n/a");
    EXPECT_EQ(cells[3], "n/a");
  }
}

// One line on stderr that names what is wrong, status 2, nothing measured.
void expect_refused(const test::RunResult& r, const std::vector<std::string>& words) {
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const auto& w : words) EXPECT_NE(r.err.find(w), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("| 1 |"), std::string::npos) << r.out;
}

TEST_F(BenchLoader, RefusesWhatIsNotAPackedJpegSet) {
  const std::string missing = (dir_ / "missing").string();
  expect_refused(bench({"--loader", missing}), {"packed dataset", missing, "no such directory"});
  expect_refused(bench({"--loader", dir_.string()}), {"no index.safetensors"});
  expect_refused(bench({"--loader", make_packed(dir_.string(), true)}), {"raw pixels"});
  const std::string packed = make_packed(dir_.string(), false);
  expect_refused(
      test::run({"alexnet-bench", "--loader", packed, "--loader-images", "0"}, dir_.string()),
      {"--loader-images", "not in range 1 to"});
  expect_refused(test::run({"alexnet-bench", "--loader-images", "5"}, dir_.string()),
                 {"requires --loader"});
}

// --input: the whole input path per thread count. A JPEG tree of full-size photos (made with
// synth-jpeg) also gets the columns without DCT scaling; a packed set does not.
TEST_F(BenchLoader, InputTableHasARowPerThreadCount) {
  const std::string tree = (dir_ / "tree").string();
  write_synthetic_jpeg_tree({tree, 2, 2, 3, 2});
  const auto r = test::run({"alexnet-bench", "--input", tree, "--threads", "1,2", "--input-images",
                            "4", "--set", "data.batch_size=2"},
                           dir_.string());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("| threads | to the batch (GPU run) images/s | without DCT scaling | DCT "
                       "gain | raw tjDecompress images/s | GPU run / raw | scaling vs 1 thread | "
                       "+ augmentation (CPU run) images/s | scaling vs 1 thread |"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("(JPEG tree), 4 images per run"), std::string::npos) << r.out;
  for (const int threads : {1, 2}) {
    const auto cells = row(r.out, threads);
    ASSERT_EQ(cells.size(), 9u) << "no row for " << threads << " threads:\n" << r.out;
    for (size_t c = 1; c < cells.size(); ++c) EXPECT_TRUE(positive(cells[c])) << cells[c];
  }
  EXPECT_EQ(row(r.out, 1)[6], "1.00");
  EXPECT_EQ(row(r.out, 1)[8], "1.00");

  const std::string packed = make_packed(dir_.string(), false);
  const auto p = test::run(
      {"alexnet-bench", "--input", packed, "--threads", "1", "--input-images", "8", "--set",
       "data.image_size=64", "--set", "data.crop=56", "--set", "data.batch_size=4"},
      dir_.string());
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err;
  EXPECT_NE(p.out.find("(packed), 8 images per run"), std::string::npos) << p.out;
  EXPECT_EQ(row(p.out, 1).size(), 7u) << p.out;

  expect_refused(
      test::run({"alexnet-bench", "--input", (dir_ / "missing").string()}, dir_.string()),
      {"--input", "missing", "not a directory"});
}

}  // namespace
}  // namespace alexnet

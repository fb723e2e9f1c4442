// Bad input to the binaries: one clear line on stderr, a non-zero exit, and nothing that
// already existed is overwritten.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "run_binary.h"

namespace alexnet {
namespace {

namespace fs = std::filesystem;
using test::run;

// Every file under `dir` with its contents: what must not change.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[e.path().string()] = test::read_file(e.path().string());
  return files;
}

class CliErrors : public ::testing::Test {
 protected:
  // One short real run whose directory the failing commands must leave alone.
  static void SetUpTestSuite() {
    dir_ = new std::string(test::temp_dir("cli"));
    const auto r = run(
        {"alexnet-train", "--config", config(), "--out", run_dir(), "--set", "train.max_steps=2",
         "--set", "data.synthetic.train_images=64", "--set", "data.synthetic.val_images=32"},
        *dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string config() { return test::source_path("configs/small.yaml"); }
  static std::string run_dir() { return *dir_ + "/run"; }
  static std::string checkpoint() { return run_dir() + "/checkpoints/last.safetensors"; }

  // Runs a command that must fail: non-zero exit, exactly one line on stderr containing
  // every `expected` piece, and the run directory byte for byte as it was.
  void expect_refused(const std::vector<std::string>& args,
                      const std::vector<std::string>& expected) {
    const auto before = snapshot(run_dir());
    const auto r = run(args, *dir_);
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_NE(r.exit_code, 70) << "an internal error, not a user error: " << r.err;
    EXPECT_LT(r.exit_code, 128) << "crashed: " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    for (const auto& piece : expected) EXPECT_NE(r.err.find(piece), std::string::npos) << r.err;
    EXPECT_EQ(snapshot(run_dir()), before) << "the run directory changed";
  }

  static std::string* dir_;
};
std::string* CliErrors::dir_ = nullptr;

TEST_F(CliErrors, MissingConfig) {
  expect_refused({"alexnet-train", "--config", *dir_ + "/nope.yaml", "--out", run_dir()},
                 {"nope.yaml"});
}

TEST_F(CliErrors, UnreadableConfig) {  // a directory: unreadable as a file, even for root
  expect_refused({"alexnet-train", "--config", *dir_, "--out", run_dir()}, {"cannot read config"});
}

TEST_F(CliErrors, UnknownKeyNamesTheClosest) {
  expect_refused({"alexnet-train", "--config", config(), "--out", run_dir(), "--set",
                  "model.conv1.filtres=32"},
                 {"model.conv1.filtres", "model.conv1.filters"});
}

TEST_F(CliErrors, UnknownKeyInAFile) {
  const auto path = *dir_ + "/typo.yaml";
  std::ofstream(path) << "optim:\n  momentun: 0.9\n";
  expect_refused({"alexnet-train", "--config", path, "--out", run_dir()},
                 {"optim.momentun", "optim.momentum"});
}

TEST_F(CliErrors, WrongType) {
  expect_refused(
      {"alexnet-train", "--config", config(), "--out", run_dir(), "--set", "model.towers=two"},
      {"model.towers", "two"});
}

TEST_F(CliErrors, OutOfRange) {
  expect_refused(
      {"alexnet-train", "--config", config(), "--out", run_dir(), "--set", "optim.momentum=1.5"},
      {"optim.momentum", "1.5"});
}

TEST_F(CliErrors, ExistingRunWithoutResume) {
  expect_refused({"alexnet-train", "--config", config(), "--out", run_dir()},
                 {"already holds checkpoints", "--resume"});
}

TEST_F(CliErrors, NothingToResume) {
  const auto empty = *dir_ + "/empty-run";
  expect_refused({"alexnet-train", "--config", config(), "--out", empty, "--resume", "auto"},
                 {"nothing to resume"});
  EXPECT_FALSE(fs::exists(empty)) << "a failed resume created the run directory";
}

TEST_F(CliErrors, ResumeFromMissingFile) {
  expect_refused({"alexnet-train", "--out", run_dir(), "--resume", *dir_ + "/none.safetensors"},
                 {"none.safetensors"});
}

TEST_F(CliErrors, TruncatedCheckpoint) {
  const auto data = test::read_file(checkpoint());
  const auto cut = *dir_ + "/cut.safetensors";
  std::ofstream(cut, std::ios::binary) << data.substr(0, data.size() / 2);
  expect_refused({"alexnet-eval", "--checkpoint", cut}, {"cut.safetensors", "truncated"});
  expect_refused({"alexnet-train", "--out", run_dir(), "--resume", cut}, {"truncated"});
}

TEST_F(CliErrors, ForeignHeader) {
  const auto zip = *dir_ + "/model.pt";
  std::ofstream(zip, std::ios::binary)
      << std::string("PK\x03\x04\x14\x00\x00\x00", 8) << std::string(200, 'x');
  expect_refused({"alexnet-eval", "--checkpoint", zip}, {"model.pt"});
}

TEST_F(CliErrors, SafetensorsFromSomethingElse) {
  // A valid safetensors file that alexnet did not write.
  const std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const auto path = *dir_ + "/other.safetensors";
  std::ofstream f(path, std::ios::binary);
  const uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header << std::string(4, '\0');
  f.close();
  expect_refused({"alexnet-eval", "--checkpoint", path},
                 {"other.safetensors", "not an alexnet checkpoint"});
}

TEST_F(CliErrors, CheckpointShapesDoNotMatchConfig) {
  expect_refused({"alexnet-eval", "--checkpoint", checkpoint(), "--config", config(), "--set",
                  "model.conv1.filters=32"},
                 {"conv1.weight", "[16, 3, 5, 5]", "[32, 3, 5, 5]"});
  expect_refused({"alexnet-train", "--config", config(), "--out", run_dir(), "--resume", "auto",
                  "--set", "model.fc6.units=256"},
                 {"fc6.weight"});
}

TEST_F(CliErrors, OutputDirectoryCannotBeWritten) {
  const auto file = *dir_ + "/a-file";
  std::ofstream(file) << "x";
  expect_refused({"alexnet-train", "--config", config(), "--out", file + "/run"},
                 {"cannot create output directory", "a-file"});
  EXPECT_EQ(test::read_file(file), "x");
}

TEST_F(CliErrors, BadDevice) {
  expect_refused({"alexnet-train", "--config", config(), "--out", run_dir(), "--device", "gpu7"},
                 {"gpu7"});
}

TEST_F(CliErrors, QuasiRandomOnAPackInClassOrder) {
  const std::string packed = *dir_ + "/packed-in-class-order", out = *dir_ + "/quasi";
  const auto r = run({"alexnet-prep", "pack", "--config", config(), "--set",
                      "data.synthetic.train_images=64", "--order", "source", "--out", packed},
                     *dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_refused(
      {"alexnet-train", "--config", config(), "--out", out, "--set", "data.source=packed", "--set",
       "data.train=" + packed, "--set", "data.val=" + packed, "--set", "data.order=quasi_random"},
      {"needs a packed set in shuffled order", packed, "pack it again"});
  EXPECT_FALSE(fs::exists(out)) << "a refused run created its directory";
}

TEST_F(CliErrors, BadOption) {
  expect_refused({"alexnet-eval", "--checkpoint", checkpoint(), "--crops", "3"}, {"--crops"});
  // A count out of range names its range, not 0 to the largest double spelled out.
  expect_refused({"alexnet-predict", "--checkpoint", checkpoint(), "--topk", "0", "x.JPEG"},
                 {"--topk", "1 to 1000000"});
}

}  // namespace
}  // namespace alexnet
